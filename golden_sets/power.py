"""Statistical power of a golden set: the smallest difference a paired comparison on it can reliably detect.

For n paired per-query differences with standard deviation sd, a two-sided test at level alpha detects a true mean
difference delta with probability `power` when

    MDE = (z_{1 - alpha/2} + z_{power}) * sd / sqrt(n)          (normal approximation of the paired t-test)

`sd` is best taken from the paired differences of an actual comparison (`mde_from_diffs`). Before a candidate
exists, `mde_from_scores` estimates it from one system's per-query metric values and an assumed correlation rho
between the two systems' values on the same query: sd(d) = sd(x) * sqrt(2 (1 - rho)).
A golden set whose MDE exceeds `WARN_ABOVE` (2 points) is too small to detect a 2-point regression.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

ALPHA = 0.05
POWER = 0.80
WARN_ABOVE = 0.02  # 2 points of a metric in [0, 1]
ASSUMED_CORRELATION = 0.5


def _check_probability(value: float, what: str) -> float:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{what} must be between 0 and 1, got {value}")
    return float(value)


def minimum_detectable_difference(sd_diff: float, n: int, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """(z_{1-alpha/2} + z_power) * sd / sqrt(n)."""
    if n < 2:
        raise ValueError(f"need at least 2 queries to estimate power, got {n}")
    if not sd_diff >= 0 or not math.isfinite(sd_diff):
        raise ValueError(f"sd of the differences must be a finite number >= 0, got {sd_diff}")
    z = norm.ppf(1 - _check_probability(alpha, "alpha") / 2) + norm.ppf(_check_probability(power, "power"))
    return float(z * sd_diff / math.sqrt(n))


def queries_needed(sd_diff: float, difference: float, *, alpha: float = ALPHA, power: float = POWER) -> int:
    """How many queries make `difference` the minimum detectable difference."""
    if difference <= 0:
        raise ValueError(f"difference must be positive, got {difference}")
    z = norm.ppf(1 - _check_probability(alpha, "alpha") / 2) + norm.ppf(_check_probability(power, "power"))
    return max(2, math.ceil((z * sd_diff / difference) ** 2))


def power_at(difference: float, sd_diff: float, n: int, *, alpha: float = ALPHA) -> float:
    """Probability that the two-sided test detects a true mean difference `difference` (normal approximation)."""
    if sd_diff == 0:
        return 1.0 if difference != 0 else alpha
    shift = abs(difference) * math.sqrt(n) / sd_diff
    z = norm.ppf(1 - _check_probability(alpha, "alpha") / 2)
    return float(norm.sf(z - shift) + norm.cdf(-z - shift))


@dataclass(frozen=True)
class PowerEstimate:
    golden_set: str
    metric: str
    n: int
    sd_diff: float
    mde: float
    source: str  # "paired differences" or "one system, assumed correlation 0.5"
    alpha: float = ALPHA
    power: float = POWER

    @property
    def too_small(self) -> bool:
        return self.mde > WARN_ABOVE

    @property
    def warning(self) -> str | None:
        if not self.too_small:
            return None
        need = queries_needed(self.sd_diff, WARN_ABOVE, alpha=self.alpha, power=self.power)
        return (f"{self.golden_set} ({self.metric}): {self.n} queries detect only differences of "
                f"{self.mde * 100:.1f} points at {1 - self.alpha:.0%} confidence and {self.power:.0%} power; about "
                f"{need} queries are needed to detect 2 points")

    def to_dict(self) -> dict:
        return {"golden_set": self.golden_set, "metric": self.metric, "n": self.n, "sd_diff": self.sd_diff,
                "mde": self.mde, "alpha": self.alpha, "power": self.power, "source": self.source,
                "too_small": self.too_small, "warning": self.warning}


def mde_from_diffs(diffs, *, golden_set: str = "", metric: str = "", alpha: float = ALPHA,
                   power: float = POWER) -> PowerEstimate:
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 1 or len(d) < 2:
        raise ValueError(f"need at least 2 paired differences to estimate power, got {d.size}")
    sd = float(d.std(ddof=1))
    return PowerEstimate(golden_set, metric, len(d), sd, minimum_detectable_difference(sd, len(d), alpha=alpha,
                         power=power), "paired differences", alpha, power)


def mde_from_scores(scores, *, correlation: float = ASSUMED_CORRELATION, golden_set: str = "", metric: str = "",
                    alpha: float = ALPHA, power: float = POWER) -> PowerEstimate:
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 1 or len(x) < 2:
        raise ValueError(f"need at least 2 per-query values to estimate power, got {x.size}")
    if not -1.0 <= correlation < 1.0:
        raise ValueError(f"correlation must be in [-1, 1), got {correlation}")
    sd = float(x.std(ddof=1) * math.sqrt(2 * (1 - correlation)))
    return PowerEstimate(golden_set, metric, len(x), sd, minimum_detectable_difference(sd, len(x), alpha=alpha,
                         power=power), f"one system, assumed correlation {correlation:g}", alpha, power)
