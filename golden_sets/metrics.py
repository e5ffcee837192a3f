"""IR and ANN metrics with trec_eval semantics, per query and as a mean.

Conventions (tested against pytrec_eval, the trec_eval bindings, to 1e-9):
- a run is ranked by score descending; ties are broken by document id descending (trec_eval's `strcmp` order);
  the rank column of a run file is ignored, as trec_eval ignores it;
- a document is relevant when its judgment is > 0; nDCG gains are the graded judgments (trec_eval's default);
- `precision@k` divides by k even when fewer than k documents were retrieved;
- `recall@k` and `map@k` divide by the number of relevant documents for the query;
- `mrr@k` is the reciprocal rank of the first relevant document within the top k;
- the nDCG discount is log2(rank + 1).

Which queries are averaged: trec_eval averages over queries present in both the run and the qrels. Golden-set
evaluation passes `complete=True` (trec_eval's `-c`): every judged query counts, a query the system did not answer
scores 0.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]

METRIC_NAMES = ("recall", "precision", "ndcg", "mrr", "map")
_METRIC_RE = re.compile(r"^(recall|precision|ndcg|mrr|map)@([1-9][0-9]*)$")


@dataclass(frozen=True)
class MetricResult:
    """One metric over a query set: `per_query` values and their `mean`."""

    name: str
    per_query: dict[str, float]

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.per_query.values()))) if self.per_query else 0.0


def parse_metric(name: str) -> tuple[str, int]:
    m = _METRIC_RE.match(name.strip().lower())
    if not m:
        raise ValueError(f"unknown metric {name!r}; valid metrics are {', '.join(n + '@K' for n in METRIC_NAMES)} "
                         f"with K a positive integer, e.g. ndcg@10,recall@100")
    return m.group(1), int(m.group(2))


def rank_documents(docs: dict[str, float]) -> list[str]:
    """Document ids in trec_eval order: score descending, then document id descending."""
    # Two stable sorts: first by id descending, then by score descending.
    by_id = sorted(docs, reverse=True)
    return sorted(by_id, key=lambda d: -docs[d])


# ----------------------------------------------------------------------------------------- per-query metrics
def _recall(ranked: list[str], rels: dict[str, int], k: int) -> float:
    n_rel = sum(1 for r in rels.values() if r > 0)
    if n_rel == 0:
        return 0.0
    return sum(1 for d in ranked[:k] if rels.get(d, 0) > 0) / n_rel


def _precision(ranked: list[str], rels: dict[str, int], k: int) -> float:
    return sum(1 for d in ranked[:k] if rels.get(d, 0) > 0) / k


def _ndcg(ranked: list[str], rels: dict[str, int], k: int) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if rels.get(d, 0) > 0)
    ideal_gains = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal_gains))
    return dcg / idcg if idcg > 0 else 0.0


def _mrr(ranked: list[str], rels: dict[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def _map(ranked: list[str], rels: dict[str, int], k: int) -> float:
    n_rel = sum(1 for r in rels.values() if r > 0)
    if n_rel == 0:
        return 0.0
    hits, total = 0, 0.0
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            hits += 1
            total += hits / (i + 1)
    return total / n_rel


_FUNCS: dict[str, Callable[[list[str], dict[str, int], int], float]] = {
    "recall": _recall, "precision": _precision, "ndcg": _ndcg, "mrr": _mrr, "map": _map,
}


def evaluate(qrels: Qrels, run: Run, metrics: Iterable[str], *, complete: bool = False) -> dict[str, MetricResult]:
    """Each metric name (e.g. `ndcg@10`) -> its per-query values and mean.

    `complete=False` averages over queries in both run and qrels (trec_eval's default); `complete=True` over every
    query in the qrels, unanswered ones scoring 0.
    """
    parsed = {name: parse_metric(name) for name in metrics}
    if not parsed:
        raise ValueError("no metrics requested; e.g. ndcg@10,recall@100")
    qids = sorted(qrels) if complete else sorted(q for q in qrels if q in run)
    ranked = {q: rank_documents(run.get(q, {})) for q in qids}
    return {
        name: MetricResult(name, {q: _FUNCS[kind](ranked[q], qrels[q], k) for q in qids})
        for name, (kind, k) in parsed.items()
    }


def means(results: dict[str, MetricResult]) -> dict[str, float]:
    return {name: r.mean for name, r in results.items()}


# ------------------------------------------------------------------------------------------------ ANN recall
def ann_recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int) -> np.ndarray:
    """Per-query |approximate top-k ∩ exact top-k| / |exact top-k| (ids of -1 are padding, never counted).

    Both arrays are (n_queries, >= k) id matrices from the same model; the exact one comes from the flat twin.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    approx_ids = np.asarray(approx_ids)[:, :k]
    exact_ids = np.asarray(exact_ids)[:, :k]
    if approx_ids.shape[0] != exact_ids.shape[0]:
        raise ValueError(f"approximate and exact results cover different query counts "
                         f"({approx_ids.shape[0]} vs {exact_ids.shape[0]})")
    out = np.empty(approx_ids.shape[0], dtype=np.float64)
    for i, (a, e) in enumerate(zip(approx_ids, exact_ids)):
        truth = set(e[e >= 0].tolist()) if np.issubdtype(e.dtype, np.integer) else set(e.tolist())
        if not truth:
            out[i] = 1.0  # nothing to find: an empty answer is exact
            continue
        found = set(a[a >= 0].tolist()) if np.issubdtype(a.dtype, np.integer) else set(a.tolist())
        out[i] = len(truth & found) / len(truth)
    return out


def ann_recall_of_runs(approx: Run, exact: Run, k: int) -> MetricResult:
    """ANN recall@k over two runs in the result contract (query id -> doc id -> score)."""
    per_query = {}
    for qid, exact_docs in exact.items():
        truth = set(rank_documents(exact_docs)[:k])
        found = set(rank_documents(approx.get(qid, {}))[:k])
        per_query[qid] = len(truth & found) / len(truth) if truth else 1.0
    return MetricResult(f"ann_recall@{k}", per_query)
