"""The query pipeline over a real collection with its BM25 secondary index: congruence with the stages run by hand,
filters / tenants / tombstones (property test), persistence through the collection's hook, bad input."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index_engines.collection import Collection
from index_engines.fusion import fuse
from index_engines.lexical import BM25Index, BM25Secondary, EmptyQueryError
from index_engines.pipeline import QueryPipeline
from index_engines.rerank import RerankerNotFoundError

TENANTS = ["acme", "globex", "initech"]
SMALL = dict(model="static-64", seal_items=40, engine="flat", fsync="never", routing={"exact_max_items": 10})


@pytest.fixture(scope="module")
def scifact():
    from golden_sets.golden import load_golden_set

    g = load_golden_set("scifact-test")
    ids = list(g.corpus)[:120]
    return {d: g.corpus[d] for d in ids}, list(g.queries.values())[:12]


def items_for(texts: dict, n: int | None = None) -> list[dict]:
    out = []
    for i, (d, t) in enumerate(list(texts.items())[:n]):
        out.append({"id": d, "text": t, "tenant": TENANTS[i % 3], "metadata": {"year": 2000 + i % 20,
                                                                           "kind": "odd" if i % 2 else "even"}})
    return out


@pytest.fixture
def setup(tmp_path, scifact):
    texts, _ = scifact
    lexical = BM25Secondary()
    col = Collection.create(tmp_path / "c", secondary=[lexical], **SMALL)
    col.upsert(items_for(texts))
    yield col, lexical, QueryPipeline(col, lexical)
    col.close()


def test_hybrid_equals_the_stages_run_by_hand(setup, scifact):
    col, lexical, pipe = setup
    for q in scifact[1][:6]:
        res = pipe.search(q, k=10, candidates=30)
        dense = col.search(q, k=30)
        dense_hits = [(int(r), float(s)) for r, s in zip(dense.rows[0], dense.scores[0]) if r >= 0]
        expected = fuse({"dense": dense_hits, "bm25": lexical.search(q, 30)}, "rrf")[:10]
        assert [h.row for h in res.hits] == [h.id for h in expected]
        assert [h.score for h in res.hits] == pytest.approx([h.score for h in expected])
        assert res.hits[0].sources and set(res.hits[0].sources) <= {"dense", "bm25"}
        assert set(res.timings) == {"filter_ms", "dense_ms", "bm25_ms", "fuse_ms", "rerank_ms", "fetch_ms",
                                    "total_ms"}
        assert all(v >= 0 for v in res.timings.values())
        assert res.run_entry() == {h.id: h.score for h in res.hits}


def test_single_source_modes_keep_source_scores(setup, scifact):
    col, lexical, pipe = setup
    q = scifact[1][0]
    bm25 = pipe.search(q, k=5, mode="bm25")
    assert [(h.row, h.score) for h in bm25.hits] == lexical.search(q, 5)
    assert all(h.sources["bm25"].rank == i for i, h in enumerate(bm25.hits, 1))
    dense = pipe.search(q, k=5, mode="dense")
    assert [h.id for h in dense.hits] == col.search(q, k=5).ids()[0] and dense.fusion is None


def test_weighted_fusion_is_selectable(setup, scifact):
    res = setup[2].search(scifact[1][1], k=5, fusion="weighted")
    assert res.fusion.method == "weighted" and len(res.hits) == 5


# ------------------------------------------------------------------------------------------------ property test
FILTERS = [None, {"must": [{"key": "kind", "match": {"value": "odd"}}]},
           {"must": [{"key": "year", "range": {"gte": 2005, "lt": 2012}}]},
           {"must_not": [{"key": "kind", "match": {"value": "even"}}], "should": [
               {"key": "year", "range": {"lt": 2003}}, {"key": "year", "range": {"gte": 2015}}]}]


def _matches(filter, meta) -> bool:
    if filter is None:
        return True
    if filter is FILTERS[1]:
        return meta["kind"] == "odd"
    if filter is FILTERS[2]:
        return 2005 <= meta["year"] < 2012
    return meta["kind"] != "even" and (meta["year"] < 2003 or meta["year"] >= 2015)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(deleted=st.sets(st.integers(0, 59), max_size=25), filter_i=st.integers(0, 3),
       tenant=st.sampled_from([None] + TENANTS), query_i=st.integers(0, 11), mode=st.sampled_from(
           ["hybrid", "bm25", "dense"]), compact=st.booleans())
def test_results_respect_filters_tenants_and_tombstones(scifact, deleted, filter_i, tenant, query_i, mode, compact):
    texts, queries = scifact
    items = items_for(texts, 60)
    with tempfile.TemporaryDirectory() as tmp:
        lexical = BM25Secondary()
        col = Collection.create(Path(tmp) / "c", secondary=[lexical], **SMALL)
        try:
            col.upsert(items)
            col.delete([items[i]["id"] for i in sorted(deleted)])
            if compact:
                col.compact()
            flt = FILTERS[filter_i]
            res = QueryPipeline(col, lexical).search(queries[query_i], k=10, candidates=60, filter=flt,
                                                     tenant=tenant, mode=mode, exact=True)
            eligible = {it["id"] for i, it in enumerate(items) if i not in deleted and _matches(flt, it["metadata"])
                        and (tenant is None or it["tenant"] == tenant)}
            got = [h.id for h in res.hits]
            assert set(got) <= eligible
            # and nothing eligible is missed: BM25 over exactly the eligible documents, statistics collection-wide
            if mode == "bm25":
                ref = BM25Index()
                live = [it for i, it in enumerate(items) if i not in deleted]
                ref.upsert([it["id"] for it in live], [it["text"] for it in live])
                expected = ref.search(queries[query_i], 10, allow=eligible)
                assert [h.score for h in res.hits] == pytest.approx([sc for _, sc in expected], abs=1e-9)
                # equal scores may come in another order (rows here, string ids in the reference): compare sets
                # above the last score, which a tie may split at k
                cut = expected[-1][1] if expected else 0.0
                assert {h.id for h in res.hits if h.score > cut + 1e-9} == {d for d, sc in expected if sc > cut + 1e-9}
            if mode == "dense":
                assert got == col.search(queries[query_i], k=10, filter=flt, tenant=tenant, exact=True).ids()[0]
            if mode != "bm25":  # exact dense search returns every eligible item, up to k
                assert len(got) == min(10, len(eligible))
        finally:
            col.close()


def test_bm25_follows_the_collection_through_close_and_reopen(tmp_path, scifact):
    texts, queries = scifact
    lexical = BM25Secondary()
    col = Collection.create(tmp_path / "c", secondary=[lexical], **SMALL)
    col.upsert(items_for(texts))
    col.delete(list(texts)[:10])
    col.upsert([{"id": list(texts)[10], "text": "an entirely new text about kinase inhibitors", "tenant": "globex"}])
    before = QueryPipeline(col, lexical).search(queries[0], k=10).run_entry()
    col.close()
    assert (tmp_path / "c" / "secondary" / "bm25" / "meta.json").exists()
    again = BM25Secondary()
    col = Collection.open(tmp_path / "c", secondary=[again])
    try:
        assert len(again) == len(col) == 110
        assert QueryPipeline(col, again).search(queries[0], k=10).run_entry() == before
        hit = QueryPipeline(col, again).search("kinase inhibitors", k=3, mode="bm25").hits[0]
        assert hit.id == list(texts)[10] and hit.tenant == "globex"
    finally:
        col.close()


def test_rerank_reorders_the_top_candidates(setup, scifact, minilm_model):
    from index_engines.rerank import Reranker

    reranker = Reranker(minilm_model.path, batch_size=16, max_length=64)  # untrained head: mechanics only
    q = scifact[1][2]
    res = setup[2].search(q, k=5, rerank=reranker, rerank_depth=8, with_payload=True)
    plain = setup[2].search(q, k=8)
    assert {h.id for h in res.hits} <= {h.id for h in plain.hits}
    expected = reranker.rerank(q, [(h.id, setup[0].get([h.id])[0]["text"]) for h in plain.hits])[:5]
    assert [h.id for h in res.hits] == [d for d, _ in expected]
    assert [h.score for h in res.hits] == pytest.approx([s for _, s in expected], abs=1e-5)
    assert all(h.rerank_score == h.score and h.fused_score is not None for h in res.hits)
    assert res.timings["rerank_ms"] > 0 and res.reranker == reranker.name


@pytest.mark.parametrize("kwargs,error,match", [
    ({"query": ""}, ValueError, "query is empty"),
    ({"query": "the of and"}, EmptyQueryError, "no searchable term"),
    ({"mode": "sparse"}, ValueError, "unknown search mode 'sparse'"),
    ({"fusion": "borda"}, ValueError, "unknown fusion method 'borda'"),
    ({"candidates": 5}, ValueError, r"candidates \(5\) must be at least k \(10\)"),
    ({"rerank": "anything", "rerank_depth": 5}, ValueError, r"rerank_depth \(5\) is smaller than k \(10\)"),
    ({"rerank": "no-such-reranker"}, RerankerNotFoundError, "workbench train-reranker"),
])
def test_bad_input_fails_clearly(setup, kwargs, error, match):
    args = {"query": "insulin resistance", "k": 10, **kwargs}
    with pytest.raises(error, match=match):
        setup[2].search(args.pop("query"), **args)


def test_stopword_query_is_fine_for_dense_only_and_bm25_needs_an_index(setup):
    col, _, pipe = setup
    assert pipe.search("the of and", k=3, mode="dense").hits
    with pytest.raises(ValueError, match="needs a BM25 index"):
        QueryPipeline(col).search("insulin", k=3)
