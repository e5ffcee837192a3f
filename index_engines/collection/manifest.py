"""The manifest: a collection's pinned configuration and the durable snapshot of its state, in one JSON file.

It is the single source of truth on disk. Every change (a sealed segment persisted, an ANN index built, a
compaction) writes the whole manifest to a temporary file, fsyncs it, `os.replace`s it over `manifest.json` and
fsyncs the directory: a crash leaves the old manifest or the new one, never a mixture. Files a manifest does not
name (a segment written just before a crash, a replaced tombstone file) are garbage, removed on open.

State recorded:
- `applied_lsn`: every log record up to it is reflected in the listed segments and tombstones; recovery replays
  the write-ahead log after it;
- `next_row`: the first row id not yet used by a persisted segment (rows above it come from the log);
- `segments`: per segment, its directory, shard, row count and whether its ANN index is built (and the
  post-build recall baseline the recall monitor compares against);
- `tombstones`: the file holding (row, LSN) of every deleted row of a listed segment, up to `applied_lsn`;
- `schema`: metadata field types (fixed once seen).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import CollectionError, CollectionNotFoundError
from .wal import fsync_directory

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
METRICS = ("cosine", "ip")


@dataclass(frozen=True)
class CollectionConfig:
    """What a collection is pinned to at creation; fixed for its lifetime (a different model is a migration)."""

    name: str
    model_id: str
    model_fingerprint: str
    model_version: str  # "<model id>@<fingerprint[:12]>", carried by every stored item and checked on every write
    dim: int
    metric: str = "cosine"
    shards: int = 1
    engine: str = "hnsw"
    engine_params: dict = field(default_factory=dict)  # build parameters of the sealed segments' ANN engine
    query_params: dict = field(default_factory=dict)  # default query parameters of that engine
    seal_items: int = 20_000  # a growing segment seals at this many items
    fsync: str = "always"
    fsync_interval_s: float = 1.0
    max_payload_bytes: int = 64 * 1024
    default_tenant: str = "default"
    rebuild_tombstone_rate: float | None = 0.10  # None: never rebuild automatically
    rebuild_recall_drop: float | None = 0.02
    max_segments: int = 8  # more indexed segments than this in a shard: merge them (compaction)
    routing: dict = field(default_factory=dict)  # RoutingPolicy overrides

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class SegmentEntry:
    id: int
    shard: int
    count: int
    indexed: bool
    recall_baseline: float | None = None


@dataclass
class Manifest:
    config: CollectionConfig
    applied_lsn: int = 0
    next_row: int = 0
    next_segment: int = 0
    generation: int = 0
    segments: list[SegmentEntry] = field(default_factory=list)
    tombstones: str | None = None
    schema: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"format": FORMAT_VERSION, "config": self.config.to_json(), "applied_lsn": self.applied_lsn,
                "next_row": self.next_row, "next_segment": self.next_segment, "generation": self.generation,
                "segments": [asdict(s) for s in self.segments], "tombstones": self.tombstones,
                "schema": self.schema}

    @classmethod
    def from_json(cls, data: dict, path: Path) -> "Manifest":
        if data.get("format") != FORMAT_VERSION:
            raise CollectionError(f"{path}: manifest format {data.get('format')!r} is not supported "
                                  f"(expected {FORMAT_VERSION})")
        return cls(config=CollectionConfig(**data["config"]), applied_lsn=data["applied_lsn"],
                   next_row=data["next_row"], next_segment=data["next_segment"], generation=data["generation"],
                   segments=[SegmentEntry(**s) for s in data["segments"]], tombstones=data["tombstones"],
                   schema=data["schema"])


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Atomically replace `directory/manifest.json` (temp file, fsync, os.replace, fsync directory)."""
    path = Path(directory) / MANIFEST_FILE
    tmp = path.with_name(f".{MANIFEST_FILE}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest.to_json(), f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent)


def read_manifest(directory: Path) -> Manifest:
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise CollectionNotFoundError(f"no collection at {directory} (no {MANIFEST_FILE}); create one with "
                                      f"Collection.create or `workbench ingest`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CollectionError(f"{path} is not valid JSON ({exc}); the manifest is always replaced atomically, "
                              f"so this file was edited or damaged outside the workbench") from None
    return Manifest.from_json(data, path)
