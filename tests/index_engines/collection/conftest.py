"""Fixtures for collection tests: small collections pinned to the fast `static-64` model, fed with seeded random
vectors (with the matching `model_version`) or real MiniLM vectors where recall matters."""
from __future__ import annotations

import numpy as np
import pytest

from index_engines.collection import Collection

DIM = 64
# Small segments and a low exact-scan threshold, so a few hundred items already exercise sealing, ANN search,
# every route and compaction.
SMALL = dict(model="static-64", seal_items=200, engine_params={"M": 8, "ef_construction": 60},
             routing={"exact_max_items": 40})


@pytest.fixture
def make_collection(tmp_path):
    opened = []

    def make(name="c", **overrides):
        col = Collection.create(tmp_path / name, **{**SMALL, **overrides})
        opened.append(col)
        return col

    yield make
    for col in opened:
        col.close()


def unit_vectors(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def vector_items(col, vectors, start: int = 0, **fields) -> list[dict]:
    """Items d<start>.. with the collection's model version; `fields` values are callables of the index."""
    out = []
    for i, v in enumerate(vectors, start):
        item = {"id": f"d{i}", "vector": v, "model_version": col.model_version}
        for name, fn in fields.items():
            item[name] = fn(i)
        out.append(item)
    return out


def brute_force(vectors: dict, query: np.ndarray, k: int, allowed=None) -> list:
    """Exact top-k ids over {id: unit vector}, ties by id: the reference for collection results."""
    keys = [key for key in vectors if allowed is None or key in allowed]
    if not keys:
        return []
    m = np.stack([vectors[key] for key in keys]).astype(np.float64)
    scores = m @ query.astype(np.float64)
    order = sorted(range(len(keys)), key=lambda i: (-scores[i], str(keys[i])))
    return [keys[i] for i in order[:k]]
