"""The console side of a run: its progress line and the one spelling of its numbers.

One vocabulary for "best" in every output (console, `smevo` summaries, `smevo eval`):
the *population best* is a generation's highest training fitness (``fitness/best``; a few
episodes, so luck inflates it); the *champion* is the best individual validated on fresh
episodes so far, what ``best.pt`` holds (``fitness/champion``). `champion_text` and
`population_best_text` are the one spelling of each, `duration_text` of a time span.
`ConsoleSink` is the run logger's console (`smevo.logging.RunLogger`).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Mapping
from typing import Any, TextIO

__all__ = [
    "BUDGET_METRICS",
    "ConsoleSink",
    "champion_text",
    "duration_text",
    "population_best_text",
]

Metrics = Mapping[str, float]


def _number(value: float | None) -> str:
    """A fitness-like number in a few characters: 195.00, -1.234e-04, nan."""
    if value is None:
        return "-"
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value != 0 and not 1e-2 <= abs(value) < 1e6:
        return f"{value:.3e}"
    return f"{value:.2f}"


def champion_text(fitness: float | None, generation: int | None = None) -> str:
    """``champion 195.60 (validated, generation 12)``: how every output names the champion.

    The champion is the best individual validated on fresh episodes so far, what
    ``best.pt`` holds and TensorBoard's ``fitness/champion`` tracks.
    """
    where = "validated" if generation is None else f"validated, generation {generation}"
    return f"champion {_number(fitness)} ({where})"


def population_best_text(fitness: float | None, generation: int | None = None) -> str:
    """``population best 282.66 (generation 14)``: the highest training fitness in a
    population (TensorBoard's ``fitness/best``), measured on a few episodes and so often
    luckier than the champion's validated score."""
    where = "" if generation is None else f" (generation {generation})"
    return f"population best {_number(fitness)}{where}"


def duration_text(seconds: float) -> str:
    """h:mm:ss, or m:ss under an hour."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


BUDGET_METRICS: dict[str, str] = {
    "generations": "progress/generation",
    "evaluations": "progress/evaluations",
    "env_steps": "progress/env_steps",
    "wall_time": "perf/wall_time",
}
"""Each budget of ``config.budget`` and the metric that counts what it limits."""

BAR_WIDTH = 10
"""Characters inside the progress bar's brackets."""


def _columns(stream: TextIO) -> int:
    """The width of the terminal `stream` writes to: ``$COLUMNS`` when set (as for
    `shutil.get_terminal_size`), else the stream's own terminal (stdout may be redirected
    while progress goes to stderr), else what `shutil.get_terminal_size` says."""
    if not os.environ.get("COLUMNS"):
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            pass
    return shutil.get_terminal_size().columns


def _fit(parts: list[tuple[int, str, str]], width: int | None) -> str:
    """`parts` (rank, separator, text) joined in order, dropping the lowest-ranked part
    first until the line is at most `width` characters (no limit when None)."""

    def join(kept: list[tuple[int, str, str]]) -> str:
        return "".join(sep + text for _, sep, text in kept)[len(kept[0][1]):]

    kept = list(parts)
    while width is not None and len(join(kept)) > width and len(kept) > 1:
        kept.remove(min(kept, key=lambda part: part[0]))
    line = join(kept)
    return line if width is None else line[:width]


class ConsoleSink:
    """Progress on a text stream: generation, population best and mean, champion, evals/s,
    and the ETA of whichever budget (`budgets`, as in ``config.budget``) ends the run first.

    On a terminal one line is redrawn in place with ``\\r`` (at most every `tty_interval`
    seconds), with a bar, fitted to the terminal's width by dropping the least important
    fields first (evals/s, mean, bar, champion, population best; the generation and the ETA
    stay). Elsewhere (CI logs, files) plain lines are written: the first generation, then at
    most one every `line_interval` seconds, and the last generation on close, so a long run
    leaves a short log. `close` ends with a summary line. `start` holds the ``progress/*``
    counters a resumed run starts from, so that the rates behind the ETA count this session's
    work only.
    """

    def __init__(
        self,
        stream: TextIO,
        budgets: Mapping[str, float | None] | None = None,
        start: Mapping[str, float] | None = None,
        *,
        line_interval: float = 2.0,
        tty_interval: float = 0.1,
    ) -> None:
        self.stream = stream
        self.limits = {
            tag: float(limit)
            for name, tag in BUDGET_METRICS.items()
            if (limit := (budgets or {}).get(name)) is not None and limit > 0
        }
        self.start = dict(start or {})
        self.start_generation = int(self.start.get("progress/generation", 0))
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.interval = tty_interval if self.tty else line_interval
        self.started = time.monotonic()
        self.last_write = -math.inf
        self.pending: str | None = None  # the newest line, when not yet shown
        self.shown: str | None = None  # the line on screen (terminal mode)
        self.generation = self.start_generation
        self.evaluations: float | None = None
        self.best: tuple[float, int] | None = None  # population best of the run, generation
        self.champion: tuple[float, int] | None = None  # champion's fitness, generation

    def track(self, generation: int, metrics: Mapping[str, Any]) -> None:
        """Note a generation's evaluations, population best and champion for the summary
        (also fed the kept lines of a resumed run)."""
        evaluations = metrics.get("progress/evaluations")
        if evaluations is not None:
            self.evaluations = evaluations
        for attribute, tag in (("best", "fitness/best"), ("champion", "fitness/champion")):
            value, record = metrics.get(tag), getattr(self, attribute)
            if value is not None and math.isfinite(value) and (record is None or value > record[0]):
                setattr(self, attribute, (float(value), generation))

    def _budget(self, counters: Mapping[str, float]) -> tuple[float | None, float | None]:
        """(fraction done, seconds left) of the budget that ends the run first; the
        fraction is the largest one while no rate is known yet, seconds None then."""
        elapsed = time.monotonic() - self.started
        estimates: list[tuple[float, float]] = []
        for tag, limit in self.limits.items():
            used = counters.get(tag)
            if used is None or not math.isfinite(used):
                continue
            if tag == BUDGET_METRICS["wall_time"]:
                left = limit - used
            else:
                done = used - self.start.get(tag, 0)
                left = elapsed / done * (limit - used) if done > 0 else math.inf
            estimates.append((max(0.0, left), min(1.0, used / limit)))
        if not estimates:
            return None, None
        left, fraction = min(estimates, key=lambda e: (e[0], -e[1]))
        if math.isinf(left):
            return max(fraction for _, fraction in estimates), None
        return fraction, left

    def _line(
        self, generation: int, metrics: Metrics, budget: tuple[float | None, float | None]
    ) -> str:
        fraction, left = budget
        total = self.limits.get(BUDGET_METRICS["generations"])
        parts = [(6, "", f"gen {generation}" + (f"/{int(total)}" if total else ""))]
        if self.tty and fraction is not None:
            filled = int(BAR_WIDTH * fraction)
            parts.append((3, " ", "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]"))
        parts += [
            (5, " | ", f"pop best {_number(metrics.get('fitness/best'))}"),
            (2, " | ", f"mean {_number(metrics.get('fitness/mean'))}"),
        ]
        if "fitness/champion" in metrics:
            parts.append((4, " | ", f"champion {_number(metrics['fitness/champion'])}"))
        rate = metrics.get("perf/evals_per_s")
        if rate is not None and math.isfinite(rate):
            parts.append((1, " | ", f"{rate:,.0f} evals/s"))
        if left is not None and fraction is not None and fraction < 1:
            parts.append((7, " | ", f"ETA {duration_text(left)}"))
        # On a terminal, the longest line that does not wrap; elsewhere no limit.
        return _fit(parts, _columns(self.stream) - 1 if self.tty else None)

    def _emit(self, line: str) -> None:
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
            self.shown = line
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.pending = None
        self.last_write = time.monotonic()

    def write(self, generation: int, metrics: Metrics) -> None:
        """Show one generation's progress (throttled; see the class docstring)."""
        self.generation = generation
        self.track(generation, metrics)
        budget = self._budget({**metrics, BUDGET_METRICS["generations"]: generation})
        line = self._line(generation, metrics, budget)
        if budget[0] == 1 or time.monotonic() - self.last_write >= self.interval:
            self._emit(line)
        else:
            self.pending = line

    def event(self, text: str) -> None:
        """A line of its own (e.g. 'solved at generation 12'), above the progress line."""
        if self.tty and self.shown is not None:
            self.stream.write("\r\x1b[K" + text + "\n")
            self._emit(self.shown)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Show the last generation if it was throttled away, then a summary line."""
        if self.pending is not None:
            self._emit(self.pending)
        if self.tty and self.shown is not None:
            self.stream.write("\n")
        done = self.generation - self.start_generation
        summary = f"done: {done} generations in {duration_text(time.monotonic() - self.started)}"
        if self.evaluations is not None:
            summary += f", {int(self.evaluations):,} evaluations"
        if self.champion is not None:
            summary += f"; {champion_text(*self.champion)}"
        if self.best is not None:
            summary += f"; {population_best_text(*self.best)}"
        self.stream.write(summary + "\n")
        self.stream.flush()
