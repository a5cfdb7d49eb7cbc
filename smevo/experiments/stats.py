"""Statistics for comparing operators across seeds: solve rates, medians, a rank test.

Small, dependency-light helpers (NumPy and SciPy) used by the experiments' report and
usable on any set of runs: a solve rate with its 95% Wilson score interval, the median and
interquartile range of a sample, and a two-sided Mann-Whitney U test with its common-language
effect size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

__all__ = ["Proportion", "RankTest", "Spread", "median_iqr", "rank_test", "solve_rate",
           "wilson_interval"]


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion `successes / trials`.

    Unlike the normal approximation it stays inside [0, 1] and is informative at 0/n and n/n,
    which is where solve rates over a few seeds usually are. Raises `ValueError` for
    `trials < 1` or `successes` outside [0, trials].
    """
    if trials < 1:
        raise ValueError(f"wilson_interval needs at least one trial, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, {trials}], got {successes}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2))
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Proportion:
    """`successes` of `trials`, with the 95% Wilson interval [`low`, `high`]."""

    successes: int
    trials: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        """The fraction `successes / trials`."""
        return self.successes / self.trials

    def __str__(self) -> str:
        return f"{self.successes}/{self.trials} [{self.low:.2f}, {self.high:.2f}]"


def solve_rate(solved: Sequence[bool]) -> Proportion:
    """The fraction of runs that solved the task, with its 95% Wilson interval."""
    successes = sum(bool(s) for s in solved)
    return Proportion(successes, len(solved), *wilson_interval(successes, len(solved)))


@dataclass(frozen=True)
class Spread:
    """Median and interquartile range (25th and 75th percentiles) of `n` values."""

    median: float
    q25: float
    q75: float
    n: int


def median_iqr(values: Sequence[float]) -> Spread | None:
    """Median and IQR of `values` (linear interpolation between order statistics); None if
    there are none."""
    if len(values) == 0:
        return None
    q25, median, q75 = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
    return Spread(float(median), float(q25), float(q75), len(values))


@dataclass(frozen=True)
class RankTest:
    """A two-sided Mann-Whitney U test of samples a and b.

    `u` is U for sample a; `effect` = U / (n_a·n_b) is the probability that a value drawn from
    a exceeds one drawn from b (ties count half): 0.5 means no tendency, above 0.5 that a
    tends to be larger.
    """

    u: float
    p_value: float
    effect: float

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether p < `alpha`."""
        return self.p_value < alpha


def rank_test(a: Sequence[float], b: Sequence[float]) -> RankTest | None:
    """Two-sided Mann-Whitney U test (`scipy.stats.mannwhitneyu`) of a against b; None when
    either sample is empty."""
    if len(a) == 0 or len(b) == 0:
        return None
    result = scipy_stats.mannwhitneyu(a, b, alternative="two-sided")
    u = float(result.statistic)
    return RankTest(u, float(result.pvalue), u / (len(a) * len(b)))
