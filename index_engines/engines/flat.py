"""`flat`: exact inner-product search, the oracle every test and benchmark compares against.

A scan of every (allowed) vector with a float32 BLAS product, then exact re-scoring of the candidates near the
k-th best (see `exact.py`), so its answer, ties included, does not depend on how the vectors are split or batched.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Engine
from .exact import exact_top_k, pair_scores
from .params import ParamSpec

VECTORS_FILE = "vectors.npy"


class FlatEngine(Engine):
    name = "flat"
    build_spec = ParamSpec("build", ())
    query_spec = ParamSpec("query", ())

    def __init__(self, dim: int, **build_params):
        super().__init__(dim, **build_params)
        self._chunks: list[np.ndarray] = []
        self._matrix = np.empty((0, self.dim), np.float32)
        self._max_norm = 0.0

    @property
    def vectors(self) -> np.ndarray:
        """All vectors (n, dim) float32, in insertion order."""
        if self._chunks:
            self._matrix = np.concatenate([self._matrix, *self._chunks])
            self._chunks = []
        return self._matrix

    def _add(self, vectors: np.ndarray, start: int) -> None:
        self._chunks.append(vectors.copy())  # never keep a view of the caller's array
        self._max_norm = max(self._max_norm, float(np.sqrt(np.einsum("ij,ij->i", vectors, vectors).max())))

    def _search(self, queries, k, qp, allowed):
        x = self.vectors
        if allowed is None:
            return exact_top_k(queries, x, k, self._ids, self._max_norm)
        scores, cols = exact_top_k(queries, x[allowed], k, self._ids[allowed], self._max_norm)
        return scores, np.where(cols >= 0, allowed[np.maximum(cols, 0)], -1)

    def score(self, queries, ids) -> np.ndarray:
        """Exact scores of given ids for each query: `ids` (n_q, m), -inf where the id is -1 or not held.
        The same arithmetic as `search`, so a returned id and its rescored score agree to the bit."""
        ids = np.asarray(ids, np.int64)
        q = np.ascontiguousarray(queries, np.float32)
        positions = self.positions_of(ids)
        out = np.full(ids.shape, -np.inf, np.float32)
        rows, cols = np.nonzero(positions >= 0)
        out[rows, cols] = pair_scores(q[rows], self.vectors[positions[rows, cols]])
        return out

    def _save(self, directory: Path) -> dict:
        np.save(directory / VECTORS_FILE, self.vectors)
        return {"max_norm": self._max_norm}

    def _load(self, directory: Path, state: dict) -> None:
        self._matrix = np.load(directory / VECTORS_FILE)
        self._max_norm = float(state["max_norm"])

    def _memory_bytes(self) -> int:
        return self._matrix.nbytes + sum(c.nbytes for c in self._chunks)
