"""The experiment grid as data: the paper's experiments, their domains, operators, magnitudes
and seeds (`EXPERIMENTS`, `MAGNITUDES`), and the cells they expand to, each one run's config.

A cell is (experiment, domain, network, operator, seed): one `smevo.train` run in
`<runs-dir>/<experiment>/<domain>-<network>-<operator>/seed<N>` whose record lands in
`<data-dir>/<experiment>/<domain>-<network>-<operator>/seed<N>.json`. Changing a cell's
settings here leaves its old record at other settings, so the cell is pending again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smevo.config import Config, apply_overrides, load_config
from smevo.mutations import mutation_options

ROOT = Path(__file__).resolve().parents[2]
"""The repository: the domains' config files are relative to it, and git runs in it (the
experiments run from a checkout, which holds the configs and the history records are dated by)."""
DATA_DIR = Path("docs/results/data")
"""Where finished runs leave their records (committed; the report is rebuilt from them)."""
TRAJECTORY_SEED = 0
"""The illustrative runs whose weight trajectories are recorded and drawn."""

OPERATORS = ("control", "SM-R", "SM-G-SUM", "SM-G-ABS", "SM-G-SO", "SM-G-FO")
PAPER_SM_G = ("SM-G-SUM", "SM-G-ABS", "SM-G-SO")
"""The paper's gradient operators (SM-G-FO is this project's)."""
MAGNITUDES: dict[str, dict[str, float]] = {
    "toy": dict.fromkeys(OPERATORS, 0.01),
    "net": {"control": 0.05, "SM-R": 0.01, "SM-G-SUM": 0.1, "SM-G-ABS": 0.1, "SM-G-SO": 0.1,
            "SM-G-FO": 0.01},
    "unclipped": {"control": 0.05, "SM-R": 0.01, "SM-G-SUM": 0.01, "SM-G-ABS": 0.01,
                  "SM-G-SO": 0.01, "SM-G-FO": 0.01},
    "minatar-shallow": {"control": 0.04, "SM-G-SUM": 0.003, "SM-G-ABS": 0.003},
    "minatar-deep": {"control": 0.04, "SM-G-SUM": 0.0037, "SM-G-ABS": 0.0037},
}
MAGNITUDE_CHOICE = (
    "The paper's per-operator magnitudes are in its appendix, which could not be verified, so "
    "these are chosen: the reference's default 0.01 for every operator on the toy; on "
    "networks, where SM-G's sensitivities are mean-normalised, σ = 0.1 for a weight of "
    "average sensitivity, control σ = 0.05 (the reference's `mutate_plain` default), and a "
    "target divergence of 0.01 for SM-R and SM-G-FO (the reference runner's default). "
    "Parity has no weight clip (the reference's had none), and the relative floor lets a "
    "weight of near-zero sensitivity move 100 σ: at σ = 0.1 a SM-G-SUM child's median "
    "divergence on parity rnn was 52, 180 times control's 0.29, so on parity SM-G uses the "
    "reference runner's default σ = 0.01 (median divergence 0.12–0.71 in two 30,000-"
    "evaluation pilot runs), and the earlier σ = 0.1 records stay out of the tables. "
    "SM-G-ABS solves no parity rnn run at σ = 0.01, where its children diverge ~50 times "
    "less than control's; 100,000-evaluation pilots of 3 seeds each at σ = 0.003 and 0.05 and "
    "with the reference's own arithmetic (no mean normalisation, absolute floor 0.01, σ = "
    "0.01: control's divergence, ~0.18) solved none either (final fitness −0.35 to −0.65), "
    "so its failure there is not its step size. Nor is it what smevo measures: the "
    "reference measured parity's class probabilities (the softmax of the logits) at each "
    "sequence's last step, the only output its fitness reads, where smevo measures the raw "
    "logits at every step; pilots measuring as the reference did (3 seeds, 100,000 "
    "evaluations each, records kept out of the data) solved none either: SM-G-ABS −0.48, "
    "−0.11, −0.34 at σ = 0.01 and −0.08, −0.23, −0.35 with the reference's arithmetic as "
    "well; SM-G-SUM −0.50, −0.32, −0.11 and, with the reference's arithmetic (sums, no "
    "normalisation), −0.05, −0.19, −0.37 (its grid runs: 1 of 10 solved, median −0.15). "
    "SM-G-SUM's loss there is its step size: at σ = 0.003, where its children diverge a "
    "median 0.17 (control's 0.37, its own at σ = 0.01 0.66), it solved 6 of 10 pilot runs "
    "(`python scripts/reproduce.py parity --networks rnn --operators SM-G-SUM --seeds 10 "
    "--set mutation.magnitude=0.003`, with their own `--runs-dir` and `--data-dir`; 57,450 "
    "to 92,750 evaluations), level with control's 7 of 10 (p = 0.73, A = 0.45) but no better. "
    "MinAtar's are per network, the calibration in `configs/minatar/shallow.yaml` and "
    "`deep.yaml`: the magnitude at which a parent's children diverge by a median of ~0.01 "
    "(SM-R's target), over parents at initialisation (5 games × 3 seeds) and after 15 control "
    "generations: control 0.04 on both nets, SM-G-SUM and SM-G-ABS 0.003 on the shallow net "
    "and 0.0037 on the deep one (on sparse boolean frames SM-G's sensitivities span four "
    "decades, so its average step is ~20 times its magnitude). The "
    "last column is the measured divergence: the mean squared output change of a child "
    "against its parent on the parent's experiences (median over generations, then over runs)."
)
"""The report's account of `MAGNITUDES`: edit the two together."""
UNCLIPPED = {"control": {"weight_clip"}}
"""Options an operator accepts but the reference did not give it (reference §2.6: its plain
mutation has no final clip), left out of the paper's cells to stay faithful."""
RUN_OVERRIDES = ("logging.quiet=true", "logging.histogram_every=0")
"""For every cell: no console progress per run (the runner prints one line per run)."""
STEADY_STATE = ("algorithm.elite_episodes=0",)
"""Deterministic domains: the champion's fitness is its evaluation (no re-evaluation, which
with `index_episodes` would cover only the first sequences)."""
MAZE = "configs/maze-shallow.yaml"
DEPTHS = (1, 4, 16, 32, 64)
MINATAR_GAMES = ("Breakout-v1", "SpaceInvaders-v1", "Asterix-v1")
"""The pixel experiment's games, named as their env ids `MinAtar/<game>` (a domain's name is
a folder name, so without the namespace)."""


@dataclass(frozen=True)
class Domain:
    """A task and network: `config` (relative to the repository) plus `overrides`; `seeds`,
    when given, replaces the experiment's seeds per cell for this domain, and `magnitudes`
    the experiment's `MAGNITUDES` entry (MinAtar's magnitudes are calibrated per network)."""

    name: str
    network: str
    config: str
    overrides: tuple[str, ...] = ()
    seeds: int | None = None
    magnitudes: str | None = None


@dataclass(frozen=True)
class Experiment:
    """One of the paper's experiments as a grid over domains, operators and seeds.

    `score` is what runs are compared on: "fitness" (final fitness, higher is better), "fresh"
    (the champion's reward on fresh episodes; needs `extra="fresh_episodes"`) or "evaluations"
    (evaluations to solve; unsolved runs rank last, by final fitness). `paper` maps
    config keys to the values of the paper's runner, to flag where the runs were smaller.
    `extra` names what is recorded after a run ("trajectory", "end_position" or
    "fresh_episodes").
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

    def magnitude(self, domain: str, network: str, operator: str) -> float:
        """The operator's magnitude on (`domain`, `network`): from the domain's `MAGNITUDES`
        entry where it names one, else the experiment's (also for a domain no longer in it)."""
        own = next((d.magnitudes for d in self.domains
                    if (d.name, d.network) == (domain, network)), None)
        return MAGNITUDES[own or self.magnitudes][operator]


STEADY_STATE_PAPER = {"algorithm.population": 250, "algorithm.options.tournament": 5,
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
        **{**STEADY_STATE_GRID, "magnitudes": "unclipped"},
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
            "Not in the paper: the operators on standard tasks, run as a user runs them, with the "
            "shipped configs `configs/cartpole.yaml`, `lunarlander.yaml` and `bipedalwalker.yaml` "
            "unchanged but for the budget and the backend (`vectorized` in one process: every "
            "backend gives the same run). Their generational truncation GA copies the elites and "
            "validates the best of them on extra episodes; a run stops when the validated elite "
            "reaches the env's reward threshold (CartPole 475, LunarLander 200 on 100 validation "
            "episodes, the env's own criterion; BipedalWalker 300) and reaches it again on as many"
            " new episodes (`budget.confirm_solved`: a first crossing of a noisy mean is biased "
            "upward), else at its budget: CartPole "
            "the config's 30 generations (1,920 evaluations); LunarLander 100 generations (20,000 "
            "evaluations of 5 episodes, up to ~0.5 core-hours; seed 0 of SM-G-SUM solved after 62 "
            "in 23 minutes on a shared 2-core machine); BipedalWalker 20 generations (5,120 "
            "evaluations of full-length episodes, up to 1,600 steps with observations standardised,"
            " so its returns compare with the 300-point threshold; about 0.55 core-hours, ~0.38 "
            "core-seconds per evaluation on the 2-core machine). Each run's champion (`best.pt`) is"
            " then scored on 100 fresh episodes (seeds the trainer never used), as `smevo eval RUN "
            "--episodes 100 --seed 1000000` plays them."
        ),
        domains=(
            Domain("CartPole-v1", "mlp", "configs/cartpole.yaml"),
            Domain("LunarLander-v3", "mlp", "configs/lunarlander.yaml",
                   ("budget.generations=100",)),
            Domain("BipedalWalker-v3", "mlp", "configs/bipedalwalker.yaml",
                   ("budget.generations=20",)),
        ),
        operators=("control", "SM-G-SUM", "SM-G-ABS"),
        magnitudes="net",
        seeds=5,
        score="evaluations",
        overrides=("evaluation.backend=vectorized",),
        quick=("algorithm.population=16", "algorithm.options.parents=null",
               "algorithm.elite_episodes=2", "env.max_steps=50", "budget.generations=3"),
        extra="fresh_episodes",
    ),
    Experiment(
        name="gridmaze",
        title="Grid-maze evolution: non-plastic, plastic and neuromodulated RNNs",
        setup=(
            "Backpropamine's grid maze (`smevo/GridMaze-v0`, size 11, 200 steps per episode, "
            "reward 10 per goal reached, then a teleport; the goal stays put within an "
            "episode and moves between episodes, so only what a net learns within the "
            "episode helps). Three parameter-matched networks from "
            "`configs/gridmaze-{rnn,plastic,neuromod}.yaml`: a tanh RNN of 26 units (1,278 "
            "parameters), a Hebbian plastic RNN of 20 units with learned eta and "
            "per-connection alpha (1,245), a simple-neuromodulated plastic RNN of 20 units "
            "(tanh modulator, fanout, trace clipped to ±2; 1,305). Each is evolved by the "
            "configs' truncation GA (population 50, 10 parents, 1 elite re-evaluated on 8 "
            "episodes, fitness the mean reward over 4 episodes) for 20,000 evaluations; "
            "SM-G-ABS measures the parent's sensitivities on 2 of its recorded episodes and "
            "clips each weight's change to 0.2; control runs unclipped, as elsewhere. The papers "
            "trained these nets by A2C (about 6 million episodes); here evolution sees about "
            "80,000 per run. Each run's champion (`best.pt`) is then scored on fresh "
            "episodes, seeds the trainer never used: that reward, against the random and "
            "oracle levels, is the result; the validated fitness is the best of noisy "
            "elites and overstates it. The step sizes are the configs' (control σ 0.05, "
            "SM-G-ABS σ 0.1), chosen before these runs; their children's divergence grows "
            "with the evolved weights, SM-G-ABS's ~30 times as fast as control's (its floor "
            "steps, each the full clip, random-walk insensitive weights up). Pilots kept out "
            "of the tables (5 seeds each, `--set mutation.magnitude=M` with their own "
            "`--runs-dir` and `--data-dir`, 2026-12-04; records but the first's in "
            "`docs/results/pilots/gridmaze-magnitudes/`), fresh medians: rnn SM-G-ABS σ 0.03 "
            "21.4 (25.0, 18.2, 21.4, 26.6, 21.0) against σ 0.1's 14.1; rnn control σ 0.02 "
            "21.6 (7.5, 24.5, 21.6, 20.0, 37.6) and σ 0.01 10.1 against σ 0.05's 14.7; "
            "plastic control σ 0.02 24.6 (18.9, 17.8, 24.6, 42.6, 28.1) against σ 0.05's "
            "23.1. With both operators at their better step the rnn's are level (SM-G-ABS σ "
            "0.03 against control σ 0.02: p = 1.0, A = 0.52): smaller steps than the configs' "
            "help both, and neither operator is ahead at its best: plastic SM-G-ABS at σ "
            "0.03 scored 22.4 (22.4, 29.1, 11.0, 14.7, 23.9) against σ 0.1's 14.2, level with "
            "plastic control at σ 0.02 (p = 0.42, A = 0.32)."
        ),
        domains=tuple(Domain("gridmaze", net, f"configs/gridmaze-{net}.yaml")
                      for net in ("rnn", "plastic", "neuromod")),
        operators=("control", "SM-G-ABS"),
        magnitudes="net",
        seeds=5,
        score="fitness",
        overrides=("budget.generations=null", "budget.evaluations=20000"),
        quick=("algorithm.population=8", "algorithm.options.parents=2",
               "algorithm.elite_episodes=2", "env.episodes=1", "env.max_steps=50",
               "mutation.archive_size=1", "budget.evaluations=16"),
        extra="fresh_episodes",
    ),
    Experiment(
        name="minatar",
        title="MinAtar from pixels: shallow and deep convolutional nets",
        setup=(
            "The paper's claim for raw pixels, on MinAtar (10x10 boolean frames, actions "
            "sticky with probability 0.1, so every episode differs) in place of Atari: "
            "Breakout, SpaceInvaders and Asterix (-v1: each game's minimal action set), each "
            "with the shipped configs `configs/minatar/shallow.yaml` (2 convolutions, 30,755 "
            "parameters on Breakout) and `deep.yaml` (8 convolutions, 29,907: as many "
            "parameters, four times the depth), unchanged but for the game, the budget and "
            "the backend (`vectorized`), at their magnitudes calibrated per network. Their "
            "truncation GA (population 64, 10 parents, 1 elite re-evaluated on 3 episodes; "
            "1 episode of at most 1,000 frames per evaluation) runs for 1 million frames "
            "(env steps, validation included). The issue aimed at 5 million frames per run: "
            "`--set budget.env_steps=5000000` runs that, at 5 times the cost. When these runs "
            "were planned the configs' rollouts ran at ~2,000–5,000 frames/s on one core "
            "(shallow) and ~600–1,800 (deep), and SM-G adds its sensitivity pass and the "
            "children's divergences on 100 frames each: 10,000-frame pilots cost 0.3–0.5 ms "
            "per frame shallow and 0.7–1.0 deep, all included, so the 90 runs needed roughly "
            "16 core-hours at 1 million frames and 80 at 5 million (`status` costs them from "
            "the pilots, then from the records). These runs stepped with torch's float64 "
            "forward; since 0cadecb a "
            "`cnn` on the CPU steps with a C++ forward that gives the same rollouts "
            "(`tests/test_native_rollout.py`), and `scripts/bench_pixels.py` (population 64, "
            "one episode each, one thread) puts a worker at 0.57–0.66 of the env alone "
            "stepped by a batched NumPy net of the same shape with the shallow net (torch's "
            "forward, in the same runs: 0.44–0.48) and 0.84 with the deep one (0.61). "
            "Each run's champion (`best.pt`) is scored on 100 fresh episodes, seeds "
            "the trainer never used, and runs are compared on that reward: the validated "
            "fitness, the best of noisy elites, overstates the champion and is shown beside "
            "it."
        ),
        domains=tuple(Domain(game, net, f"configs/minatar/{net}.yaml",
                             (f"env.id=MinAtar/{game}",), magnitudes=f"minatar-{net}")
                      for game in MINATAR_GAMES for net in ("shallow", "deep")),
        operators=("control", "SM-G-SUM", "SM-G-ABS"),
        magnitudes="minatar-shallow",  # unused: every domain names its network's own
        seeds=5,
        score="fresh",
        overrides=("evaluation.backend=vectorized", "budget.generations=null",
                   "budget.env_steps=1000000"),
        quick=("algorithm.population=4", "algorithm.options.parents=2",
               "algorithm.elite_episodes=1", "env.max_steps=20", "mutation.archive_size=10",
               "budget.env_steps=100"),
        extra="fresh_episodes",
    ),
)}


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    experiment: Experiment
    domain: Domain
    operator: str
    seed: int

    @property
    def name(self) -> str:
        """`<domain>-<network>-<operator>`: the cell's folder name for runs and records."""
        return f"{self.domain.name}-{self.domain.network}-{self.operator}"

    @property
    def magnitude(self) -> float:
        """The operator's magnitude on this cell's domain (`Experiment.magnitude`)."""
        return self.experiment.magnitude(self.domain.name, self.domain.network, self.operator)

    def run_dir(self, runs_dir: Path) -> Path:
        """The folder of this cell's run under `runs_dir`."""
        return runs_dir / self.experiment.name / self.name / f"seed{self.seed}"

    def record_path(self, data_dir: Path) -> Path:
        """The path of this cell's record under `data_dir`."""
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
    domains: Sequence[str] | None = None,
) -> list[Cell]:
    """The cells of `experiments`: seeds 0..N-1 (N from `seeds`, else 1 with `quick`, else
    the domain's or the experiment's default), restricted to `operators`, `networks` (a
    domain's network, e.g. d7 or rnn) and `domains` (e.g. LunarLander-v3) when given."""
    cells = []
    for name in experiments:
        experiment = EXPERIMENTS[name]
        for domain in experiment.domains:
            if ((networks is not None and domain.network not in networks)
                    or (domains is not None and domain.name not in domains)):
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


def current_magnitude(record: dict[str, Any]) -> bool:
    """Whether `record` ran at its operator's magnitude on its domain in the grid now
    (`Experiment.magnitude`): a record at a superseded magnitude stays out of the report, as
    its cell runs again."""
    experiment = EXPERIMENTS.get(record["experiment"])
    if experiment is None:
        return False
    return record.get("magnitude") == experiment.magnitude(record["domain"], record["network"],
                                                           record["operator"])
