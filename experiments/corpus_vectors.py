"""Real vectors for ANN benchmarks and tests: the sentence pool embedded with a real model (cached on disk).

The pool is permuted once with a fixed seed; base vectors are its first `n` rows and the held-out queries its last
`n_queries` rows, so queries never occur in the base set and stay the same whatever `n` is.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from golden_sets.loaders import load_sentences
from index_engines.embedding import load_model
from index_engines.settings import get_settings

POOL_SEED = 0


@lru_cache(maxsize=1)
def sentence_pool() -> tuple[str, ...]:
    texts = load_sentences(get_settings().datasets / "sentences" / "sentences.jsonl.gz")
    order = np.random.default_rng(POOL_SEED).permutation(len(texts))
    return tuple(texts[i] for i in order)


def benchmark_vectors(n: int, n_queries: int = 1000, model_id: str = "minilm-l6-v2",
                      show_progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(base (n, d), queries (n_queries, d)), float32, unit rows."""
    pool = sentence_pool()
    if n <= 0 or n_queries < 0 or n + n_queries > len(pool):
        raise ValueError(f"n={n} + n_queries={n_queries} must be positive and at most the pool size {len(pool)}")
    model = load_model(model_id)
    base = model.encode(list(pool[:n]), show_progress=show_progress)
    queries = model.encode(list(pool[len(pool) - n_queries:]), show_progress=show_progress) if n_queries else \
        np.empty((0, model.dim), np.float32)
    return base, queries
