"""`BM25Index`: a BM25 index that follows a collection's write path (upsert, delete, compact, save/load).

Why not a static bm25s index: bm25s precomputes idf x length-normalised term frequency for every posting with the
corpus statistics (N, document frequencies, average length) frozen at build time, so every upsert or delete would
mean a full rebuild before scores are right again. Here the postings hold raw term frequencies and the statistics
are kept live, so BM25 is computed at query time with the statistics of exactly the documents alive now (Lucene's
approach). Consequences, all tested:
- after deletes, scores equal those of an index built from scratch over the survivors (and rank-bm25's BM25Okapi on
  the same tokens), in the tombstoned state and after `compact()` alike: a tombstone removes the document from N,
  the document frequencies and the average length at once; only its postings linger until compaction;
- writes cost O(document) plus an amortised re-sort of postings: new documents go to a delta range whose
  term-major postings are rebuilt lazily (only when a query follows a write); when the delta outgrows
  `max(seal_min, seal_fraction x sealed)` documents it is merged into the sealed range (geometric, so each posting
  is re-sorted O(1/seal_fraction) times);
- query cost is proportional to the postings of the query's terms, as in bm25s (the benchmark measures both).

Scoring is rank-bm25's BM25Okapi, so rank-bm25 stays the reference in tests:
  idf(t) = ln(N - df + 0.5) - ln(df + 0.5), negative idf replaced by epsilon x (mean idf over the vocabulary);
  score(d, q) = sum over query tokens t (repeats count) of
                idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)).
Defaults k1=0.9, b=0.4 are Lucene/Anserini's BM25 defaults (chosen a priori, not tuned on the test queries).

Results are (id, score) pairs, score descending, ties by id ascending; only documents sharing at least one term
with the query are returned.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .postings import Growable, Postings, expand_ranges
from .tokenizer import Tokenizer

FORMAT_VERSION = 1
Hits = list[tuple[str | int, float]]  # (id, score)


class EmptyQueryError(ValueError):
    """The query has no searchable term (empty, or only stopwords and punctuation)."""


@dataclass(frozen=True)
class BM25Params:
    k1: float = 0.9
    b: float = 0.4
    epsilon: float = 0.25  # rank-bm25's floor for negative idf, as a fraction of the mean idf

    def __post_init__(self):
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"BM25 {name} must be a finite number, got {value!r}")
        if self.k1 < 0:
            raise ValueError(f"BM25 k1 must be >= 0, got {self.k1}")
        if not 0 <= self.b <= 1:
            raise ValueError(f"BM25 b must be between 0 and 1, got {self.b}")


def _check_ids(ids) -> list:
    """Ids as a list of non-empty strings or of ints >= 0 (numpy ints become Python ints), unique in the batch."""
    if isinstance(ids, str):
        raise ValueError("ids must be a list of ids, not a single string; wrap it: [id]")
    out = []
    for i, x in enumerate(ids.tolist() if isinstance(ids, np.ndarray) else ids):
        if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) and x >= 0:
            out.append(int(x))
        elif isinstance(x, str) and x:
            out.append(x)
        else:
            raise ValueError(f"id #{i} must be a non-empty string or an integer >= 0, got {x!r}")
    if len(set(out)) != len(out):
        seen: set = set()
        dup = next(x for x in out if x in seen or seen.add(x))
        raise ValueError(f"duplicate id {dup!r} in one batch; each id may appear once")
    return out


class BM25Index:
    def __init__(self, params: BM25Params | None = None, tokenizer: Tokenizer | None = None, *,
                 seal_min: int = 2048, seal_fraction: float = 0.25):
        if seal_min < 1 or not 0 < seal_fraction:
            raise ValueError("seal_min must be >= 1 and seal_fraction > 0")
        self.params = params or BM25Params()
        self.tokenizer = tokenizer or Tokenizer()
        self.seal_min, self.seal_fraction = int(seal_min), float(seal_fraction)
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self._ids: list[str] = []  # id of each position (dead positions keep theirs until compaction)
        self._pos: dict[str, int] = {}  # live id -> position
        self._alive = Growable(bool)
        self._doc_len = Growable(np.int64)
        self._offsets = Growable.of([0], np.int64)  # doc-major store: distinct terms of each position
        self._terms = Growable(np.int32)
        self._tfs = Growable(np.int32)
        self._vocab: dict[str, int] = {}
        self._df = Growable(np.int64)  # live document frequency per term id
        self._n_live = 0
        self._sum_len = 0
        self._sealed: Postings | None = None
        self._delta: Postings | None = None  # cache over [sealed.stop, n_positions), rebuilt after writes
        self._idf: np.ndarray | None = None  # caches over the live statistics, cleared by every write
        self._norm: np.ndarray | None = None

    # ------------------------------------------------------------------------------------------ properties
    def __len__(self) -> int:
        return self._n_live

    def __contains__(self, doc_id) -> bool:
        return doc_id in self._pos

    @property
    def ids(self) -> list[str]:
        """Live ids in position order."""
        return [self._ids[p] for p in np.flatnonzero(self._alive.view)]

    @property
    def n_tombstones(self) -> int:
        return len(self._ids) - self._n_live

    def stats(self) -> dict:
        sealed = self._sealed.stop if self._sealed else 0
        return {"documents": self._n_live, "tombstones": self.n_tombstones, "terms": int((self._df.view > 0).sum()),
                "avg_doc_len": self._sum_len / self._n_live if self._n_live else 0.0,
                "sealed_positions": sealed, "delta_positions": len(self._ids) - sealed,
                "params": asdict(self.params)}

    def memory_bytes(self) -> int:
        arrays = [self._alive.view, self._doc_len.view, self._offsets.view, self._terms.view, self._tfs.view,
                  self._df.view]
        for p in (self._sealed, self._delta):
            if p is not None:
                arrays += [p.indptr, p.docs, p.tfs]
        return int(sum(a.nbytes for a in arrays))

    # ------------------------------------------------------------------------------------------ write path
    def upsert(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Add documents; an id already present is replaced (its old version becomes a tombstone)."""
        ids = _check_ids(ids)
        texts = list(texts) if not isinstance(texts, str) else None
        if texts is None or len(texts) != len(ids):
            raise ValueError(f"upsert needs one text per id: got {len(ids)} ids and "
                             f"{'a single string' if texts is None else len(texts)} texts")
        tokenized = [self.tokenizer.tokenize(t) if isinstance(t, str) else _bad_text(i, t)
                     for i, t in enumerate(texts)]
        with self._lock:
            self._check_id_type(ids)
            for doc_id in ids:
                if doc_id in self._pos:
                    self._tombstone(self._pos[doc_id])
            for doc_id, tokens in zip(ids, tokenized):
                self._append(doc_id, tokens)
            self._after_write(new_documents=True)

    def delete(self, ids: Iterable[str]) -> int:
        """Tombstone documents; ids not in the index are ignored. Returns how many were deleted."""
        ids = _check_ids(ids)
        with self._lock:
            found = [self._pos[i] for i in ids if i in self._pos]
            for p in found:
                self._tombstone(p)
            if found:
                self._after_write(new_documents=False)
            return len(found)

    def compact(self) -> int:
        """Drop tombstoned documents and terms no live document uses; returns how many documents were dropped.
        Scores are unchanged by compaction (same statistics, same summation order)."""
        with self._lock:
            dropped = self.n_tombstones
            keep = np.flatnonzero(self._alive.view)
            offsets, terms, tfs = self._offsets.view, self._terms.view, self._tfs.view
            lengths = np.diff(offsets)[keep]
            rows = expand_ranges(offsets[keep], lengths)
            old_terms, new_tfs = terms[rows], tfs[rows]
            used = np.flatnonzero(self._df.view > 0)
            remap = np.full(len(self._vocab), -1, np.int64)
            remap[used] = np.arange(len(used))
            words = np.array(list(self._vocab), dtype=object)[used]
            ids, doc_len, df = [self._ids[p] for p in keep], self._doc_len.view[keep], self._df.view[used]
            self._reset()
            self._ids = ids
            self._pos = {d: i for i, d in enumerate(ids)}
            self._alive = Growable.of(np.ones(len(ids), bool), bool)
            self._doc_len = Growable.of(doc_len, np.int64)
            self._offsets = Growable.of(np.concatenate([[0], np.cumsum(lengths)]), np.int64)
            self._terms = Growable.of(remap[old_terms], np.int32)
            self._tfs = Growable.of(new_tfs, np.int32)
            self._vocab = {w: i for i, w in enumerate(words)}
            self._df = Growable.of(df, np.int64)
            self._n_live, self._sum_len = len(ids), int(doc_len.sum())
            self._seal()
            return dropped

    def _check_id_type(self, ids: list) -> None:
        """One index holds string ids or integer ids, never both (their order must be defined for tie-breaks)."""
        kinds = {type(x) for x in ids} | ({type(self._ids[0])} if self._ids else set())
        if len(kinds) > 1:
            raise ValueError("an index holds string ids or integer ids, not both; got "
                             f"{' and '.join(sorted(k.__name__ for k in kinds))}")

    def _append(self, doc_id: str, tokens: list[str]) -> None:
        vocab = self._vocab
        tids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), dtype=np.int32, count=len(tokens))
        uniq, counts = np.unique(tids, return_counts=True)
        self._df.grow_to(len(vocab))
        self._df.view[uniq] += 1
        self._terms.extend(uniq)
        self._tfs.extend(counts)
        self._offsets.extend([len(self._terms)])
        self._doc_len.extend([len(tokens)])
        self._alive.extend([True])
        self._pos[doc_id] = len(self._ids)
        self._ids.append(doc_id)
        self._n_live += 1
        self._sum_len += len(tokens)

    def _tombstone(self, p: int) -> None:
        offsets = self._offsets.view
        self._df.view[self._terms.view[offsets[p]:offsets[p + 1]]] -= 1
        self._alive.view[p] = False
        self._n_live -= 1
        self._sum_len -= int(self._doc_len.view[p])
        del self._pos[self._ids[p]]

    def _after_write(self, new_documents: bool) -> None:
        self._idf = self._norm = None
        if not new_documents:
            return  # postings are untouched by deletes: the alive mask hides tombstones
        self._delta = None
        sealed = self._sealed.stop if self._sealed else 0
        if len(self._ids) - sealed >= max(self.seal_min, self.seal_fraction * sealed):
            self._seal()

    def _seal(self) -> None:
        self._sealed = Postings.build(self._offsets.view, self._terms.view, self._tfs.view, 0, len(self._ids),
                                      len(self._vocab))
        self._delta = None

    def _parts(self) -> list[Postings]:
        sealed = self._sealed.stop if self._sealed else 0
        if self._delta is None and len(self._ids) > sealed:
            self._delta = Postings.build(self._offsets.view, self._terms.view, self._tfs.view, sealed,
                                         len(self._ids), len(self._vocab))
        return [p for p in (self._sealed, self._delta) if p is not None]

    # ------------------------------------------------------------------------------------------ statistics
    def _idf_array(self) -> np.ndarray:
        if self._idf is None:
            df = self._df.view.astype(np.float64)
            n = float(self._n_live)
            present = df > 0
            idf = np.zeros(len(df))
            idf[present] = np.log(n - df[present] + 0.5) - np.log(df[present] + 0.5)
            if present.any():
                floor = self.params.epsilon * idf[present].mean()  # rank-bm25: mean over the raw idfs
                idf[present & (idf < 0)] = floor
            self._idf = idf
        return self._idf

    def _norm_array(self) -> np.ndarray:
        """k1 * (1 - b + b * dl / avgdl) per position (tombstones included, harmlessly)."""
        if self._norm is None:
            k1, b = self.params.k1, self.params.b
            avgdl = self._sum_len / self._n_live if self._n_live else 1.0
            dl = self._doc_len.view.astype(np.float64)
            self._norm = k1 * (1 - b + b * dl / avgdl) if avgdl > 0 else np.full(len(dl), k1 * (1 - b))
        return self._norm

    # ------------------------------------------------------------------------------------------ search
    def query_terms(self, query: str | Sequence[str]) -> list[str]:
        """The query's tokens (a string is tokenized; a token list is taken as is). Raises EmptyQueryError."""
        if isinstance(query, str):
            if not query.strip():
                raise EmptyQueryError("the query is empty; give at least one word")
            tokens = self.tokenizer.tokenize(query)
            if not tokens:
                raise EmptyQueryError(f"the query {query!r} has no searchable term: every word is a stopword or "
                                      f"shorter than two characters")
            return tokens
        tokens = list(query)
        if not tokens or not all(isinstance(t, str) for t in tokens):
            raise EmptyQueryError("a token query must be a non-empty list of strings")
        return tokens

    def _scores(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(touched mask, scores) over all positions. Terms are summed in order of first occurrence in the query,
        so a document's score does not depend on how positions are split between sealed and delta postings."""
        weights: dict[int, int] = {}
        for t in tokens:
            tid = self._vocab.get(t)
            if tid is not None:
                weights[tid] = weights.get(tid, 0) + 1  # rank-bm25 counts a repeated query token each time
        n = len(self._ids)
        touched, scores = np.zeros(n, bool), np.zeros(n)
        if not weights or self._n_live == 0:
            return touched, scores
        tids = np.fromiter(weights, np.int64, len(weights))
        w = np.fromiter(weights.values(), np.float64, len(weights)) * self._idf_array()[tids] * (self.params.k1 + 1)
        norm = self._norm_array()
        for part in self._parts():
            docs, tfs, pw = part.gather(tids, w)
            touched[docs] = True
            scores += np.bincount(docs, weights=pw * tfs / (tfs + norm[docs]), minlength=n)
        return touched, scores

    def scores(self, query: str | Sequence[str]) -> dict[str, float]:
        """The BM25 score of every live document (0 for documents without a query term), keyed by id."""
        tokens = self.query_terms(query)
        with self._lock:
            _, scores = self._scores(tokens)
            return {self._ids[p]: float(scores[p]) for p in np.flatnonzero(self._alive.view)}

    def search(self, query: str | Sequence[str], k: int, allow: Iterable[str] | None = None) -> Hits:
        """Top-k live documents sharing a term with the query; `allow`: only these ids may be returned (ids the
        index does not hold are ignored)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        tokens = self.query_terms(query)
        with self._lock:
            touched, scores = self._scores(tokens)
            mask = touched & self._alive.view
            if allow is not None:
                allowed = np.zeros(len(mask), bool)
                pos = self._pos
                allowed[[pos[i] for i in (allow.tolist() if isinstance(allow, np.ndarray) else allow)
                         if i in pos]] = True
                mask &= allowed
            cand = np.flatnonzero(mask)
            s = scores[cand]
            if len(cand) > k:  # keep the top k plus everything tied with the k-th score
                kth = np.partition(s, len(s) - k)[len(s) - k]
                cand, s = cand[s >= kth], s[s >= kth]
            order = np.argsort(-s, kind="stable")
            cand, s = cand[order], s[order]
            ids = self._ids
            hits = [(ids[p], v) for p, v in zip(cand.tolist(), s.tolist())]
            if len(s) > 1 and (s[1:] == s[:-1]).any():  # equal scores: order those by id (rare, so in Python)
                hits.sort(key=lambda h: (-h[1], h[0]))
            return hits[:int(k)]

    # ------------------------------------------------------------------------------------------ persistence
    def save(self, directory, *, extra: dict | None = None) -> None:
        """Write the index (tombstones included) to `directory`, replacing it whole via a temporary sibling and
        `os.replace`, so a crash leaves the old index or the new one. `extra` (JSON) is kept in meta.json and
        returned by `read_meta` (a collection stores its log position there)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.with_name(f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
        try:
            with self._lock:
                for name, g in (("alive", self._alive), ("doc_len", self._doc_len), ("offsets", self._offsets),
                                ("terms", self._terms), ("tfs", self._tfs), ("df", self._df)):
                    np.save(tmp / f"{name}.npy", g.view)
                (tmp / "ids.json").write_text(json.dumps(self._ids))
                (tmp / "vocab.json").write_text(json.dumps(list(self._vocab)))
                meta = {"format": FORMAT_VERSION, "kind": "bm25", "params": asdict(self.params),
                        "tokenizer": self.tokenizer.to_dict(), "seal_min": self.seal_min,
                        "seal_fraction": self.seal_fraction, "documents": self._n_live, "positions": len(self._ids),
                        "extra": extra or {}}
                (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
            old = directory.with_name(f".{directory.name}.old-{uuid.uuid4().hex[:8]}")
            if directory.exists():
                os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @staticmethod
    def read_meta(directory) -> dict:
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"no BM25 index in {directory} (meta.json missing)")
        meta = json.loads(meta_path.read_text())
        if meta.get("kind") != "bm25" or meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{directory}: not a BM25 index of format {FORMAT_VERSION} ({meta.get('kind')!r}, "
                             f"format {meta.get('format')!r})")
        return meta

    @classmethod
    def load(cls, directory) -> "BM25Index":
        directory = Path(directory)
        meta = cls.read_meta(directory)
        index = cls(BM25Params(**meta["params"]), Tokenizer.from_dict(meta["tokenizer"]),
                    seal_min=meta["seal_min"], seal_fraction=meta["seal_fraction"])
        arrays = {name: np.load(directory / f"{name}.npy") for name in
                  ("alive", "doc_len", "offsets", "terms", "tfs", "df")}
        index._ids = json.loads((directory / "ids.json").read_text())
        index._vocab = {w: i for i, w in enumerate(json.loads((directory / "vocab.json").read_text()))}
        for name, dtype in (("alive", bool), ("doc_len", np.int64), ("offsets", np.int64), ("terms", np.int32),
                            ("tfs", np.int32), ("df", np.int64)):
            setattr(index, f"_{name}", Growable.of(arrays[name], dtype))
        alive = arrays["alive"]
        index._pos = {index._ids[p]: int(p) for p in np.flatnonzero(alive)}
        index._n_live, index._sum_len = int(alive.sum()), int(arrays["doc_len"][alive].sum())
        if index._n_live != meta["documents"] or len(index._ids) != meta["positions"] != len(alive):
            raise ValueError(f"{directory}: counts disagree with meta.json; the index is damaged, rebuild it")
        index._seal()
        return index


def _bad_text(i: int, value) -> list[str]:
    raise ValueError(f"text #{i} must be a string, got {type(value).__name__}")
