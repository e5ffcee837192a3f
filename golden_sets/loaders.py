"""Loaders for the plain-file formats the workbench reads.

- BEIR layout: `corpus.jsonl[.gz]` (`_id`, `title`, `text`), `queries.jsonl[.gz]` (`_id`, `text`),
  `qrels/<split>.tsv` (`query-id  corpus-id  score`, header line);
- TREC run files (`qid Q0 docid rank score tag`) and TREC qrels (`qid 0 docid rel`);
- sentence-pair sets: MRPC (`label id1 id2 s1 s2`) and STS Benchmark (`genre file year id score s1 s2 ...`);
- the sentence pool for ANN benchmarks (`id source doc text`).

Everything returns plain dicts (the BEIR/ranx convention): qrels and runs are `query id -> doc id -> value`.
A malformed file is a `DataFormatError` that names the file and the line.
"""
from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]


class DataFormatError(ValueError):
    def __init__(self, path: Path | str, line_no: int, problem: str):
        super().__init__(f"{path}:{line_no}: {problem}")
        self.path, self.line_no, self.problem = str(path), line_no, problem


def _open_text(path: Path) -> io.TextIOBase:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")  # -sig: MRPC starts with a byte-order mark


def _resolve(path: Path) -> Path:
    """`x.jsonl` or `x.jsonl.gz`, whichever exists."""
    if path.exists():
        return path
    gz = path.with_name(path.name + ".gz")
    return gz if gz.exists() else path


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with _open_text(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(path, line_no, f"not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DataFormatError(path, line_no, "expected a JSON object per line")
            yield line_no, obj


# ------------------------------------------------------------------------------------------------------ BEIR
@dataclass(frozen=True)
class BeirDataset:
    corpus: dict[str, dict[str, str]]  # doc id -> {"title", "text"}
    queries: dict[str, str]  # query id -> text
    qrels: Qrels  # only the queries of the chosen split

    def doc_text(self, doc_id: str) -> str:
        doc = self.corpus[doc_id]
        return f"{doc['title']}. {doc['text']}" if doc.get("title") else doc["text"]


def load_beir_corpus(path: Path) -> dict[str, dict[str, str]]:
    path = _resolve(Path(path))
    corpus: dict[str, dict[str, str]] = {}
    for line_no, obj in _iter_jsonl(path):
        if "_id" not in obj or "text" not in obj:
            raise DataFormatError(path, line_no, "a corpus line needs '_id' and 'text'")
        doc_id = str(obj["_id"])
        if doc_id in corpus:
            raise DataFormatError(path, line_no, f"duplicate document id {doc_id!r}")
        corpus[doc_id] = {"title": str(obj.get("title") or ""), "text": str(obj["text"])}
    return corpus


def load_beir_queries(path: Path) -> dict[str, str]:
    path = _resolve(Path(path))
    queries: dict[str, str] = {}
    for line_no, obj in _iter_jsonl(path):
        if "_id" not in obj or "text" not in obj:
            raise DataFormatError(path, line_no, "a query line needs '_id' and 'text'")
        queries[str(obj["_id"])] = str(obj["text"])
    return queries


def _iter_fields(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, whitespace-separated fields) of each non-blank line."""
    with _open_text(path) as f:
        for line_no, line in enumerate(f, 1):
            parts = line.split()
            if parts:
                yield line_no, parts


def _parse_number(path: Path, line_no: int, text: str, kind: type, what: str):
    try:
        return kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise DataFormatError(path, line_no, f"{what} {text!r} is not {noun}") from None


def load_qrels(path: Path) -> Qrels:
    """BEIR tsv (`query-id corpus-id score`, optional header) or TREC qrels (`qid 0 docid rel`), by column count."""
    path = Path(path)
    qrels: Qrels = {}
    for line_no, parts in _iter_fields(path):
        if line_no == 1 and parts[0] == "query-id":
            continue
        if len(parts) == 3:
            qid, docid, rel = parts
        elif len(parts) == 4:
            qid, _, docid, rel = parts
        else:
            raise DataFormatError(path, line_no, f"expected 3 columns (BEIR: query-id corpus-id score) or 4 "
                                                 f"(TREC: qid 0 docid rel), found {len(parts)}")
        qrels.setdefault(qid, {})[docid] = _parse_number(path, line_no, rel, int, "relevance")
    return qrels


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").exists() else []
        raise FileNotFoundError(f"no qrels for split {split!r} in {folder}; available splits: {splits or 'none'}")
    return BeirDataset(
        corpus=load_beir_corpus(folder / "corpus.jsonl"),
        queries=load_beir_queries(folder / "queries.jsonl"),
        qrels=load_qrels(qrels_path),
    )


# ------------------------------------------------------------------------------------------------------- TREC
def load_trec_run(path: Path) -> Run:
    """`qid Q0 docid rank score tag`. The rank column is ignored, as trec_eval ignores it: order is by score."""
    path = Path(path)
    run: Run = {}
    for line_no, parts in _iter_fields(path):
        if len(parts) != 6:
            raise DataFormatError(path, line_no, f"expected 6 columns (qid Q0 docid rank score tag), "
                                                 f"found {len(parts)}")
        qid, _, docid, _, score, _ = parts
        value = _parse_number(path, line_no, score, float, "score")
        docs = run.setdefault(qid, {})
        if docid in docs:
            raise DataFormatError(path, line_no, f"document {docid!r} appears twice for query {qid!r}")
        docs[docid] = value
    return run


def write_trec_run(run: Run, path: Path, tag: str = "workbench") -> None:
    """Ranks in the order trec_eval (and `golden_sets.metrics`) reads the scores, ties included."""
    from .metrics import rank_documents

    with open(path, "w", encoding="utf-8") as f:
        for qid, docs in run.items():
            for rank, docid in enumerate(rank_documents(docs), 1):
                f.write(f"{qid} Q0 {docid} {rank} {docs[docid]!r} {tag}\n")


# ------------------------------------------------------------------------------------------- sentence pairs
@dataclass(frozen=True)
class SentencePair:
    id1: str
    id2: str
    s1: str
    s2: str
    label: float  # MRPC: 1 paraphrase / 0 not; STS: similarity 0-5


def _iter_tab_fields(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, tab-separated fields) of each non-blank line (sentences contain spaces, so tabs only)."""
    with _open_text(path) as f:
        for line_no, line in enumerate(f, 1):
            if line.strip():
                yield line_no, line.rstrip("\n").split("\t")


def load_mrpc(path: Path) -> list[SentencePair]:
    path = Path(path)
    pairs = []
    for line_no, parts in _iter_tab_fields(path):
        if len(parts) != 5:
            raise DataFormatError(path, line_no, f"expected 5 tab-separated fields (label id1 id2 s1 s2), "
                                                 f"found {len(parts)}")
        label, id1, id2, s1, s2 = parts
        if label not in ("0", "1"):
            raise DataFormatError(path, line_no, f"label must be 0 or 1, found {label!r}")
        pairs.append(SentencePair(id1, id2, s1, s2, float(label)))
    return pairs


def load_sts(path: Path) -> list[SentencePair]:
    path = Path(path)
    pairs = []
    for line_no, parts in _iter_tab_fields(path):
        if len(parts) < 7:
            raise DataFormatError(path, line_no, f"expected at least 7 tab-separated fields "
                                                 f"(genre file year id score s1 s2), found {len(parts)}")
        score = _parse_number(path, line_no, parts[4], float, "score")
        pair_id = f"{parts[1]}-{parts[2]}-{parts[3]}"
        pairs.append(SentencePair(f"{pair_id}-a", f"{pair_id}-b", parts[5], parts[6], score))
    return pairs


# ---------------------------------------------------------------------------------------------- sentences
def load_sentences(path: Path) -> list[str]:
    """The sentence pool (`sentences.jsonl.gz`), in file order (ids are 0..n-1)."""
    path = _resolve(Path(path))
    texts = []
    for line_no, obj in _iter_jsonl(path):
        if "text" not in obj:
            raise DataFormatError(path, line_no, "a sentence line needs 'text'")
        texts.append(str(obj["text"]))
    return texts
