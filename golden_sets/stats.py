"""Paired significance tests for comparing two systems query by query on the same golden set.

Every function takes the per-query differences `d = candidate - baseline` (one value per query, paired by query id)
and returns plain numbers. Each test reproduces its scipy.stats reference (tested to 1e-6), written out here so the
resampling runs in bounded-memory batches and the choices are visible:

- `paired_bootstrap_ci`: percentile bootstrap of mean(d), resampling whole queries; the same draws as
  `scipy.stats.bootstrap(paired=True, method="percentile")` given the same seed;
- `sign_flip_test`: the paired randomisation test. Under "no difference" each query's difference is as likely to
  have either sign; the p-value is the share of sign assignments whose mean is at least as extreme as the observed
  one. Exact enumeration of all 2^n assignments for n <= `EXACT_MAX_N`, else Monte Carlo with the same draws as
  `scipy.stats.permutation_test(permutation_type="samples")` given the same seed (p = (hits + 1) / (B + 1));
- `paired_t_test`: `scipy.stats.ttest_rel`;
- `wilcoxon_signed_rank`: `scipy.stats.wilcoxon` with its defaults (zeros dropped, no continuity correction,
  exact distribution for n <= 50 without ties or zeros, exact sign-flip enumeration for n <= 13 otherwise, normal
  approximation with tie correction beyond);
- `holm`: Holm's step-down adjustment of a family of p-values.

Degenerate data (every difference zero) has no evidence of a difference: p-values are 1.0 there, where scipy would
return NaN.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 0
EXACT_MAX_N = 20  # 2^20 sign assignments, enumerated in chunks
_BATCH_CELLS = 4_000_000  # resamples x queries held in memory at once
_EPS100 = np.finfo(np.float64).eps * 100


@dataclass(frozen=True)
class TestResult:
    statistic: float
    pvalue: float
    method: str  # how the p-value was obtained ("exact", "monte-carlo", "t", "normal", ...)


@dataclass(frozen=True)
class PairedData:
    """Per-query values of two systems on the same queries, in query-id order."""

    query_ids: tuple[str, ...]
    baseline: np.ndarray
    candidate: np.ndarray

    @property
    def diffs(self) -> np.ndarray:
        return self.candidate - self.baseline

    def __len__(self) -> int:
        return len(self.query_ids)


def paired_values(baseline: Mapping[str, float], candidate: Mapping[str, float], what: str = "") -> PairedData:
    """Pair two per-query result dicts by query id. Different or empty query sets are an error: a comparison of
    unpaired queries would be silently wrong."""
    where = f" ({what})" if what else ""
    if not baseline or not candidate:
        raise ValueError(f"nothing to compare{where}: the baseline has {len(baseline)} queries and the candidate "
                         f"{len(candidate)}; an empty golden set cannot be compared")
    only_b = sorted(set(baseline) - set(candidate))
    only_c = sorted(set(candidate) - set(baseline))
    if only_b or only_c:
        raise ValueError(f"the two systems were evaluated on different queries{where}: {len(only_b)} only in the "
                         f"baseline (first: {only_b[:3]}), {len(only_c)} only in the candidate (first: {only_c[:3]}); "
                         f"evaluate both on the same golden set")
    qids = tuple(sorted(baseline))
    b = np.array([baseline[q] for q in qids], dtype=np.float64)
    c = np.array([candidate[q] for q in qids], dtype=np.float64)
    if not (np.isfinite(b).all() and np.isfinite(c).all()):
        raise ValueError(f"per-query values must be finite numbers{where}")
    return PairedData(qids, b, c)


def _as_diffs(diffs: Sequence[float] | np.ndarray) -> np.ndarray:
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 1 or len(d) < 2:
        raise ValueError(f"need a 1-D array of at least 2 paired differences, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("paired differences must be finite")
    return d


def _check_resamples(n_resamples: int) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples <= 0:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    return int(n_resamples)


# ------------------------------------------------------------------------------------------------ bootstrap
def paired_bootstrap_ci(diffs, *, confidence: float = 0.95, n_resamples: int = DEFAULT_RESAMPLES,
                        seed: int | None = DEFAULT_SEED) -> tuple[float, float]:
    """Two-sided percentile bootstrap interval of mean(d): resample queries with replacement."""
    d = _as_diffs(diffs)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    B, n = _check_resamples(n_resamples), len(d)
    rng = np.random.default_rng(seed)
    rows = max(1, _BATCH_CELLS // n)
    # Row batches draw the same stream as one (B, n) draw, so results do not depend on the batch size.
    means = np.concatenate([d[rng.integers(0, n, (min(rows, B - k), n))].mean(axis=1) for k in range(0, B, rows)])
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


# ------------------------------------------------------------------------------------------ randomisation
def _two_sided_p(null: np.ndarray, observed: float, tolerance: float, adjustment: int) -> float:
    """2 x the smaller tail share, counting values within `tolerance` of the observed one as ties."""
    less = (np.count_nonzero(null <= observed + tolerance) + adjustment) / (len(null) + adjustment)
    greater = (np.count_nonzero(null >= observed - tolerance) + adjustment) / (len(null) + adjustment)
    return float(min(1.0, 2 * min(less, greater)))


def _all_sign_matrices(n: int, chunk: int = 1 << 16):
    """Every sign vector in {+1, -1}^n, as (rows, n) float chunks (bit j of the row number flips query j)."""
    bits = np.arange(n, dtype=np.int64)
    for start in range(0, 1 << n, chunk):
        rows = np.arange(start, min(start + chunk, 1 << n), dtype=np.int64)
        yield 1.0 - 2.0 * ((rows[:, None] >> bits) & 1)


def _random_sign_matrices(n: int, n_resamples: int, rng: np.random.Generator):
    """Random sign vectors, drawn as scipy's `permutation_test(permutation_type="samples")` draws them: each query's
    pair (d, -d) is shuffled; position 0 after the shuffle is the value used."""
    rows = max(1, _BATCH_CELLS // (2 * n))
    base = np.tile(np.arange(2, dtype=np.int8), (min(rows, n_resamples), n, 1))
    for k in range(0, n_resamples, rows):
        take = min(rows, n_resamples - k)
        yield 1.0 - 2.0 * rng.permuted(base, axis=-1)[:take, :, 0]


def sign_flip_test(diffs, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int | None = DEFAULT_SEED,
                   exact_max_n: int = EXACT_MAX_N) -> TestResult:
    """Paired randomisation test of mean(d) = 0, two-sided."""
    d = _as_diffs(diffs)
    observed = float(d.mean())
    if not d.any():
        return TestResult(0.0, 1.0, "degenerate")
    # Null means equal to the observed one up to rounding count as ties (scipy: 100 eps relative to the observed).
    tolerance = _EPS100 * max(abs(observed), float(np.abs(d).max()))
    if len(d) <= exact_max_n:
        null = np.concatenate([np.mean(s * d, axis=-1) for s in _all_sign_matrices(len(d))])
        return TestResult(observed, _two_sided_p(null, observed, tolerance, 0), "exact")
    rng = np.random.default_rng(seed)
    B = _check_resamples(n_resamples)
    null = np.concatenate([np.mean(s * d, axis=-1) for s in _random_sign_matrices(len(d), B, rng)])
    return TestResult(observed, _two_sided_p(null, observed, tolerance, 1), "monte-carlo")


# ------------------------------------------------------------------------------------------------- t-test
def paired_t_test(diffs) -> TestResult:
    """Student's paired t-test of mean(d) = 0, two-sided (t = mean / (sd / sqrt(n)), n - 1 degrees of freedom)."""
    d = _as_diffs(diffs)
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        mean = float(d.mean())
        return TestResult(0.0 if mean == 0 else math.copysign(math.inf, mean), 1.0 if mean == 0 else 0.0,
                          "degenerate")
    t = float(d.mean() / (sd / math.sqrt(len(d))))
    return TestResult(t, float(2 * sps.t.sf(abs(t), len(d) - 1)), "t")


# ------------------------------------------------------------------------------------------------ Wilcoxon
@dataclass(frozen=True)
class _SignedRanks:
    r_plus: float
    r_minus: float
    ranks: np.ndarray  # ranks of |d| over the non-zero differences (average ranks for ties)
    tie_sizes: np.ndarray


def _signed_ranks(d: np.ndarray) -> _SignedRanks:
    nz = d[d != 0]
    ranks = sps.rankdata(np.abs(nz))  # average ranks for tied magnitudes
    _, tie_sizes = np.unique(np.abs(nz), return_counts=True)
    return _SignedRanks(float(ranks[nz > 0].sum()), float(ranks[nz < 0].sum()), ranks, tie_sizes)


def _signed_rank_counts(n: int) -> np.ndarray:
    """counts[w] = number of subsets of {1..n} summing to w: the exact null distribution of W+ (times 2^n)."""
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=np.float64)
    counts[0] = 1
    for r in range(1, n + 1):
        counts[r:] = counts[r:] + counts[:-r].copy()
    return counts


def wilcoxon_signed_rank(diffs) -> TestResult:
    """Wilcoxon signed-rank test of a zero median difference, two-sided; statistic min(W+, W-)."""
    d = _as_diffs(diffs)
    sr = _signed_ranks(d)
    count = len(sr.ranks)
    statistic = min(sr.r_plus, sr.r_minus)
    if count == 0:
        return TestResult(0.0, 1.0, "degenerate")
    has_ties, has_zeros = bool((sr.tie_sizes > 1).any()), count < len(d)
    if len(d) <= 50 and not (has_ties or has_zeros):
        pmf = _signed_rank_counts(count) / 2.0 ** count
        cdf = pmf[: int(math.ceil(sr.r_plus)) + 1].sum()
        sf = pmf[int(math.floor(sr.r_plus)):].sum()
        return TestResult(statistic, float(min(1.0, 2 * min(sf, cdf))), "exact")
    if len(d) <= 13:
        # Exact sign-flip distribution of W+ over the ranks actually observed (zeros carry no sign).
        null = np.concatenate([((s + 1) / 2) @ sr.ranks for s in _all_sign_matrices(count)])
        return TestResult(statistic, _two_sided_p(null, sr.r_plus, _EPS100 * sr.r_plus, 0), "exact-permutation")
    mean = count * (count + 1) / 4
    var = (count * (count + 1) * (2 * count + 1) - (sr.tie_sizes ** 3 - sr.tie_sizes).sum() / 2) / 24
    z = (sr.r_plus - mean) / math.sqrt(var)
    return TestResult(statistic, float(min(1.0, 2 * sps.norm.sf(abs(z)))), "normal")


# ------------------------------------------------------------------------------------------- multiplicity
def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (same order as given): the i-th smallest is max over j <= i of (m - j + 1) p_(j),
    capped at 1. Rejecting where adjusted p < alpha controls the family-wise error rate at alpha."""
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or ((p < 0) | (p > 1) | ~np.isfinite(p)).any():
        raise ValueError(f"p-values must be a 1-D list of numbers in [0, 1], got {list(pvalues)!r}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out.tolist()


# ------------------------------------------------------------------------------------------------ together
@dataclass(frozen=True)
class PairedComparison:
    """One metric, two systems, the same queries: means, the mean difference with its CI, and three tests."""

    n: int
    baseline_mean: float
    candidate_mean: float
    ci_low: float
    ci_high: float
    confidence: float
    randomisation: TestResult
    t_test: TestResult
    wilcoxon: TestResult
    sd_diff: float

    @property
    def mean_diff(self) -> float:
        return self.candidate_mean - self.baseline_mean


def compare_paired(data: PairedData, *, confidence: float = 0.95, n_resamples: int = DEFAULT_RESAMPLES,
                   seed: int | None = DEFAULT_SEED) -> PairedComparison:
    if len(data) < 2:
        raise ValueError(f"a paired comparison needs at least 2 queries, got {len(data)}")
    d = data.diffs
    low, high = paired_bootstrap_ci(d, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return PairedComparison(
        n=len(d), baseline_mean=float(data.baseline.mean()), candidate_mean=float(data.candidate.mean()),
        ci_low=low, ci_high=high, confidence=confidence,
        randomisation=sign_flip_test(d, n_resamples=n_resamples, seed=seed),
        t_test=paired_t_test(d), wilcoxon=wilcoxon_signed_rank(d), sd_diff=float(d.std(ddof=1)),
    )
