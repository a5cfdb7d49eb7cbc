"""Records: the compact JSON a finished run leaves, what the report and `status` read.

A record (`RECORD_FORMAT`) holds a run's config less `RESULT_NEUTRAL`, its seed, final and solve
statistics, its curve downsampled, what the figures need, and the code and machine it ran on.
A cell counts as done when its record was made at its settings by current code (`recorded`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from smevo.config import Config, config_to_dict
from smevo.experiments.staleness import current_arithmetic

RECORD_FORMAT = ("smevo-reproduce-record", 1)
"""The records' `format` and `version`: bump the version when a field changes meaning."""


RESULT_NEUTRAL = ("logging", "evaluation")
"""Config sections that change how a run is carried out, not its result (every backend returns
the same fitnesses), so a record made with other values of them still counts as its cell's."""


CURVE_POINTS = 100
"""Points of a record's curve (evaluations, champion and best fitness), evenly spaced."""


def result_settings(config: Config) -> dict[str, Any]:
    """The config as JSON data less the `RESULT_NEUTRAL` sections: what a record must have
    been made with to count as its cell's run."""
    data = {k: v for k, v in config_to_dict(config).items() if k not in RESULT_NEUTRAL}
    return json.loads(json.dumps(data))


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at `path`, or None where there is none."""
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def load_records(data_dir: Path) -> list[dict[str, Any]]:
    """Every record under `data_dir`."""
    return [json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(data_dir.glob("*/*/seed*.json"))]


def recorded(record: dict[str, Any] | None, config: Config) -> bool:
    """Whether `record` is a finished run of `config`: same settings (see `RESULT_NEUTRAL`),
    made by code that computes its operator's children as now (`current_arithmetic`)."""
    return (record is not None and record.get("config") == result_settings(config)
            and current_arithmetic(record))


def downsample(rows: Sequence[Any], points: int) -> list[Any]:
    """At most `points` of `rows`, evenly spaced, the first and the last kept."""
    if len(rows) <= points:
        return list(rows)
    return [rows[i] for i in np.unique(np.linspace(0, len(rows) - 1, points).round()).astype(int)]


CURVE_KEYS = {"evaluations": "progress/evaluations", "champion": "fitness/champion",
              "best": "fitness/best"}
"""A record's curve: its names for the `metrics.jsonl` keys it keeps."""


def curve(metrics: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    """The run's curve, `CURVE_POINTS` generations at most (None where a value was NaN)."""
    rows = downsample(metrics, CURVE_POINTS)
    return {name: [row.get(key) for row in rows] for name, key in CURVE_KEYS.items()}


def median_divergence(metrics: list[dict[str, Any]]) -> float | None:
    """The median over generations of the mean mutation divergence (None: never measured)."""
    values = [m["mutation/divergence_mean"] for m in metrics
              if isinstance(m.get("mutation/divergence_mean"), int | float)]
    return float(np.median(values)) if values else None
