"""The engine interface: add vectors with ids, search a batch, report memory, save and load, describe parameters.

Ids are external int64 ids >= 0 (collections map their string ids to these); -1 is the padding id. Inside an
engine, vectors are numbered by insertion order ("positions"); the base class owns the position <-> id mapping,
input validation, allow-list translation and the final ordering (score desc, id asc), so every engine answers in
exactly the same shape and the subclasses only implement `_add`, `_search`, `_save`, `_load`, `_memory_bytes`.

An engine is append-only: updates and deletes belong to the collection layer (segments with tombstones), which
passes the ids still alive as the allow-list.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from .exact import top_k_grouped
from .params import ParamSpec

FORMAT_VERSION = 1
META_FILE = "meta.json"
IDS_FILE = "ids.npy"
_F32 = np.dtype(np.float32)


@dataclass(slots=True)
class SearchResult:
    """Top-k per query: `ids` (n_q, k) int64 external ids (-1 padding), `scores` (n_q, k) float32 (-inf padding).

    `degraded` is true when part of the index could not answer (a shard failed or timed out); `coverage` is the
    fraction of the held vectors that were searched. (Not frozen: a frozen dataclass's __init__ costs ~3 us more
    per single-vector query, measured here.)
    """

    ids: np.ndarray
    scores: np.ndarray
    degraded: bool = False
    coverage: float = 1.0

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls, n_queries: int, k: int, **kwargs) -> "SearchResult":
        return cls(np.full((n_queries, k), -1, np.int64), np.full((n_queries, k), -np.inf, np.float32), **kwargs)


# ---------------------------------------------------------------------------------------------- validation
def check_vectors(vectors, dim: int, what: str = "vectors") -> np.ndarray:
    """A C-contiguous float32 (n, dim) copy-if-needed of `vectors` (one vector may be given as shape (dim,))."""
    a = np.asarray(vectors)
    if a.dtype is _F32 and a.ndim == 2 and a.shape[1] == dim and a.strides == (4 * dim, 4) \
            and math.isfinite(a.sum()):
        # The common case in one numpy call (the sum of finite values is finite unless it overflows, and then the
        # full check below decides). It runs once per query in single-query serving, where each numpy call after
        # a large index walk costs several microseconds of cold caches.
        return a
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (n, {dim}), got shape {a.shape}")
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{what} must be numeric (float32 preferred), got dtype {a.dtype}")
    if a.shape[1] != dim:
        raise ValueError(f"{what} have dimension {a.shape[1]} but the engine was built for dimension {dim}; "
                         f"encode with the model the index was built with")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, reported just below
        a = np.ascontiguousarray(a, dtype=np.float32)
    finite = np.isfinite(a).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{what} row {bad} contains NaN or infinite values; drop or re-encode it")
    return a


def check_ids(ids, n: int) -> np.ndarray:
    a = np.asarray(ids)
    if a.ndim != 1 or len(a) != n:
        raise ValueError(f"ids must be a 1-D array with one id per vector ({n}), got shape {a.shape}")
    if n and a.dtype.kind not in "iu":
        raise ValueError(f"ids must be integers (int64 >= 0), got dtype {a.dtype}")
    if a.dtype.kind == "u" and n and a.max() > np.iinfo(np.int64).max:
        raise ValueError("ids must fit in int64")
    a = a.astype(np.int64)
    if n and a.min() < 0:
        raise ValueError(f"ids must be >= 0 (-1 is the padding id), got {int(a.min())}")
    uniq, counts = np.unique(a, return_counts=True)
    if len(uniq) != n:
        raise ValueError(f"duplicate id {int(uniq[counts > 1][0])} in one batch; each id may appear once")
    return a


def check_k(k) -> int:
    if type(k) is int and k > 0:
        return k
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def as_id_array(allow) -> np.ndarray:
    """An allow-list (numpy array, list, set or frozenset of ids) as a sorted unique int64 array."""
    if isinstance(allow, (set, frozenset)):
        allow = np.fromiter(allow, dtype=np.int64, count=len(allow))
    a = np.asarray(allow)
    if a.ndim != 1:
        raise ValueError(f"allow must be a 1-D collection of ids, got shape {a.shape}")
    if len(a) and a.dtype.kind not in "iu":
        raise ValueError(f"allow must hold integer ids, got dtype {a.dtype}")
    return np.unique(a.astype(np.int64))


# ---------------------------------------------------------------------------------------------- the engine
class Engine(ABC):
    """Base class of every engine. Construct through `index_engines.engines.make_engine(name, dim, **build)`."""

    name: ClassVar[str]
    build_spec: ClassVar[ParamSpec]
    query_spec: ClassVar[ParamSpec]

    def __init__(self, dim: int, **build_params):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)
        self.build_params = self.build_spec.resolve(build_params, self.name)
        self._ids = np.empty(0, np.int64)
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None  # (sorted ids, their positions), lazily
        # True while id == position for every vector (ids 0..n-1 added in order, the common case for row-numbered
        # data): results then need no id mapping, which saves a numpy call per search.
        self._ids_are_positions = True

    # ------------------------------------------------------------------------------------------ public API
    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        """External ids in insertion order (read-only view)."""
        view = self._ids.view()
        view.flags.writeable = False
        return view

    def add(self, vectors, ids) -> None:
        """Add vectors (n, dim) with their external ids (n,). Ids must be new to this engine."""
        x = check_vectors(vectors, self.dim)
        new_ids = check_ids(ids, len(x))
        if len(x) == 0:
            return
        if len(self._ids):
            present = self.positions_of(new_ids)
            if (present >= 0).any():
                raise ValueError(f"id {int(new_ids[present >= 0][0])} is already in the index; an engine is "
                                 f"append-only (updates are a delete plus an add in the collection layer)")
        start = len(self._ids)
        self._add(x, start)
        self._ids = np.concatenate([self._ids, new_ids])
        self._ids_are_positions = self._ids_are_positions and _is_range(new_ids, start)
        self._lookup = None

    def search(self, queries, k: int, params: Mapping | None = None, allow=None) -> SearchResult:
        """Top-k of each query by inner product. `params`: query parameters (see `parameters()`); `allow`: if
        given, only these ids may be returned (ids the engine does not hold are ignored)."""
        q = check_vectors(queries, self.dim, "queries")
        if type(k) is not int or k <= 0:
            k = check_k(k)
        qp = self.query_spec.resolve_shared(params, self.name)
        return self.search_checked(q, k, qp, None if allow is None else as_id_array(allow))

    def search_checked(self, queries: np.ndarray, k: int, qp: dict, allow_ids: np.ndarray | None
                       ) -> SearchResult:
        """`search` for callers that validated already (the sharded fan-out validates once for all shards):
        float32 (n, dim) finite queries, k > 0, resolved query parameters (read-only), allow-list as sorted
        unique int64."""
        self._check_query(qp)
        allowed = None if allow_ids is None else self._allowed_positions(allow_ids)
        if len(self._ids) == 0 or len(queries) == 0 or (allowed is not None and len(allowed) == 0):
            return SearchResult.empty(len(queries), k)
        scores, positions = self._search(queries, k, qp, allowed)
        return self._finish(scores, positions, k)

    def memory_bytes(self) -> int:
        """Bytes the engine holds in RAM: its index structures plus the id mapping (not the raw-vector store)."""
        lookup = 0 if self._lookup is None else sum(a.nbytes for a in self._lookup)
        return int(self._memory_bytes() + self._ids.nbytes + lookup)

    def save(self, directory) -> None:
        """Write the engine to `directory`, replacing it whole: files go to a temporary sibling first, so a crash
        leaves either the old directory or the new one, never a mixture."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.with_name(f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
        try:
            np.save(tmp / IDS_FILE, self._ids)
            state = self._save(tmp)
            meta = {"format": FORMAT_VERSION, "engine": self.name, "dim": self.dim,
                    "build_params": self.build_params, "count": len(self), "state": state}
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
            _swap_directory(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, directory) -> "Engine":
        directory = Path(directory)
        meta = read_meta(directory)
        if meta["engine"] != cls.name:
            raise ValueError(f"{directory} holds a {meta['engine']!r} engine, not {cls.name!r}; "
                             f"use index_engines.engines.load_engine")
        engine = cls(meta["dim"], **meta["build_params"])
        engine._ids = np.load(directory / IDS_FILE)
        engine._ids_are_positions = _is_range(engine._ids, 0)
        engine._load(directory, meta["state"])
        if len(engine._ids) != meta["count"]:
            raise ValueError(f"{directory}: {len(engine._ids)} ids but meta.json says {meta['count']}")
        return engine

    @classmethod
    def parameters(cls) -> dict:
        """What each build and query parameter means, with its default and allowed values."""
        return {"engine": cls.name, "build": cls.build_spec.describe(), "query": cls.query_spec.describe()}

    def describe(self) -> dict:
        return {"engine": self.name, "dim": self.dim, "count": len(self), "build_params": dict(self.build_params),
                "memory_bytes": self.memory_bytes()}

    def positions_of(self, ids: np.ndarray) -> np.ndarray:
        """Internal positions of external ids (-1 where the id is not held)."""
        if self._lookup is None:
            order = np.argsort(self._ids, kind="stable")
            self._lookup = (self._ids[order], order.astype(np.int64))
        sorted_ids, sorted_pos = self._lookup
        ids = np.asarray(ids, np.int64)
        if len(sorted_ids) == 0:
            return np.full(ids.shape, -1, np.int64)
        at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
        return np.where(sorted_ids[at] == ids, sorted_pos[at], -1)

    # ------------------------------------------------------------------------------------------ for subclasses
    @abstractmethod
    def _add(self, vectors: np.ndarray, start: int) -> None:
        """Index `vectors`, which get positions start, start+1, ..."""

    @abstractmethod
    def _search(self, queries: np.ndarray, k: int, qp: dict, allowed: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, positions) of shape (n_q, any width), -1 positions for padding, in any order.
        `allowed` is None or a sorted array of positions."""

    @abstractmethod
    def _save(self, directory: Path) -> dict:
        """Write engine-specific files; return a JSON-able state for meta.json."""

    @abstractmethod
    def _load(self, directory: Path, state: dict) -> None:
        ...

    @abstractmethod
    def _memory_bytes(self) -> int:
        ...

    def _check_query(self, qp: dict) -> None:
        """Checks that involve several query parameters or the build parameters (none by default)."""

    # ------------------------------------------------------------------------------------------ internals
    def _allowed_positions(self, allow_ids: np.ndarray) -> np.ndarray:
        positions = self.positions_of(allow_ids)
        return np.sort(positions[positions >= 0])

    def _finish(self, scores: np.ndarray, positions: np.ndarray, k: int) -> SearchResult:
        """Map positions to ids and order each row by (score desc, id asc), padded to k."""
        if positions.shape[1] == k and scores.dtype is _F32 and _full_and_strictly_sorted(scores, positions):
            # Full rows already in strictly decreasing order (no ties): only the ids need mapping.
            return SearchResult(positions if self._ids_are_positions else self._ids[positions], scores)
        valid = positions >= 0
        ids = np.where(valid, self._ids[np.where(valid, positions, 0)], -1)
        rows = np.nonzero(valid)[0]
        s, i = top_k_grouped(rows, scores[valid].astype(np.float32), ids[valid], ids[valid], len(ids), k)
        return SearchResult(i, s)


def _is_range(ids: np.ndarray, start: int) -> bool:
    """Whether `ids` is start, start+1, ... (checked in O(1) memory: first, last and strictly increasing)."""
    n = len(ids)
    if n == 0:
        return True
    return bool(ids[0] == start and ids[-1] == start + n - 1 and (n == 1 or (ids[1:] > ids[:-1]).all()))


def _full_and_strictly_sorted(scores: np.ndarray, positions: np.ndarray) -> bool:
    """No padding and every row strictly decreasing. A single query is checked on Python lists with C-level
    builtins only: after a large index walk each numpy call or Python loop runs with cold caches (measured here:
    a ufunc ~20 us right after a graph walk vs ~3 us warm), so the fewer interpreted steps the better."""
    if len(positions) == 1:
        row = scores.tolist()[0]
        return min(positions.tolist()[0]) >= 0 and len(set(row)) == len(row) and row == sorted(row, reverse=True)
    return bool(positions.min() >= 0 and (scores[:, :-1] > scores[:, 1:]).all())


def read_meta(directory: Path) -> dict:
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a saved engine (no {META_FILE}); save one with engine.save()")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: format {meta.get('format')!r} is not supported (expected {FORMAT_VERSION})")
    return meta


def _swap_directory(new: Path, target: Path) -> None:
    """Put `new` at `target`. POSIX cannot rename onto a non-empty directory, so the old one steps aside first."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)
