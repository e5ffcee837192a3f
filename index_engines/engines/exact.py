"""Exact scores and deterministic top-k: the arithmetic every engine's final answer goes through.

Why not just `Q @ X.T` and `argsort`: a float32 BLAS product gives the same (query, vector) pair slightly different
scores depending on the shape of the matrices it sits in (kernel choice and blocking change the summation order;
measured here: thousands of differing pairs between a matrix and its row subsets). Then a sharded flat index and an
unsharded one would disagree on near-ties. So the final scores come from `pair_scores`, which computes each pair on
its own in float64 and rounds to float32: the same pair gets the same score in any shard, subset or batch.
The fast BLAS product is still used to find candidates: every pair within `MARGIN` of the k-th best BLAS score is
re-scored exactly, and `MARGIN` is above the float32 error bound of a 384-d (or 4,096-d) dot product.

Ordering everywhere: score descending, then external id ascending; padding is id -1 with score -inf.
"""
from __future__ import annotations

import numpy as np

# Float32 dot-product error is at most about d * 2**-24 * |x| * |q| (Higham's gamma_d); with d <= 4096 that is
# 2.4e-4 * |x| * |q| in the worst case and around 1e-7 in practice. Candidates within 2x that of the k-th best
# are re-scored, so nothing that belongs in the exact top-k is lost.
MARGIN = 5e-4
# Query rows per BLAS block: bounds the (rows x n) float32 score block to about 64 MB.
BLOCK_CELLS = 1 << 24


def pair_scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise inner products <a_i, b_i> in float64, rounded to float32 (independent of how rows are batched)."""
    if len(a) == 0:
        return np.empty(0, np.float32)
    return np.einsum("ij,ij->i", a.astype(np.float64), b.astype(np.float64)).astype(np.float32)


def top_k_grouped(rows: np.ndarray, scores: np.ndarray, keys: np.ndarray, values: np.ndarray, n_rows: int,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row r, the k entries with rows == r ordered by (score desc, key asc).

    Returns (scores (n_rows, k) float32 with -inf padding, values (n_rows, k) int64 with -1 padding).
    """
    out_scores = np.full((n_rows, k), -np.inf, np.float32)
    out_values = np.full((n_rows, k), -1, np.int64)
    if len(rows) == 0:
        return out_scores, out_values
    order = np.lexsort((keys, -scores, rows))
    rows_sorted = rows[order]
    starts = np.searchsorted(rows_sorted, np.arange(n_rows))
    rank = np.arange(len(rows_sorted)) - starts[rows_sorted]
    keep = rank < k
    out_scores[rows_sorted[keep], rank[keep]] = scores[order][keep]
    out_values[rows_sorted[keep], rank[keep]] = values[order][keep]
    return out_scores, out_values


def exact_top_k(queries: np.ndarray, vectors: np.ndarray, k: int, keys: np.ndarray,
                max_norm: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product: (scores (nq, k), row numbers into `vectors` (nq, k), -1 padded).

    `keys` (one per vector, usually external ids) break ties; `max_norm` (the largest row norm of `vectors`,
    computed if not given) scales the candidate margin.
    """
    nq, m = len(queries), len(vectors)
    if m == 0 or nq == 0:
        return np.full((nq, k), -np.inf, np.float32), np.full((nq, k), -1, np.int64)
    if max_norm is None:
        max_norm = float(np.sqrt(np.einsum("ij,ij->i", vectors, vectors).max()))
    q_norms = np.linalg.norm(queries, axis=1)
    block = max(1, BLOCK_CELLS // m)
    all_rows, all_cols = [], []
    for start in range(0, nq, block):
        q = queries[start:start + block]
        r, c = near_top(q @ vectors.T, k, MARGIN * q_norms[start:start + block] * max_norm)
        all_rows.append(r + start)
        all_cols.append(c)
    rows, cols = np.concatenate(all_rows), np.concatenate(all_cols)
    scores = pair_scores(queries[rows], vectors[cols])
    return top_k_grouped(rows, scores, keys[cols], cols, nq, k)


def near_top(approx: np.ndarray, k: int, margin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the entries of `approx` (n_q, m) within `margin` (per row) of the row's k-th best: the
    only ones that can be in the exact top-k when `approx` errs by less than margin / 2."""
    m = approx.shape[1]
    kk = min(k, m)
    kth = approx.min(axis=1) if kk == m else np.partition(approx, m - kk, axis=1)[:, m - kk]
    return np.nonzero(approx >= (kth - margin)[:, None])
