"""RRF and weighted fusion against hand-computed formulas; determinism of ties and of input order."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index_engines.fusion import FusionConfig, SourceHit, fuse, fuse_runs, fusion_config, ranked

DENSE = [("a", 0.9), ("b", 0.8), ("c", 0.7)]
BM25 = [("c", 12.0), ("d", 9.0), ("a", 3.0)]


def by_id(hits):
    return {h.id: h for h in hits}


def test_rrf_matches_the_formula():
    hits = by_id(fuse({"dense": DENSE, "bm25": BM25}, "rrf"))
    assert hits["a"].score == pytest.approx(1 / (60 + 1) + 1 / (60 + 3))
    assert hits["b"].score == pytest.approx(1 / (60 + 2))
    assert hits["c"].score == pytest.approx(1 / (60 + 3) + 1 / (60 + 1))
    assert hits["d"].score == pytest.approx(1 / (60 + 2))


def test_rrf_constant_and_weights():
    cfg = FusionConfig("rrf", rrf_k=10, weights={"dense": 2.0, "bm25": 0.5})
    hits = by_id(fuse({"dense": DENSE, "bm25": BM25}, cfg))
    assert hits["a"].score == pytest.approx(2.0 / (10 + 1) + 0.5 / (10 + 3))
    assert hits["d"].score == pytest.approx(0.5 / (10 + 2))


def test_weighted_minmax_matches_the_formula():
    hits = by_id(fuse({"dense": DENSE, "bm25": BM25}, FusionConfig("weighted", weights={"dense": 0.7, "bm25": 0.3})))
    # dense min-max over [0.9, 0.8, 0.7]; bm25 over [12, 9, 3]
    assert hits["a"].score == pytest.approx(0.7 * 1.0 + 0.3 * (3 - 3) / (12 - 3))
    assert hits["b"].score == pytest.approx(0.7 * (0.8 - 0.7) / (0.9 - 0.7))
    assert hits["c"].score == pytest.approx(0.7 * 0.0 + 0.3 * 1.0)
    assert hits["d"].score == pytest.approx(0.3 * (9 - 3) / (12 - 3))


def test_weighted_zscore_and_degenerate_lists():
    hits = by_id(fuse({"x": [("a", 1.0), ("b", 3.0)]}, FusionConfig("weighted", normalization="zscore")))
    assert hits["b"].score == pytest.approx(1.0) and hits["a"].score == pytest.approx(-1.0)
    flat = fuse({"x": [("a", 5.0), ("b", 5.0)]}, "weighted")  # min == max: every hit counts as the best
    assert [(h.id, h.score) for h in flat] == [("a", 1.0), ("b", 1.0)]


def test_fused_hits_keep_each_sources_rank_and_score():
    hits = by_id(fuse({"dense": DENSE, "bm25": BM25}))
    assert hits["a"].sources == {"dense": SourceHit(1, 0.9), "bm25": SourceHit(3, 3.0)}
    assert hits["d"].sources == {"bm25": SourceHit(2, 9.0)}
    assert hits["a"].to_dict()["sources"]["bm25"] == {"rank": 3, "score": 3.0}


def test_ties_break_by_id_and_do_not_depend_on_input_order():
    # b and d tie (each rank 2 in one source); a and c tie (ranks 1 and 3)
    out = fuse({"dense": DENSE, "bm25": BM25})
    assert [h.id for h in out] == ["a", "c", "b", "d"]
    shuffled = fuse({"bm25": list(reversed(BM25)), "dense": list(reversed(DENSE))})
    assert [(h.id, h.score) for h in shuffled] == [(h.id, h.score) for h in out]
    # equal scores inside one source are ranked by id too
    assert ranked([("z", 1.0), ("m", 1.0), ("q", 2.0)]) == [("q", 2.0), ("m", 1.0), ("z", 1.0)]


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdefgh"), st.floats(-5, 5, allow_nan=False), min_size=1),
       st.dictionaries(st.sampled_from("abcdefgh"), st.floats(-5, 5, allow_nan=False), min_size=1),
       st.sampled_from(["rrf", "weighted"]), st.randoms(use_true_random=False))
def test_fusion_is_a_function_of_the_hits_not_their_order(a, b, method, rnd: random.Random):
    items_a, items_b = list(a.items()), list(b.items())
    first = fuse({"a": items_a, "b": items_b}, method)
    rnd.shuffle(items_a)
    rnd.shuffle(items_b)
    second = fuse({"b": items_b, "a": items_a}, method)
    assert first == second
    assert [h.score for h in first] == sorted((h.score for h in first), reverse=True)
    assert {h.id for h in first} == set(a) | set(b)


def test_fuse_runs_and_limit():
    runs = {"dense": {"q1": dict(DENSE), "q2": {"x": 1.0}}, "bm25": {"q1": dict(BM25)}}
    run = fuse_runs(runs, "rrf", limit=2)
    assert list(run["q1"]) == ["a", "c"] and run["q2"] == {"x": pytest.approx(1 / 61)}


def test_bad_fusion_input_is_rejected():
    with pytest.raises(ValueError, match="unknown fusion method 'borda'; valid methods: rrf, weighted"):
        fuse({"dense": DENSE}, "borda")
    with pytest.raises(ValueError, match="rrf_k must be"):
        FusionConfig(rrf_k=-1)
    with pytest.raises(ValueError, match="no fusion weight for source 'bm25'"):
        fuse({"dense": DENSE, "bm25": BM25}, FusionConfig(weights={"dense": 1.0}))
    with pytest.raises(ValueError, match="appears twice"):
        fuse({"dense": [("a", 1.0), ("a", 0.5)]})
    with pytest.raises(ValueError, match="at least one source"):
        fuse({})
    with pytest.raises(ValueError, match="normalization"):
        fusion_config("weighted", normalization="rank")


def test_consumer_fusion_defaults_resolve():
    from golden_sets.consumers import load_consumer

    cfg = fusion_config(load_consumer("search").fusion)
    assert cfg.method == load_consumer("search").fusion and cfg.rrf_k == 60
