"""The report's figures, drawn from the records alone: weight trajectories, solve rates, maze
end points, solve rate against depth and fitness curves per env or per operator (`FIGURES`
per experiment)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from smevo.experiments.grid import OPERATORS, TRAJECTORY_SEED
from smevo.experiments.results import Results, depth_of
from smevo.plotting import plot_curves
from smevo_envs.maze import load_maze

COLORS = dict(zip(OPERATORS, ("#444444", "#9467bd", "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728"),
                  strict=True))


LINESTYLES = dict(zip(OPERATORS, ("-", "--", "-", "--", ":", "-."), strict=True))
"""Line styles keep operators apart where their lines coincide (on the toy's easy task the
normalised SM-G operators all take control's steps)."""


TASK_OPTIMA = {"easy": (None, 10.0), "medium": (0.01, 10.0), "washout": (0.01, 10.0)}
"""(w0, w1) at the illustrative tasks' optima (easy: w0 does not matter)."""


def save(figure: Figure, out: Path, name: str) -> str:
    """Write `figure` as `out/name` (the folder made if needed); returns `name`."""
    out.mkdir(parents=True, exist_ok=True)
    figure.savefig(out / name, dpi=110)
    return name


def trajectory_figure(results: Results, out: Path) -> list[tuple[str, str, list]]:
    """w0 and w1 over the hill climber's steps, a column per task, a line per operator."""
    traced = [r for r in results.records if "trajectory" in r]
    if not traced:
        return []
    tasks = [d for d in results.domains if any(r["domain"] == d[0] for r in traced)]
    figure = Figure(figsize=(4.2 * len(tasks), 6), layout="constrained")
    axes = figure.subplots(2, len(tasks), squeeze=False, sharex=True)
    for column, domain in enumerate(tasks):
        for operator in results.operators:
            for record in results.runs(domain, operator):
                if "trajectory" not in record:
                    continue
                weights = np.asarray(record["trajectory"])
                for row in range(2):
                    axes[row, column].plot(weights[:, row], color=COLORS.get(operator),
                                           linestyle=LINESTYLES.get(operator), label=operator,
                                           linewidth=1.2)
        for row, optimum in enumerate(TASK_OPTIMA.get(domain[0], (None, None))):
            if optimum is not None:
                axes[row, column].axhline(optimum, color="black", linestyle=":", linewidth=1)
            axes[row, column].set_ylabel(f"w{row}")
            axes[row, column].grid(alpha=0.3)
        axes[0, column].set_title(domain[0])
        axes[1, column].set_xlabel("hill-climber step")
    axes[0, 0].legend(fontsize="small")
    name = save(figure, out, "illustrative_trajectories.png")
    caption = (f"Weights w0 (top) and w1 (bottom) of the seed-{TRAJECTORY_SEED} run over the "
               "hill climber's steps, one column per task, a line per operator; dotted: the "
               "optimum (w0 = 0.01, w1 = 10).")
    return [(name, caption, traced)]


def solve_rate_figure(results: Results, out: Path) -> list[tuple[str, str, list]]:
    """Grouped bars: solve rate with its 95% Wilson interval per network and operator."""
    figure = Figure(figsize=(max(6, 2.2 * len(results.domains)), 4), layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / len(results.operators)
    for i, operator in enumerate(results.operators):
        xs, rates, errors = [], [], [[], []]
        for x, domain in enumerate(results.domains):
            rate = results.solve_rate(domain, operator)
            if rate is not None:
                xs.append(x + (i - (len(results.operators) - 1) / 2) * width)
                rates.append(rate.rate)
                errors[0].append(max(0.0, rate.rate - rate.low))  # rounding can go below 0
                errors[1].append(max(0.0, rate.high - rate.rate))
        axes.bar(xs, rates, width, yerr=errors, capsize=2, label=operator,
                 color=COLORS.get(operator))
    axes.set_xticks(range(len(results.domains)), [results.label(d) for d in results.domains])
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("solve rate")
    axes.legend(fontsize="small", ncols=3)
    name = save(figure, out, f"{results.experiment.name}_solve_rate.png")
    caption = "Solve rate per network and operator; error bars: 95% Wilson intervals."
    return [(name, caption, results.records)]


def endpoint_figure(results: Results, out: Path) -> list[tuple[str, str, list]]:
    """The best agents' end points over the maze walls: a row per network, a column per
    operator."""
    placed = [r for r in results.records if "end_position" in r]
    if not placed:
        return []
    maze = load_maze()
    rows, columns = results.domains, results.operators
    figure = Figure(figsize=(2.4 * len(columns), 2.6 * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), len(columns), squeeze=False)
    for row, domain in enumerate(rows):
        for column, operator in enumerate(columns):
            panel = axes[row, column]
            for x0, y0, x1, y1 in maze.walls:
                panel.plot([x0, x1], [y0, y1], color="black", linewidth=1)
            panel.plot(*maze.start, marker="s", color="tab:blue", markersize=5)
            panel.add_patch(Circle(maze.goal, 10.0, fill=False, color="tab:red", linewidth=1.2))
            runs = [r for r in results.runs(domain, operator) if "end_position" in r]
            if runs:
                points = np.array([r["end_position"] for r in runs])
                solved = np.array([r["solved"] for r in runs])
                panel.scatter(points[:, 0], points[:, 1], s=18, color=COLORS.get(operator),
                              edgecolors=np.where(solved, "gold", "none"), zorder=3)
            panel.set_xlim(-5, 205)
            panel.set_ylim(210, -5)  # screen coordinates: y grows downwards
            panel.set_aspect("equal")
            panel.set_xticks([])
            panel.set_yticks([])
            rate = results.solve_rate(domain, operator)
            panel.set_title(f"{results.label(domain)} {operator}\n{rate or 'no runs'}",
                            fontsize=8)
    name = save(figure, out, f"{results.experiment.name}_endpoints.png")
    caption = ("End points of each run's best agent over the hard maze (square: start, red "
               "circle: the goal's radius 10; gold edge: solved). Panel titles give solved/runs "
               "and the 95% Wilson interval.")
    return [(name, caption, placed)]


def depth_figure(results: Results, out: Path) -> list[tuple[str, str, list]]:
    """Solve rate against depth, a line per operator, Wilson intervals as error bars."""
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    for i, operator in enumerate(results.operators):
        points = []
        for domain in results.domains:
            rate = results.solve_rate(domain, operator)
            if rate is not None:
                points.append((depth_of(domain), rate))
        if points:
            shift = 2 ** (0.05 * (i - (len(results.operators) - 1) / 2))  # keep bars apart
            depth = [d * shift for d, _ in points]
            rate = [p.rate for _, p in points]
            errors = [[max(0.0, p.rate - p.low) for _, p in points],  # rounding can go below 0
                      [max(0.0, p.high - p.rate) for _, p in points]]
            axes.errorbar(depth, rate, yerr=errors, marker="o", capsize=3, label=operator,
                          color=COLORS.get(operator))
    axes.set_xscale("log", base=2)
    depths = sorted({depth_of(d) for d in results.domains})
    axes.set_xticks(depths, [str(d) for d in depths])
    axes.minorticks_off()
    axes.set_xlabel("hidden layers (15 ReLU units each)")
    axes.set_ylabel("solve rate")
    axes.set_ylim(-0.05, 1.05)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    name = save(figure, out, "depth_solve_rate.png")
    caption = "Maze solve rate against network depth; error bars: 95% Wilson intervals."
    return [(name, caption, results.records)]


def recorded_curve(record: dict[str, Any], metric: str) -> np.ndarray:
    """A record's curve of `metric` ("champion" or "best") against evaluations, as the
    [2, n] array `smevo.plotting.plot_curves` draws (points with a missing value left out)."""
    points = [(x, y) for x, y in zip(record["curve"]["evaluations"], record["curve"][metric],
                                     strict=True) if x is not None and y is not None]
    return np.array(sorted(points), dtype=float).reshape(-1, 2).T


def fitness_curve_figures(results: Results, out: Path) -> list[tuple[str, str, list]]:
    """One `smevo.plotting.plot_curves` figure per env (and network, where an env has
    several): the champion's fitness, median and IQR per operator, from the records' curves."""
    figures = []
    for domain in results.domains:
        runs = [r for op in results.operators for r in results.runs(domain, op)]
        label = results.label(domain)
        name = f"{results.experiment.name}_{label.replace(' ', '_')}.png"
        curves = {op: [recorded_curve(r, "champion") for r in results.runs(domain, op)]
                  for op in results.operators if results.runs(domain, op)}
        plot_curves(curves, out / name, metric="fitness/champion", x="progress/evaluations")
        caption = (f"{label}: the champion's validated fitness against evaluations, median "
                   "and interquartile band across seeds per operator.")
        figures.append((name, caption, runs))
    return figures


def network_curve_figures(results: Results, out: Path) -> list[tuple[str, str, list]]:
    """One `smevo.plotting.plot_curves` figure per operator: the champion's fitness, median
    and IQR per network, from the records' curves (the grid maze compares networks)."""
    figures = []
    for operator in results.operators:
        curves = {results.label(d): [recorded_curve(r, "champion")
                                     for r in results.runs(d, operator)]
                  for d in results.domains if results.runs(d, operator)}
        name = f"{results.experiment.name}_{operator}.png"
        plot_curves(curves, out / name, metric="fitness/champion", x="progress/evaluations")
        caption = (f"{operator}: the champion's validated fitness against evaluations, median "
                   "and interquartile band across seeds per network.")
        figures.append((name, caption, [r for d in results.domains
                                        for r in results.runs(d, operator)]))
    return figures


FIGURES: dict[str, tuple[Callable[[Results, Path], list[tuple[str, str, list]]], ...]] = {
    "illustrative": (trajectory_figure,),
    "parity": (solve_rate_figure,),
    "maze": (solve_rate_figure, endpoint_figure),
    "depth": (depth_figure, endpoint_figure),
    "gym": (fitness_curve_figures,),
    "gridmaze": (network_curve_figures,),
    "minatar": (fitness_curve_figures,),
}
