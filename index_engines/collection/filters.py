"""The JSON filter language, compiled against a payload store into a tree that can (a) estimate its selectivity
from the inverted index, (b) produce the mask of matching rows, and (c) test a handful of candidate rows.

```
filter    := {"must": [clause, ...], "should": [clause, ...], "must_not": [clause, ...]}   (any subset)
clause    := condition | filter
condition := {"key": FIELD, "match": {"value": V}}          equality: keyword (str), bool, number
           | {"key": FIELD, "match": {"any": [V, ...]}}     membership: keyword or number values
           | {"key": FIELD, "range": {"gte": x, "lt": y}}   number fields; any of gt, gte, lt, lte
```
`must`: every clause holds; `should`: at least one holds (if any are given); `must_not`: none holds (an item
without the field does not match the condition, so `must_not` keeps it). `{}` matches everything. A keyword
condition matches a multi-valued (list) field when any of its values matches. `tenant` is a keyword field.

Selectivity estimates (fraction of live rows), cheap by construction:
- `match`/`any` on keyword and bool fields: exact, from live counts per value (summed over `any`, capped at 1);
- `range`: two binary searches in the field's sorted values (scaled by the live fraction);
- `must`: product, `should`: 1 - product of complements, `must_not`: complement (independence assumed).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from .errors import FilterError
from .payload import TENANT_FIELD, PayloadStore

BOOL_KEYS = ("must", "should", "must_not")
OPERATORS = ("match", "range")
MATCH_KINDS = ("value", "any")
RANGE_BOUNDS = ("gt", "gte", "lt", "lte")
MAX_DEPTH = 16
MAX_ANY = 10_000


class Node:
    def estimate(self, store: PayloadStore) -> float:
        raise NotImplementedError

    def mask(self, store: PayloadStore) -> np.ndarray:
        """Boolean array over the row-id space (dead rows may be True: AND with `store.alive`)."""
        raise NotImplementedError

    def test(self, store: PayloadStore, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def rows(self, store: PayloadStore) -> np.ndarray:
        """Sorted matching rows (dead ones included); costs the size of the answer where it can."""
        return np.flatnonzero(self.mask(store))


@dataclass(frozen=True)
class MatchAll(Node):
    def estimate(self, store):
        return 1.0

    def mask(self, store):
        return np.ones(store.n_rows, bool)

    def test(self, store, rows):
        return np.ones(len(rows), bool)


@dataclass(frozen=True)
class Terms(Node):
    """A keyword or bool field equal to any of `values`."""
    field: str
    values: tuple

    def estimate(self, store):
        if not store.n_alive:
            return 0.0
        return min(1.0, sum(store.live_count(self.field, v) for v in self.values) / store.n_alive)

    def mask(self, store):
        m = np.zeros(store.n_rows, bool)
        for v in self.values:
            m[store.postings(self.field, v)] = True
        return m

    def test(self, store, rows):
        out = np.zeros(len(rows), bool)
        for v in self.values:
            out |= store.contains(self.field, v, rows)
        return out

    def rows(self, store):
        if len(self.values) == 1:
            return store.postings(self.field, self.values[0]).copy()
        return np.unique(np.concatenate([store.postings(self.field, v) for v in self.values]))


@dataclass(frozen=True)
class Range(Node):
    """A number field within [lo, hi] (each end inclusive or not); equality is lo == hi, both inclusive."""
    field: str
    lo: float = -math.inf
    hi: float = math.inf
    lo_incl: bool = True
    hi_incl: bool = True

    def _span(self, store) -> tuple[np.ndarray, int, int]:
        values, rows = store.sorted_numbers(self.field)
        start = np.searchsorted(values, self.lo, side="left" if self.lo_incl else "right")
        end = np.searchsorted(values, self.hi, side="right" if self.hi_incl else "left")
        return rows, int(start), int(max(start, end))

    def estimate(self, store):
        if not store.n_alive:
            return 0.0
        _, start, end = self._span(store)
        return min(1.0, (end - start) * store.live_fraction() / store.n_alive)

    def mask(self, store):
        rows, start, end = self._span(store)
        m = np.zeros(store.n_rows, bool)
        m[rows[start:end]] = True
        return m

    def test(self, store, rows):
        col = store.column(self.field)
        v = np.full(len(rows), np.nan)
        inside = rows < len(col)
        v[inside] = col[rows[inside]]
        with np.errstate(invalid="ignore"):
            lo_ok = v >= self.lo if self.lo_incl else v > self.lo
            hi_ok = v <= self.hi if self.hi_incl else v < self.hi
        return lo_ok & hi_ok

    def rows(self, store):
        rows, start, end = self._span(store)
        return np.sort(rows[start:end])


@dataclass(frozen=True)
class And(Node):
    children: tuple

    def estimate(self, store):
        return float(np.prod([c.estimate(store) for c in self.children]))

    def mask(self, store):
        m = self.children[0].mask(store)
        for c in self.children[1:]:
            m &= c.mask(store)
        return m

    def test(self, store, rows):
        out = np.ones(len(rows), bool)
        for c in self.children:  # cheap short-circuit: only test rows still in
            idx = np.flatnonzero(out)
            if not len(idx):
                break
            out[idx] = c.test(store, rows[idx])
        return out

    def rows(self, store):
        """The most selective child's rows, tested against the others: cost follows the smallest set."""
        ranked = sorted(self.children, key=lambda c: c.estimate(store))
        rows = ranked[0].rows(store)
        for c in ranked[1:]:
            if not len(rows):
                break
            rows = rows[c.test(store, rows)]
        return rows


@dataclass(frozen=True)
class Or(Node):
    children: tuple

    def estimate(self, store):
        return 1.0 - float(np.prod([1.0 - c.estimate(store) for c in self.children]))

    def mask(self, store):
        m = self.children[0].mask(store)
        for c in self.children[1:]:
            m |= c.mask(store)
        return m

    def test(self, store, rows):
        out = np.zeros(len(rows), bool)
        for c in self.children:
            out |= c.test(store, rows)
        return out


@dataclass(frozen=True)
class Not(Node):
    child: Node

    def estimate(self, store):
        return 1.0 - self.child.estimate(store)

    def mask(self, store):
        return ~self.child.mask(store)

    def test(self, store, rows):
        return ~self.child.test(store, rows)


# ---------------------------------------------------------------------------------------------- compiler
def compile_filter(spec, store: PayloadStore) -> Node:
    """A filter (dict or JSON text) checked against the store's fields; FilterError names what is valid."""
    if spec is None:
        return MatchAll()
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError as exc:
            raise FilterError(f"filter is not valid JSON: {exc}") from None
    return _compile_bool(spec, store, depth=0)


def tenant_scoped(node: Node, tenant: str) -> Node:
    """`node` restricted to one tenant: an AND at the root, so no clause below can reach another tenant."""
    scope = Terms(TENANT_FIELD, (tenant,))
    return scope if isinstance(node, MatchAll) else And((scope, node))


def _compile_bool(spec, store, depth) -> Node:
    if not isinstance(spec, dict):
        raise FilterError(f"a filter must be a JSON object with keys {', '.join(BOOL_KEYS)}; got {spec!r:.80}")
    if depth > MAX_DEPTH:
        raise FilterError(f"filter nesting deeper than {MAX_DEPTH} levels")
    unknown = sorted(set(spec) - set(BOOL_KEYS))
    if unknown:
        hint = " (a condition must sit inside must/should/must_not)" if "key" in spec else ""
        raise FilterError(f"unknown filter key {unknown[0]!r}{hint}; valid keys: {', '.join(BOOL_KEYS)}")
    parts: list[Node] = []
    for key in BOOL_KEYS:
        clauses = spec.get(key)
        if clauses is None:
            continue
        if not isinstance(clauses, list):
            raise FilterError(f"{key!r} must be a list of conditions, got {type(clauses).__name__}")
        nodes = [_compile_clause(c, store, depth + 1) for c in clauses]
        if not nodes:
            continue
        if key == "must":
            parts.extend(nodes)
        elif key == "should":
            parts.append(nodes[0] if len(nodes) == 1 else Or(tuple(nodes)))
        else:
            parts.extend(Not(n) for n in nodes)
    if not parts:
        return MatchAll()
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _compile_clause(clause, store, depth) -> Node:
    if isinstance(clause, dict) and "key" not in clause and set(clause) <= set(BOOL_KEYS):
        return _compile_bool(clause, store, depth)
    if not isinstance(clause, dict) or "key" not in clause:
        raise FilterError(f"a condition is {{\"key\": FIELD, OPERATOR: ...}} with OPERATOR one of "
                          f"{', '.join(OPERATORS)}, or a nested filter; got {clause!r:.80}")
    field = clause["key"]
    kind = store.field_type(field) if isinstance(field, str) else None
    if kind is None:
        raise FilterError(f"unknown filter field {field!r}; valid fields: {', '.join(sorted(store.schema))}")
    ops = sorted(set(clause) - {"key"})
    if len(ops) != 1 or ops[0] not in OPERATORS:
        raise FilterError(f"condition on {field!r} has operator(s) {ops}; give exactly one of "
                          f"{', '.join(OPERATORS)}")
    if ops[0] == "match":
        return _compile_match(field, kind, clause["match"])
    return _compile_range(field, kind, clause["range"])


def _compile_match(field, kind, match) -> Node:
    if not isinstance(match, dict) or len(match) != 1 or next(iter(match)) not in MATCH_KINDS:
        raise FilterError(f"'match' on {field!r} takes exactly one of {', '.join(MATCH_KINDS)}, "
                          f"e.g. {{\"value\": ...}} or {{\"any\": [...]}}; got {match!r:.80}")
    how, arg = next(iter(match.items()))
    if how == "any":
        if not isinstance(arg, list) or not arg or len(arg) > MAX_ANY:
            raise FilterError(f"'match.any' on {field!r} needs a list of 1..{MAX_ANY} values, got {arg!r:.80}")
        values = arg
    else:
        values = [arg]
    values = [_check_value(field, kind, v) for v in values]
    if kind == "number":
        points = [Range(field, v, v) for v in dict.fromkeys(values)]
        return points[0] if len(points) == 1 else Or(tuple(points))
    return Terms(field, tuple(dict.fromkeys(values)))


def _check_value(field, kind, v):
    if kind == "keyword" and isinstance(v, str):
        return v
    if kind == "bool" and isinstance(v, bool):
        return v
    if kind == "number" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    want = {"keyword": "a string", "bool": "true or false", "number": "a finite number"}[kind]
    raise FilterError(f"field {field!r} is a {kind} field: compare it with {want}, got {v!r:.60}")


def _compile_range(field, kind, bounds) -> Node:
    if kind != "number":
        raise FilterError(f"'range' needs a number field; {field!r} is a {kind} field (use 'match')")
    if not isinstance(bounds, dict) or not bounds or set(bounds) - set(RANGE_BOUNDS):
        bad = sorted(set(bounds) - set(RANGE_BOUNDS)) if isinstance(bounds, dict) else bounds
        raise FilterError(f"'range' on {field!r} takes bounds {', '.join(RANGE_BOUNDS)}; got {bad!r:.80}")
    b = {name: _check_value(field, "number", v) for name, v in bounds.items()}
    if "gt" in b and "gte" in b or "lt" in b and "lte" in b:
        raise FilterError(f"'range' on {field!r} gives two lower or two upper bounds")
    lo, lo_incl = (b["gt"], False) if "gt" in b else (b.get("gte", -math.inf), True)
    hi, hi_incl = (b["lt"], False) if "lt" in b else (b.get("lte", math.inf), True)
    return Range(field, lo, hi, lo_incl, hi_incl)
