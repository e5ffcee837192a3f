"""Reranker registry (versions, resolution, clear errors) and batched, deterministic cross-encoder scoring."""
from __future__ import annotations

import json

import numpy as np
import pytest

from index_engines.rerank import (CARD_FILE, Reranker, RerankerNotFoundError, check_reranker_name, list_rerankers,
                                  next_version, resolve_reranker)


def fake_entry(root, name, version, card=True):
    folder = root / f"{name}-v{version}"
    folder.mkdir(parents=True)
    if card:
        (folder / CARD_FILE).write_text(json.dumps({"name": name, "version": version}))
    return folder


def test_registry_resolves_latest_and_exact_versions(tmp_path):
    fake_entry(tmp_path, "sci", 1)
    fake_entry(tmp_path, "sci", 2)
    fake_entry(tmp_path, "sci", 3, card=False)  # an interrupted save: no card, not registered
    fake_entry(tmp_path, "other", 1)
    assert [r.ref for r in list_rerankers(tmp_path)] == ["other-v1", "sci-v1", "sci-v2"]
    assert resolve_reranker("sci", tmp_path).ref == "sci-v2"
    assert resolve_reranker("sci-v1", tmp_path).ref == "sci-v1"
    assert next_version("sci", tmp_path) == 4  # the incomplete folder still holds its number
    assert next_version("new", tmp_path) == 1


def test_missing_reranker_names_the_available_ones_and_the_train_command(tmp_path):
    fake_entry(tmp_path, "sci", 1)
    with pytest.raises(RerankerNotFoundError, match=r"no trained reranker 'nope'.*available: sci-v1.*"
                                                    r"workbench train-reranker"):
        resolve_reranker("nope", tmp_path)
    with pytest.raises(RerankerNotFoundError, match="available: none"):
        resolve_reranker("sci-v9", tmp_path / "empty")
    with pytest.raises(RerankerNotFoundError, match="no reranker folder"):
        Reranker(tmp_path / "absent")


@pytest.mark.parametrize("bad", ["", "Upper", "-x", "name-v2", "sp ace"])
def test_reranker_names_are_validated(bad):
    with pytest.raises(ValueError, match="reranker name"):
        check_reranker_name(bad)


@pytest.fixture(scope="module")
def untrained(minilm_model):
    """MiniLM weights with a random one-logit head: not useful for quality, fine for scoring mechanics."""
    return Reranker(minilm_model.path, batch_size=4, max_length=64)


def test_scores_are_batched_and_deterministic(untrained):
    passages = ["Insulin regulates glucose uptake in muscle.", "The Eiffel tower is in Paris.",
                "Kinase inhibitors block tumour growth.", "Glucose transport depends on insulin signalling.",
                "Rain is expected tomorrow.", "Beta cells secrete insulin."]
    q = "insulin and glucose"
    a = untrained.score(q, passages)
    b = untrained.score(q, passages)
    assert a.dtype == np.float32 and a.shape == (6,)
    assert np.array_equal(a, b)
    untrained.batch_size = 32  # one batch instead of two: same scores up to float noise
    c = untrained.score(q, passages)
    untrained.batch_size = 4
    assert np.allclose(a, c, atol=1e-5)
    single = np.array([untrained.score(q, [p])[0] for p in passages])
    assert np.allclose(a, single, atol=1e-5)


def test_rerank_orders_by_score_then_id(untrained):
    cands = [("d2", "same text"), ("d1", "same text"), ("d3", "something else entirely")]
    out = untrained.rerank("a query", cands)
    assert sorted(d for d, _ in out) == ["d1", "d2", "d3"]
    assert [s for _, s in out] == sorted((s for _, s in out), reverse=True)
    i1, i2 = [d for d, _ in out].index("d1"), [d for d, _ in out].index("d2")
    assert i1 < i2  # identical text -> identical score -> id ascending
    assert untrained.score("q", []).shape == (0,)
    with pytest.raises(ValueError, match="query to rerank for is empty"):
        untrained.score("  ", ["x"])
