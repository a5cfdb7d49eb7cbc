"""Scale perturbations so that each child's divergence hits a target (SM-R and "SM-G-…+R").

The children's searches run in lockstep, so every round evaluates the divergences of all
children still searching in one batch (one child is a batch of one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MAX_CALLS = 60
"""Divergence evaluations per child at most."""


@dataclass(frozen=True)
class LineSearchResult:
    scale: float
    evaluations: int
    reachable: bool


def scales_to_divergence(
    divergences_at: Callable[[np.ndarray, np.ndarray], np.ndarray],
    count: int,
    target: float,
    *,
    rtol: float = 1e-4,
) -> list[LineSearchResult]:
    """For each of `count` children, t > 0 with D(t) = target, where
    `divergences_at(children, scales)` gives the divergences of those children at those
    scales (one batched call per round for every child still searching).

    D(0) = 0, so a root is bracketed by doubling t from 1 until D(t) ≥ target; a non-finite
    D (overflowing outputs) counts as too far and is bisected away. Then the Illinois variant
    of regula falsi narrows [low, high] until it is within `rtol` of t. If D never reaches
    the target (saturated outputs), the largest t tried is returned with `reachable=False`.
    """
    low, high = np.zeros(count), np.ones(count)
    r_low = np.full(count, -target)  # D(0) - target
    calls = np.zeros(count, dtype=np.int64)

    def residuals(children: np.ndarray, scales: np.ndarray) -> np.ndarray:
        calls[children] += 1
        values = np.asarray(divergences_at(children, scales), dtype=np.float64)
        return np.where(np.isfinite(values), values, np.inf) - target

    everyone = np.arange(count)
    r_high = residuals(everyone, high)
    while (short := everyone[(r_high < 0) & (calls < MAX_CALLS)]).size:
        low[short], r_low[short] = high[short], r_high[short]
        high[short] *= 2.0
        r_high[short] = residuals(short, high[short])
    while (far := everyone[np.isinf(r_high) & (calls < MAX_CALLS)]).size:
        middle = 0.5 * (low[far] + high[far])
        r_middle = residuals(far, middle)
        below = r_middle < 0
        low[far[below]], r_low[far[below]] = middle[below], r_middle[below]
        high[far[~below]], r_high[far[~below]] = middle[~below], r_middle[~below]
    unreachable = (r_high < 0) | np.isinf(r_high)
    scale = np.where(r_high == 0, high, np.nan)
    searching = ~unreachable & (r_high != 0)
    side = np.zeros(count, dtype=np.int64)  # which end moved last (Illinois halving)
    while (active := everyone[searching & (calls < MAX_CALLS)]).size:
        lo, hi, f_lo, f_hi = low[active], high[active], r_low[active], r_high[active]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        t = np.where((t > lo) & (t < hi), t, 0.5 * (lo + hi))
        r_t = residuals(active, t)
        done = (np.abs(r_t) <= rtol * target) | (hi - lo <= rtol * t)
        scale[active[done]] = t[done]
        searching[active[done]] = False
        # The new point replaces the end of its sign; when the same end moves twice in a
        # row, the other end's residual is halved (Illinois), so that both ends converge.
        up, down = ~done & (r_t < 0), ~done & (r_t >= 0)
        raised, lowered = active[up], active[down]
        r_high[raised] = np.where(side[raised] == -1, r_high[raised] / 2, r_high[raised])
        r_low[lowered] = np.where(side[lowered] == 1, r_low[lowered] / 2, r_low[lowered])
        low[raised], r_low[raised], side[raised] = t[up], r_t[up], -1
        high[lowered], r_high[lowered], side[lowered] = t[down], r_t[down], 1
    # Out of calls while narrowing: the bracket's midpoint.
    scale = np.where(searching, 0.5 * (low + high), scale)
    scale = np.where(unreachable, np.where(np.isinf(r_high), low, high), scale)
    return [LineSearchResult(float(s), int(c), not bool(u))
            for s, c, u in zip(scale, calls, unreachable, strict=True)]
