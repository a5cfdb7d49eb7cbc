"""Scale a perturbation so that the child's divergence hits a target (SM-R and "SM-G-…+R")."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from scipy.optimize import brentq

MAX_CALLS = 60


@dataclass(frozen=True)
class LineSearchResult:
    scale: float
    evaluations: int
    reachable: bool


def scale_to_divergence(
    divergence_at: Callable[[float], float], target: float, *, rtol: float = 1e-4
) -> LineSearchResult:
    """Find t > 0 with divergence_at(t) = target by Brent's method.

    D(0) = 0, so the root is bracketed by growing t from 1 until D(t) ≥ target (or shrinking
    the bracket implicitly: Brent works on [0, t]). If D never reaches the target (saturated
    outputs), the largest t tried is returned with `reachable=False`.
    """
    calls = 0

    def residual(t: float) -> float:
        nonlocal calls
        calls += 1
        value = divergence_at(t)
        # A non-finite divergence (overflowing outputs) counts as "too far".
        return (value if math.isfinite(value) else math.inf) - target

    low, high = 0.0, 1.0
    r_high = residual(high)
    while r_high < 0 and calls < MAX_CALLS:
        low, high = high, high * 2.0
        r_high = residual(high)
    while math.isinf(r_high) and calls < MAX_CALLS:  # bisect until the bracket end is finite
        middle = 0.5 * (low + high)
        r_middle = residual(middle)
        if r_middle < 0:
            low = middle
        else:
            high, r_high = middle, r_middle
    if r_high < 0 or math.isinf(r_high):
        return LineSearchResult(low if math.isinf(r_high) else high, calls, reachable=False)
    if r_high == 0:
        return LineSearchResult(high, calls, reachable=True)
    scale = brentq(residual, low, high, xtol=1e-12 * high, rtol=rtol, maxiter=100)
    return LineSearchResult(float(scale), calls, reachable=True)
