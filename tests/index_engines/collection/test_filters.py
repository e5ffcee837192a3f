"""The filter language: errors that list what is valid, and compiled filters (mask, candidate test, estimates)
equal to a plain-Python reference on random payloads and random filters."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index_engines.collection.errors import FilterError
from index_engines.collection.filters import compile_filter, tenant_scoped
from index_engines.collection.payload import PayloadStore

from .strategies import SCHEMA, TENANTS, filters, matches, payloads


def store_of(metas, tenants, dead=(), schema=None):
    store = PayloadStore(schema)
    new = {}
    metas = [store.check(m, new) for m in metas]
    rows = np.arange(len(metas), dtype=np.int64)
    store.add(rows, [f"d{i}" for i in rows], tenants, metas, [None] * len(metas))
    store.kill(np.array(sorted(dead), np.int64))
    return store


@pytest.fixture
def store():
    return store_of([{"color": "red", "price": 3, "flag": True, "tags": ["a", "b"]},
                     {"color": "blue", "price": 7.5}, {}], ["t0", "t1", "t0"])


@pytest.mark.parametrize("flt, message", [
    ({"must": [{"key": "size", "match": {"value": 1}}]}, "unknown filter field 'size'; valid fields: color, flag, "
                                                          "price, tags, tenant"),
    ({"must": [{"key": "color", "like": "r%"}]}, "give exactly one of match, range"),
    ({"must": [{"key": "color", "match": {"eq": "red"}}]}, "takes exactly one of value, any"),
    ({"must": [{"key": "price", "range": {"above": 3}}]}, "takes bounds gt, gte, lt, lte"),
    ({"filter": []}, "unknown filter key 'filter'; valid keys: must, should, must_not"),
    ({"key": "color", "match": {"value": "red"}}, "a condition must sit inside must/should/must_not"),
    ({"must": [{"key": "color", "match": {"value": 3}}]}, "'color' is a keyword field: compare it with a string"),
    ({"must": [{"key": "price", "match": {"value": "3"}}]}, "'price' is a number field: compare it with a finite"),
    ({"must": [{"key": "flag", "match": {"value": 1}}]}, "'flag' is a bool field: compare it with true or false"),
    ({"must": [{"key": "color", "range": {"gt": 1}}]}, "'range' needs a number field; 'color' is a keyword"),
    ({"must": [{"key": "price", "range": {"gt": 1, "gte": 2}}]}, "two lower or two upper bounds"),
    ({"must": "color=red"}, "'must' must be a list"),
    ("{not json", "not valid JSON"),
])
def test_bad_filters_say_what_is_valid(store, flt, message):
    with pytest.raises(FilterError, match=message.replace("(", r"\(").replace("%", "%")):
        compile_filter(flt, store)


def test_json_text_and_empty_filters(store):
    node = compile_filter('{"must": [{"key": "color", "match": {"value": "red"}}]}', store)
    assert node.mask(store)[:3].tolist() == [True, False, False]
    assert compile_filter({}, store).mask(store)[:3].all()
    assert compile_filter(None, store).estimate(store) == 1.0


def test_tenant_scope_is_an_and_at_the_root(store):
    flt = {"should": [{"key": "tenant", "match": {"value": "t1"}}, {"key": "color", "match": {"value": "red"}}]}
    node = tenant_scoped(compile_filter(flt, store), "t0")
    assert node.mask(store)[:3].tolist() == [True, False, False]


@settings(max_examples=150, deadline=None)
@given(metas=st.lists(payloads(), min_size=1, max_size=40), data=st.data(), flt=filters())
def test_compiled_filters_equal_the_reference(metas, data, flt):
    tenants = data.draw(st.lists(st.sampled_from(TENANTS), min_size=len(metas), max_size=len(metas)))
    dead = data.draw(st.sets(st.integers(0, len(metas) - 1)))
    store = store_of(metas, tenants, dead, SCHEMA)
    node = compile_filter(flt, store)
    want = np.array([matches(flt, {**m, "tenant": t}) for m, t in zip(metas, tenants)])
    alive = np.array([i not in dead for i in range(len(metas))])
    assert (node.mask(store)[:len(metas)] & alive).tolist() == (want & alive).tolist()
    rows = np.arange(len(metas), dtype=np.int64)
    assert node.test(store, rows).tolist() == want.tolist()
    estimate = node.estimate(store)
    assert 0.0 <= estimate <= 1.0


@settings(max_examples=60, deadline=None)
@given(metas=st.lists(payloads(), min_size=1, max_size=40), data=st.data())
def test_single_keyword_estimates_are_exact_counts_of_live_items(metas, data):
    tenants = ["t0"] * len(metas)
    dead = data.draw(st.sets(st.integers(0, len(metas) - 1)))
    store = store_of(metas, tenants, dead)
    if store.n_alive == 0:
        return
    for flt in ({"must": [{"key": "color", "match": {"value": "red"}}]},
                {"must": [{"key": "color", "match": {"any": ["red", "blue"]}}]},
                {"must": [{"key": "flag", "match": {"value": True}}]}):
        if store.field_type(flt["must"][0]["key"]) is None:
            continue
        node = compile_filter(flt, store)
        truth = sum(matches(flt, m) for i, m in enumerate(metas) if i not in dead)
        assert node.estimate(store) * store.n_alive == pytest.approx(truth)


def test_range_estimate_counts_live_values(store):
    node = compile_filter({"must": [{"key": "price", "range": {"gte": 3, "lt": 7.5}}]}, store)
    assert node.estimate(store) == pytest.approx(1 / 3)
    assert node.mask(store)[:3].tolist() == [True, False, False]
