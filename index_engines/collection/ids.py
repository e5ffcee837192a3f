"""External item ids (strings or integers) and the internal row ids the engines see.

A collection stores items under the caller's ids: non-empty strings or integers (`1` and `"1"` are different
ids; booleans and floats are refused). Internally every stored version of an item gets a fresh *row id*, an int64
that only grows (row ids are never reused). The engines index row ids, so:
- an update is a tombstone on the old row plus a new row, never an in-place change of an engine;
- compaction keeps row ids, so allow-lists, tombstones and payload postings stay valid across it;
- the write-ahead log records the row ids it assigned, which makes replay deterministic and idempotent.

Sharding is by external id (a stable hash), so every version of an item lands in the same shard.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from .errors import InvalidIdError

Key = str | int
MAX_KEY_CHARS = 512
_INT64 = (-(1 << 63), (1 << 63) - 1)


def check_key(value) -> Key:
    """`value` as a valid external id (a str or a Python int), or InvalidIdError saying what is allowed."""
    if isinstance(value, (bool, np.bool_)):
        raise InvalidIdError(f"id {value!r} is a boolean; ids must be strings or integers")
    if isinstance(value, (int, np.integer)):
        v = int(value)
        if not _INT64[0] <= v <= _INT64[1]:
            raise InvalidIdError(f"integer id {v} does not fit in 64 bits; use a string id instead")
        return v
    if isinstance(value, str):
        if not value or len(value) > MAX_KEY_CHARS:
            raise InvalidIdError(f"string ids must have 1..{MAX_KEY_CHARS} characters, got {len(value)}")
        return value
    raise InvalidIdError(f"id {value!r} is a {type(value).__name__}; ids must be strings or integers")


def check_keys(values: Iterable, what: str = "batch") -> list[Key]:
    """Valid external ids, each at most once in the batch."""
    if isinstance(values, (str, bytes)):
        raise InvalidIdError("ids must be a list of ids, not a single string; wrap it: [id]")
    keys = [check_key(v) for v in values]
    if len(set(keys)) != len(keys):
        seen: set = set()
        dup = next(k for k in keys if k in seen or seen.add(k))
        raise InvalidIdError(f"id {dup!r} appears twice in one {what}; each id may appear once")
    return keys


def shard_of(key: Key, n_shards: int) -> int:
    """The shard of an external id: a stable hash (the same in every process and Python version)."""
    if n_shards == 1:
        return 0
    tag = b"i" if isinstance(key, int) else b"s"
    digest = hashlib.blake2b(tag + str(key).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_shards


class IdMap:
    """External id -> row id of its live version (deleted ids are absent)."""

    def __init__(self):
        self._rows: dict[Key, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: Key) -> bool:
        return key in self._rows

    def get(self, key: Key) -> int | None:
        return self._rows.get(key)

    def rows_of(self, keys: list[Key]) -> np.ndarray:
        """Row ids of `keys` (-1 where the id is not stored)."""
        get = self._rows.get
        return np.fromiter((get(k, -1) for k in keys), np.int64, len(keys))

    def set(self, key: Key, row: int) -> None:
        self._rows[key] = row

    def pop(self, key: Key) -> int | None:
        return self._rows.pop(key, None)
