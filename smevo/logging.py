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
- `smevo.console.ConsoleSink`: a live progress line on a terminal; a few plain lines in CI
  logs.

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
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import numpy as np
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from smevo.console import BUDGET_METRICS, ConsoleSink

__all__ = ["JsonlSink", "RunLogger", "TensorBoardSink", "flatten_hparams"]

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
