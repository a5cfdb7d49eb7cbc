"""Run logging: metrics flow one way, from the trainer's ``step()`` to three sinks.

The trainer hands `RunLogger.log` a generation number, a flat ``dict[str, float]`` of scalars
with grouped tags (``fitness/best``, ``progress/evaluations``, ``perf/evals_per_s``,
``mutation/divergence_mean``, ...) and optionally histograms (``dict[str, np.ndarray]``).
The logger never computes metrics of its own; it fans them out (EvoTorch's ``log_hook``):

- `TensorBoardSink`: every scalar with ``add_scalar`` and every histogram with
  ``add_histogram``, all on one x-axis, the total evaluations so far
  (``metrics["progress/evaluations"]``; the generation when absent), as CleanRL keeps one
  ``global_step``. The config goes in as text, the hyperparameters that shape the search as
  HParams (in the run's own event file).
- `JsonlSink`: ``<run>/metrics.jsonl``, one JSON object per generation, flushed per line.
- `ConsoleSink`: a live progress line on a terminal; a few plain lines in CI logs.

One vocabulary for "best" in every output (console, `smevo` summaries, `smevo eval`):
the *population best* is a generation's highest training fitness (``fitness/best``; a few
episodes, so luck inflates it); the *champion* is the best individual validated on fresh
episodes so far, what ``best.pt`` holds (``fitness/champion``). `champion_text` and
`population_best_text` are the one spelling of each.

Non-finite values never make a sink raise. TensorBoard stores NaN/inf as they are;
``metrics.jsonl`` writes them as ``null`` so every line is strict JSON that any parser (jq,
pandas) reads; histograms drop non-finite entries (numpy cannot bin them).

Resuming: `RunLogger(start_generation=g)` continues a run whose checkpoint is generation
``g``. Lines of ``metrics.jsonl`` for generations after ``g`` (and a line cut by the kill) are
removed first, so the resumed file equals an uninterrupted one, and TensorBoard purges events
logged after ``g`` (``SummaryWriter(purge_step=...)``) so no curve doubles back.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import numpy as np
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

__all__ = [
    "BUDGET_METRICS",
    "ConsoleSink",
    "JsonlSink",
    "RunLogger",
    "TensorBoardSink",
    "champion_text",
    "flatten_hparams",
    "population_best_text",
]

Metrics = Mapping[str, float]
Histograms = Mapping[str, np.ndarray]


def _x_step(generation: int, metrics: Metrics) -> int:
    """The shared TensorBoard x-axis: evaluations so far, or the generation if not reported."""
    value = metrics.get("progress/evaluations")
    if value is None or not math.isfinite(float(value)):
        return int(generation)
    return int(value)


def _scalar(key: str, value: Any) -> int | float:
    """A metric as a builtin number (ints stay ints); anything else is a programming error."""
    if isinstance(value, numbers.Integral):
        return int(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metric {key!r}: expected a number, got {value!r}") from None


def flatten_hparams(
    hparams: Mapping[str, Any], prefix: str = ""
) -> dict[str, bool | int | float | str]:
    """A nested config dict as flat dotted keys with values the HParams plugin accepts.

    Nested mappings become ``a.b`` keys; lists and other values become their JSON text;
    None values are left out (the HParams plugin has no null). ``add_hparams`` stores bools
    as the numbers 0 and 1.
    """
    flat: dict[str, bool | int | float | str] = {}
    for key, value in hparams.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_hparams(value, f"{name}."))
        elif value is None:
            continue
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


# --------------------------------------------------------------------------- TensorBoard


class TensorBoardSink:
    """Scalars, histograms, config text, events and HParams into TensorBoard event files.

    `purge_step`: on resume, TensorBoard hides events of earlier sessions with a step at or
    after it (the generations being redone).
    """

    def __init__(self, run_dir: Path, purge_step: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=purge_step, flush_secs=10)

    def write(self, step: int, metrics: Metrics, histograms: Histograms | None = None) -> None:
        """One generation's scalars and histograms at x = `step`."""
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, float(value), step)
        for tag, values in (histograms or {}).items():
            finite = np.asarray(values, dtype=np.float64).ravel()
            finite = finite[np.isfinite(finite)]
            if finite.size:
                self.writer.add_histogram(tag, finite, step)

    def log_config(self, text: str) -> None:
        """The run's config (YAML) as a code block under the ``config`` text tag."""
        self.writer.add_text("config", f"```yaml\n{text.rstrip()}\n```", 0)

    def log_event(self, text: str, step: int) -> None:
        """A notable moment (solved, resumed, budget reached) under the ``events`` text tag."""
        self.writer.add_text("events", text, step)

    def log_hparams(self, hparams: Mapping[str, Any], metrics: Sequence[str]) -> None:
        """The run's hyperparameters for TensorBoard's HParams dashboard, naming the scalar
        tags (`metrics`) whose last values it shows beside them.

        The plugin's experiment and session-start summaries go into this run's own event
        file (``SummaryWriter.add_hparams`` would open another run for them and copy each
        metric into an ``hparams`` scalar section), so the dashboard reads the metrics from
        the curves themselves and the Scalars tab shows each curve once. No session-end
        summary: a run that is killed or resumed has not "succeeded".
        """
        experiment, session_start, _ = hparams_summaries(
            flatten_hparams(hparams), dict.fromkeys(metrics, 0.0)
        )
        for summary in (experiment, session_start):
            self.writer.file_writer.add_summary(summary, 0)

    def close(self) -> None:
        self.writer.close()


# --------------------------------------------------------------------------- metrics.jsonl


class JsonlSink:
    """``metrics.jsonl``: one JSON object per generation, ``{"generation": g, **metrics}``.

    Each line is flushed as written, so a crash loses at most the line being written.
    When the file exists, lines after `start_generation` and any unreadable tail (a line cut
    by a kill) are removed first; `records` holds the lines kept.
    """

    def __init__(self, path: Path, start_generation: int = 0) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = self._truncate(start_generation)
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def _truncate(self, start_generation: int) -> list[dict[str, Any]]:
        """Cut the file after the last valid line of a generation <= `start_generation`."""
        if not self.path.exists():
            return []
        kept: list[dict[str, Any]] = []
        offset = 0
        with open(self.path, "rb") as file:
            for line in file:
                try:
                    record = json.loads(line) if line.endswith(b"\n") else None
                except ValueError:
                    record = None
                generation = record.get("generation") if isinstance(record, dict) else None
                if not isinstance(generation, int) or generation > start_generation:
                    break
                kept.append(record)
                offset += len(line)
        if offset < self.path.stat().st_size:
            os.truncate(self.path, offset)
        return kept

    def write(self, generation: int, metrics: Metrics) -> None:
        """Append one line; non-finite numbers become null."""
        record: dict[str, Any] = {"generation": int(generation)}
        for key, value in metrics.items():
            number = _scalar(key, value)
            record[key] = number if math.isfinite(number) else None
        self.file.write(json.dumps(record, allow_nan=False) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


# --------------------------------------------------------------------------- console


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


def _duration(seconds: float) -> str:
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
            parts.append((7, " | ", f"ETA {_duration(left)}"))
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
        summary = f"done: {done} generations in {_duration(time.monotonic() - self.started)}"
        if self.evaluations is not None:
            summary += f", {int(self.evaluations):,} evaluations"
        if self.champion is not None:
            summary += f"; {champion_text(*self.champion)}"
        if self.best is not None:
            summary += f"; {population_best_text(*self.best)}"
        self.stream.write(summary + "\n")
        self.stream.flush()


# --------------------------------------------------------------------------- the logger


class RunLogger:
    """Fans each generation's metrics out to TensorBoard, ``metrics.jsonl`` and the console.

    `budgets`: the run's ``config.budget`` as a mapping (the console's bar and ETA follow
    whichever ends the run first). `quiet`: no console output at all. `start_generation`: the
    generation of the checkpoint a resumed run continues from (0 for a fresh run); the logs
    after it are dropped.
    Use as a context manager, or call `close`.
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        quiet: bool = False,
        budgets: Mapping[str, float | None] | None = None,
        stream: TextIO | None = None,
        start_generation: int = 0,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = JsonlSink(self.run_dir / "metrics.jsonl", start_generation)
        kept = self.jsonl.records
        self.step = _x_step(kept[-1]["generation"], kept[-1]) if kept else 0
        resumed = start_generation > 0 and bool(kept)
        self.tensorboard = TensorBoardSink(
            self.run_dir, purge_step=self.step + 1 if resumed else None
        )
        self.console = None if quiet else self._console(stream, budgets, start_generation, kept)
        self.closed = False

    @staticmethod
    def _console(
        stream: TextIO | None,
        budgets: Mapping[str, float | None] | None,
        start_generation: int,
        kept: list[dict[str, Any]],
    ) -> ConsoleSink:
        """The console, told where a resumed run starts and what its kept lines recorded."""
        start = {key: value for key, value in (kept[-1] if kept else {}).items()
                 if key.startswith("progress/") and value is not None}
        start[BUDGET_METRICS["generations"]] = start_generation
        console = ConsoleSink(stream or sys.stderr, budgets, start)
        for record in kept:
            console.track(record["generation"], record)
        return console

    def log(self, generation: int, metrics: Metrics, histograms: Histograms | None = None) -> None:
        """Record one generation: its scalar metrics and, optionally, histograms."""
        scalars = {key: _scalar(key, value) for key, value in metrics.items()}
        self.step = _x_step(generation, scalars)
        self.tensorboard.write(self.step, scalars, histograms)
        self.jsonl.write(generation, scalars)
        if self.console is not None:
            self.console.write(generation, scalars)

    def log_config(self, text: str) -> None:
        """The full resolved config (YAML text) into TensorBoard's text tab."""
        self.tensorboard.log_config(text)

    def log_hparams(self, hparams: Mapping[str, Any], metrics: Sequence[str]) -> None:
        """The run's hyperparameters for TensorBoard's HParams dashboard, which shows them
        beside the last values of the `metrics` tags (scalars this logger writes)."""
        self.tensorboard.log_hparams(hparams, metrics)

    def log_event(self, text: str) -> None:
        """A notable moment, at the current step in TensorBoard and as a console line."""
        self.tensorboard.log_event(text, self.step)
        if self.console is not None:
            self.console.event(text)

    def close(self) -> None:
        """Flush and close every sink; idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.console is not None:
                self.console.close()
        finally:
            self.tensorboard.close()
            self.jsonl.close()

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
