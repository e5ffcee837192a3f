"""Item metadata: validation, the per-row store, and the inverted index that filters and their selectivity
estimates run on.

Payload values and the field types they make (a field keeps the type of its first value; later values of
another type are refused):
- `keyword`: a string, or a list of strings (an item matches if any of its values does);
- `number`: an int or a float (finite; integers beyond 2**53 are refused, they would lose precision);
- `bool`: true or false.
`None` means "no value". `tenant` is reserved: it is the item's tenant, indexed as a keyword.

Index structures (all over row ids, which only grow, so appends keep every posting sorted):
- keyword and bool fields: value -> sorted array of rows (`Postings`), plus a count of live rows per value, which
  makes `eq`/`in` selectivity estimates exact;
- number fields: a column (row -> value, NaN when missing) for testing candidate rows, and a sorted copy
  (values, rows) for ranges, rebuilt lazily after writes, so a range count is two binary searches.
Tombstoned rows stay in postings until compaction drops them (`drop_rows`); every filter result is ANDed with the
`alive` mask, and estimates scale posting counts by the live fraction where no live count is kept.
"""
from __future__ import annotations

import json
import math

import numpy as np

from .errors import PayloadError

FIELD_TYPES = ("keyword", "number", "bool")
TENANT_FIELD = "tenant"
MAX_FIELD_CHARS = 64
MAX_KEYWORD_CHARS = 1024
MAX_SAFE_INT = 1 << 53
DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024


# ---------------------------------------------------------------------------------------------- validation
def value_type(field: str, value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(value, str):
        return "keyword"
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return "keyword"
    raise PayloadError(f"metadata field {field!r} has a value of type {type(value).__name__} ({value!r:.60}); "
                       f"valid values: a string or list of strings (keyword), a number, a boolean, or null")


def normalize_value(field: str, kind: str, value):
    """The value as stored: keyword -> tuple of str, number -> float, bool -> bool."""
    if kind == "keyword":
        values = (value,) if isinstance(value, str) else tuple(value)
        for v in values:
            if not v or len(v) > MAX_KEYWORD_CHARS:
                raise PayloadError(f"keyword values of {field!r} must have 1..{MAX_KEYWORD_CHARS} characters")
        return values
    if kind == "number":
        if isinstance(value, (int, np.integer)) and abs(int(value)) > MAX_SAFE_INT:
            raise PayloadError(f"number field {field!r}: integer {int(value)} exceeds 2**53 and would lose "
                               f"precision; store it as a string (keyword) instead")
        f = float(value)
        if not math.isfinite(f):
            raise PayloadError(f"number field {field!r} must be finite, got {value!r}")
        return f
    return bool(value)


def check_field_name(name) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_FIELD_CHARS:
        raise PayloadError(f"metadata field names must be strings of 1..{MAX_FIELD_CHARS} characters, "
                           f"got {name!r}")
    if name == TENANT_FIELD:
        raise PayloadError(f"{TENANT_FIELD!r} is reserved: pass the tenant as the item's 'tenant', not in metadata")
    return name


def check_tenant(tenant) -> str:
    if not isinstance(tenant, str) or not tenant or len(tenant) > MAX_KEYWORD_CHARS:
        raise PayloadError(f"tenant must be a non-empty string of at most {MAX_KEYWORD_CHARS} characters, "
                           f"got {tenant!r}")
    return tenant


def check_schema(schema) -> dict[str, str]:
    out = {}
    for name, kind in dict(schema or {}).items():
        check_field_name(name)
        if kind not in FIELD_TYPES:
            raise PayloadError(f"field {name!r} has unknown type {kind!r}; valid types: {', '.join(FIELD_TYPES)}")
        out[name] = kind
    return out


def payload_size(metadata: dict) -> int:
    return len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def payload_size_bound(metadata: dict) -> int:
    """An upper bound of `payload_size` that costs no serialisation: 4 UTF-8 bytes (or a 2-byte escape)
    per character at most, 32 bytes per number or boolean, quotes and separators."""
    total = 2
    for name, value in metadata.items():
        total += 4 * len(name) + 4
        if isinstance(value, str):
            total += 4 * len(value) + 3
        elif isinstance(value, list):
            total += sum(4 * len(v) + 3 for v in value) + 2
        else:
            total += 32
    return total


# ---------------------------------------------------------------------------------------------- postings
class Postings:
    """A sorted, append-only int64 array of row ids with amortised O(1) appends."""

    __slots__ = ("_a", "_n")

    def __init__(self, rows: np.ndarray | None = None):
        rows = np.empty(0, np.int64) if rows is None else np.asarray(rows, np.int64)
        self._a = rows.copy() if len(rows) else np.empty(8, np.int64)
        self._n = len(rows)

    def __len__(self) -> int:
        return self._n

    def extend(self, rows: np.ndarray) -> None:
        need = self._n + len(rows)
        if need > len(self._a):
            grown = np.empty(max(need, 2 * len(self._a)), np.int64)
            grown[:self._n] = self._a[:self._n]
            self._a = grown
        self._a[self._n:need] = rows
        self._n = need

    @property
    def rows(self) -> np.ndarray:
        return self._a[:self._n]

    def contains(self, rows: np.ndarray) -> np.ndarray:
        """Boolean membership of each of `rows`."""
        a = self.rows
        if not len(a):
            return np.zeros(len(rows), bool)
        at = np.minimum(np.searchsorted(a, rows), len(a) - 1)
        return a[at] == rows


def _grow(array: np.ndarray, n: int, fill) -> np.ndarray:
    if n <= len(array):
        return array
    out = np.full(max(n, 2 * len(array), 1024), fill, array.dtype)
    out[:len(array)] = array
    return out


# ---------------------------------------------------------------------------------------------- the store
class PayloadStore:
    """Row -> (external id, tenant, metadata, text), and the inverted index over rows. Tombstoned rows keep their
    record (a segment persisted later still needs it) until compaction drops them."""

    def __init__(self, schema: dict[str, str] | None = None, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES):
        self.schema: dict[str, str] = {TENANT_FIELD: "keyword", **check_schema(schema)}
        self.max_payload_bytes = int(max_payload_bytes)
        self.records: dict[int, tuple] = {}  # row -> (key, tenant, metadata, text)
        self._postings: dict[str, dict[object, Postings]] = {}
        self._live: dict[str, dict[object, int]] = {}
        self._columns: dict[str, np.ndarray] = {}  # number fields: row -> value (NaN = missing)
        self._sorted: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
        self.alive = np.zeros(0, bool)
        self.n_rows = 0  # row-id space covered (max row + 1)
        self.n_alive = 0
        self.n_indexed = 0  # rows in the postings: live plus tombstoned, until compaction drops them

    # ------------------------------------------------------------------------------------------ validation
    def check(self, metadata, new: dict[str, str]) -> dict:
        """The metadata as stored (null values dropped); types of fields not in the schema yet are recorded in
        `new` (shared across one batch, so a batch cannot give one field two types). Raises PayloadError."""
        if metadata is None:
            return {}
        if not isinstance(metadata, dict):
            raise PayloadError(f"metadata must be a JSON object (dict), got {type(metadata).__name__}")
        out = {}
        for name, value in metadata.items():
            check_field_name(name)
            if value is None:
                continue
            kind = value_type(name, value)
            known = self.schema.get(name) or new.get(name)
            if known is None:
                new[name] = kind
            elif known != kind:
                raise PayloadError(f"metadata field {name!r} is a {known} field; got a {kind} value {value!r:.60}")
            normalize_value(name, kind, value)
            out[name] = list(value) if isinstance(value, tuple) else (
                float(value) if isinstance(value, np.floating) else
                int(value) if isinstance(value, np.integer) else
                bool(value) if isinstance(value, np.bool_) else value)
        if payload_size_bound(out) > self.max_payload_bytes and (size := payload_size(out)) > self.max_payload_bytes:
            raise PayloadError(f"metadata of {size} bytes exceeds the limit of {self.max_payload_bytes} bytes; "
                               f"store large content elsewhere and keep a reference in the metadata")
        return out

    # ------------------------------------------------------------------------------------------ writes
    def add(self, rows: np.ndarray, keys: list, tenants: list[str], metadatas: list[dict],
            texts: list[str | None]) -> None:
        """Index new rows (row ids larger than any indexed so far, ascending)."""
        if not len(rows):
            return
        rows = np.asarray(rows, np.int64)
        for (name, kind) in _fields_of(metadatas).items():
            self.schema.setdefault(name, kind)
        n = int(rows[-1]) + 1
        self.alive = _grow(self.alive, n, False)
        self.alive[rows] = True
        self.n_rows = max(self.n_rows, n)
        self.n_alive += len(rows)
        self.n_indexed += len(rows)
        for row, key, tenant, meta, text in zip(rows.tolist(), keys, tenants, metadatas, texts):
            self.records[row] = (key, tenant, meta, text)
        by_value: dict[str, dict[object, list[int]]] = {}
        numbers: dict[str, tuple[list[int], list[float]]] = {}
        for row, tenant, meta in zip(rows.tolist(), tenants, metadatas):
            by_value.setdefault(TENANT_FIELD, {}).setdefault(tenant, []).append(row)
            for name, value in meta.items():
                kind = self.schema[name]
                if kind == "number":
                    at, values = numbers.setdefault(name, ([], []))
                    at.append(row)
                    values.append(float(value))
                elif kind == "bool":
                    by_value.setdefault(name, {}).setdefault(bool(value), []).append(row)
                else:
                    for v in (value,) if isinstance(value, str) else value:
                        by_value.setdefault(name, {}).setdefault(v, []).append(row)
        for name, (at, values) in numbers.items():
            col = _grow(self._columns.get(name, np.empty(0)), n, np.nan)
            col[at] = values
            self._columns[name] = col
            self._sorted[name] = None
        for name, values in by_value.items():
            postings = self._postings.setdefault(name, {})
            live = self._live.setdefault(name, {})
            for v, vrows in values.items():
                postings.setdefault(v, Postings()).extend(np.fromiter(dict.fromkeys(vrows), np.int64))
                live[v] = live.get(v, 0) + len(set(vrows))

    def kill(self, rows: np.ndarray) -> None:
        """Tombstone live rows: they stop matching at once (the `alive` mask) and leave the live counts."""
        for row in np.asarray(rows, np.int64).tolist():
            rec = self.records.get(row)
            if rec is None or not self.alive[row]:
                continue
            self.alive[row] = False
            self.n_alive -= 1
            _, tenant, meta, _ = rec
            self._live[TENANT_FIELD][tenant] -= 1
            for name, value in meta.items():
                kind = self.schema[name]
                if kind == "number":
                    self._sorted[name] = None
                    continue
                for v in set(normalize_value(name, kind, value)) if kind == "keyword" else (bool(value),):
                    self._live[name][v] -= 1

    def drop_rows(self, rows: np.ndarray) -> None:
        """Compaction removed these (dead) rows for good: purge them from postings and columns."""
        rows = np.asarray(rows, np.int64)
        if not len(rows):
            return
        for row in rows.tolist():
            self.records.pop(row, None)
        gone = np.zeros(self.n_rows, bool)
        gone[rows] = True
        self.n_indexed -= int(np.count_nonzero(gone))
        for name, postings in self._postings.items():
            for v in list(postings):
                p = postings[v].rows
                kept = p[~gone[p]]
                if len(kept):
                    postings[v] = Postings(kept)
                else:
                    del postings[v]
                    if self._live[name].get(v, 0) <= 0:
                        self._live[name].pop(v, None)
        for name, col in self._columns.items():
            col[rows[rows < len(col)]] = np.nan
            self._sorted[name] = None

    # ------------------------------------------------------------------------------------------ reads
    def field_type(self, name: str) -> str | None:
        return self.schema.get(name)

    def postings(self, name: str, value) -> np.ndarray:
        p = self._postings.get(name, {}).get(value)
        return np.empty(0, np.int64) if p is None else p.rows

    def contains(self, name: str, value, rows: np.ndarray) -> np.ndarray:
        p = self._postings.get(name, {}).get(value)
        return np.zeros(len(rows), bool) if p is None else p.contains(rows)

    def live_count(self, name: str, value) -> int:
        return max(0, self._live.get(name, {}).get(value, 0))

    def values(self, name: str) -> list:
        """Values of a keyword or bool field held by live rows."""
        return [v for v, c in self._live.get(name, {}).items() if c > 0]

    def column(self, name: str) -> np.ndarray:
        return self._columns.get(name, np.full(0, np.nan))

    def sorted_numbers(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(values ascending, their rows) of a number field over rows not yet dropped."""
        cached = self._sorted.get(name)
        if cached is None:
            col = self.column(name)[:self.n_rows]
            rows = np.flatnonzero(~np.isnan(col))
            order = np.argsort(col[rows], kind="stable")
            cached = (col[rows][order], rows[order])
            self._sorted[name] = cached
        return cached

    def live_fraction(self) -> float:
        """Live rows / rows in the postings: scales counts taken over postings that still hold dead rows."""
        return self.n_alive / self.n_indexed if self.n_indexed else 1.0

    def record(self, row: int) -> tuple | None:
        """The record of a live row (None if deleted or unknown)."""
        return self.records.get(row) if row < self.n_rows and self.alive[row] else None


def _fields_of(metadatas: list[dict]) -> dict[str, str]:
    out: dict[str, str] = {}
    for meta in metadatas:
        for name, value in meta.items():
            if name not in out:
                out[name] = value_type(name, value)
    return out
