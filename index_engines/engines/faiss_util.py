"""Small helpers around faiss: thread counts, allow-list selectors, index memory."""
from __future__ import annotations

import os
from contextlib import contextmanager

import faiss
import numpy as np


def build_threads(requested: int) -> int:
    """Threads for building: `requested`, or every core when 0."""
    return requested or os.cpu_count() or 1


@contextmanager
def omp_threads(n: int):
    """Run faiss with `n` OpenMP threads. The setting is an OpenMP per-thread value, so concurrent callers on
    different Python threads (shards searched in a thread pool) do not disturb each other."""
    before = faiss.omp_get_max_threads()
    if before == n:  # the usual case in single-query serving: no calls into OpenMP
        yield
        return
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def selector(allowed: np.ndarray, n: int):
    """A faiss IDSelector accepting the sorted positions `allowed` out of `n`: a bitmap, one bit per vector
    (O(1) membership, n/8 bytes). The numpy bitmap is attached to the selector so it outlives the search."""
    mask = np.zeros(n, bool)
    mask[allowed] = True
    bitmap = np.packbits(mask, bitorder="little")
    sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
    sel.bitmap_ref = bitmap
    return sel


class ParamsCache:
    """faiss SearchParameters objects by setting: building one costs several SWIG calls per search, and without
    a selector an object is only read during a search, so concurrent searches can share it."""

    def __init__(self, make):
        self._make = make
        self._cache: dict = {}

    def get(self, key, allowed: np.ndarray | None, n: int):
        if allowed is not None:  # a selector is per call: a fresh object
            params = self._make(*key)
            params.sel = selector(allowed, n)
            return params
        params = self._cache.get(key)
        if params is None:
            params = self._cache[key] = self._make(*key)
        return params


def index_bytes(index) -> int:
    """Serialised size of a faiss index: its codes, ids, graph links and trained tables (what it holds in RAM
    to within a small header)."""
    return int(faiss.serialize_index(index).nbytes)
