"""Canaries, the deploy sanity check (a normalisation bug trips it, an unchanged model passes) and cross-model drift."""
from __future__ import annotations

import numpy as np
import pytest

from golden_sets.drift import BACKFILL_BELOW, CANARY_COUNT, INCREMENTAL_ABOVE, build_canaries, classify, \
    cross_model_drift, deploy_sanity_check, ensure_reference, load_canaries, neighbour_jaccard, reference_path
from index_engines.embedding import normalize_rows
from index_engines.settings import get_settings


class Wrapped:
    """A serving encoder built from a real one: same id and fingerprint, vectors changed by `change`."""

    def __init__(self, model, change, dim=None):
        self.model, self.change = model, change
        self.id, self.fingerprint = model.id, model.fingerprint
        self.dim = dim or model.dim
        self.calls = []

    def encode(self, texts, *, use_cache=True, show_progress=None):
        self.calls.append(use_cache)
        return self.change(self.model.encode(texts, use_cache=use_cache, show_progress=show_progress))


def unnormalised(v):
    """The bug: a dependency stops normalising; directions are unchanged, norms are not 1."""
    return v * np.random.default_rng(0).uniform(0.5, 2.0, (len(v), 1)).astype(np.float32)


def test_canary_file_follows_its_rule():
    texts = load_canaries()
    assert len(texts) == CANARY_COUNT >= 1000 and len(set(texts)) == len(texts)
    assert texts == build_canaries()


def test_references_are_created_once_under_the_data_dir(static_model, caplog):
    ref, created = ensure_reference(static_model)
    path = reference_path(static_model.id, static_model.fingerprint)
    assert ref.path == path and path.is_relative_to(get_settings().home / "canaries") and path.exists()
    assert ref.vectors.shape == (CANARY_COUNT, 64)
    np.testing.assert_allclose(np.linalg.norm(ref.vectors, axis=1), 1.0, atol=1e-5)
    again, created_again = ensure_reference(static_model)
    assert not created_again and np.array_equal(again.vectors, ref.vectors)


def test_unchanged_model_passes(static_model):
    ref, _ = ensure_reference(static_model)
    serving = Wrapped(static_model, lambda v: v)
    report = deploy_sanity_check(serving, ref)
    assert report.passed and report.alerts == ()
    assert report.mean_cosine > 0.9999 and report.max_norm_drift < 1e-4
    assert serving.calls == [False]  # the canaries were re-embedded, not read from the cache


def test_unnormalised_vectors_trip_the_sanity_check(static_model):
    ref, _ = ensure_reference(static_model)
    report = deploy_sanity_check(Wrapped(static_model, unnormalised), ref)
    assert not report.passed
    assert report.mean_cosine > 0.9999  # directions unchanged: only the norm check can see this bug
    assert len(report.alerts) == 1 and "vector norms drifted" in report.alerts[0]
    assert report.max_norm_drift > 0.4


def test_a_different_model_trips_the_sanity_check(static_model):
    ref, _ = ensure_reference(static_model)
    rotate = np.linalg.qr(np.random.default_rng(1).normal(size=(64, 64)))[0].astype(np.float32)
    report = deploy_sanity_check(Wrapped(static_model, lambda v: v @ rotate), ref)
    assert not report.passed and report.mean_cosine < 0.99 and "mean cosine" in report.alerts[0]
    other = Wrapped(static_model, lambda v: v[:, :32], dim=32)
    other.fingerprint = "f" * 64
    report = deploy_sanity_check(other, ref)
    assert not report.passed and any("32-d vectors" in a for a in report.alerts)
    assert any("fingerprint" in a for a in report.alerts)


def test_references_are_never_made_from_unnormalised_vectors(static_model, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        with pytest.raises(ValueError, match="not unit vectors; refusing to save them"):
            ensure_reference(Wrapped(static_model, unnormalised))
        assert not (tmp_path / "canaries").exists() or not any((tmp_path / "canaries").glob("*.npy"))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_neighbour_jaccard_formula():
    # Two tight pairs {0, 1} and {2, 3}; the new model moves point 0 off to a third axis.
    old = normalize_rows(np.array([[1, 0, 0], [1, .1, 0], [0, 1, 0], [0, 1, .1]], dtype=np.float32))
    new = old.copy()
    new[0] = [0, 0, 1]
    # k=1: 0: {1} -> {3} (cos 0.0995 beats 0), 1: {0} -> {2}; the other pair keeps its neighbours.
    assert neighbour_jaccard(old, new, k=1).tolist() == [0.0, 0.0, 1.0, 1.0]
    # k=2 for point 0: old {1, 2} (2 and 3 tie at 0: lower index first), new {3, 1} -> 1 shared of 3.
    assert neighbour_jaccard(old, new, k=2)[0] == pytest.approx(1 / 3)


def test_same_model_is_incremental(static_model):
    drift = cross_model_drift(static_model, static_model)
    assert drift.measure == "cosine" and drift.score == pytest.approx(1.0, abs=1e-5)
    assert drift.jaccard.mean() == 1.0 and drift.classification == "incremental"


def test_perturbed_model_drifts_by_cosine(static_model):
    rng = np.random.default_rng(0)
    noisy = Wrapped(static_model, lambda v: normalize_rows(v + rng.normal(0, 0.07, v.shape).astype(np.float32)))
    drift = cross_model_drift(static_model, noisy)
    expected = 1 / np.sqrt(1 + 64 * 0.07 ** 2)  # E cos(v, v + noise) for unit v, isotropic noise in 64-d
    assert drift.score == pytest.approx(expected, abs=0.02)
    assert BACKFILL_BELOW < drift.score < INCREMENTAL_ABOVE and drift.classification == "partial backfill"
    assert 0 < drift.jaccard.mean() < 1


def test_different_dimensions_use_neighbourhood_overlap(static_model):
    half = Wrapped(static_model, lambda v: normalize_rows(v[:, :16]), dim=16)
    drift = cross_model_drift(static_model, half)
    assert drift.cosine is None and drift.measure == "neighbour jaccard@10"
    assert drift.score == pytest.approx(drift.jaccard.mean()) and drift.score < BACKFILL_BELOW
    assert drift.classification == "full backfill"
    summary = drift.to_dict()
    assert summary["cosine"] is None and summary["jaccard@10"]["mean"] == pytest.approx(drift.score)


def test_classification_thresholds():
    assert [classify(x) for x in (0.96, 0.95, 0.8, 0.79)] == ["incremental", "partial backfill", "partial backfill",
                                                             "full backfill"]
