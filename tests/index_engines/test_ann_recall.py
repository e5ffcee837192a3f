"""ANN recall against the flat twin: per-query values, tie fairness, sample size and confidence interval."""
from __future__ import annotations

import numpy as np
import pytest

from index_engines.ann_recall import GroundTruth, ann_recall, bootstrap_ci, sample_queries
from index_engines.engines import SearchResult, make_engine


class ScriptedEngine:
    """Answers with ids chosen by a function of the exact answer (a stand-in for an approximate engine)."""

    def __init__(self, oracle, answer):
        self.oracle, self.answer = oracle, answer

    def __len__(self):
        return len(self.oracle)

    def search(self, queries, k, params=None, allow=None):
        exact = self.oracle.search(queries, k, allow=allow)
        return SearchResult(self.answer(exact.ids), exact.scores)


def test_flat_against_itself_is_perfect(oracle, minilm):
    report = ann_recall(oracle, oracle, minilm[1], k=10)
    assert (report.mean, report.ci_low, report.ci_high, report.n) == (1.0, 1.0, 1.0, len(minilm[1]))


def test_recall_counts_the_exact_neighbours_returned(oracle, minilm):
    # Keep the best 7 of 10 and replace 3 with ids far down the ranking: recall 7/10 on every query.
    def seven_of_ten(ids):
        far = oracle.search(minilm[1], 40).ids[:, -3:]
        return np.concatenate([ids[:, :7], far], axis=1)

    report = ann_recall(ScriptedEngine(oracle, seven_of_ten), oracle, minilm[1], k=10)
    assert report.mean == pytest.approx(7 / 10)
    assert report.ci_low == pytest.approx(7 / 10) and report.ci_high == pytest.approx(7 / 10)


def test_padding_and_repeats_do_not_count(oracle, minilm):
    def half_padded_and_repeated(ids):
        out = ids.copy()
        out[:, 5:] = -1
        out[:, 4] = out[:, 0]  # one id twice counts once
        return out

    report = ann_recall(ScriptedEngine(oracle, half_padded_and_repeated), oracle, minilm[1], k=10)
    assert report.mean == pytest.approx(4 / 10)


def test_returning_another_copy_of_a_tied_vector_is_a_hit(minilm):
    base = np.concatenate([minilm[0][:500], minilm[0][:500]])
    ids = np.concatenate([np.arange(500), np.arange(500) + 1000])
    flat = make_engine("flat", 384)
    flat.add(base, ids)
    queries = minilm[1][:50]
    truth = GroundTruth(flat, queries, 4)
    swapped = np.where(truth.exact.ids >= 1000, truth.exact.ids - 1000, truth.exact.ids + 1000)
    assert truth.report(swapped).mean == 1.0
    assert truth.report(np.full_like(swapped, 999)).mean == 0.0  # id 999 is held nowhere


def test_allow_list_ids_outside_it_are_never_hits(oracle, minilm, base_ids):
    allow = base_ids[::2]
    truth = GroundTruth(oracle, minilm[1][:20], 10, allow=allow)
    unrestricted = oracle.search(minilm[1][:20], 10).ids
    report = truth.report(unrestricted)
    outside = ~np.isin(unrestricted, allow)
    assert outside.any()
    assert report.mean <= 1 - outside.mean() + 1e-9


def test_sample_size_and_interval(oracle, minilm):
    def noisy(ids):  # drop the last 0-4 neighbours at random per query
        rng = np.random.default_rng(1)
        out = ids.copy()
        for row, drop in zip(out, rng.integers(0, 5, len(out))):
            if drop:
                row[-drop:] = -1
        return out

    engine = ScriptedEngine(oracle, noisy)
    small = ann_recall(engine, oracle, minilm[1], k=10, sample=50, seed=3)
    full = ann_recall(engine, oracle, minilm[1], k=10)
    assert small.n == 50 and full.n == 200
    assert full.ci_low < full.mean < full.ci_high
    assert (small.ci_high - small.ci_low) > (full.ci_high - full.ci_low)  # fewer queries, wider interval
    assert 0.7 < full.mean < 0.9  # expected 1 - mean(drop)/10 = 0.8


def test_bootstrap_ci_matches_the_normal_approximation():
    values = np.random.default_rng(0).random(2000)
    low, high = bootstrap_ci(values)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert low == pytest.approx(values.mean() - half, abs=2e-3)
    assert high == pytest.approx(values.mean() + half, abs=2e-3)


def test_sample_queries_is_seeded_and_without_replacement(minilm):
    a, b = sample_queries(minilm[1], 30, seed=5), sample_queries(minilm[1], 30, seed=5)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a, axis=0)) == 30
    with pytest.raises(ValueError, match="positive number of queries"):
        sample_queries(minilm[1], 0)


def test_engine_and_oracle_must_hold_the_same_vectors(oracle, minilm):
    smaller = make_engine("flat", 384)
    smaller.add(minilm[0][:10], np.arange(10))
    with pytest.raises(ValueError, match="same vectors"):
        ann_recall(smaller, oracle, minilm[1])
