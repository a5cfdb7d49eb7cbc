"""Learning curves across runs: median and interquartile band per group of seeds.

`plot_runs` reads each run's ``metrics.jsonl`` (one JSON object per generation; NaN is
written as null) and groups runs by what was compared, the mutation operator and the env
(from the run's ``config.yaml``), so runs that differ only in their seed are one curve.
Each run is interpolated onto a common x grid (evaluations by default, the x-axis of the
paper's figures); a run that stopped early (solved, or a smaller budget) keeps its last value
to the right, as its result does not change after it stops.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.figure import Figure

__all__ = ["image_path", "plot_curves", "plot_runs", "read_metrics", "run_label"]

GRID_POINTS = 200
"""Points of the common x grid each group's runs are interpolated onto."""


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``run_dir/metrics.jsonl``, one dict per generation, in file order.

    A line cut short by a kill (the last one) is skipped; any other unreadable line is an
    error naming the file and line.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no metrics.jsonl (is this a smevo run directory?)")
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            if number == len(lines):
                break
            raise ValueError(f"{path}: line {number} is not JSON ({error.msg})") from None
    return records


def run_label(run_dir: Path) -> str:
    """'<mutation> on <env>' from the run's ``config.yaml``; the folder name without one."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return Path(run_dir).name
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: invalid YAML ({error})") from None
    mutation = config.get("mutation", {}).get("name", "?")
    env = config.get("env", {}).get("id", "?")
    return f"{mutation} on {env}"


def _curve(records: list[dict[str, Any]], metric: str, x: str, run_dir: Path) -> np.ndarray:
    """[2, n] array of (x, metric) over the records where both are numbers, sorted by x."""
    points = [
        (float(r[x]), float(r[metric]))
        for r in records
        if isinstance(r.get(x), int | float)
        and isinstance(r.get(metric), int | float)
        and math.isfinite(r[x])
        and math.isfinite(r[metric])
    ]
    if not points:
        keys = sorted({k for r in records for k in r})
        raise ValueError(
            f"{run_dir}: metrics.jsonl has no values of both {metric!r} and {x!r}; "
            f"keys: {', '.join(keys) or 'none'}"
        )
    return np.array(sorted(points)).T


def _band(curves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Grid, median, 25th and 75th percentiles of runs interpolated onto a common grid.

    Left of a run's first point it has no value (NaN); right of its last, its last value.
    """
    grid = np.linspace(min(c[0, 0] for c in curves), max(c[0, -1] for c in curves), GRID_POINTS)
    values = np.array([np.interp(grid, c[0], c[1], left=np.nan) for c in curves])
    covered = ~np.isnan(values).all(axis=0)
    grid, values = grid[covered], values[:, covered]
    low, median, high = np.nanpercentile(values, [25, 50, 75], axis=0)
    return grid, median, low, high


def image_path(out: Path) -> Path:
    """The file `plot_runs` writes for `out`: `out` itself, or `out` with ``.png`` added when it
    has no suffix (matplotlib would add it silently), so that the path reported is the file
    written."""
    out = Path(out)
    return out if out.suffix else out.with_name(f"{out.name}.png")


def plot_runs(
    run_dirs: list[Path],
    out: Path,
    *,
    metric: str = "fitness/best",
    x: str = "progress/evaluations",
) -> Path:
    """Draw `metric` against `x` for the runs, median and IQR band per group; write a PNG.

    Runs with the same mutation and env (their seeds aside) form one group. Returns the
    path written (`image_path`).
    Raises `FileNotFoundError` for a run without ``metrics.jsonl`` and `ValueError` for a run
    that never logged `metric` or `x`.
    """
    if not run_dirs:
        raise ValueError("plot_runs needs at least one run directory")
    groups: dict[str, list[np.ndarray]] = defaultdict(list)
    for run_dir in map(Path, run_dirs):
        groups[run_label(run_dir)].append(_curve(read_metrics(run_dir), metric, x, run_dir))
    return plot_curves(groups, out, metric=metric, x=x)


def plot_curves(
    groups: Mapping[str, list[np.ndarray]],
    out: Path,
    *,
    metric: str = "fitness/best",
    x: str = "progress/evaluations",
    levels: Mapping[str, float] | None = None,
) -> Path:
    """Draw each group's curves (``[2, n]`` arrays of x and `metric`, sorted by x) as a median
    line and interquartile band, labelled by the group's name, and each of `levels` (label:
    value, e.g. a random policy's reward) as a dashed horizontal line; write a PNG.

    The drawing half of `plot_runs`, for curves that come from elsewhere than run directories
    (e.g. the compact records of scripts/reproduce.py). Returns the path written.
    """
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for label, curves in sorted(groups.items()):
        grid, median, low, high = _band(curves)
        (line,) = axes.plot(grid, median, label=f"{label} (n={len(curves)})")
        axes.fill_between(grid, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
    for label, value in (levels or {}).items():
        axes.axhline(value, color="black", linestyle="--", linewidth=0.8, alpha=0.7)
        axes.annotate(label, (0, value), xycoords=("axes fraction", "data"), fontsize="small",
                      xytext=(3, 2), textcoords="offset points")
    axes.set_xlabel(x)
    axes.set_ylabel(metric)
    axes.set_title(f"{metric}: median and interquartile range across runs")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    out = image_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    return out
