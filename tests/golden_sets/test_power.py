"""Minimum detectable difference: the formula, the warning, and agreement with a simulation of the paired test."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from golden_sets.power import WARN_ABOVE, mde_from_diffs, mde_from_scores, minimum_detectable_difference, power_at, \
    queries_needed

Z = 1.959963984540054 + 0.8416212335729143  # z_{0.975} + z_{0.80}


def test_mde_formula():
    assert minimum_detectable_difference(0.3, 300) == pytest.approx(Z * 0.3 / math.sqrt(300), rel=1e-9)
    assert minimum_detectable_difference(0.3, 300, power=0.9) > minimum_detectable_difference(0.3, 300)


def _simulated_power(pool: np.ndarray, n: int, shift: float, sims: int, seed: int) -> float:
    """Share of paired t-tests (alpha 0.05) rejecting when per-query differences are drawn from `pool` (centred)
    plus a true mean difference `shift`."""
    rng = np.random.default_rng(seed)
    d = rng.choice(pool - pool.mean(), size=(sims, n)) + shift
    p = stats.ttest_1samp(d, 0.0, axis=1).pvalue
    return float((p < 0.05).mean())


@pytest.mark.parametrize("n", [120, 300])
def test_mde_agrees_with_simulation(n):
    # Metric-like differences: mostly zero, some +-0.5 and +-1 (what two retrieval systems produce per query).
    pool = np.repeat([-1.0, -0.5, 0.0, 0.5, 1.0], [8, 10, 60, 12, 10])
    est = mde_from_diffs(np.random.default_rng(1).choice(pool, n), golden_set="g", metric="recall@10")
    power = _simulated_power(pool, n, est.mde * pool.std(ddof=1) / est.sd_diff, sims=4000, seed=2)
    # 4000 simulations: standard error 0.006; the t-test is a little less powerful than the normal formula.
    assert power == pytest.approx(0.80, abs=0.03)
    assert _simulated_power(pool, n, 0.0, sims=4000, seed=3) == pytest.approx(0.05, abs=0.015)


def test_power_at_the_mde_is_the_requested_power():
    mde = minimum_detectable_difference(0.25, 200)
    assert power_at(mde, 0.25, 200) == pytest.approx(0.80, abs=1e-3)
    assert power_at(0.0, 0.25, 200) == pytest.approx(0.05)


def test_small_set_warns_and_says_how_many_queries_would_do():
    d = np.random.default_rng(0).choice([-1.0, 0.0, 0.0, 0.0, 1.0], 124)
    est = mde_from_diffs(d, golden_set="scifact-test-ads", metric="recall@5")
    assert est.too_small and est.mde > WARN_ABOVE
    need = queries_needed(est.sd_diff, WARN_ABOVE)
    assert f"about {need} queries are needed to detect 2 points" in est.warning
    assert minimum_detectable_difference(est.sd_diff, need) <= WARN_ABOVE < minimum_detectable_difference(
        est.sd_diff, need - 1)


def test_large_quiet_set_does_not_warn():
    d = np.random.default_rng(0).normal(0, 0.05, 2000)
    est = mde_from_diffs(d)
    assert not est.too_small and est.warning is None


def test_from_one_system_uses_the_assumed_correlation():
    x = np.random.default_rng(0).uniform(0, 1, 400)
    est = mde_from_scores(x, correlation=0.5)
    assert est.sd_diff == pytest.approx(x.std(ddof=1))  # sqrt(2 (1 - 0.5)) = 1
    assert mde_from_scores(x, correlation=0.8).mde < est.mde


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2"):
        mde_from_diffs([0.1])
    with pytest.raises(ValueError, match="power must be between 0 and 1"):
        minimum_detectable_difference(0.2, 100, power=1.2)
