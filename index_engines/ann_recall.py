"""ANN recall@k of any engine configuration against its exact twin (`flat` over the same vectors).

Per query, recall = (returned ids whose exact score reaches the exact k-th best score) / (ids the exact top-k
holds). Judging by exact score rather than by id keeps ties fair: an engine that returns the other copy of a
duplicated vector is not penalised. Exact scores come from the oracle's own arithmetic, so "reaches" needs no
tolerance. The mean over a query sample comes with a seeded percentile-bootstrap confidence interval (queries are
the independent units; the k hits within one query are not).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .engines.base import SearchResult, as_id_array, check_k
from .engines.flat import FlatEngine

BOOTSTRAP_SEED = 0
N_BOOT = 2000


@dataclass(frozen=True)
class RecallReport:
    k: int
    n: int
    mean: float
    ci_low: float
    ci_high: float
    confidence: float
    per_query: np.ndarray

    def as_dict(self) -> dict:
        return {"k": self.k, "n": self.n, "mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "confidence": self.confidence}

    def __str__(self) -> str:
        return (f"recall@{self.k} = {self.mean:.4f} [{self.ci_low:.4f}, {self.ci_high:.4f}] "
                f"({self.confidence:.0%} CI, n={self.n})")


def bootstrap_ci(values: np.ndarray, confidence: float = 0.95, n_boot: int = N_BOOT,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values`."""
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 256):  # bounded memory: 256 resamples at a time
        stop = min(n_boot, start + 256)
        means[start:stop] = values[rng.integers(0, len(values), (stop - start, len(values)))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


class GroundTruth:
    """Exact top-k of a fixed query set, computed once; judges any number of approximate answers."""

    def __init__(self, oracle: FlatEngine, queries, k: int, allow=None):
        if not isinstance(oracle, FlatEngine):
            raise ValueError(f"the oracle must be a flat engine, got {type(oracle).__name__}")
        self.oracle = oracle
        self.k = check_k(k)
        self.allow = allow
        self._allowed = None if allow is None else as_id_array(allow)
        self.queries = np.ascontiguousarray(queries, np.float32)
        self.exact: SearchResult = oracle.search(self.queries, self.k, allow=allow)
        valid = self.exact.ids >= 0
        self.n_true = valid.sum(axis=1)
        # The exact k-th best score of each query (the last valid one).
        last = np.maximum(self.n_true - 1, 0)
        self.kth = np.where(self.n_true > 0, self.exact.scores[np.arange(len(valid)), last], np.inf)

    def per_query(self, ids: np.ndarray) -> np.ndarray:
        """Recall of each query's returned ids (n_q, >= k columns are cut to k). A query with no possible
        result counts 1."""
        ids = np.asarray(ids, np.int64)[:, :self.k]
        if len(ids) != len(self.queries):
            raise ValueError(f"got answers for {len(ids)} queries, the ground truth has {len(self.queries)}")
        # A repeated id counts once.
        dup = np.zeros(ids.shape, bool)
        if ids.shape[1] > 1:
            order = np.sort(ids, axis=1)
            dup_rows = (order[:, 1:] == order[:, :-1]) & (order[:, 1:] >= 0)
            if dup_rows.any():
                for r in np.flatnonzero(dup_rows.any(axis=1)):
                    _, first = np.unique(ids[r], return_index=True)
                    dup[r] = True
                    dup[r, first] = False
        true_scores = self.oracle.score(self.queries, np.where(dup, -1, ids))
        hit = true_scores >= self.kth[:, None]
        if self._allowed is not None:  # an id outside the allow-list is never a hit
            hit &= np.isin(ids, self._allowed)
        hits = hit.sum(axis=1)
        return np.where(self.n_true > 0, np.minimum(hits, self.n_true) / np.maximum(self.n_true, 1), 1.0)

    def report(self, ids: np.ndarray, confidence: float = 0.95) -> RecallReport:
        values = self.per_query(ids)
        low, high = bootstrap_ci(values, confidence)
        return RecallReport(self.k, len(values), float(values.mean()) if len(values) else float("nan"), low, high,
                            confidence, values)


def sample_queries(queries, sample: int | None, seed: int = 0) -> np.ndarray:
    """`sample` rows of `queries` drawn without replacement (all rows when None or larger)."""
    queries = np.asarray(queries)
    if sample is None or sample >= len(queries):
        return queries
    if sample <= 0:
        raise ValueError(f"sample must be a positive number of queries, got {sample}")
    rows = np.sort(np.random.default_rng(seed).choice(len(queries), sample, replace=False))
    return queries[rows]


def ann_recall(engine, oracle: FlatEngine, queries, k: int = 10, params: Mapping | None = None,
               sample: int | None = None, seed: int = 0, allow=None, confidence: float = 0.95) -> RecallReport:
    """Recall@k of `engine` at query `params` against `oracle` (the flat twin holding the same vectors), on a
    seeded sample of `queries`."""
    if len(engine) != len(oracle):
        raise ValueError(f"the engine holds {len(engine)} vectors, its flat twin {len(oracle)}; build both from "
                         f"the same vectors")
    q = sample_queries(queries, sample, seed)
    truth = GroundTruth(oracle, q, k, allow)
    return truth.report(engine.search(q, k, params, allow).ids, confidence)
