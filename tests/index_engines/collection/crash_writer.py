"""A writer process for the crash test: opens (or creates) a collection and upserts / deletes batches forever,
printing `ack <batch>` after each call returns. The test kills it with SIGKILL at a random moment.

Batch b upserts items `b<b>-<i>` (i < size(b)) with vectors from `batch_vectors(b)`; every 5th batch instead
deletes the items of batch b - 3 (same run). Deterministic, so the checker can recompute what each batch wrote.
"""
from __future__ import annotations

import sys

import numpy as np

MODEL = "static-64"


def batch_size(b: int) -> int:
    return 3 + b % 7


def batch_vectors(b: int) -> np.ndarray:
    x = np.random.default_rng(b).standard_normal((batch_size(b), 64)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def batch_ids(b: int) -> list[str]:
    return [f"b{b}-{i}" for i in range(batch_size(b))]


def is_delete(b: int, start: int) -> bool:
    return b % 5 == 4 and b - 3 >= start


def main(directory: str, start: int) -> None:
    from pathlib import Path

    from index_engines.collection import Collection

    path = Path(directory)
    if (path / "manifest.json").exists():
        col = Collection.open(path)
    else:
        col = Collection.create(path, model=MODEL, seal_items=60, engine_params={"M": 8, "ef_construction": 40},
                                routing={"exact_max_items": 20}, rebuild_tombstone_rate=0.05)
    print("ready", flush=True)
    b = start
    while True:
        if is_delete(b, start):
            col.delete(batch_ids(b - 3))
        else:
            col.upsert([{"id": key, "vector": v, "model_version": col.model_version,
                         "metadata": {"batch": b, "part": i % 3}, "tenant": f"t{b % 3}"}
                        for i, (key, v) in enumerate(zip(batch_ids(b), batch_vectors(b)))])
        print(f"ack {b}", flush=True)
        b += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
