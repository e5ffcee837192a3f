"""Property tests over whole collections: on random data, random metadata, random deletes and random filters,
every route returns what a brute-force reference returns, and a tenant-scoped search never leaves its tenant.

The graph is searched with `ef` larger than the collection, which makes HNSW exhaustive: the routes' allow-lists,
tombstones, oversampling and fallbacks are then checked exactly, with no ANN approximation in the way (ANN recall
is measured separately on real vectors in test_routing.py and the benchmarks).
"""
from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index_engines.collection import Collection

from .conftest import unit_vectors
from .strategies import SCHEMA, TENANTS, filters, matches, payloads

_counter = itertools.count()
EXHAUSTIVE = dict(model="static-64", seal_items=40, fsync="never", payload_schema=SCHEMA,
                  engine_params={"M": 8, "ef_construction": 64}, query_params={"ef": 512, "exact_below": 0},
                  routing={"exact_max_items": 8}, rebuild_tombstone_rate=None, rebuild_recall_drop=None)


def build(tmp_path_factory, metas, tenants, dead, seed):
    """A collection with sealed+indexed segments, a growing one, and tombstones; and the reference items."""
    col = Collection.create(tmp_path_factory.mktemp("prop") / f"c{next(_counter)}", background=False, **EXHAUSTIVE)
    x = unit_vectors(len(metas), seed)
    items = [{"id": f"d{i}", "vector": x[i], "model_version": col.model_version, "metadata": m, "tenant": t}
             for i, (m, t) in enumerate(zip(metas, tenants))]
    head = len(items) * 3 // 4
    col.upsert(items[:head])
    col.flush()  # seal, persist and index (inline: background=False)
    col.upsert(items[head:])  # still growing: exact
    col.delete([f"d{i}" for i in dead])
    reference = {f"d{i}": (x[i], {**metas[i], "tenant": tenants[i]}) for i in range(len(metas)) if i not in dead}
    return col, x, reference


def check_answer(res_ids, res_scores, query, reference, allowed, k):
    want = min(k, len(allowed))
    assert len(res_ids) == want, f"{len(res_ids)} results, {want} allowed items exist"
    assert set(res_ids) <= allowed and len(set(res_ids)) == len(res_ids)
    truth = sorted((float(reference[key][0] @ query) for key in allowed), reverse=True)[:want]
    got = [float(reference[key][0] @ query) for key in res_ids]
    np.testing.assert_allclose(got, truth, atol=1e-5)  # same items up to exact ties
    np.testing.assert_allclose(res_scores[:want], got, atol=1e-5)


collection_data = dict(
    metas=st.lists(payloads(), min_size=20, max_size=120),
    data=st.data(),
    seed=st.integers(0, 10_000),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(**collection_data, flt=filters(), k=st.sampled_from([1, 5, 10]))
def test_filtered_search_equals_brute_force(tmp_path_factory, metas, data, seed, flt, k):
    tenants = data.draw(st.lists(st.sampled_from(TENANTS), min_size=len(metas), max_size=len(metas)))
    dead = data.draw(st.sets(st.integers(0, len(metas) - 1), max_size=len(metas) // 3))
    col, x, reference = build(tmp_path_factory, metas, tenants, dead, seed)
    try:
        queries = np.concatenate([x[:2], unit_vectors(2, seed + 1)])
        allowed = {key for key, (_, payload) in reference.items() if matches(flt, payload)}
        for route in (None, "exact", "exact_allowed", "post_filter", "filtered_graph"):
            res = col.search(vectors=queries, model_version=col.model_version, k=k, filter=flt, route=route)
            if route in ("post_filter", "filtered_graph") and res.selectivity < 1.0:
                assert route in res.methods  # the forced route really ran on the indexed segments
            for q, ids, scores in zip(queries, res.ids(), res.scores):
                check_answer(ids, scores, q, reference, allowed, k)
    finally:
        col.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(**collection_data, flt=st.one_of(st.none(), filters()), tenant=st.sampled_from(TENANTS + ["t9"]))
def test_tenant_scoped_search_never_returns_another_tenants_item(tmp_path_factory, metas, data, seed, flt, tenant):
    tenants = data.draw(st.lists(st.sampled_from(TENANTS), min_size=len(metas), max_size=len(metas)))
    dead = data.draw(st.sets(st.integers(0, len(metas) - 1), max_size=len(metas) // 3))
    col, x, reference = build(tmp_path_factory, metas, tenants, dead, seed)
    try:
        queries = unit_vectors(3, seed + 2)
        allowed = {key for key, (_, payload) in reference.items()
                   if payload["tenant"] == tenant and (flt is None or matches(flt, payload))}
        res = col.search(vectors=queries, model_version=col.model_version, k=10, filter=flt, tenant=tenant)
        for q, hits, scores in zip(queries, res.hits, res.scores):
            assert all(h["tenant"] == tenant for h in hits)
            check_answer([h["id"] for h in hits], scores, q, reference, allowed, 10)
        assert col.count(flt, tenant) == len(allowed)
    finally:
        col.close()
