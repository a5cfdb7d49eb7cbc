"""Records: the compact JSON a finished run leaves, what the report and `status` read.

A record (`RECORD_FORMAT`) holds a run's config less `RESULT_NEUTRAL`, its seed, final and solve
statistics, its curve downsampled, what the figures need, and the code and machine it ran on.
A cell counts as done when its record was made at its settings by current code (`recorded`).
Settings compare in one form (`settled_algorithm`, `settled_budget`), so records made before
the algorithms' options had their own mapping (``algorithm.parents``), or before solved runs
confirmed their crossing (``budget.confirm_solved``) where that could not change them, still
count.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from smevo._registry import keyword_options
from smevo.algorithms import ALGORITHMS
from smevo.config import AlgorithmConfig, Config, config_to_dict, migrate_algorithm
from smevo.experiments.grid import EXPERIMENTS, Cell, Settings
from smevo.experiments.staleness import current_arithmetic

RECORD_FORMAT = ("smevo-reproduce-record", 1)
"""The records' `format` and `version`: bump the version when a field changes meaning."""


RESULT_NEUTRAL = ("logging", "evaluation")
"""Config sections that change how a run is carried out, not its result (every backend returns
the same fitnesses), so a record made with other values of them still counts as its cell's."""


CURVE_POINTS = 100
"""Points of a record's curve (evaluations, champion and best fitness), evenly spaced."""


def settled_algorithm(section: Mapping[str, Any]) -> dict[str, Any]:
    """An ``algorithm`` section of settings in today's form: legacy keys moved into
    ``options`` (`smevo.config.migrate_algorithm`) and every option of the algorithm there,
    at its default where not set, so that the same search compares equal however it was
    written (an algorithm no longer registered: as it is)."""
    section = dict(migrate_algorithm(section, AlgorithmConfig().name))
    if section.get("name") in ALGORITHMS:
        defaults = keyword_options(ALGORITHMS.get(section["name"]))
        section["options"] = {**defaults, **section.get("options", {})}
    return section


def settled_budget(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ``budget`` section of a record's settings in today's form. A record made before
    ``budget.confirm_solved`` existed did not confirm; that is the same run as a confirming
    one unless it stopped solved on a validated elite (the only place a confirmation acts),
    so it is settled to the default there and to False (another setting: pending) where a
    confirmation might have let the run go on."""
    config = record["config"]
    budget = dict(config["budget"])
    if "confirm_solved" not in budget:
        unconfirmed = (record.get("stopped_by") == "solved"
                       and config["algorithm"].get("elite_episodes", 0) > 0)
        budget["confirm_solved"] = not unconfirmed
    return budget


def result_settings(config: Config) -> dict[str, Any]:
    """The config as JSON data less the `RESULT_NEUTRAL` sections, its algorithm's options
    settled (`settled_algorithm`): what a record must have been made with to count as its
    cell's run."""
    data = {k: v for k, v in config_to_dict(config).items() if k not in RESULT_NEUTRAL}
    data["algorithm"] = settled_algorithm(data["algorithm"])
    return json.loads(json.dumps(data))


def _settled(record: dict[str, Any]) -> dict[str, Any]:
    """A record read from disk, its settings' algorithm and budget sections in today's
    form."""
    config = record.get("config")
    if isinstance(config, dict) and isinstance(config.get("algorithm"), dict):
        config["algorithm"] = json.loads(json.dumps(settled_algorithm(config["algorithm"])))
        if isinstance(config.get("budget"), dict):
            config["budget"] = settled_budget(record)
    return record


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at `path` (its settings settled), or None where there is none."""
    if not path.is_file():
        return None
    return _settled(json.loads(path.read_text(encoding="utf-8")))


def records_by_path(data_dir: Path) -> dict[Path, dict[str, Any]]:
    """Every record of the grid (`RECORD_FORMAT`) under `data_dir` by its path (a cell's
    `record_path`), their settings settled; records of another format there (the A2C runs'
    `backpropamine` ones) are left out."""
    records = {path: json.loads(path.read_text(encoding="utf-8"))
               for path in sorted(data_dir.glob("*/*/seed*.json"))}
    return {path: _settled(r) for path, r in records.items()
            if r.get("format") == RECORD_FORMAT[0]}


def load_records(data_dir: Path) -> list[dict[str, Any]]:
    """`records_by_path`'s records, in the order of their paths."""
    return list(records_by_path(data_dir).values())


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


def twin_record(cell: Cell, settings: Settings, config: Config,
                read: Callable[[Path], dict[str, Any] | None] = read_record,
                ) -> dict[str, Any] | None:
    """The record of the same run made for another experiment, as this cell's record: the
    maze experiment's depth-32 cells and the depth sweep's share domain, GA and budget, so
    where their operator's magnitude is the same too a cell's run is the other's, and
    running it again would only repeat it. Only an experiment that records the same extras
    serves; the copy names its origin (`same_run_as`). `read` reads a record by its path
    (from disk, or from those already read)."""
    for other in EXPERIMENTS.values():
        if other.name == cell.experiment.name or other.extra != cell.experiment.extra:
            continue
        origin = replace(cell, experiment=other)
        record = read(origin.record_path(settings.data_dir))
        if recorded(record, config):
            return record | {"experiment": cell.experiment.name, "same_run_as":
                             record.get("same_run_as", f"{other.name}/{origin.name} "
                                                       f"seed{origin.seed}")}
    return None
