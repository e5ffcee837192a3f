"""SPEC parsing (model[:engine[:params]]) and the engine-backed retriever against the exact oracle."""
from __future__ import annotations

import pytest

from golden_sets.evaluate import ExactRetriever
from golden_sets.golden import load_golden_set
from golden_sets.metrics import ann_recall_of_runs
from golden_sets.systems import EngineRetriever, parse_system


def test_plain_model_is_exact_search():
    s = parse_system("minilm-l6-v2")
    assert (s.model_id, s.engine, s.is_exact) == ("minilm-l6-v2", "flat", True)
    assert parse_system("static-64:flat").is_exact


def test_engine_params_split_into_build_and_query():
    s = parse_system("minilm-l6-v2:hnsw:M=32,ef_construction=100,ef=64")
    assert s.engine == "hnsw" and s.build_params == {"M": 32, "ef_construction": 100}
    assert s.query_params == {"ef": 64}
    assert parse_system("static-64:hnsw:rescore=false").query_params == {"rescore": False}


@pytest.mark.parametrize("spec, message", [
    ("bert-base", "unknown embedding model 'bert-base'; valid model ids: minilm-l6-v2, mpnet-base-v2, static-64"),
    ("minilm-l6-v2:annoy", "unknown engine 'annoy'; valid engines: flat, hnsw"),
    ("minilm-l6-v2:hnsw:efs=3", "unknown parameter 'efs' for engine 'hnsw'; valid build parameters: .*M.*; "
                                "valid query parameters: .*ef"),
    ("minilm-l6-v2:hnsw:ef", "parameter 'ef' must be NAME=VALUE"),
    ("minilm-l6-v2:hnsw:ef=fast", "'ef' of engine 'hnsw' must be int"),
    ("minilm-l6-v2:flat:ef=3", "exact search \\(flat\\) takes no parameters"),
    ("", "a system SPEC is MODEL"),
])
def test_bad_specs_name_the_valid_choices(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_system(spec)


def test_engine_retriever_matches_exact_search_at_high_ef(static_model):
    golden = load_golden_set("mrpc-test-dedup")
    retriever = parse_system("static-64:hnsw:M=16,ef_construction=200,ef=256").retriever()
    assert isinstance(retriever, EngineRetriever) and retriever.name == "static-64:hnsw:M=16,ef_construction=200,ef=256"
    run = retriever.retrieve(golden, 10)
    exact = ExactRetriever(static_model).retrieve(golden, 10)
    assert set(run) == set(exact)
    assert all(qid not in docs for qid, docs in run.items())  # exclude_self honoured
    assert all(len(docs) == 10 for docs in run.values())
    assert ann_recall_of_runs(run, exact, 10).mean > 0.97
    low = parse_system("static-64:hnsw:M=4,ef_construction=8,ef=10").retriever().retrieve(golden, 10)
    assert ann_recall_of_runs(low, exact, 10).mean < ann_recall_of_runs(run, exact, 10).mean
