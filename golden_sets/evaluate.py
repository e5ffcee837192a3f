"""Evaluate a consumer's golden set against a retrieval system and check its targets.

A retrieval system is anything that turns a golden set into a run (`query id -> doc id -> score`, the one result
contract of the workbench); `ExactRetriever` is the oracle: exact cosine search with a pinned model.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from index_engines.embedding import EmbeddingModel
from index_engines.engines.exact import exact_top_k

from .consumers import ConsumerSpec
from .golden import GoldenSet, load_golden_set
from .metrics import MetricResult, Run, evaluate

LATENCY_SAMPLE = 50  # single queries timed (encode + search) for the p95 figure


class Retriever(Protocol):
    name: str

    def retrieve(self, golden: GoldenSet, k: int) -> Run: ...

    def latency_ms(self, golden: GoldenSet, k: int, n: int) -> np.ndarray: ...


def top_k_exact(doc_vectors: np.ndarray, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k as (row indices, scores), ties broken by row index ascending.

    The arithmetic is the flat engine's (`index_engines.engines.exact`), so golden-set runs, drift and the recall
    monitor rank exactly as the oracle every ANN engine is measured against.
    """
    k = min(k, len(doc_vectors))
    scores, rows = exact_top_k(np.ascontiguousarray(query_vectors, dtype=np.float32),
                               np.ascontiguousarray(doc_vectors, dtype=np.float32), k,
                               np.arange(len(doc_vectors), dtype=np.int64))
    return rows, scores


@dataclass
class ExactRetriever:
    """Exact search over the golden set's corpus, embedded with one model (vectors cached on disk)."""

    model: EmbeddingModel

    @property
    def name(self) -> str:
        return f"{self.model.id}:flat"

    def _vectors(self, golden: GoldenSet):
        doc_ids = list(golden.corpus)
        qids = list(golden.queries)
        docs = self.model.encode([golden.corpus[d] for d in doc_ids])
        queries = self.model.encode([golden.queries[q] for q in qids])
        return doc_ids, docs, qids, queries

    def retrieve(self, golden: GoldenSet, k: int) -> Run:
        doc_ids, docs, qids, queries = self._vectors(golden)
        extra = 1 if golden.exclude_self else 0  # a dedup query finds itself first: fetch one more, drop it
        idx, scores = top_k_exact(docs, queries, k + extra)
        run: Run = {}
        for qi, qid in enumerate(qids):
            hits = [(doc_ids[j], float(s)) for j, s in zip(idx[qi], scores[qi])
                    if not (golden.exclude_self and doc_ids[j] == qid)]
            run[qid] = dict(hits[:k])
        return run

    def latency_ms(self, golden: GoldenSet, k: int, n: int = LATENCY_SAMPLE) -> np.ndarray:
        """Encode (cache bypassed) + exact search, one query at a time, on the first n queries."""
        doc_ids, docs, qids, _ = self._vectors(golden)
        out = []
        for qid in qids[:n]:
            t0 = time.perf_counter()
            q = self.model.encode([golden.queries[qid]], use_cache=False, show_progress=False)
            top_k_exact(docs, q, k)
            out.append((time.perf_counter() - t0) * 1000)
        return np.asarray(out)


@dataclass(frozen=True)
class Check:
    what: str  # "ndcg@10", "p95 latency (ms)"
    value: float
    target: float
    higher_is_better: bool = True

    @property
    def passed(self) -> bool:
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


@dataclass
class ConsumerEvaluation:
    consumer: ConsumerSpec
    system: str
    golden_set_hash: str
    metrics: dict[str, MetricResult]
    checks: list[Check]
    run: Run

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict:
        return {
            "consumer": self.consumer.name, "system": self.system, "golden_set": self.consumer.golden_set,
            "golden_set_hash": self.golden_set_hash, "n_queries": len(next(iter(self.metrics.values())).per_query),
            "metrics": {n: m.mean for n, m in self.metrics.items()},
            "checks": [{"what": c.what, "value": c.value, "target": c.target, "passed": c.passed}
                       for c in self.checks],
            "passed": self.passed,
        }


def evaluate_consumer(consumer: ConsumerSpec, retriever: Retriever, *, extra_metrics: tuple[str, ...] = (),
                      measure_latency: bool = True) -> ConsumerEvaluation:
    golden = load_golden_set(consumer.golden_set)
    run = retriever.retrieve(golden, consumer.candidate_pool)
    names = list(dict.fromkeys(consumer.metrics + list(extra_metrics)))
    results = evaluate(golden.qrels, run, names, complete=True)
    checks = [Check(q.metric, results[q.metric].mean, q.target) for q in consumer.quality]
    if measure_latency:
        p95 = float(np.percentile(retriever.latency_ms(golden, consumer.k), 95))
        checks.append(Check("p95 latency ms (encode+search)", p95, consumer.latency_p95_ms, higher_is_better=False))
    return ConsumerEvaluation(consumer, retriever.name, golden.content_hash, results, checks, run)
