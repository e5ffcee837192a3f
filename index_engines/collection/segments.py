"""Segments: the unit of storage and search inside a shard.

A segment holds a set of items (row ids), their vectors in a `flat` engine (the exact oracle from
`index_engines.engines`, used for exact scans and as the recall monitor's reference), an optional ANN engine, and
the tombstones of its deleted rows. Its life:

    growing (in memory, exact search, receives writes)
      └─ sealed at `seal_items` ─► persisted (directory written, still exact search)
            └─ ANN index built by the background worker ─► indexed (manifest swap; ANN search from then on)
                  └─ compaction: merged with its shard's other segments, tombstoned rows dropped, rebuilt

Vectors, rows and metadata of a sealed segment never change; only its tombstone set grows.

On disk, `segments/seg-<id>/` holds `flat/` (the saved flat engine: row ids and float32 vectors),
`records.jsonl` (per row: external id, tenant, metadata, text) and, once built, `ann/` (the saved ANN engine).
A segment directory is written under a temporary name and renamed into place.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from ..engines import Engine, FlatEngine, load_engine, make_engine
from .errors import VersionParityError
from .wal import fsync_directory

SEGMENTS_DIR = "segments"
RECORDS_FILE = "records.jsonl"
PROBES = 32  # probe queries per segment for the recall monitor


class Segment:
    def __init__(self, seg_id: int, shard: int, dim: int, model_version: str):
        self.id = seg_id
        self.shard = shard
        self.model_version = model_version
        self.flat = FlatEngine(dim)
        self.ann: Engine | None = None
        self.sealed = False
        self.persisted = False
        self.dead: dict[int, int] = {}  # row -> LSN of its tombstone
        self.recall_baseline: float | None = None
        self.recall_checked_dead = 0  # tombstones when recall was last measured
        self.last_recall: float | None = None

    def __len__(self) -> int:
        return len(self.flat)

    @property
    def rows(self) -> np.ndarray:
        return self.flat.ids

    @property
    def n_live(self) -> int:
        return len(self.flat) - len(self.dead)

    @property
    def state(self) -> str:
        if not self.sealed:
            return "growing"
        return "indexed" if self.ann is not None else "sealed"

    def add(self, vectors: np.ndarray, rows: np.ndarray) -> None:
        if self.sealed:
            raise RuntimeError(f"segment {self.id} is sealed; writes go to the growing segment")
        self.flat.add(vectors, rows)

    def describe(self) -> dict:
        return {"id": self.id, "shard": self.shard, "state": self.state, "count": len(self), "dead": len(self.dead),
                "persisted": self.persisted, "recall_baseline": self.recall_baseline,
                "last_recall": self.last_recall,
                "memory_bytes": self.flat.memory_bytes() + (self.ann.memory_bytes() if self.ann else 0)}


def build_ann(engine: str, dim: int, params: dict, vectors: np.ndarray, rows: np.ndarray) -> Engine:
    index = make_engine(engine, dim, **params)
    index.add(vectors, rows)
    return index


def probe_recall(segment: Segment, search, alive: np.ndarray, k: int = 10) -> float | None:
    """ANN recall@k of the segment on fixed probe queries (a seeded sample of its own vectors) against the flat
    oracle over its live rows; `search(queries, k)` is the segment's normal search path. None if too small."""
    rows = segment.rows
    live = rows[alive[rows]]
    if len(live) <= 2 * k:
        return None
    rng = np.random.default_rng(segment.id)
    positions = np.sort(rng.choice(len(rows), min(PROBES, len(rows)), replace=False))
    queries = segment.flat.vectors[positions]
    truth = segment.flat.search(queries, k, allow=live).ids
    found = search(queries, k)
    hits = [len(set(t[t >= 0].tolist()) & set(f[f >= 0].tolist())) / max(1, int((t >= 0).sum()))
            for t, f in zip(truth, found)]
    return float(np.mean(hits))


# ---------------------------------------------------------------------------------------------- persistence
def segment_dir(root: Path, seg_id: int) -> Path:
    return Path(root) / SEGMENTS_DIR / f"seg-{seg_id:06d}"


def write_segment(root: Path, segment: Segment, records: list[tuple], durable: bool = True) -> None:
    """Write the segment's vectors and records to its directory (temp dir + rename), ANN index excluded."""
    target = segment_dir(root, segment.id)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        segment.flat.save(tmp / "flat")
        with open(tmp / RECORDS_FILE, "w", encoding="utf-8") as f:
            for key, tenant, meta, text in records:  # every stored item carries its model version
                f.write(json.dumps({"id": key, "tenant": tenant, "metadata": meta, "text": text,
                                    "model_version": segment.model_version},
                                   ensure_ascii=False, separators=(",", ":")) + "\n")
            f.flush()
            if durable:
                os.fsync(f.fileno())
        if durable:
            _fsync_tree(tmp)
        if target.exists():  # left by a crash before its manifest swap: never referenced, safe to replace
            shutil.rmtree(target)
        os.replace(tmp, target)
        if durable:
            fsync_directory(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_ann(root: Path, segment: Segment, engine: Engine, durable: bool = True) -> None:
    path = segment_dir(root, segment.id) / "ann"
    engine.save(path)
    if durable:
        _fsync_tree(path)
        fsync_directory(path.parent)


def read_segment(root: Path, seg_id: int, shard: int, model_version: str, indexed: bool
                 ) -> tuple[Segment, list[tuple]]:
    directory = segment_dir(root, seg_id)
    flat = FlatEngine.load(directory / "flat")
    segment = Segment(seg_id, shard, flat.dim, model_version)
    segment.flat = flat
    segment.sealed = segment.persisted = True
    if indexed:
        segment.ann = load_engine(directory / "ann")
    records = []
    with open(directory / RECORDS_FILE, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["model_version"] != model_version:
                raise VersionParityError(f"{directory}: item {r['id']!r} was stored by model version "
                                         f"{r['model_version']!r}, but the collection is pinned to "
                                         f"{model_version!r}; the segment does not belong to this collection")
            records.append((r["id"], r["tenant"], r["metadata"], r["text"]))
    if len(records) != len(flat):
        raise ValueError(f"{directory}: {len(records)} records for {len(flat)} vectors; the segment is damaged")
    return segment, records


def remove_segment(root: Path, seg_id: int) -> None:
    shutil.rmtree(segment_dir(root, seg_id), ignore_errors=True)


def _fsync_tree(directory: Path) -> None:
    for path in Path(directory).rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for path in [Path(directory), *(p for p in Path(directory).rglob("*") if p.is_dir())]:
        fsync_directory(path)
