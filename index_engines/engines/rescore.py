"""Rescore: re-rank an approximate engine's `k x oversample` candidates with the full-precision raw vectors.

The quantised (or truncated) index only has to get the true neighbours into the candidate list; their final order
and scores come from the raw vectors with the exact arithmetic of `flat`, so a rescored answer agrees with the
oracle's scores to the bit for every id it shares with it.
"""
from __future__ import annotations

import numpy as np

from .exact import pair_scores, top_k_grouped
from .raw_store import RawVectorStore


def rescore(queries: np.ndarray, candidates: np.ndarray, store: RawVectorStore, k: int,
            keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores (n_q, k), positions (n_q, k)) of the best k candidates by exact score; `candidates` are positions
    (n_q, c) with -1 padding; `keys` (external ids by position) break ties."""
    rows, cols = np.nonzero(candidates >= 0)
    positions = candidates[rows, cols]
    # Read the raw rows in position order: sequential pages of the memory map, not random ones.
    order = np.argsort(positions, kind="stable")
    vectors = np.empty((len(positions), store.dim), store.dtype)
    vectors[order] = store.rows(positions[order])
    scores = pair_scores(queries[rows], vectors)
    return top_k_grouped(rows, scores, keys[positions], positions, len(candidates), k)
