"""Hypothesis strategies for payloads and filters, and a plain-Python reference evaluator of the filter language
(the specification the compiled filters are checked against)."""
from __future__ import annotations

from hypothesis import strategies as st

COLORS = ["red", "green", "blue", "cyan"]
TAGS = ["a", "b", "c"]
TENANTS = ["t0", "t1", "t2"]
SCHEMA = {"color": "keyword", "tags": "keyword", "price": "number", "flag": "bool"}


def payloads():
    return st.fixed_dictionaries({}, optional={
        "color": st.sampled_from(COLORS),
        "tags": st.lists(st.sampled_from(TAGS), min_size=1, max_size=3),
        "price": st.integers(0, 20),
        "flag": st.booleans(),
    })


def conditions():
    return st.one_of(
        st.builds(lambda v: {"key": "color", "match": {"value": v}}, st.sampled_from(COLORS)),
        st.builds(lambda vs: {"key": "color", "match": {"any": vs}}, st.lists(st.sampled_from(COLORS), min_size=1,
                                                                             max_size=3)),
        st.builds(lambda v: {"key": "tags", "match": {"value": v}}, st.sampled_from(TAGS)),
        st.builds(lambda v: {"key": "flag", "match": {"value": v}}, st.booleans()),
        st.builds(lambda v: {"key": "price", "match": {"value": v}}, st.integers(0, 20)),
        st.builds(lambda vs: {"key": "price", "match": {"any": vs}}, st.lists(st.integers(0, 20), min_size=1,
                                                                             max_size=3)),
        st.builds(_range, st.sampled_from(["gt", "gte", None]), st.integers(-1, 21), st.sampled_from(["lt", "lte", None]),
                  st.integers(-1, 21)),
        st.builds(lambda v: {"key": "tenant", "match": {"value": v}}, st.sampled_from(TENANTS)),
    )


def _range(lo_op, lo, hi_op, hi):
    bounds = {}
    if lo_op:
        bounds[lo_op] = lo
    if hi_op or not bounds:
        bounds[hi_op or "lte"] = hi
    return {"key": "price", "range": bounds}


def filters(depth: int = 2):
    clause = conditions() if depth == 0 else st.one_of(conditions(), conditions(), filters(depth - 1))
    return st.fixed_dictionaries({}, optional={
        "must": st.lists(clause, max_size=3),
        "should": st.lists(clause, max_size=3),
        "must_not": st.lists(clause, max_size=2),
    })


# ---------------------------------------------------------------------------------------------- reference
def matches(flt: dict, payload: dict) -> bool:
    """Does an item with `payload` (metadata plus "tenant") pass `flt`? Written from the language's definition."""
    must = flt.get("must") or []
    should = flt.get("should") or []
    must_not = flt.get("must_not") or []
    return (all(_clause(c, payload) for c in must)
            and (not should or any(_clause(c, payload) for c in should))
            and not any(_clause(c, payload) for c in must_not))


def _clause(c: dict, payload: dict) -> bool:
    if "key" not in c:
        return matches(c, payload)
    value = payload.get(c["key"])
    if value is None:
        return False
    have = value if isinstance(value, list) else [value]
    if "match" in c:
        wanted = [c["match"]["value"]] if "value" in c["match"] else c["match"]["any"]
        return any(h == w and type(h) is not bool and type(w) is not bool or (h is w) for h in have for w in wanted)
    b = c["range"]
    v = value
    return ((("gt" not in b) or v > b["gt"]) and (("gte" not in b) or v >= b["gte"])
            and (("lt" not in b) or v < b["lt"]) and (("lte" not in b) or v <= b["lte"]))
