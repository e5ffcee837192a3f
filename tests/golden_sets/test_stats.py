"""Paired tests agree with their scipy.stats references to 1e-6 on fixed data, and are reproducible with a seed."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from golden_sets.stats import compare_paired, holm, paired_bootstrap_ci, paired_t_test, paired_values, \
    sign_flip_test, wilcoxon_signed_rank

TOL = 1e-6
_rng = np.random.default_rng(20240611)
# (baseline, candidate) per-query values, built once with a fixed seed: continuous, graded metric-like values
# with many ties and zeros, and small samples for the exact paths.
CASES = {
    "continuous-40": (_rng.uniform(0, 1, 40), _rng.uniform(0, 1, 40)),
    "continuous-12": (_rng.uniform(0, 1, 12), _rng.uniform(0.1, 1, 12)),
    "graded-300": (_rng.choice([0, 0.5, 1.0], 300), _rng.choice([0, 0.5, 1.0], 300, p=[0.3, 0.3, 0.4])),
    "binary-120": (_rng.integers(0, 2, 120).astype(float), _rng.integers(0, 2, 120).astype(float)),
    "ties-and-zeros-11": (np.array([.2, .5, .5, 1, 0, .3, .3, .7, .1, 0, 1]),
                          np.array([.4, .5, .7, 1, .2, .1, .5, .9, .3, .2, .6])),
    "no-ties-30": (np.zeros(30), _rng.normal(0.05, 0.2, 30)),
}


def _mean_diff(c, b, axis=-1):
    return np.mean(c, axis=axis) - np.mean(b, axis=axis)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("ours, reference", [(paired_t_test, stats.ttest_rel), (wilcoxon_signed_rank, stats.wilcoxon)],
                         ids=["ttest_rel", "wilcoxon"])
def test_rank_and_t_tests_match_scipy(name, ours, reference):
    b, c = CASES[name]
    got, ref = ours(c - b), reference(c, b)
    assert got.statistic == pytest.approx(ref.statistic, abs=TOL)
    assert got.pvalue == pytest.approx(ref.pvalue, abs=TOL)


def test_wilcoxon_covers_its_three_methods():
    methods = {wilcoxon_signed_rank(c - b).method for b, c in CASES.values()}
    assert {"exact", "exact-permutation", "normal"} <= methods


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("seed", [0, 7])
def test_sign_flip_matches_permutation_test(name, seed):
    b, c = CASES[name]
    d = c - b
    ours = sign_flip_test(d, n_resamples=999, seed=seed)
    exact = len(d) <= 20
    ref = stats.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples",
                                 vectorized=True, n_resamples=np.inf if exact else 999,
                                 rng=np.random.default_rng(seed))
    assert ours.method == ("exact" if exact else "monte-carlo")
    assert ours.statistic == pytest.approx(ref.statistic, abs=TOL)
    assert ours.pvalue == pytest.approx(ref.pvalue, abs=TOL)


@pytest.mark.parametrize("name", CASES)
def test_bootstrap_matches_scipy_paired_percentile(name):
    b, c = CASES[name]
    low, high = paired_bootstrap_ci(c - b, n_resamples=2000, seed=3)
    ref = stats.bootstrap((c, b), _mean_diff, paired=True, method="percentile", n_resamples=2000,
                          rng=np.random.default_rng(3)).confidence_interval
    assert low == pytest.approx(ref.low, abs=TOL) and high == pytest.approx(ref.high, abs=TOL)


def test_bootstrap_does_not_depend_on_the_batch_size(monkeypatch):
    b, c = CASES["graded-300"]
    whole = paired_bootstrap_ci(c - b, n_resamples=999, seed=1)
    import golden_sets.stats as mod

    monkeypatch.setattr(mod, "_BATCH_CELLS", 300 * 7)  # 7 resamples per batch
    assert paired_bootstrap_ci(c - b, n_resamples=999, seed=1) == whole


def test_results_are_reproducible_with_a_seed_and_vary_without():
    b, c = CASES["graded-300"]
    data = paired_values(dict(enumerate(b)), dict(enumerate(c)))
    first, again = compare_paired(data, seed=11, n_resamples=2000), compare_paired(data, seed=11, n_resamples=2000)
    assert first == again
    other = compare_paired(data, seed=12, n_resamples=2000)
    assert (other.ci_low, other.ci_high) != (first.ci_low, first.ci_high)


def test_compare_paired_puts_it_together():
    b, c = CASES["binary-120"]
    data = paired_values({f"q{i}": v for i, v in enumerate(b)}, {f"q{i}": v for i, v in enumerate(c)})
    out = compare_paired(data, n_resamples=999, seed=0)
    assert out.n == 120 and out.mean_diff == pytest.approx(c.mean() - b.mean())
    assert out.ci_low <= out.mean_diff <= out.ci_high
    assert out.t_test.pvalue == pytest.approx(stats.ttest_rel(c, b).pvalue, abs=TOL)
    assert out.sd_diff == pytest.approx(np.std(c - b, ddof=1))


def test_holm_follows_its_formula():
    # sorted: 0.01*4 = 0.04; 0.03*3 = 0.09; 0.04*2 = 0.08 -> max(0.09, 0.08) = 0.09; 0.5*1 = 0.5
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.3, 0.6]) == pytest.approx([0.6, 0.6])
    assert holm([0.9, 0.8, 0.7]) == pytest.approx([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="p-values"):
        holm([0.1, 1.5])


def test_all_zero_differences_are_no_evidence():
    d = np.zeros(50)
    assert sign_flip_test(d).pvalue == 1.0
    assert paired_t_test(d).pvalue == 1.0
    assert wilcoxon_signed_rank(d).pvalue == 1.0


def test_pairing_by_query_id_rejects_different_or_empty_sets():
    with pytest.raises(ValueError, match="different queries.*1 only in the baseline.*'q3'.*1 only in the candidate"):
        paired_values({"q1": 1.0, "q3": 0.0}, {"q1": 1.0, "q9": 1.0}, "search ndcg@10")
    with pytest.raises(ValueError, match="empty golden set"):
        paired_values({}, {})
    with pytest.raises(ValueError, match="finite"):
        paired_values({"a": np.nan, "b": 1.0}, {"a": 1.0, "b": 1.0})


def test_pairing_orders_values_by_query_id_not_by_insertion():
    data = paired_values({"b": 1.0, "a": 0.0}, {"a": 0.5, "b": 0.25})
    assert data.query_ids == ("a", "b")
    assert data.diffs.tolist() == [0.5, -0.75]
