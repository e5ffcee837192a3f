"""The hnsw engine's short path for one query (either backend, no raw store, no allow-list) answers exactly as the
general path: same ids, same scores, same tie order, same errors; and it is the path actually taken."""
from __future__ import annotations

import numpy as np
import pytest

from index_engines.engines import Engine, load_engine, make_engine
from index_engines.engines.base import check_vectors
from index_engines.engines.hnsw import HnswEngine


def _general(engine, query, k, params):
    """The general path of the same engine (the base class's search_checked, skipping both overrides)."""
    q = check_vectors(query, engine.dim, "queries")
    return Engine.search_checked(engine, q, k, engine.query_spec.resolve(params, engine.name), None)


@pytest.fixture
def spy(monkeypatch):
    """Counts the single queries the short path answered itself."""
    answered = []
    original = HnswEngine._search_one

    def counting(self, query, k, qp):
        result = original(self, query, k, qp)
        answered.append(result is not None)
        return result

    monkeypatch.setattr(HnswEngine, "_search_one", counting)
    return answered


@pytest.mark.parametrize("backend", ["hnswlib", "faiss"])
@pytest.mark.parametrize("ids_kind", ["positions", "shuffled"])
def test_single_queries_match_the_general_path_ties_included(minilm, spy, ids_kind, backend):
    # Two copies of each of 300 vectors: queries that are base vectors meet exact ties.
    base = np.repeat(minilm[0][:300], 2, axis=0)
    ids = np.arange(600, dtype=np.int64) if ids_kind == "positions" else \
        np.random.default_rng(5).permutation(600).astype(np.int64) * 3 + 1
    engine = make_engine("hnsw", 384, build_threads=1, backend=backend)
    engine.add(base, ids)
    assert engine._ids_are_positions == (ids_kind == "positions")
    queries = np.concatenate([minilm[1][:40], minilm[0][:40]])
    for params in ({"ef": 16}, {"ef": 64}, None):
        for i in range(len(queries)):
            q = queries[i:i + 1]
            short, general = engine.search(q, 7, params), _general(engine, q, 7, params)
            np.testing.assert_array_equal(short.ids, general.ids)
            np.testing.assert_array_equal(short.scores, general.scores)
            assert short.ids.dtype == np.int64 and short.scores.dtype == np.float32
    # Every call after the first with each setting (which fills the parameter cache) took the short path, and the
    # tied rows went through it too (it hands ties to `_finish`).
    assert sum(spy) >= 3 * (len(queries) - 1)
    tied = engine.search(minilm[0][:1], 4)
    assert tied.ids[0, :2].tolist() == sorted(ids[:2].tolist())


@pytest.mark.parametrize("backend", ["hnswlib", "faiss"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_single_non_finite_query_gets_the_usual_error(minilm, bad, backend):
    engine = make_engine("hnsw", 384, build_threads=1, backend=backend)
    engine.add(minilm[0][:200], np.arange(200))
    engine.search(minilm[1][:1], 5)  # the default settings are cached: the next call takes the short path
    q = minilm[1][:1].copy()
    q[0, 17] = bad
    with pytest.raises(ValueError, match="queries row 0 contains NaN or infinite"):
        engine.search(q, 5)


def test_other_cases_take_the_general_path(minilm, spy):
    engine = make_engine("hnsw", 384, build_threads=1)
    engine.add(minilm[0][:200], np.arange(200))
    engine.search(minilm[1][:5], 5)  # a batch
    engine.search(minilm[1][:1], 5, allow=np.arange(100))  # an allow-list
    engine.search(minilm[1][:1], 500)  # k above the count: padding
    assert spy == []
    # One vector given as 1-D is validated (and reshaped) by the general path, then answered by the short one.
    one = engine.search(minilm[1][0], 5)
    assert spy == [True]
    np.testing.assert_array_equal(one.ids, _general(engine, minilm[1][:1], 5, None).ids)
    with pytest.raises(ValueError, match="unknown query parameter 'efs'"):
        engine.search(minilm[1][:1], 5, {"efs": 10})
    with pytest.raises(ValueError, match="needs raw vectors"):
        engine.search(minilm[1][:1], 5, {"oversample": 2})


def test_ids_are_positions_survives_adds_and_reload(minilm, tmp_path):
    engine = make_engine("hnsw", 384, build_threads=1)
    engine.add(minilm[0][:50], np.arange(50))
    assert engine._ids_are_positions
    engine.add(minilm[0][50:60], np.arange(50, 60))
    assert engine._ids_are_positions
    engine.save(tmp_path / "a")
    assert load_engine(tmp_path / "a")._ids_are_positions
    engine.add(minilm[0][60:61], np.array([1000]))
    assert not engine._ids_are_positions
    engine.save(tmp_path / "b")
    loaded = load_engine(tmp_path / "b")
    assert not loaded._ids_are_positions
    assert loaded.search(minilm[0][60:61], 1).ids[0, 0] == 1000


@pytest.mark.parametrize("backend", ["hnswlib", "faiss"])
def test_a_non_contiguous_query_gets_the_same_answer(minilm, backend):
    engine = make_engine("hnsw", 384, build_threads=1, backend=backend)
    engine.add(minilm[0][:300], np.arange(300))
    engine.search(minilm[1][:1], 5)
    strided = np.repeat(minilm[1][1:2], 2, axis=1)[:, ::2]  # the query, every other float of a wider row
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(engine.search(strided, 5).ids, engine.search(minilm[1][1:2].copy(), 5).ids)
