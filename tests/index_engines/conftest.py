"""Fixtures for the engine tests: real MiniLM vectors of real sentences (embedded once, cached on disk)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from index_engines.engines import make_engine
from index_engines.models import fingerprint, get_spec
from index_engines.settings import get_settings

MODEL = "minilm-l6-v2"

N_BASE = 3000
N_QUERIES = 200


@pytest.fixture(scope="session")
def minilm():
    """(base (3000, 384), queries (200, 384)): unit float32 rows, queries held out of the base.

    The embedding cache makes `benchmark_vectors` free of encoding, but it still loads torch and the model
    (about 15 s); a copy keyed by the model fingerprint skips that on later runs.
    """
    spec = get_spec(MODEL)
    path = get_settings().cache_dir / "test_vectors" / f"{MODEL}-{fingerprint(spec)[:16]}-{N_BASE}-{N_QUERIES}.npz"
    if path.exists():
        with np.load(path) as saved:
            return saved["base"], saved["queries"]
    from experiments.corpus_vectors import benchmark_vectors

    base, queries = benchmark_vectors(N_BASE, N_QUERIES, model_id=MODEL, show_progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, base=base, queries=queries)
    os.replace(tmp, path)
    return base, queries


@pytest.fixture(scope="session")
def base_ids():
    """External ids that are neither positions nor sorted, so an engine that confuses the two fails."""
    return np.random.default_rng(7).permutation(N_BASE).astype(np.int64) * 5 + 11


@pytest.fixture(scope="session")
def oracle(minilm, base_ids):
    flat = make_engine("flat", minilm[0].shape[1])
    flat.add(minilm[0], base_ids)
    return flat
