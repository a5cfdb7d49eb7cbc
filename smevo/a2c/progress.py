"""The console progress of an A2C run: one plain line every few seconds, with the ETA."""

from __future__ import annotations

import math
import time
from collections import deque
from typing import TextIO

from smevo.a2c.settings import A2CBudget
from smevo.console import duration_text

__all__ = ["Progress"]

RECENT = 10
"""Updates whose mean reward and speed the line shows (the speed behind the ETA: recent, so
that the cheap burn-in updates do not make it optimistic)."""


class Progress:
    """Writes ``update U | episodes E/N | reward R (last 10: M) | X ep/s | ETA h:mm:ss`` to
    `stream`: the first update, then at most one line every `interval` seconds. The ETA is
    that of whichever budget ends first, at the speed of the last `RECENT` updates."""

    def __init__(self, budget: A2CBudget, stream: TextIO, interval: float = 2.0) -> None:
        self.budget, self.stream, self.interval = budget, stream, interval
        self.last_write = -math.inf
        self.rewards: deque[float] = deque(maxlen=RECENT)
        self.speeds: deque[float] = deque(maxlen=RECENT)

    def __call__(self, update: int, metrics: dict[str, float]) -> None:
        self.rewards.append(metrics["a2c/reward"])
        self.speeds.append(metrics["perf/episodes_per_s"])
        now = time.monotonic()
        if now - self.last_write < self.interval:
            return
        self.last_write = now
        episodes, total = metrics["progress/episodes"], self.budget.episodes
        speed = sum(self.speeds) / len(self.speeds)
        parts = [f"update {update}",
                 f"episodes {int(episodes):,}" + (f"/{total:,}" if total else ""),
                 f"reward {metrics['a2c/reward']:.4g} (last {len(self.rewards)}: "
                 f"{sum(self.rewards) / len(self.rewards):.4g})",
                 f"{speed:.0f} ep/s"]
        left = []
        if total:
            left.append(max(0, total - episodes) / speed)
        if self.budget.wall_time is not None:
            left.append(max(0.0, self.budget.wall_time - metrics["perf/wall_time"]))
        if left:
            parts.append(f"ETA {duration_text(min(left))}")
        self.stream.write(" | ".join(parts) + "\n")
        self.stream.flush()
