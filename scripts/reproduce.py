"""Reproduce the experiments of Lehman et al. 2018 (safe mutations) and write docs/results.

    python scripts/reproduce.py EXPERIMENT... [--seeds N] [--quick] [--backend B]
                                [--out docs/results] [--runs-dir runs/reproduce]
                                [--data-dir docs/results/data] [--operators A,B]
                                [--networks X,Y] [--set KEY=VALUE ...] [--commit-records]
    python scripts/reproduce.py --report-only
    python scripts/reproduce.py status [EXPERIMENT...] [same options]

Experiments (`all` runs every one):

| name           | domains                                    | operators                     |
|----------------|--------------------------------------------|-------------------------------|
| `illustrative` | easy, medium, washout (toy2w, hill climber)| all six                       |
| `parity`       | recurrent parity: rnn, gru, lstm stacks    | all six                       |
| `maze`         | hard maze: depth 7 (the reference's 6x15)  | all six                       |
|                | and depth 32                               |                               |
| `depth`        | hard maze, depth 1, 4, 16, 32, 64          | control, SM-G-SUM, SM-G-ABS   |
| `gym`          | CartPole-v1, LunarLander-v3,               | control, SM-G-FO, SM-G-SO,    |
|                | BipedalWalker-v3 (truncation GA)           | SM-G-SUM                      |

The grid is data (`EXPERIMENTS`, `MAGNITUDES`): a cell is (experiment, domain, network,
operator, seed), one `smevo.train` run in `<runs-dir>/<experiment>/<domain>-<network>-
<operator>/seed<N>` (checkpoints, metrics: not committed). A finished run leaves a compact
record, `<data-dir>/<experiment>/<domain>-<network>-<operator>/seed<N>.json` (kilobytes: its
config, seed, final and solve statistics, its curve downsampled, what the figures need, and
the commit, smevo version, wall time, core-seconds and machine it ran on; `RECORD_FORMAT`).
The records are committed: the report is rebuilt from them alone, so a grid stopped here
continues on another machine where the committed records end. A cell whose record was made
at the same settings (the config, less `RESULT_NEUTRAL`) is skipped; a record made at other
settings (e.g. a smaller budget) leaves its cell pending. A run cut short resumes from its
last checkpoint (`smevo.resume`) if it was started at the same settings, else restarts. So
the same command continues an interrupted grid, and `--seeds 10` after `--seeds 5` adds seeds.
`--commit-records` commits each record as it is written (that file only).

After the runs, `<out>/RESULTS.md` and its PNG figures are written from every record under
`--data-dir` (all experiments, whichever command or machine made them), so partial grids give
a partial report and several invocations can share a data folder; `--report-only` rewrites
the report without running anything. `status` runs nothing either: it prints, per experiment
and network, the runs done and remaining and the core-hours left, from the core-seconds per
evaluation measured in the records.

`--quick` runs one seed with tiny budgets (listed in `QUICK` and printed) so that the whole
grid takes minutes: it checks the pipeline, not the paper. Its runs, records and report go to
`runs/reproduce-quick` unless `--runs-dir`/`--data-dir`/`--out` say otherwise, so they never
overwrite the real results. `--set KEY=VALUE` overrides a config key in every cell run by the
command (e.g. `--set budget.evaluations=20000`); the report states the settings each run
actually used.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle

import smevo
from smevo.agent import load_agent
from smevo.checkpoint import atomic_write_bytes, latest_checkpoint
from smevo.config import BACKENDS, Config, apply_overrides, config_to_dict, load_config
from smevo.mutations import MUTATIONS, mutation_options
from smevo.plotting import plot_curves, read_metrics
from smevo.stats import Proportion, RankTest, median_iqr, rank_test, solve_rate
from smevo.trainer import Trainer
from smevo_envs.maze import load_maze

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path("docs/results/data")
"""Where finished runs leave their records (committed; the report is rebuilt from them)."""
RECORD_FORMAT = ("smevo-reproduce-record", 1)
"""The records' `format` and `version`: bump the version when a field changes meaning."""
RESULT_NEUTRAL = ("logging", "evaluation")
"""Config sections that change how a run is carried out, not its result (every backend returns
the same fitnesses), so a record made with other values of them still counts as its cell's."""
CURVE_POINTS = 100
"""Points of a record's curve (evaluations, champion and best fitness), evenly spaced."""
TRAJECTORY_POINTS = 200
"""Points of a recorded weight trajectory."""
FALLBACK_RATE = 0.005
"""Core-seconds per evaluation that `status` assumes for a domain, network and operator with
no record yet (measured: maze depth 32 ~1 ms with control, parity-GRU ~7 ms with SM-G-ABS)."""
TRAJECTORY_SEED = 0
"""The illustrative runs whose weight trajectories are recorded and drawn."""

OPERATORS = ("control", "SM-R", "SM-G-SUM", "SM-G-ABS", "SM-G-SO", "SM-G-FO")
PAPER_SM_G = ("SM-G-SUM", "SM-G-ABS", "SM-G-SO")
"""The paper's gradient operators (SM-G-FO is this project's)."""
MAGNITUDES: dict[str, dict[str, float]] = {
    "toy": dict.fromkeys(OPERATORS, 0.01),
    "net": {"control": 0.05, "SM-R": 0.01, "SM-G-SUM": 0.1, "SM-G-ABS": 0.1, "SM-G-SO": 0.1,
            "SM-G-FO": 0.01},
}
MAGNITUDE_CHOICE = (
    "The paper's per-operator magnitudes are in its appendix, which could not be verified, so "
    "these are chosen: the reference's default 0.01 for every operator on the toy; on "
    "networks, where SM-G's sensitivities are mean-normalised, σ = 0.1 for a weight of "
    "average sensitivity, control σ = 0.05 (the reference's `mutate_plain` default), and a "
    "target divergence of 0.01 for SM-R and SM-G-FO (the reference runner's default). The "
    "last column is the measured divergence: the mean squared output change of a child "
    "against its parent on the parent's experiences (median over generations, then over runs)."
)
"""The report's account of `MAGNITUDES`: edit the two together."""
UNCLIPPED = {"control": {"weight_clip"}}
"""Options an operator accepts but the reference did not give it (reference §2.6: its plain
mutation has no final clip), left out of the paper's cells to stay faithful."""
RUN_OVERRIDES = ("logging.quiet=true", "logging.histogram_every=0")
"""For every cell: no console progress per run (the script prints one line per run)."""
STEADY_STATE = ("algorithm.elite_episodes=0",)
"""Deterministic domains: the champion's fitness is its evaluation (no re-evaluation, which
with `index_episodes` would cover only the first sequences)."""
MAZE = "configs/maze-shallow.yaml"
DEPTHS = (1, 4, 16, 32, 64)


@dataclass(frozen=True)
class Domain:
    """A task and network: `config` (relative to the repository) plus `overrides`; `seeds`,
    when given, replaces the experiment's seeds per cell for this domain."""

    name: str
    network: str
    config: str
    overrides: tuple[str, ...] = ()
    seeds: int | None = None


@dataclass(frozen=True)
class Experiment:
    """One of the paper's experiments as a grid over domains, operators and seeds.

    `score` is what runs are compared on: "fitness" (final fitness, higher is better) or
    "evaluations" (evaluations to solve; unsolved runs rank last, by final fitness). `paper` maps
    config keys to the values of the paper's runner, to flag where the runs were smaller.
    `extra` names what is recorded after a run ("trajectory" or "end_position").
    """

    name: str
    title: str
    setup: str
    domains: tuple[Domain, ...]
    operators: tuple[str, ...]
    magnitudes: str
    seeds: int
    score: str
    overrides: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    paper: dict[str, Any] = field(default_factory=dict)
    extra: str | None = None


STEADY_STATE_PAPER = {"algorithm.population": 250, "algorithm.tournament": 5,
                      "budget.evaluations": 100_000}
STEADY_STATE_GRID: dict[str, Any] = {
    "magnitudes": "net", "seeds": 5, "score": "evaluations", "overrides": STEADY_STATE,
    "quick": ("algorithm.population=50", "budget.evaluations=1000"), "paper": STEADY_STATE_PAPER}
"""What the parity and maze experiments share: the paper runner's steady-state GA."""
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment(
        name="illustrative",
        title="Illustrative two-weight tasks",
        setup=(
            "The paper's two-weight model y = (100·w0·x0, 0.1·w1·x1) (policy `toy2w`) on the "
            "easy, medium and washout tasks, 8 input rows (the two rows shown 4 times, as in "
            "the reference's `sm_simple.py`), searched by its (1+1) hill climber: the child "
            "replaces the parent only if strictly fitter. Fitness is minus the summed squared "
            "error; every run takes all its steps; solved means a final error ≤ 0.01 (the "
            "env's reward threshold). Runs are compared on final fitness."
        ),
        domains=tuple(Domain(task, "toy2w", f"configs/{task}.yaml")
                      for task in ("easy", "medium", "washout")),
        operators=OPERATORS,
        magnitudes="toy",
        seeds=10,
        score="fitness",
        overrides=("budget.stop_when_solved=false", "logging.checkpoint_every=500"),
        quick=("budget.generations=200",),
        paper={"budget.generations": 2000},
        extra="trajectory",
    ),
    Experiment(
        name="parity",
        title="Recurrent parity",
        setup=(
            "Parity of 4-bit sequences, one bit per step, fitness over all 16 sequences "
            "(minus the mean negative log-likelihood of the true class). Two stacked recurrent "
            "cells of 15 units and a linear readout (rnn 782, gru 2,282, lstm 3,032 "
            "parameters). The reference runner's steady-state GA: the fittest of a tournament "
            "is the parent, the child replaces the loser of an independent reverse tournament "
            "(the reference reused the selection tournament, a bug), children in batches of 50. "
            "Solved: mean log-probability of the true class ≥ −0.04, which implies all 16 "
            "sequences classified correctly (a little stricter than the paper's accuracy 1). "
            "Evaluations to solve are counted to the end of the solving batch."
        ),
        domains=tuple(Domain("parity", cell, f"configs/parity-{cell}.yaml",
                             seeds=10 if cell == "rnn" else None)
                      for cell in ("rnn", "gru", "lstm")),
        operators=OPERATORS,
        **STEADY_STATE_GRID,
    ),
    Experiment(
        name="maze",
        title="Breadcrumb hard maze",
        setup=(
            "The breadcrumb hard maze (C++ simulator, 400 steps, action repeat 3; fitness "
            "minus the path distance of the final position to the goal), an MLP of 15-unit "
            "ReLU layers with Xavier-normal weights and sigmoid outputs: depth 7 is the "
            "reference's '6x15' network (1,652 parameters), depth 32 the deep one. The same "
            "steady-state GA as parity; SM-G and SM-R measure the parent's divergence on 100 "
            "of the 400 states it saw. Solved: the robot came within 10 of the goal at any "
            "step. End points: the final position of each run's best agent, rolled out once."
        ),
        domains=tuple(Domain("maze", f"d{depth}", MAZE, (f"policy.options.depth={depth}",),
                             seeds=10 if depth == 7 else None)
                      for depth in (7, 32)),
        operators=OPERATORS,
        **STEADY_STATE_GRID,
        extra="end_position",
    ),
    Experiment(
        name="depth",
        title="Depth sweep on the maze",
        setup=(
            "The maze experiment's domain and GA with 1, 4, 16, 32 and 64 hidden layers of 15 "
            "ReLU units: how the solve rate falls with depth for control and for SM-G-SUM and "
            "SM-G-ABS."
        ),
        domains=tuple(Domain("maze", f"d{depth}", MAZE, (f"policy.options.depth={depth}",))
                      for depth in DEPTHS),
        operators=("control", "SM-G-SUM", "SM-G-ABS"),
        magnitudes="net",
        seeds=5,
        score="evaluations",
        overrides=STEADY_STATE,
        quick=("algorithm.population=50", "budget.evaluations=500"),
        paper=STEADY_STATE_PAPER,
        extra="end_position",
    ),
    Experiment(
        name="gym",
        title="Gymnasium control tasks",
        setup=(
            "Not in the paper: a check that the operators carry over to standard tasks with a "
            "generational truncation GA (the top individuals are parents, elites are copied, "
            "the best elite is re-evaluated on extra episodes; observations standardised for "
            "BipedalWalker). Networks and episodes per evaluation come from "
            "`configs/cartpole.yaml`, `lunarlander.yaml` and `bipedalwalker.yaml`; populations "
            "and generations are cut to fit a CPU budget (for BipedalWalker also the episodes: "
            "one of at most 400 steps per evaluation, so its returns are not comparable with "
            "the env's 300-point threshold). Curves show the champion's validated "
            "fitness; runs are compared on its final value."
        ),
        domains=(
            Domain("CartPole-v1", "mlp", "configs/cartpole.yaml",
                   ("budget.generations=50",)),
            Domain("LunarLander-v3", "mlp", "configs/lunarlander.yaml",
                   ("algorithm.population=32", "algorithm.parents=null",
                    "budget.generations=20")),
            Domain("BipedalWalker-v3", "mlp", "configs/bipedalwalker.yaml",
                   ("algorithm.population=16", "algorithm.parents=null",
                    "env.episodes=1", "env.max_steps=400", "algorithm.elite_episodes=3",
                    "budget.generations=15")),
        ),
        operators=("control", "SM-G-FO", "SM-G-SO", "SM-G-SUM"),
        magnitudes="net",
        seeds=5,
        score="fitness",
        quick=("algorithm.population=16", "algorithm.parents=null", "budget.generations=3"),
    ),
)}


# --------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    experiment: Experiment
    domain: Domain
    operator: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.domain.name}-{self.domain.network}-{self.operator}"

    @property
    def magnitude(self) -> float:
        return MAGNITUDES[self.experiment.magnitudes][self.operator]

    def run_dir(self, runs_dir: Path) -> Path:
        return runs_dir / self.experiment.name / self.name / f"seed{self.seed}"

    def record_path(self, data_dir: Path) -> Path:
        return data_dir / self.experiment.name / self.name / f"seed{self.seed}.json"


@dataclass(frozen=True)
class Settings:
    """What the command line asked for, as every cell's run sees it."""

    runs_dir: Path
    quick: bool
    backend: str | None
    sets: tuple[str, ...]
    command: str
    data_dir: Path = DATA_DIR
    commit_records: bool = False


def build_grid(
    experiments: Iterable[str], seeds: int | None, quick: bool,
    operators: Sequence[str] | None = None, networks: Sequence[str] | None = None,
) -> list[Cell]:
    """The cells of `experiments`: seeds 0..N-1 (N from `seeds`, else 1 with `quick`, else
    the domain's or the experiment's default), restricted to `operators` and `networks` (a
    domain's network, e.g. d7 or rnn) when given."""
    cells = []
    for name in experiments:
        experiment = EXPERIMENTS[name]
        for domain in experiment.domains:
            if networks is not None and domain.network not in networks:
                continue
            count = seeds or (1 if quick else domain.seeds or experiment.seeds)
            cells += [Cell(experiment, domain, operator, seed)
                      for operator in experiment.operators
                      if operators is None or operator in operators
                      for seed in range(count)]
    return cells


def cell_config(cell: Cell, settings: Settings) -> Config:
    """The config of a cell's run: the domain's file, then the experiment's, the domain's and
    the operator's settings, --quick's reductions, --backend, --set, the seed and the folder.

    The domain file's mutation options (e.g. weight_clip) are kept where the operator takes
    them, except that control runs unclipped, as the reference's plain mutation did.
    """
    config = load_config(ROOT / cell.domain.config)
    accepted = set(mutation_options(cell.operator)) - UNCLIPPED.get(cell.operator, set())
    options = {k: v for k, v in config.mutation.options.items() if k in accepted}
    run_dir = cell.run_dir(settings.runs_dir)
    return apply_overrides(config, [
        *RUN_OVERRIDES,
        *cell.experiment.overrides,
        *cell.domain.overrides,
        f"mutation.name={cell.operator}",
        f"mutation.magnitude={cell.magnitude}",
        f"mutation.options={json.dumps(options)}",
        *(cell.experiment.quick if settings.quick else ()),
        *([f"evaluation.backend={settings.backend}"] if settings.backend else []),
        *settings.sets,
        f"seed={cell.seed}",
        f"logging.logdir={run_dir.parent}",
        f"logging.name={run_dir.name}",
    ])


# --------------------------------------------------------------------------- running


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


def recorded(record: dict[str, Any] | None, config: Config) -> bool:
    """Whether `record` is a finished run of `config`: same settings (see `RESULT_NEUTRAL`),
    made by code that computes its operator's children as now (`current_arithmetic`)."""
    return (record is not None and record.get("config") == result_settings(config)
            and current_arithmetic(record))


ARITHMETIC_SINCE = dict.fromkeys(
    ("SM-R", "SM-G-SUM", "SM-G-ABS", "SM-G-SO", "SM-G-FO"),
    "c7e3ca7b880e804e65888467cdbaab1bf89a0c4f")
"""Per operator, the commit from which its children are computed as they are now; a record
made by code before it is stale, and its cell runs again. c7e3ca7: the mutation engine of
issue 11 (new per-sample Jacobians, divisors s / mean, batches of a whole generation). Control's
children have not changed since the first record. Bump an operator's entry whenever a change
moves its children, even by rounding."""


@functools.cache
def descends_from(commit: str, ancestor: str) -> bool | None:
    """Whether `commit` is `ancestor` or comes after it (None: git cannot tell here)."""
    try:
        done = subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", ancestor,
                               commit], capture_output=True, check=False)
    except OSError:
        return None
    return {0: True, 1: False}.get(done.returncode)


def current_arithmetic(record: dict[str, Any]) -> bool:
    """Whether `record` was made at or after its operator's `ARITHMETIC_SINCE` commit. A
    record whose commit git does not know (a shallow clone) counts as current: the check
    needs the history, and says so by returning True only there."""
    since = ARITHMETIC_SINCE.get(record["operator"])
    if since is None:
        return True
    commit = record["code"]["commit"]
    if not commit:
        return False
    return descends_from(commit, since) is not False


def resumable(run_dir: Path, config: Config) -> bool:
    """Whether `run_dir` holds a checkpointed run started at `config`'s settings."""
    saved = run_dir / "config.yaml"
    return (saved.is_file() and latest_checkpoint(run_dir) is not None
            and result_settings(load_config(saved)) == result_settings(config))


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


def git(*args: str) -> str | None:
    """The output of a read-only git command in the repository, None where git fails."""
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=False)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version() -> dict[str, Any]:
    """What code the runs of this process run: `commit`, the last commit that changed anything
    but the records (so committing records does not change it), `head`, `dirty` (tracked files
    outside the records differ from it; None: unknown) and the smevo version. Taken once, at
    start: the process keeps the code it imported whatever is committed meanwhile."""
    records = f":(exclude){DATA_DIR.as_posix()}"
    changes = git("status", "--porcelain", "--untracked-files=no", "--", ".", records)
    return {"commit": git("log", "-1", "--format=%H", "--", ".", records),
            "head": git("rev-parse", "HEAD"),
            "dirty": None if changes is None else bool(changes),
            "smevo": smevo.__version__}


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The machine a run ran on, for the record."""
    return {"platform": platform.platform(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__}


def core_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (worker pools)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def weight_trajectory(run_dir: Path, steps: int) -> list[list[float]]:
    """The hill climber's weights after each of its `steps` steps (`TRAJECTORY_POINTS` of
    them at most, the last kept), by replaying the run in process (same config and seed, so
    the same run; `metrics.jsonl` holds no weights)."""
    trainer = Trainer(load_config(run_dir / "config.yaml"))
    try:
        points = []
        for _ in range(steps):
            trainer.algorithm.step()
            points.append([float(w) for w in trainer.algorithm.population.params[0]])
        return downsample(points, TRAJECTORY_POINTS)
    finally:
        trainer.context.backend.close()


def end_position(run_dir: Path) -> list[float]:
    """Where the run's best agent (`best.pt`) stands at the end of one maze episode."""
    agent = load_agent(run_dir / "best.pt")
    try:
        obs, info = agent.env.reset(seed=0)
        agent.reset_state()
        done = False
        while not done:
            obs, _, terminated, truncated, info = agent.env.step(agent.act(obs))
            done = terminated or truncated
        return [float(v) for v in info["position"]]
    finally:
        agent.close()


def extras(cell: Cell, run_dir: Path, result: smevo.TrainResult) -> dict[str, Any]:
    """What the experiment records beyond the result (`Experiment.extra`)."""
    if cell.experiment.extra == "trajectory" and cell.seed == TRAJECTORY_SEED:
        return {"trajectory": weight_trajectory(run_dir, result.generations)}
    if cell.experiment.extra == "end_position":
        return {"end_position": end_position(run_dir)}
    return {}


@dataclass(frozen=True)
class Provenance:
    """Where and on what code this process runs, stamped on every record it writes."""

    code: dict[str, Any]
    machine: dict[str, Any]

    @classmethod
    def here(cls) -> Provenance:
        return cls(code_version(), machine())


def make_record(cell: Cell, settings: Settings, run_dir: Path, result: smevo.TrainResult,
                provenance: Provenance) -> dict[str, Any]:
    """A finished run's record, everything the report and `status` read (without timing)."""
    config = load_config(run_dir / "config.yaml")
    metrics = read_metrics(run_dir)
    format_name, version = RECORD_FORMAT
    return {
        "format": format_name,
        "version": version,
        "experiment": cell.experiment.name,
        "domain": cell.domain.name,
        "network": cell.domain.network,
        "operator": cell.operator,
        "seed": cell.seed,
        "magnitude": config.mutation.magnitude,
        "options": config.mutation.options,
        "budget_evaluations": config.budget.evaluations,
        "budget_generations": config.budget.generations,
        "best_fitness": result.best_fitness,
        "generations": result.generations,
        "evaluations": result.evaluations,
        "env_steps": result.env_steps,
        "solved": result.solved,
        "stopped_by": result.stopped_by,
        "quick": settings.quick,
        "command": settings.command,
        "config": result_settings(config),
        "curve": curve(metrics),
        "divergence": median_divergence(metrics),
        "code": provenance.code,
        "machine": provenance.machine,
    } | extras(cell, run_dir, result)


def commit_record(path: Path, message: str) -> None:
    """Commit the record at `path` and nothing else: `git add` of that file, then
    `git commit --only` of it, so whatever else is modified or staged stays as it was. A
    failure (e.g. another git command holding the index) is reported and the grid goes on:
    the record stays on disk for a later commit."""
    for args in (("add", "--", str(path)),
                 ("commit", "--only", "--quiet", "-m", message, "--", str(path))):
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=False)
        if done.returncode:
            print(f"warning: git {args[0]} {path} failed ({done.stderr.strip()}); the record "
                  "is on disk, uncommitted", flush=True)
            return


def run_cell(cell: Cell, settings: Settings,
             provenance: Provenance) -> tuple[str, dict[str, Any] | None]:
    """Run, resume or skip one cell: ("ran" | "resumed" | "skipped", its record or None)."""
    config = cell_config(cell, settings)
    path = cell.record_path(settings.data_dir)
    if recorded(read_record(path), config):
        return "skipped", None
    run_dir = cell.run_dir(settings.runs_dir)
    start, cores = time.perf_counter(), core_seconds()
    if resumable(run_dir, config):
        how, result = "resumed", smevo.resume(run_dir)
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)  # cut short before a checkpoint, or at other settings
        how, result = "ran", smevo.train(config)
    record = make_record(cell, settings, run_dir, result, provenance)
    record |= {"resumed": how == "resumed", "seconds": time.perf_counter() - start,
               "core_seconds": core_seconds() - cores}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode("utf-8"))
    if settings.commit_records:
        commit_record(path, f"reproduce: record {cell.experiment.name}/{cell.name} "
                            f"seed{cell.seed}")
    return how, record


def run_grid(cells: list[Cell], settings: Settings) -> dict[str, int]:
    """Run every cell in order, one line each; returns how many ran, resumed and were skipped."""
    counts = {"ran": 0, "resumed": 0, "skipped": 0}
    provenance = Provenance.here()
    for number, cell in enumerate(cells, start=1):
        how, record = run_cell(cell, settings, provenance)
        counts[how] += 1
        where = f"[{number}/{len(cells)}] {cell.experiment.name}/{cell.name} seed{cell.seed}"
        if record is None:
            print(f"{where}: finished before, skipped", flush=True)
            continue
        outcome = "solved" if record["solved"] else "not solved"
        print(f"{where}: {how} in {record['seconds']:.1f} s, {record['evaluations']:,} "
              f"evaluations, fitness {record['best_fitness']:.4g}, {outcome}", flush=True)
    return counts


# --------------------------------------------------------------------------- reading records


def load_records(data_dir: Path) -> list[dict[str, Any]]:
    """Every record under `data_dir`."""
    return [json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(data_dir.glob("*/*/seed*.json"))]


def score(record: dict[str, Any], experiment: Experiment) -> float:
    """What runs are ranked on, higher is better: final fitness, or minus the evaluations to
    solve, with unsolved runs below every solved one and ranked among themselves by their
    final fitness (so that a budget in which few runs solve still ranks how close they got).

    An unsolved run scores in (-(budget + 2), -(budget + 1)): its fitness squashed into (0, 1)
    by a monotone map, which keeps the order that the rank test uses.
    """
    fitness = float(record["best_fitness"])
    if experiment.score == "fitness":
        return fitness
    if record["solved"]:
        return -float(record["evaluations"])
    return -float(record["budget_evaluations"] + 2) + 0.5 + np.arctan(fitness) / np.pi


def ordered(values: Iterable[Any], preferred: Sequence[Any]) -> list[Any]:
    """The distinct `values`, those in `preferred` first in its order, the rest sorted."""
    distinct = set(values)
    return [v for v in preferred if v in distinct] + sorted(distinct - set(preferred), key=str)


class Results:
    """The finished runs of one experiment, grouped by network (within domain) and operator."""

    def __init__(self, experiment: Experiment, records: list[dict[str, Any]]) -> None:
        self.experiment = experiment
        self.records = records
        self.groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(list))
        for record in records:
            self.groups[(record["domain"], record["network"])][record["operator"]].append(record)
        self.domains: list[tuple[str, str]] = ordered(
            self.groups, [(d.name, d.network) for d in experiment.domains])
        self.operators = ordered((r["operator"] for r in records), experiment.operators)

    def runs(self, domain: tuple[str, str], operator: str) -> list[dict[str, Any]]:
        return self.groups.get(domain, {}).get(operator, [])

    def scores(self, domain: tuple[str, str], operator: str) -> list[float]:
        return [score(r, self.experiment) for r in self.runs(domain, operator)]

    def solve_rate(self, domain: tuple[str, str], operator: str) -> Proportion | None:
        runs = self.runs(domain, operator)
        return solve_rate([r["solved"] for r in runs]) if runs else None

    def compare(self, domain: tuple[str, str], operator: str, baseline: str) -> RankTest | None:
        """Mann-Whitney U of `operator` against `baseline` on the score (effect > 0.5:
        `operator` did better)."""
        return rank_test(self.scores(domain, operator), self.scores(domain, baseline))

    def label(self, domain: tuple[str, str]) -> str:
        name, network = domain
        if name == "maze":
            return f"depth {depth_of(domain)}"
        return network if name == "parity" else name


def dotted(data: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


# --------------------------------------------------------------------------- formatting


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def number(value: float) -> str:
    """A number for a table: big ones rounded, with thousands separators; 4 significant
    digits else."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def spread(values: Sequence[float]) -> str:
    summary = median_iqr(values)
    if summary is None:
        return "—"
    return f"{number(summary.median)} [{number(summary.q25)}, {number(summary.q75)}]"


def rank_text(test: RankTest | None) -> str:
    if test is None:
        return "—"
    return f"p={test.p_value:.3g}, A={test.effect:.2f}"


def commands(records: Iterable[dict[str, Any]]) -> str:
    """The distinct commands that made `records`, as inline code."""
    return "; ".join(f"`{c}`" for c in sorted({r["command"] for r in records}))


# --------------------------------------------------------------------------- figures

COLORS = dict(zip(OPERATORS, ("#444444", "#9467bd", "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728"),
                  strict=True))
LINESTYLES = dict(zip(OPERATORS, ("-", "--", "-", "--", ":", "-."), strict=True))
"""Line styles keep operators apart where their lines coincide (on the toy's easy task the
normalised SM-G operators all take control's steps)."""
TASK_OPTIMA = {"easy": (None, 10.0), "medium": (0.01, 10.0), "washout": (0.01, 10.0)}
"""(w0, w1) at the illustrative tasks' optima (easy: w0 does not matter)."""


def save(figure: Figure, out: Path, name: str) -> str:
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
    """One `smevo.plotting.plot_curves` figure per env: the champion's fitness, median and
    IQR per operator, from the records' curves."""
    figures = []
    for domain in results.domains:
        runs = [r for op in results.operators for r in results.runs(domain, op)]
        name = f"gym_{domain[0]}.png"
        curves = {op: [recorded_curve(r, "champion") for r in results.runs(domain, op)]
                  for op in results.operators if results.runs(domain, op)}
        plot_curves(curves, out / name, metric="fitness/champion", x="progress/evaluations")
        caption = (f"{domain[0]}: the champion's validated fitness against evaluations, median "
                   "and interquartile band across seeds per operator.")
        figures.append((name, caption, runs))
    return figures


FIGURES: dict[str, tuple[Callable[[Results, Path], list[tuple[str, str, list]]], ...]] = {
    "illustrative": (trajectory_figure,),
    "parity": (solve_rate_figure,),
    "maze": (solve_rate_figure, endpoint_figure),
    "depth": (depth_figure, endpoint_figure),
    "gym": (fitness_curve_figures,),
}


# --------------------------------------------------------------------------- report sections


def outcome_table(results: Results) -> str:
    """Per network and operator: runs, solve rate, the score's median [IQR] (and the final
    fitness where the score is evaluations to solve), the rank test, the commits run on."""
    by_evaluations = results.experiment.score == "evaluations"
    header = ["domain", "operator", "runs", "solved (95% CI)",
              *(["evaluations to solve: median [IQR] (solved runs)"] if by_evaluations else []),
              "final fitness: median [IQR]", "vs control: Mann-Whitney", "commit"]
    rows = []
    for domain in results.domains:
        for operator in results.operators:
            runs = results.runs(domain, operator)
            if not runs:
                continue
            values = [spread([r["best_fitness"] for r in runs])]
            if by_evaluations:
                solved = [r["evaluations"] for r in runs if r["solved"]]
                values.insert(0, f"{spread(solved)} ({len(solved)} solved)")
            versus = ("—" if operator == "control"
                      else rank_text(results.compare(domain, operator, "control")))
            rows.append([results.label(domain), operator, str(len(runs)),
                         str(results.solve_rate(domain, operator)), *values, versus,
                         commits(runs)])
    return table(header, rows)


def commits(records: Iterable[dict[str, Any]]) -> str:
    """The code the records ran on: short commits, `+dirty` where files differed from it."""
    found = sorted({(r["code"]["commit"] or "unknown")[:10]
                    + ("+dirty" if r["code"]["dirty"] else "") for r in records})
    return ", ".join(found)


def settings_text(results: Results) -> str:
    """The settings the runs used, per domain, and where they are smaller than the paper's."""
    lines, smaller = [], []
    for domain in results.domains:
        configs = [r["config"] for op in results.operators for r in results.runs(domain, op)]
        described = " / ".join(ordered((describe(c) for c in configs), []))
        lines.append(f"- {results.label(domain)}: {described}; seeds per operator: "
                     f"{min_max(len(results.runs(domain, op)) for op in results.operators)}.")
        for key, paper in results.experiment.paper.items():
            used = {dotted(c, key) for c in configs}
            if any(v is None or v < paper for v in used):
                smaller.append(f"{results.label(domain)}: `{key}` = "
                               f"{', '.join(map(_plain, sorted(used, key=str)))} "
                               f"(the paper's runner: {_plain(paper)})")
    text = "Settings of the runs found:\n\n" + "\n".join(lines)
    if smaller:
        text += ("\n\n**Smaller than the paper's runner** (its values are the reference code's "
                 "defaults; the paper's own are unverified):\n\n"
                 + "\n".join(f"- {s}" for s in smaller))
    elif results.experiment.paper:
        text += "\n\nBudgets and population match the paper's runner."
    return text


def _plain(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def min_max(values: Iterable[int]) -> str:
    values = [v for v in values if v]
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}–{high}"


def describe(config: dict[str, Any]) -> str:
    """A run's network, algorithm and budget in words."""
    alg, budget, policy = config["algorithm"], config["budget"], config["policy"]
    options = ", ".join(f"{k} {v}" for k, v in policy["options"].items())
    algorithm = {
        "hillclimb": "(1+1) hill climber",
        "steady_state": (f"steady-state GA, population {alg['population']}, tournament "
                         f"{alg['tournament']}, batches of {alg['batch']}"),
        "truncation": (f"truncation GA, population {alg['population']}, parents "
                       f"{alg['parents'] or max(1, alg['population'] // 5)}, elites "
                       f"{alg['elites']}, elite re-evaluated on {alg['elite_episodes']} "
                       f"episodes"),
    }[alg["name"]]
    limits = [f"{budget[k]:,} {k}" for k in ("generations", "evaluations") if budget[k]]
    episodes = config["env"]["episodes"]
    return (f"policy {policy['name']} ({options or 'defaults'}), {algorithm}, budget "
            f"{' / '.join(limits)}, {episodes} episode{'s' * (episodes > 1)} per evaluation")


def magnitude_table(all_results: list[Results]) -> str:
    """Per experiment and operator: the magnitude, its meaning, options, measured divergence
    (the median over runs of each run's median per generation)."""
    rows = []
    for results in all_results:
        for operator in results.operators:
            runs = [r for d in results.domains for r in results.runs(d, operator)]
            magnitudes = sorted({r["magnitude"] for r in runs})
            options = sorted({json.dumps(r["options"], sort_keys=True) for r in runs})
            divergences = [r["divergence"] for r in runs if r["divergence"] is not None]
            divergence = float(np.median(divergences)) if divergences else None
            rows.append([results.experiment.name, operator,
                         ", ".join(number(m) for m in magnitudes),
                         MUTATIONS.get(operator).magnitude_means,
                         ", ".join(o.strip("{}").replace('"', "") or "—" for o in options),
                         "—" if divergence is None else f"{divergence:.2g}"])
    return table(["experiment", "operator", "magnitude", "meaning", "options",
                  "median divergence per mutation"], rows)


# --------------------------------------------------------------------------- the claims


@dataclass
class Claim:
    """One of the paper's claims, its verdict and the numbers behind it."""

    text: str
    status: str
    evidence: str


Comparison = tuple[RankTest | None, str]
"""A rank test of an operator against a baseline on one domain, and its line of evidence."""


def significant(comparison: Comparison) -> bool:
    return comparison[0] is not None and comparison[0].significant()


def tally(comparisons: list[Comparison]) -> tuple[int, int]:
    """(significantly better, significantly worse) among comparisons (effect > 0.5: better)."""
    wins = sum(significant(c) and c[0].effect > 0.5 for c in comparisons)
    losses = sum(significant(c) and c[0].effect < 0.5 for c in comparisons)
    return wins, losses


def verdict(wins: int, losses: int, total: int) -> str:
    if total and wins == total:
        return "reproduced"
    if wins > losses:
        return "partly"
    return "not reproduced"


def versus(results: Results, domain: tuple[str, str], operators: Sequence[str],
           baseline: str, prefix: str = "") -> list[Comparison]:
    """`operators` against `baseline` on one domain (those with runs of both)."""
    found = []
    for operator in operators:
        rate, base = results.solve_rate(domain, operator), results.solve_rate(domain, baseline)
        if rate is None or base is None:
            continue
        test = results.compare(domain, operator, baseline)
        line = (f"{prefix}{results.label(domain)} {operator} {rate.successes}/{rate.trials} vs "
                f"{baseline} {base.successes}/{base.trials} solved")
        if unsolved_ranking(results, rate, base):
            medians = [number(float(np.median([r["best_fitness"] for r in results.runs(
                domain, op)]))) for op in (operator, baseline)]
            line += f", so ranked on final fitness: median {medians[0]} vs {medians[1]}"
        found.append((test, f"{line}, {rank_text(test)}"))
    return found


def unsolved_ranking(results: Results, *rates: Proportion) -> bool:
    """Whether a comparison on evaluations to solve rests on final fitness alone: no run of
    either side solved."""
    return results.experiment.score == "evaluations" and not any(r.successes for r in rates)


ON_FITNESS_ONLY = " (on final fitness only: no run solved)"
"""Appended to a verdict on evaluations to solve where no compared run solved."""


def evidence_of(comparisons: list[Comparison]) -> str:
    return "; ".join(line for _, line in comparisons)


def claim_washout(found: dict[str, Results]) -> Claim:
    text = "SM-G-SUM fails on the washout task, where SM-G-ABS and SM-G-SO succeed."
    results = found.get("illustrative")
    domain = ("washout", "toy2w")
    if results is None or not all(results.runs(domain, op) for op in PAPER_SM_G):
        return Claim(text, "not tested", "the illustrative washout runs of all three are missing")
    found = versus(results, domain, ("SM-G-ABS", "SM-G-SO"), "SM-G-SUM")
    return Claim(text, verdict(*tally(found), len(found)), evidence_of(found))


def claim_versus_control(found: dict[str, Results], experiment: str,
                         domains: Callable[[Results], list[tuple[str, str]]],
                         text: str) -> Claim:
    """SM-G-SUM/ABS/SO against control on some domains of `experiment`."""
    results = found.get(experiment)
    chosen = domains(results) if results is not None else []
    compared = [c for domain in chosen for c in versus(results, domain, PAPER_SM_G, "control")]
    if not compared:
        return Claim(text, "not tested", f"no {experiment} runs of control and SM-G")
    status = verdict(*tally(compared), len(compared))
    rates = [rate for domain in chosen for op in (*PAPER_SM_G, "control")
             if (rate := results.solve_rate(domain, op)) is not None]
    if unsolved_ranking(results, *rates):
        status += ON_FITNESS_ONLY
    return Claim(text, status, evidence_of(compared))


def depth_of(domain: tuple[str, str]) -> int:
    """The hidden layers of a maze domain ("d32" -> 32)."""
    return int(domain[1].lstrip("d"))


def gap_widens(results: Results | None) -> tuple[bool | None, list[str]]:
    """Whether SM-G-SUM's and SM-G-ABS's solve-rate gap to control is larger at the deepest
    depth than at the shallowest (None: fewer than two depths to compare), with the gaps and,
    for the reader (the verdict does not use them), each depth's rank effect A against
    control on the score, which also ranks the unsolved runs."""
    verdicts, text = [], []
    for operator in ("SM-G-SUM", "SM-G-ABS"):
        gaps, effects = [], []
        for domain in results.domains if results is not None else []:
            rate, control = (results.solve_rate(domain, operator),
                             results.solve_rate(domain, "control"))
            if rate is not None and control is not None:
                gaps.append((results.label(domain), rate.rate - control.rate))
                test = results.compare(domain, operator, "control")
                effects.append(f"{results.label(domain)} "
                               + ("—" if test is None else f"{test.effect:.2f}"))
        if len(gaps) >= 2:
            verdicts.append(gaps[-1][1] > gaps[0][1])
            text.append(f"{operator} − control solve rate: "
                        + ", ".join(f"{label} {gap:+.2f}" for label, gap in gaps)
                        + f" (A vs control: {', '.join(effects)})")
    return (all(verdicts) if verdicts else None), text


def claim_depth(found: dict[str, Results]) -> Claim:
    text = "SM-G beats control on the deep maze, and the gap widens with depth."
    deep = claim_versus_control(
        found, "maze", lambda r: [d for d in r.domains if depth_of(d) >= 32], text)
    widens, gaps = gap_widens(found.get("depth"))
    holds, evidence = [], []
    if deep.status == "not tested":
        evidence.append("deep maze: not run")
    else:
        holds.append({"reproduced": 1.0, "partly": 0.5}.get(
            deep.status.removesuffix(ON_FITNESS_ONLY), 0.0))
        evidence.append(f"deep maze ({deep.status}): {deep.evidence}")
    if widens is None:
        evidence.append("depth sweep: not run")
    else:
        holds.append(float(widens))
        evidence.append(f"depth sweep (gap {'widens' if widens else 'does not widen'}): "
                        + "; ".join(gaps))
    if not holds:
        status = "not tested"
    elif len(holds) == 2 and min(holds) == 1.0:
        status = "reproduced"
    else:
        status = "partly" if max(holds) > 0 else "not reproduced"
    return Claim(text, status, "; ".join(evidence))


def claim_sm_r(found: dict[str, Results]) -> Claim:
    text = "SM-R helps less than SM-G."
    compared = [c for name in ("illustrative", "parity", "maze") if name in found
                for domain in found[name].domains
                for c in versus(found[name], domain, PAPER_SM_G, "SM-R", f"{name} ")]
    if not compared:
        return Claim(text, "not tested", "no experiment with both SM-R and SM-G runs")
    wins, losses = tally(compared)
    status = ("reproduced" if 2 * wins >= len(compared) and not losses
              else "not reproduced" if losses >= wins else "partly")
    shown = [c for c in compared if significant(c)]
    return Claim(text, status, f"SM-G significantly better in {wins} and worse in {losses} of "
                               f"{len(compared)} comparisons (domain × SM-G operator)"
                               + (f": {evidence_of(shown)}" if shown else ""))


def claims(found: dict[str, Results]) -> list[Claim]:
    parity = claim_versus_control(found, "parity", lambda r: r.domains,
                                  "SM-G beats control on recurrent parity.")
    return [claim_washout(found), parity, claim_depth(found), claim_sm_r(found)]


CLAIM_RULES = (
    "Verdicts: a comparison counts when its two-sided Mann-Whitney U test gives p < 0.05 "
    "(no correction for multiple comparisons). *Washout*: SM-G-ABS and SM-G-SO each "
    "compared with SM-G-SUM on final fitness. *Parity* and *deep maze*: SM-G-SUM, SM-G-ABS "
    "and SM-G-SO each compared with control on evaluations to solve (unsolved runs rank "
    "below every solved run and, among themselves, by final fitness), "
    "per network (maze: depth ≥ 32). Reproduced when every comparison favours the paper's "
    "side, partly when more do than go against it, else not reproduced. *Gap widens*: for "
    "SM-G-SUM and SM-G-ABS, the solve-rate gap to control at the deepest depth exceeds the "
    "gap at the shallowest (each depth's A against control is shown beside it, but not used); "
    "the depth claim is reproduced only when both of its parts hold. "
    "Where no compared run solved, a verdict on evaluations to solve rests on final fitness "
    "alone and says so. "
    "*SM-R*: each of SM-G-SUM/ABS/SO against SM-R per domain (illustrative, parity, maze); "
    "reproduced when SM-G wins at least half the comparisons and loses none, not reproduced "
    "when it loses at least as many as it wins."
)


# --------------------------------------------------------------------------- RESULTS.md


def write_report(data_dir: Path, out: Path) -> tuple[Path, list[str]]:
    """Write `out/RESULTS.md` and its figures from the records under `data_dir` alone.

    Returns the report's path and the figure files written.
    """
    records = [r for r in load_records(data_dir) if current_arithmetic(r)]
    by_experiment = defaultdict(list)
    for record in records:
        by_experiment[record["experiment"]].append(record)
    found = {name: Results(EXPERIMENTS[name], by_experiment[name])
             for name in EXPERIMENTS if by_experiment[name]}
    figures: list[str] = []
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Reproducing *Safe Mutations for Deep and Recurrent Neural Networks through Output "
        "Gradients* (Lehman, Chen, Clune & Stanley, GECCO 2018)",
        f"Written by `scripts/reproduce.py` on {stamp} from the {len(records)} records of "
        f"finished runs in `{data_dir}`. Every figure's caption gives the command that made "
        "its runs; running it again skips them and redraws the figures. The last column of "
        "each results table names the commit(s) its runs ran on.",
    ]
    if any(r["quick"] for r in records):
        parts.append("> **Quick runs.** Some or all of these runs were made with `--quick` "
                     "(one seed, tiny budgets): they check the pipeline and say nothing about "
                     "the paper's claims.")
    parts += ["## The paper's claims",
              "The claims come from the paper's abstract and the reference code's purpose; the "
              "paper's own numbers could not be retrieved, so results are compared with the "
              "claims, not with its figures.",
              table(["claim", "verdict", "numbers"],
                    [[c.text, f"**{c.status}**", c.evidence] for c in claims(found)]),
              CLAIM_RULES,
              "## Mutation magnitudes",
              MAGNITUDE_CHOICE,
              magnitude_table(list(found.values())),
              "Statistics in the tables: solve rates with 95% Wilson intervals; medians with "
              "the interquartile range in brackets; Mann-Whitney U (two-sided) against control "
              "on the experiment's score, with A the probability that a run of the operator "
              "scores better than a control run (0.5: no difference)."]
    for name, experiment in EXPERIMENTS.items():
        parts.append(f"## {experiment.title} (`{name}`)")
        results = found.get(name)
        if results is None:
            parts.append(f"Not run. Run it with `python scripts/reproduce.py {name}`.")
            continue
        parts += [experiment.setup, settings_text(results), outcome_table(results)]
        for draw in FIGURES[name]:
            for file, caption, shown in draw(results, out):
                figures.append(file)
                parts.append(f"![{caption}]({file})\n\n*{caption} Command: {commands(shown)}.*")
    out.mkdir(parents=True, exist_ok=True)
    report = out / "RESULTS.md"
    report.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return report, figures


# --------------------------------------------------------------------------- status


Triple = tuple[str, str, str]
"""(domain, network, operator): what a run's cost per evaluation depends on."""


def triple(record: dict[str, Any]) -> Triple:
    return record["domain"], record["network"], record["operator"]


def measured_rates(records: Iterable[dict[str, Any]]) -> dict[Triple, float]:
    """Core-seconds per evaluation per (domain, network, operator), pooled over its records
    (whatever their settings: the cost of an evaluation does not depend on the budget) but
    those of resumed runs, whose core-seconds cover only the part after the resume."""
    seconds: dict[Triple, float] = defaultdict(float)
    evaluations: dict[Triple, int] = defaultdict(int)
    for record in records:
        if not record.get("resumed") and record["evaluations"] > 0:
            seconds[triple(record)] += record["core_seconds"]
            evaluations[triple(record)] += record["evaluations"]
    return {key: seconds[key] / evaluations[key] for key in seconds}


def planned_evaluations(config: Config) -> int:
    """The evaluations a run of `config` makes if it does not stop early: its evaluation
    budget, else its generations times the population (one per generation for hillclimb)."""
    budget = config.budget
    if budget.evaluations is not None:
        return budget.evaluations
    per_generation = 1 if config.algorithm.name == "hillclimb" else config.algorithm.population
    return (budget.generations or 0) * per_generation


def without_seed(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k != "seed"}


def expected_evaluations(config: Config, peers: list[dict[str, Any]]) -> float:
    """The evaluations a pending run of `config` is expected to make: the mean of its
    finished peers (same experiment, network and operator) at the same settings, since runs
    that solve stop early; the planned budget where there are none."""
    wanted = without_seed(result_settings(config))
    same = [r["evaluations"] for r in peers if without_seed(r["config"]) == wanted]
    return float(np.mean(same)) if same else float(planned_evaluations(config))


@dataclass
class Tally:
    """Runs done and pending in a group of cells, and the core-seconds the pending ones need."""

    done: int = 0
    remaining: int = 0
    elsewhere: int = 0
    core_seconds: float = 0.0


def tally_status(cells: list[Cell], settings: Settings) -> tuple[dict[tuple[str, str], Tally],
                                                                 set[Triple]]:
    """Per (experiment, cell group) the runs done and remaining, and the core-seconds left.

    A cell is done when its record was made at its settings; a record at other settings
    counts as `elsewhere` and its cell as remaining. Returns the tallies and the (domain,
    network, operator) triples that had no record to measure a rate from (`FALLBACK_RATE`).
    """
    records = load_records(settings.data_dir)
    rates = measured_rates(records)
    peers: dict[tuple[str, Triple], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        peers[(record["experiment"], triple(record))].append(record)
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    unmeasured: set[Triple] = set()
    for cell in cells:
        config = cell_config(cell, settings)
        record = read_record(cell.record_path(settings.data_dir))
        group = tallies[(cell.experiment.name, f"{cell.domain.name}-{cell.domain.network}")]
        if recorded(record, config):
            group.done += 1
            continue
        key = (cell.domain.name, cell.domain.network, cell.operator)
        if key not in rates:
            unmeasured.add(key)
        group.remaining += 1
        group.elsewhere += record is not None
        evaluations = expected_evaluations(config, peers[(cell.experiment.name, key)])
        group.core_seconds += evaluations * rates.get(key, FALLBACK_RATE)
    return tallies, unmeasured


def status_text(cells: list[Cell], settings: Settings) -> str:
    """The `status` command's table: done and remaining runs and core-hours left per
    experiment and cell group, then the totals and where the rates come from."""
    tallies, unmeasured = tally_status(cells, settings)
    rows = [[experiment, group, str(t.done), str(t.remaining), str(t.elsewhere),
             f"{t.core_seconds / 3600:.2f}"] for (experiment, group), t in tallies.items()]
    total = Tally(*(sum(getattr(t, f) for t in tallies.values())
                    for f in ("done", "remaining", "elsewhere", "core_seconds")))
    rows.append(["all", "", str(total.done), str(total.remaining), str(total.elsewhere),
                 f"{total.core_seconds / 3600:.2f}"])
    widths = [max(len(row[i]) for row in [STATUS_HEADER, *rows]) for i in range(6)]
    lines = ["  ".join(v.ljust(w) if i < 2 else v.rjust(w)
                       for i, (v, w) in enumerate(zip(row, widths, strict=True)))
             for row in [STATUS_HEADER, *rows]]
    triples = {(c.domain.name, c.domain.network, c.operator) for c in cells}
    fallback = (f"; the others assume {FALLBACK_RATE * 1000:g} ms per evaluation"
                if unmeasured else "")
    lines += ["", f"Records in {settings.data_dir}. Rates (core-seconds per evaluation) "
                  f"measured for {len(triples - unmeasured)} of {len(triples)} domain/network/"
                  f"operator combinations{fallback}. A pending run is costed at the mean "
                  "evaluations of its finished peers at the same settings (solved runs stop "
                  "early), else at its full budget. 'other settings': records made at "
                  "settings that are not the grid's now, or by code that computed their "
                  "operator's children otherwise (ARITHMETIC_SINCE); their cells are pending."]
    return "\n".join(lines)


STATUS_HEADER = ["experiment", "cells", "done", "remaining", "other settings", "core-hours left"]


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="reproduce.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                        help=f"experiments to run: {', '.join(EXPERIMENTS)} or all; 'status' "
                        "first: print the runs done and left of them (default all)")
    parser.add_argument("--seeds", type=int, help="seeds per cell (default: 10 illustrative, "
                        "maze depth 7 and parity rnn, 5 others; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="one seed, tiny budgets: checks the pipeline in minutes")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="evaluation backend for every run (default: each config's)")
    parser.add_argument("--out", type=Path, help="where RESULTS.md and the figures go "
                        "(default docs/results; runs/reproduce-quick/results with --quick)")
    parser.add_argument("--runs-dir", type=Path, help="where the runs go (default "
                        "runs/reproduce; runs/reproduce-quick with --quick)")
    parser.add_argument("--data-dir", type=Path, help="where the finished runs' records go "
                        f"(default {DATA_DIR}; runs/reproduce-quick/data with --quick)")
    parser.add_argument("--operators", type=lambda s: s.split(","),
                        help="only these operators, comma-separated (e.g. control,SM-G-ABS)")
    parser.add_argument("--networks", type=lambda s: s.split(","),
                        help="only these networks, comma-separated (e.g. d7,rnn)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every run, e.g. budget.evaluations=20000")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing; rewrite the report from the records found")
    parser.add_argument("--commit-records", action="store_true",
                        help="git-commit each record as it is written (that file only)")
    args = parser.parse_args(argv)
    args.status = args.experiments[:1] == ["status"]
    if args.status:
        args.experiments = args.experiments[1:] or ["all"]
    if not args.experiments and not args.report_only:
        parser.error("name at least one experiment (or 'all'), or pass --report-only")
    unknown = [e for e in args.experiments if e not in (*EXPERIMENTS, "all")]
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}; valid: "
                     f"{', '.join(EXPERIMENTS)}, all")
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.operators:
        try:
            args.operators = [MUTATIONS.canonical(op) for op in args.operators]
        except ValueError as error:
            parser.error(f"--operators: {error}")
    networks = {d.network for e in EXPERIMENTS.values() for d in e.domains}
    if args.networks and not set(args.networks) <= networks:
        parser.error(f"--networks: unknown {', '.join(sorted(set(args.networks) - networks))}; "
                     f"valid: {', '.join(sorted(networks))}")
    quick_dir = Path("runs/reproduce-quick")
    args.runs_dir = args.runs_dir or (quick_dir if args.quick else Path("runs/reproduce"))
    args.data_dir = args.data_dir or (quick_dir / "data" if args.quick else DATA_DIR)
    args.out = args.out or (quick_dir / "results" if args.quick else Path("docs/results"))
    if "all" in args.experiments:
        args.experiments = list(EXPERIMENTS)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Small networks: one thread is fastest, and on shared cores several threads per process
    # oversubscribe them (measured: a 10x slowdown).
    torch.set_num_threads(1)
    argv = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["python", "scripts/reproduce.py", *argv])
    settings = Settings(args.runs_dir, args.quick, args.backend, tuple(args.sets), command,
                        args.data_dir, args.commit_records)
    cells = build_grid(dict.fromkeys(args.experiments), args.seeds, args.quick,
                       args.operators, args.networks)
    if args.status:
        print(status_text(cells, settings))
        return 0
    if not args.report_only:
        if args.quick:
            print("--quick: one seed; reduced settings per experiment:")
            for name in dict.fromkeys(args.experiments):
                print(f"  {name}: {' '.join(EXPERIMENTS[name].quick)}")
        print(f"{len(cells)} runs in {args.runs_dir}, records in {args.data_dir}", flush=True)
        start = time.perf_counter()
        try:
            counts = run_grid(cells, settings)
        except KeyboardInterrupt:
            print("interrupted; the run in progress saved a checkpoint: the same command "
                  "resumes the grid")
            return 130
        print(f"ran {counts['ran']}, resumed {counts['resumed']}, skipped {counts['skipped']} "
              f"(finished before) in {time.perf_counter() - start:.0f} s")
    report, figures = write_report(args.data_dir, args.out)
    print(f"wrote {report} and {len(figures)} figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
