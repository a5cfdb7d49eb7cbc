"""Run logging: metrics flow one way, from the trainer's ``step()`` to three sinks.

The trainer hands `RunLogger.log` a generation number, a flat ``dict[str, float]`` of scalars
with grouped tags (``fitness/best``, ``progress/evaluations``, ``perf/evals_per_s``,
``mutation/divergence_mean``, ...) and optionally histograms (``dict[str, np.ndarray]``).
The logger never computes metrics of its own; it fans them out (EvoTorch's ``log_hook``):

- `TensorBoardSink`: every scalar with ``add_scalar`` and every histogram with
  ``add_histogram``, all on one x-axis, the total evaluations so far
  (``metrics["progress/evaluations"]``; the generation when absent), as CleanRL keeps one
  ``global_step``. The config goes in as text, the final hyperparameters as HParams.
- `JsonlSink`: ``<run>/metrics.jsonl``, one JSON object per generation, flushed per line.
- `ConsoleSink`: a live progress line on a terminal; a few plain lines in CI logs.

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
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import numpy as np
from torch.utils.tensorboard import SummaryWriter

__all__ = ["ConsoleSink", "JsonlSink", "RunLogger", "TensorBoardSink", "flatten_hparams"]

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

    def log_hparams(
        self, hparams: Mapping[str, Any], final_metrics: Metrics, step: int | None = None
    ) -> None:
        """The run's hyperparameters and final metrics for TensorBoard's HParams dashboard.

        Written into the run directory itself (``run_name="."``), not a timestamped
        subfolder, so the run and its hyperparameters are one TensorBoard run. The metric
        tags must differ from the curves' tags (`RunLogger` prefixes them with ``hparams/``):
        `add_hparams` also writes each metric as a scalar at `step`.
        """
        metrics = {tag: float(value) for tag, value in final_metrics.items()}
        self.writer.add_hparams(flatten_hparams(hparams), metrics, run_name=".", global_step=step)

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


def _duration(seconds: float) -> str:
    """h:mm:ss, or m:ss under an hour."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ConsoleSink:
    """Progress on a text stream: generation/total, best, mean, evals/s and ETA.

    On a terminal one line is redrawn in place with ``\\r`` (at most every `tty_interval`
    seconds). Elsewhere (CI logs, files) plain lines are written: the first generation, then
    at most one every `line_interval` seconds, and the last generation on close, so a long
    run leaves a short log. `close` ends with a summary line.
    """

    def __init__(
        self,
        stream: TextIO,
        total: int | None = None,
        start_generation: int = 0,
        *,
        line_interval: float = 2.0,
        tty_interval: float = 0.1,
    ) -> None:
        self.stream = stream
        self.total = total
        self.start_generation = start_generation
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.interval = tty_interval if self.tty else line_interval
        self.started = time.monotonic()
        self.last_write = -math.inf
        self.pending: str | None = None  # the newest line, when not yet shown
        self.shown: str | None = None  # the line on screen (terminal mode)
        self.generation = start_generation
        self.evaluations: float | None = None
        self.best: tuple[float, int] | None = None

    def _line(self, generation: int, metrics: Metrics) -> str:
        done, elapsed = generation - self.start_generation, time.monotonic() - self.started
        if self.total:
            width = len(str(self.total))
            head = f"gen {generation:>{width}}/{self.total}"
            if self.tty:
                filled = min(20, 20 * generation // self.total)
                head += " [" + "#" * filled + "-" * (20 - filled) + "]"
        else:
            head = f"gen {generation}"
        parts = [
            head,
            f"best {_number(metrics.get('fitness/best'))}",
            f"mean {_number(metrics.get('fitness/mean'))}",
        ]
        rate = metrics.get("perf/evals_per_s")
        if rate is not None and math.isfinite(rate):
            parts.append(f"{rate:,.0f} evals/s")
        if self.total and done > 0 and generation < self.total:
            parts.append(f"ETA {_duration(elapsed / done * (self.total - generation))}")
        return " | ".join(parts)

    def _emit(self, line: str) -> None:
        if self.tty:
            columns = shutil.get_terminal_size().columns
            self.stream.write("\r" + line[: columns - 1] + "\x1b[K")
            self.shown = line
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.pending = None
        self.last_write = time.monotonic()

    def write(self, generation: int, metrics: Metrics) -> None:
        """Show one generation's progress (throttled; see the class docstring)."""
        self.generation = generation
        self.evaluations = metrics.get("progress/evaluations", self.evaluations)
        best = metrics.get("fitness/best")
        if best is not None and math.isfinite(best) and (self.best is None or best > self.best[0]):
            self.best = (float(best), generation)
        line = self._line(generation, metrics)
        last = self.total is not None and generation >= self.total
        if last or time.monotonic() - self.last_write >= self.interval:
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
        if self.best is not None:
            summary += f", best fitness {_number(self.best[0])} (generation {self.best[1]})"
        self.stream.write(summary + "\n")
        self.stream.flush()


# --------------------------------------------------------------------------- the logger


class RunLogger:
    """Fans each generation's metrics out to TensorBoard, ``metrics.jsonl`` and the console.

    `total`: generations expected (for the ETA), None when the budget is not in generations.
    `quiet`: no console output at all. `start_generation`: the generation of the checkpoint a
    resumed run continues from (0 for a fresh run); the logs after it are dropped.
    Use as a context manager, or call `close`.
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        quiet: bool = False,
        total: int | None = None,
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
        self.console = (
            None
            if quiet
            else ConsoleSink(stream or sys.stderr, total=total, start_generation=start_generation)
        )
        if self.console is not None and kept:
            bests = [
                (r["fitness/best"], r["generation"])
                for r in kept
                if isinstance(r.get("fitness/best"), int | float)
            ]
            self.console.best = max(bests, key=lambda b: b[0]) if bests else None
        self.last_metrics: dict[str, int | float] = {}
        self.closed = False

    def log(self, generation: int, metrics: Metrics, histograms: Histograms | None = None) -> None:
        """Record one generation: its scalar metrics and, optionally, histograms."""
        scalars = {key: _scalar(key, value) for key, value in metrics.items()}
        self.step = _x_step(generation, scalars)
        self.tensorboard.write(self.step, scalars, histograms)
        self.jsonl.write(generation, scalars)
        if self.console is not None:
            self.console.write(generation, scalars)
        self.last_metrics = scalars

    def log_config(self, text: str) -> None:
        """The full resolved config (YAML text) into TensorBoard's text tab."""
        self.tensorboard.log_config(text)

    def log_event(self, text: str) -> None:
        """A notable moment, at the current step in TensorBoard and as a console line."""
        self.tensorboard.log_event(text, self.step)
        if self.console is not None:
            self.console.event(text)

    def close(
        self,
        final_hparams: Mapping[str, Any] | None = None,
        final_metrics: Metrics | None = None,
    ) -> None:
        """Flush and close every sink; idempotent.

        With `final_hparams` (e.g. the config as a dict), an HParams entry is written with
        `final_metrics`, by default the last generation's ``fitness/*`` and ``progress/*``
        values under ``hparams/<tag>``.
        """
        if self.closed:
            return
        self.closed = True
        try:
            if final_hparams is not None:
                if final_metrics is None:
                    final_metrics = {
                        f"hparams/{tag}": value
                        for tag, value in self.last_metrics.items()
                        if tag.startswith(("fitness/", "progress/"))
                    }
                self.tensorboard.log_hparams(final_hparams, final_metrics, self.step)
        finally:
            if self.console is not None:
                self.console.close()
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
