"""Rescore: re-rank an approximate engine's `k x oversample` candidates with the full-precision raw vectors.

The quantised (or truncated) index only has to get the true neighbours into the candidate list; their final order
and scores come from the raw vectors with the exact arithmetic of `flat`, so a rescored answer agrees with the
oracle's scores to the bit for every id it shares with it.
"""
from __future__ import annotations

import numpy as np

from .exact import MARGIN, near_top, pair_scores, top_k_grouped
from .raw_store import RawVectorStore


def rescore(queries: np.ndarray, candidates: np.ndarray, store: RawVectorStore, k: int,
            keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores (n_q, k), positions (n_q, k)) of the best k candidates by exact score; `candidates` are positions
    (n_q, c) with -1 padding; `keys` (external ids by position) break ties.

    Float32 scores of every candidate first; the exact float64 arithmetic only for those within the error margin
    of each query's k-th best (usually k and a few), which is what makes a large oversample cheap."""
    n_q, c = candidates.shape
    if n_q == 1:
        return _rescore_one(queries, candidates[0], store, k, keys)
    valid = candidates >= 0
    rows, cols = np.nonzero(valid)
    positions = candidates[rows, cols]
    # Read the raw rows in position order: sequential pages of the memory map, not random ones.
    order = np.argsort(positions, kind="stable")
    vectors = np.empty((len(positions), store.dim), np.float32)
    vectors[order] = store.rows(positions[order])
    approx = np.full((n_q, c), -np.inf, np.float32)
    approx[rows, cols] = np.einsum("ij,ij->i", queries[rows], vectors)
    margin = MARGIN * np.linalg.norm(queries, axis=1) * store.max_norm
    near_rows, near_cols = near_top(approx, k, margin)
    pair = np.full((n_q, c), -1, np.int64)
    pair[rows, cols] = np.arange(len(rows))
    picked = pair[near_rows, near_cols]
    keep = picked >= 0  # padding never becomes a result
    near_rows, picked = near_rows[keep], picked[keep]
    scores = pair_scores(queries[near_rows], vectors[picked])
    return top_k_grouped(near_rows, scores, keys[positions[picked]], positions[picked], n_q, k)


def _rescore_one(query: np.ndarray, candidates: np.ndarray, store: RawVectorStore, k: int,
                 keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`rescore` for one query (1, dim) with half the numpy calls and no (n_q, c) scratch matrices: a single
    query is latency-bound, and after an index search every numpy call runs with cold caches (~5 us each,
    measured). Same arithmetic as the batch path: float32 scores pick the rows near the k-th best, whose exact
    `pair_scores` decide."""
    if len(candidates) and candidates.min() < 0:
        candidates = candidates[candidates >= 0]
    c = len(candidates)
    vectors = store.rows(candidates)
    approx = vectors @ query[0]
    if c > k:
        kth = np.partition(approx, c - k)[c - k]
        near = np.flatnonzero(approx >= kth - MARGIN * float(np.sqrt(query[0] @ query[0])) * store.max_norm)
        candidates, vectors = candidates[near], vectors[near]
    scores = pair_scores(np.repeat(query, len(candidates), axis=0), vectors)
    order = np.lexsort((keys[candidates], -scores))[:k]
    n = len(order)
    if n == k:
        return scores[order][None], candidates[order][None]
    out_scores, out_positions = np.full((1, k), -np.inf, np.float32), np.full((1, k), -1, np.int64)
    out_scores[0, :n], out_positions[0, :n] = scores[order], candidates[order]
    return out_scores, out_positions
