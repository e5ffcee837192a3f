"""Bad input: a ValueError that names the problem and the valid choices, from every engine."""
from __future__ import annotations

import numpy as np
import pytest

from index_engines.engines import ENGINES, make_engine


@pytest.fixture(params=list(ENGINES))
def engine(request):
    e = make_engine(request.param, 8, **({"pq_m": 4, "min_train": 10} if request.param == "ivfpq" else {}))
    vectors = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
    e.add(vectors, np.arange(40))
    return e


def test_dimension_mismatch(engine):
    with pytest.raises(ValueError, match="dimension 7 but the engine was built for dimension 8"):
        engine.search(np.zeros((1, 7), np.float32), 3)
    with pytest.raises(ValueError, match="dimension 9"):
        engine.add(np.zeros((1, 9), np.float32), [100])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_values(engine, bad):
    x = np.ones((3, 8), np.float32)
    x[2, 5] = bad
    with pytest.raises(ValueError, match="row 2 contains NaN or infinite"):
        engine.add(x, [100, 101, 102])
    with pytest.raises(ValueError, match="queries row 2 contains NaN or infinite"):
        engine.search(x, 3)
    assert len(engine) == 40  # nothing was added


def test_huge_float64_values_overflowing_float32_are_rejected(engine):
    with pytest.raises(ValueError, match="infinite"):
        engine.add(np.full((1, 8), 1e300), [100])


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3"])
def test_k_must_be_a_positive_integer(engine, k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        engine.search(np.ones((1, 8), np.float32), k)


def test_duplicate_ids_in_one_batch(engine):
    with pytest.raises(ValueError, match="duplicate id 7 in one batch"):
        engine.add(np.ones((3, 8), np.float32), [100, 7, 7])


def test_id_already_held(engine):
    with pytest.raises(ValueError, match="id 5 is already in the index"):
        engine.add(np.ones((2, 8), np.float32), [100, 5])


def test_negative_or_non_integer_ids(engine):
    with pytest.raises(ValueError, match=">= 0"):
        engine.add(np.ones((1, 8), np.float32), [-1])
    with pytest.raises(ValueError, match="integers"):
        engine.add(np.ones((1, 8), np.float32), [1.5])


def test_unknown_query_parameter_lists_the_valid_ones(engine):
    valid = ", ".join(engine.query_spec.names)
    with pytest.raises(ValueError, match=f"unknown query parameter 'efs' for engine '{engine.name}'; valid query "
                                         f"parameters: {valid}"):
        engine.search(np.ones((1, 8), np.float32), 3, {"efs": 10})


def test_unknown_engine_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown engine 'annoy'; valid engines: flat, hnsw, ivfpq, sq8"):
        make_engine("annoy", 8)


def test_unknown_build_parameter_and_bad_choices():
    with pytest.raises(ValueError, match="unknown build parameter 'm' for engine 'hnsw'; valid build parameters: "
                                         ".*M, ef_construction"):
        make_engine("hnsw", 8, m=16)
    with pytest.raises(ValueError, match="valid choices: 'hnswlib', 'faiss'"):
        make_engine("hnsw", 8, backend="nmslib")
    with pytest.raises(ValueError, match="valid choices: 'float32', 'float16'"):
        make_engine("ivfpq", 8, pq_m=4, raw_dtype="int8")
    with pytest.raises(ValueError, match="pq_m=5 does not divide the indexed dimension 384; valid pq_m: .*48"):
        make_engine("ivfpq", 384, pq_m=5)
    with pytest.raises(ValueError, match="truncate_dim=500 exceeds the dimension 384"):
        make_engine("hnsw", 384, truncate_dim=500, raw_dtype="float32")
    with pytest.raises(ValueError, match="truncate_dim needs raw vectors"):
        make_engine("hnsw", 384, truncate_dim=64)


def test_bad_query_parameter_values():
    e = make_engine("hnsw", 8)
    e.add(np.eye(8, dtype=np.float32), np.arange(8))
    with pytest.raises(ValueError, match="'ef' of engine 'hnsw' is 0; it must be at least 1"):
        e.search(np.ones((1, 8), np.float32), 3, {"ef": 0})
    with pytest.raises(ValueError, match="'ef' of engine 'hnsw' must be int, got '64'"):
        e.search(np.ones((1, 8), np.float32), 3, {"ef": "64"})
    with pytest.raises(ValueError, match="oversample=4 needs raw vectors"):
        e.search(np.ones((1, 8), np.float32), 3, {"oversample": 4})


def test_bad_allow_list(engine):
    with pytest.raises(ValueError, match="allow must hold integer ids"):
        engine.search(np.ones((1, 8), np.float32), 3, allow=np.array([1.5]))
