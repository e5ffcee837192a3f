"""Golden sets: a corpus, queries and human judgments, built from the real data in `datasets/`.

| name             | corpus                         | queries                                   | judgments           |
|------------------|--------------------------------|-------------------------------------------|---------------------|
| scifact-test     | SciFact, 5,183 abstracts       | the 300 test queries                      | SciFact test qrels  |
| scifact-train    | SciFact, 5,183 abstracts       | the 809 train queries                     | SciFact train qrels |
| scifact-test-ads | SciFact, 5,183 abstracts       | the test queries of at most 10 words (124)| SciFact test qrels  |
| mrpc-test-dedup  | every sentence of MRPC test    | the first sentence of each paraphrase pair| its partner         |

The ads subset is fixed by a rule (short, keyword-like queries, which is what ad retrieval serves) and its ids are
also committed in `data/ads_query_ids.txt` so that a change to the rule or the data shows up as a test failure.
In the dedup set a query is itself a corpus item, so its own id is excluded from its results (`exclude_self`).
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from index_engines.settings import get_settings

from .loaders import Qrels, load_beir, load_mrpc

log = logging.getLogger(__name__)

ADS_MAX_QUERY_WORDS = 10
ADS_IDS_FILE = Path(__file__).parent / "data" / "ads_query_ids.txt"


@dataclass(frozen=True)
class GoldenSet:
    name: str
    description: str
    corpus: dict[str, str]  # doc id -> text to embed
    queries: dict[str, str]  # query id -> text (only judged queries)
    qrels: Qrels
    exclude_self: bool = False
    _hash: list = field(default_factory=list, repr=False, compare=False)

    @property
    def content_hash(self) -> str:
        """sha256 over corpus, queries and judgments: what MLflow logs so two runs are known to be comparable."""
        if not self._hash:
            h = hashlib.sha256()
            for part in (self.corpus, self.queries, self.qrels, self.exclude_self):
                h.update(json.dumps(part, sort_keys=True).encode())
            self._hash.append(h.hexdigest())
        return self._hash[0]

    def validate(self) -> None:
        """Judgments must point at known queries and documents; otherwise metrics are silently wrong."""
        if not self.queries:
            raise ValueError(f"golden set {self.name!r} has no queries")
        unknown_docs = sorted({d for rels in self.qrels.values() for d in rels if d not in self.corpus})
        if unknown_docs:
            raise ValueError(f"golden set {self.name!r}: judgments name {len(unknown_docs)} documents that are not "
                             f"in its corpus (first: {unknown_docs[:5]}); fix the qrels or the corpus")
        missing = sorted(q for q in self.qrels if q not in self.queries)
        if missing:
            raise ValueError(f"golden set {self.name!r}: judgments name {len(missing)} queries with no text "
                             f"(first: {missing[:5]})")


def _datasets() -> Path:
    return get_settings().datasets


@lru_cache(maxsize=2)
def _scifact(split: str):
    return load_beir(_datasets() / "scifact", split)


def _scifact_golden(name: str, split: str, description: str, keep=None) -> GoldenSet:
    data = _scifact(split)
    qids = [q for q in data.qrels if keep is None or keep(q, data.queries[q])]
    return GoldenSet(
        name=name, description=description,
        corpus={d: data.doc_text(d) for d in data.corpus},
        queries={q: data.queries[q] for q in qids},
        qrels={q: dict(data.qrels[q]) for q in qids},
    )


def ads_rule(query_text: str) -> bool:
    return len(query_text.split()) <= ADS_MAX_QUERY_WORDS


def _mrpc_dedup() -> GoldenSet:
    pairs = load_mrpc(_datasets() / "mrpc" / "msr_paraphrase_test.txt.gz")
    corpus: dict[str, str] = {}
    for p in pairs:
        corpus.setdefault(p.id1, p.s1)
        corpus.setdefault(p.id2, p.s2)
    queries: dict[str, str] = {}
    qrels: Qrels = {}
    for p in pairs:
        if p.label == 1:
            queries[p.id1] = p.s1
            qrels.setdefault(p.id1, {})[p.id2] = 1
    return GoldenSet("mrpc-test-dedup", "MRPC test: find the paraphrase partner of a sentence among all test "
                     "sentences (the sentence itself excluded)", corpus, queries, qrels, exclude_self=True)


_BUILDERS = {
    "scifact-test": lambda: _scifact_golden("scifact-test", "test", "SciFact test queries (300) over 5,183 abstracts"),
    "scifact-train": lambda: _scifact_golden("scifact-train", "train",
                                             "SciFact train queries (809) over 5,183 abstracts"),
    "scifact-test-ads": lambda: _scifact_golden(
        "scifact-test-ads", "test", f"SciFact test queries of at most {ADS_MAX_QUERY_WORDS} words",
        keep=lambda q, text: ads_rule(text)),
    "mrpc-test-dedup": _mrpc_dedup,
}
GOLDEN_SET_NAMES = tuple(_BUILDERS)


@lru_cache(maxsize=None)
def load_golden_set(name: str) -> GoldenSet:
    if name not in _BUILDERS:
        raise ValueError(f"unknown golden set {name!r}; valid golden sets: {', '.join(GOLDEN_SET_NAMES)}")
    golden = _BUILDERS[name]()
    golden.validate()
    return golden
