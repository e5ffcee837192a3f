"""Selectivity-aware routing on real MiniLM vectors: each selectivity takes its documented route, keeps ANN
recall@10 >= 0.95 against the exact oracle, and never returns fewer than k results when k allowed items exist
(even when the selectivity estimate is badly wrong)."""
from __future__ import annotations

import numpy as np
import pytest

from index_engines.collection import Collection
from index_engines.collection.filters import compile_filter
from index_engines.collection.routing import QueryPlan, RoutingPolicy

from .conftest import vector_items

K = 10


@pytest.fixture(scope="module")
def routed(minilm, tmp_path_factory):
    """3,000 real vectors in one indexed segment; bucket fields give selectivities 50%, 10% and 1%, and two
    fields (`a`, `b`) are each true on half the items but both true on only 1%: their independence estimate
    (25%) is wrong by 25x."""
    base, _ = minilm
    n = len(base)
    rng = np.random.default_rng(3)
    perm = rng.permutation(n)
    a = np.zeros(n, bool)
    b = np.zeros(n, bool)
    a[perm[:n // 2]] = True  # a: first half of the permutation
    b[perm[n // 2 - n // 100:n - n // 100]] = True  # b: overlaps a on 1% of the items
    col = Collection.create(tmp_path_factory.mktemp("routing") / "c", model="minilm-l6-v2", seal_items=10_000,
                            routing={"exact_max_items": 100, "post_filter_min": 0.3}, rebuild_tombstone_rate=None,
                            fsync="never")
    col.upsert(vector_items(col, base, metadata=lambda i: {"s50": int(perm[i] % 2 == 0), "s10": int(perm[i] % 10),
                                                            "s1": int(perm[i] % 100), "a": bool(a[i]),
                                                            "b": bool(b[i])}))
    col.flush()
    yield col
    col.close()


def recall(col, queries, flt, **kw):
    res = col.search(vectors=queries, model_version=col.model_version, k=K, filter=flt, **kw)
    truth = col.search(vectors=queries, model_version=col.model_version, k=K, filter=flt, exact=True)
    per_query = [len(set(r) & set(t)) / len(t) for r, t in zip(res.ids(), truth.ids())]
    return res, float(np.mean(per_query))


@pytest.mark.parametrize("flt, route", [
    (None, "unfiltered"),
    ({"must": [{"key": "s50", "match": {"value": 1}}]}, "post_filter"),
    ({"must": [{"key": "s10", "match": {"value": 3}}]}, "filtered_graph"),
    ({"must": [{"key": "s1", "range": {"gte": 40, "lt": 41}}]}, "exact_allowed"),
])
def test_each_selectivity_takes_its_route_with_high_recall(routed, minilm, flt, route):
    res, r = recall(routed, minilm[1][:100], flt)
    assert res.route == route
    assert r >= 0.95
    assert all(len(ids) == K for ids in res.ids())


def test_a_wrong_estimate_still_fills_k(routed, minilm):
    flt = {"must": [{"key": "a", "match": {"value": True}}, {"key": "b", "match": {"value": True}}]}
    est = routed.estimate(flt)
    assert est["selectivity"] == pytest.approx(0.25, abs=0.01) and est["route"] == "filtered_graph"
    assert routed.count(flt) == 30
    for route in ("post_filter", "filtered_graph"):
        res, r = recall(routed, minilm[1][:50], flt, route=route)
        assert all(len(ids) == K for ids in res.ids())  # 30 allowed items exist: 10 results, always
        assert r >= 0.95
    res = routed.search(vectors=minilm[1][:50], model_version=routed.model_version, k=K, filter=flt,
                        route="post_filter")
    assert res.fallbacks > 0  # oversampling for 25% could not fill k from a 1% filter: exact scan took over


def test_fewer_than_k_allowed_items_returns_all_of_them(routed, minilm):
    flt = {"must": [{"key": "a", "match": {"value": True}}, {"key": "b", "match": {"value": True}},
                    {"key": "s10", "match": {"any": [1, 2]}}]}
    n_allowed = routed.count(flt)
    assert 0 < n_allowed < K
    for route in (None, "post_filter", "filtered_graph"):
        res = routed.search(vectors=minilm[1][:5], model_version=routed.model_version, k=K, filter=flt, route=route)
        assert all(len(ids) == n_allowed for ids in res.ids())


def test_route_thresholds(routed):
    store = routed._store
    policy = RoutingPolicy(exact_max_items=100, post_filter_min=0.3)
    plan = lambda flt: QueryPlan(store, compile_filter(flt, store), policy)  # noqa: E731
    assert plan(None).route == "unfiltered"
    assert plan({"must": [{"key": "s1", "range": {"lt": 3}}]}).route == "exact_allowed"  # 90 items
    assert plan({"must": [{"key": "s1", "range": {"lt": 4}}]}).route == "filtered_graph"  # 120 items
    assert plan({"must": [{"key": "s1", "range": {"lt": 30}}]}).route == "post_filter"  # 30%
    assert plan({"must": [{"key": "s1", "range": {"lt": 30}}]}).allowed_estimate == 900
    assert QueryPlan(store, compile_filter(None, store), policy, exact=True).route == "exact"
