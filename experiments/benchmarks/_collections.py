"""Shared by the collection benchmarks (`filters`, `ingest`): building a collection through its write path,
per-query latency percentiles, and recall against the exact oracle."""
from __future__ import annotations

import time

import numpy as np

BATCH = 1000


def load_vectors(n: int, n_queries: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Real MiniLM vectors of real sentences (cached on disk) and the model version they carry."""
    from experiments.corpus_vectors import benchmark_vectors
    from index_engines.models import fingerprint, get_spec

    if n <= 0 or n_queries <= 0:
        raise ValueError("--n and --queries must be positive")
    base, queries = benchmark_vectors(n, n_queries, show_progress=False)
    spec = get_spec("minilm-l6-v2")
    return base, queries, f"{spec.id}@{fingerprint(spec)[:12]}"


def upsert_all(col, base: np.ndarray, metadata=None, batch: int = BATCH, ids=None) -> float:
    """Upsert `base` in batches through the write path; seconds until the last batch is acknowledged."""
    started = time.perf_counter()
    version = col.model_version
    for start in range(0, len(base), batch):
        stop = min(start + batch, len(base))
        col.upsert([{"id": int(i) if ids is None else ids[i], "vector": base[i], "model_version": version,
                     "metadata": None if metadata is None else metadata(i)} for i in range(start, stop)])
    return time.perf_counter() - started


def latencies_ms(search, queries: np.ndarray) -> tuple[np.ndarray, list]:
    """Per-query latency (one query per call, as a service sees them) and each call's result."""
    out, results = np.empty(len(queries)), []
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        results.append(search(q[None, :]))
        out[i] = (time.perf_counter() - t0) * 1e3
    return out, results


def percentiles(ms: np.ndarray) -> dict:
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> tuple[float, int]:
    """(mean recall@k of found row ids against the exact ones, smallest number of results returned)."""
    per_query = []
    for f, t in zip(found, truth):
        t = set(t[:k][t[:k] >= 0].tolist())
        per_query.append(len(t & set(f[:k][f[:k] >= 0].tolist())) / len(t) if t else 1.0)
    return float(np.mean(per_query)), int(min((f[:k] >= 0).sum() for f in found))
