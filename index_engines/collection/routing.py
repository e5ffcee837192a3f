"""Selectivity-aware filtered search: choose how to search each segment from the filter's estimated selectivity.

The filter cliff: with a selective filter, plain post-filtering (ANN top-k', then drop disallowed items) returns
fewer than k results, and in-graph filtering (the graph walk skips disallowed nodes) starves: the walk's bounded
candidate list runs through disallowed regions and recall collapses near 1% selectivity. So:

| route            | when (defaults, `RoutingPolicy`)                    | how                                          |
|------------------|-----------------------------------------------------|----------------------------------------------|
| `unfiltered`     | no filter                                           | ANN search (tombstones post-filtered)        |
| `exact_allowed`  | estimated allowed items <= `exact_max_items` (4096) | flat (exact) scan of the allowed rows        |
| `post_filter`    | selectivity >= `post_filter_min` (0.04)             | ANN top-k', k' = max(ef, k / selectivity x   |
|                  |                                                     | 2), retried with 4x k' while short, then     |
|                  |                                                     | an exact scan                                |
| `filtered_graph` | in between (none at 100k items with the defaults;   | ANN walk restricted to the allowed rows      |
|                  | 0.4%..4% at 1M)                                     | (hnswlib `filter=`, faiss `IDSelector`)      |

Why these thresholds (100k MiniLM vectors, hnsw M=16, ef=128, one query per call; docs/BENCHMARKS.md): an exact
scan costs about 0.5 ms per 1,000 allowed rows; a routed post-filter 1.0 ms (p50) at 10% and 2.4 ms at 4%
(k' = 500); unfiltered ANN 0.6 ms. Exact scans and post-filtering cross near 4,000 items = 4%. In-graph filtering
was slower or worse at every selectivity measured (hnswlib calls a Python predicate per candidate: 4.6 ms at 10%,
26 ms at 1%; faiss's bitmap walk is fast but loses recall: 0.93 at 10%, 0.61 at 1% with ef=128), so it only
serves the band where an exact scan is too large and k / selectivity too deep (none at 100k items; 0.4%..4% at
1M); with the faiss backend raise `graph_ef_floor` there.

Whatever the route, a segment that yields fewer than min(k, its allowed items) results is re-searched exactly, so
a query never returns fewer than k results when k allowed items exist. Segments still growing (or sealed but not
yet indexed) and segments of at most `exact_max_items` rows are always scanned exactly. The thresholds are
measured in `workbench bench filters` (docs/BENCHMARKS.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from ..engines.exact import top_k_grouped
from .errors import CollectionError
from .filters import MatchAll, Node
from .payload import PayloadStore
from .segments import Segment

ROUTES = ("exact_allowed", "filtered_graph", "post_filter", "unfiltered", "exact")


@dataclass(frozen=True)
class RoutingPolicy:
    exact_max_items: int = 4096  # at most this many allowed items (estimated): scan them exactly
    post_filter_min: float = 0.04  # selectivity at or above which post-filtering reliably fills k
    oversample: float = 2.0  # post-filter fetches k / selectivity x this many candidates
    post_filter_rounds: int = 3  # rounds of 4x larger fetches before falling back to an exact scan
    graph_ef_floor: int = 0  # minimum `ef` for in-graph filtering (0: the engine's query params)

    @classmethod
    def from_dict(cls, overrides: dict | None) -> "RoutingPolicy":
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides or {}) - valid)
        if unknown:
            raise CollectionError(f"unknown routing option {unknown[0]!r}; valid options: {', '.join(sorted(valid))}")
        return cls(**(overrides or {}))


class QueryPlan:
    """One search's filter, its estimated selectivity and the chosen route; materialises the allowed rows only
    for the routes that need them (exact scans, in-graph allow-lists, post-filter fallbacks)."""

    def __init__(self, store: PayloadStore, node: Node, policy: RoutingPolicy, exact: bool = False,
                 route: str | None = None):
        self.store = store
        self.node = node
        self.policy = policy
        self.filtered = not isinstance(node, MatchAll)
        self.selectivity = node.estimate(store) if self.filtered else 1.0
        self.allowed_estimate = int(round(self.selectivity * store.n_alive))
        self._allowed: np.ndarray | None = None
        if route is not None and route not in ROUTES:
            raise CollectionError(f"unknown route {route!r}; valid routes: {', '.join(ROUTES)}")
        self.route = route or ("exact" if exact else self._choose())

    def _choose(self) -> str:
        if not self.filtered:
            return "unfiltered"
        if self.allowed_estimate <= self.policy.exact_max_items:
            return "exact_allowed"
        if self.selectivity >= self.policy.post_filter_min:
            return "post_filter"
        return "filtered_graph"

    def allowed_rows(self) -> np.ndarray:
        """Sorted live rows the filter allows (computed once per search, at the cost of the answer's size where
        the filter allows it: postings of the most selective condition, tested against the others)."""
        if self._allowed is None:
            alive = self.store.alive
            rows = self.node.rows(self.store) if self.filtered else np.flatnonzero(alive[:self.store.n_rows])
            rows = rows[rows < len(alive)]
            self._allowed = rows[alive[rows]]
        return self._allowed

    def allowed_in(self, seg_rows: np.ndarray) -> np.ndarray:
        """The allowed rows of one segment (`seg_rows` ascending, as segments keep them)."""
        allowed = self.allowed_rows()
        if not len(allowed) or not len(seg_rows):
            return allowed[:0]
        if len(seg_rows) == seg_rows[-1] - seg_rows[0] + 1:  # a contiguous range of rows
            return allowed[(allowed >= seg_rows[0]) & (allowed <= seg_rows[-1])]
        at = np.minimum(np.searchsorted(seg_rows, allowed), len(seg_rows) - 1)
        return allowed[seg_rows[at] == allowed]

    def test(self, rows: np.ndarray) -> np.ndarray:
        """Allowed and alive, for candidate rows (-1 = padding = not allowed)."""
        ok = rows >= 0
        idx = np.flatnonzero(ok)
        alive = self.store.alive
        r = rows[idx]
        keep = (r < len(alive)) & alive[np.minimum(r, len(alive) - 1)]
        if self.filtered and keep.any():
            sub = np.flatnonzero(keep)
            keep[sub] = self.node.test(self.store, r[sub])
        ok[idx] = keep
        return ok


@dataclass
class SegmentAnswer:
    scores: np.ndarray  # (n_q, k)
    rows: np.ndarray  # (n_q, k), -1 padding
    method: str
    fallback: bool = False


def search_segment(seg: Segment, queries: np.ndarray, k: int, plan: QueryPlan, qp: dict) -> SegmentAnswer:
    """Top-k allowed, live rows of one segment by the plan's route."""
    restricted = plan.filtered or bool(seg.dead)
    small = len(seg) <= plan.policy.exact_max_items
    if seg.ann is None or plan.route in ("exact", "exact_allowed") or small:
        allow = plan.allowed_in(seg.rows) if restricted else None
        return _flat(seg, queries, k, allow, "exact")
    if not restricted:
        r = seg.ann.search(queries, k, qp)
        return SegmentAnswer(r.scores, r.ids, "ann")
    if plan.route == "filtered_graph":
        return _in_graph(seg, queries, k, plan, qp)
    return post_filter(seg, queries, k, plan, qp)


def _flat(seg: Segment, queries, k, allow, method: str, fallback: bool = False) -> SegmentAnswer:
    r = seg.flat.search(queries, k, allow=allow)
    return SegmentAnswer(r.scores, r.ids, method, fallback)


def _in_graph(seg: Segment, queries, k, plan: QueryPlan, qp: dict) -> SegmentAnswer:
    allow = plan.allowed_in(seg.rows)
    names = seg.ann.query_spec.names
    if "exact_below" in names:  # the router already chose: no second exact scan inside the engine (an hnsw
        qp = {**qp, "exact_below": 0}  # engine without raw vectors would read them back from the graph, slowly)
    if plan.policy.graph_ef_floor and "ef" in names:
        qp = {**qp, "ef": max(qp.get("ef", 0), plan.policy.graph_ef_floor)}
    r = seg.ann.search(queries, k, qp, allow=allow)
    scores, rows = r.scores, r.ids
    short = (rows >= 0).sum(axis=1) < min(k, len(allow))
    if short.any():  # the walk found fewer than k allowed items: scan the allowed rows exactly for those queries
        exact = seg.flat.search(queries[short], k, allow=allow)
        scores, rows = scores.copy(), rows.copy()
        scores[short], rows[short] = exact.scores, exact.ids
    return SegmentAnswer(scores, rows, "filtered_graph", bool(short.any()))


def post_filter(seg: Segment, queries, k, plan: QueryPlan, qp: dict) -> SegmentAnswer:
    """ANN top-k' without restriction, keep allowed live rows; k' adapts: k / (estimated allowed fraction of the
    segment) x oversample, then 4x per round for queries still short; an exact scan of the allowed rows ends it."""
    n = len(seg)
    live_fraction = seg.n_live / n
    fraction = max(plan.selectivity * live_fraction, 1.0 / n)
    # At least the engine's own candidate list (`ef`): fetching fewer costs the same walk and keeps less of it.
    fetch = min(n, max(k, qp.get("ef", 0), math.ceil(k / fraction * plan.policy.oversample)))
    out_scores = np.full((len(queries), k), -np.inf, np.float32)
    out_rows = np.full((len(queries), k), -1, np.int64)
    pending = np.arange(len(queries))
    has_ef = "ef" in seg.ann.query_spec.names
    for _ in range(plan.policy.post_filter_rounds):
        # The walk's candidate list must hold k' (faiss does not widen it for a large k; hnswlib does).
        r = seg.ann.search(queries[pending], fetch, {**qp, "ef": max(qp["ef"], fetch)} if has_ef else qp)
        ok = plan.test(r.ids.ravel()).reshape(r.ids.shape)
        order = np.argsort(~ok, axis=1, kind="stable")[:, :k]  # allowed candidates first, in score order
        got_rows = np.take_along_axis(np.where(ok, r.ids, -1), order, axis=1)
        got_scores = np.take_along_axis(np.where(ok, r.scores, -np.inf), order, axis=1)
        width = got_rows.shape[1]
        out_rows[pending, :width], out_scores[pending, :width] = got_rows, got_scores
        full = ok.sum(axis=1) >= k
        pending = pending[~full]
        if not len(pending) or fetch >= n:
            break
        fetch = min(n, fetch * 4)
    fallback = False
    if len(pending):
        allow = plan.allowed_in(seg.rows)
        short = pending[(out_rows[pending] >= 0).sum(axis=1) < min(k, len(allow))]
        if len(short):
            fallback = True
            exact = seg.flat.search(queries[short], k, allow=allow)
            out_scores[short], out_rows[short] = exact.scores, exact.ids
    return SegmentAnswer(out_scores, out_rows, "post_filter", fallback)


def merge_top_k(answers: list[tuple[np.ndarray, np.ndarray]], n_queries: int, k: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Gather per-segment (or per-shard) answers into one top-k: score descending, row id ascending."""
    if not answers:
        return np.full((n_queries, k), -np.inf, np.float32), np.full((n_queries, k), -1, np.int64)
    if len(answers) == 1 and answers[0][1].shape[1] == k:
        return answers[0]
    scores = np.concatenate([a[0] for a in answers], axis=1)
    rows = np.concatenate([a[1] for a in answers], axis=1)
    q_index, col = np.nonzero(rows >= 0)
    found = rows[q_index, col]
    return top_k_grouped(q_index, scores[q_index, col].astype(np.float32), found, found, n_queries, k)
