"""Evolve grid-maze agents: non-plastic RNN vs plastic vs neuromodulated, at equal evaluations.

Backpropamine's maze experiment (reference/plasticity.md, section 4) asks whether plasticity,
and neuromodulated plasticity more, helps an agent that must find an invisible goal and then
return to it. The papers trained by A2C; here each network is evolved with smevo's truncation
GA and SM-G-ABS from `configs/gridmaze-{rnn,plastic,neuromod}.yaml` (parameter-matched,
~1.25-1.3k parameters), scaled down by `--set`-style overrides to fit a CPU budget: every run
gets the same population and generations, so the same number of evaluations. Each run's
champion (`best.pt`) is then scored on `--test-episodes` fresh episodes (seeds never seen in
training). Reported per network: median and inter-quartile range over seeds of the reward per
episode, for the trainer's validated champion and on the fresh episodes.

    python scripts/experiment_gridmaze.py            # the run written to docs/results/GRIDMAZE.md
    python scripts/experiment_gridmaze.py --quick    # a tiny version (a minute), for a smoke test

One process, one torch thread. The results section, with the exact command, is written to
`--out` (default docs/results/GRIDMAZE.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from smevo import train
from smevo.config import Config, apply_overrides, load_config
from smevo.evaluation import EvalSpec, EvalTask, ObsNormalizer, RolloutWorker

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("rnn", "plastic", "neuromod")
TEST_SEED = 1_000_000  # fresh-episode seeds start here, far from any training seed
# Reference levels at size 11, 300 episodes of 200 steps (reference/plasticity.md, section 4).
RANDOM_LEVEL, ORACLE_LEVEL = 7.6, 325.0


@dataclass
class Run:
    variant: str
    seed: int
    parameters: int
    evaluations: int
    env_steps: int
    seconds: float
    validated: float
    test: float
    curve: list[tuple[int, float]]  # (evaluations, validated best) per generation


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="runs per network (default 5)")
    parser.add_argument("--population", type=int, default=12, help="GA population (12)")
    parser.add_argument("--generations", type=int, default=8, help="generations per run (8)")
    parser.add_argument("--episodes", type=int, default=2,
                        help="episodes per fitness evaluation (2)")
    parser.add_argument("--archive", type=int, default=1,
                        help="recorded episodes kept per parent for SM-G-ABS (1)")
    parser.add_argument("--test-episodes", type=int, default=50,
                        help="fresh episodes to score each champion on (50)")
    parser.add_argument("--logdir", default="runs/experiment-gridmaze", help="run folders")
    parser.add_argument("--out", default=str(ROOT / "docs/results/GRIDMAZE.md"),
                        help="the results document to write")
    parser.add_argument("--quick", action="store_true",
                        help="tiny version: 2 seeds, population 4, 2 generations, 5 test episodes")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.population, args.generations, args.test_episodes = 2, 4, 2, 5
    return args


def overrides(args: argparse.Namespace, variant: str, seed: int) -> list[str]:
    """The scaled-down settings every network gets alike (the configs hold the rest)."""
    return [
        f"seed={seed}",
        f"algorithm.population={args.population}",
        f"algorithm.parents={max(1, args.population // 4)}",
        "algorithm.elite_episodes=4",
        f"env.episodes={args.episodes}",
        f"mutation.archive_size={args.archive}",
        f"budget.generations={args.generations}",
        "budget.stop_when_solved=false",
        "evaluation.backend=vectorized",
        f"logging.logdir={args.logdir}",
        f"logging.name={variant}-seed{seed}",
        "logging.quiet=true",
    ]


def fresh_episode_reward(config: Config, params: torch.Tensor, episodes: int) -> float:
    """Mean return of a genome on `episodes` fresh seeded episodes, all stepped at once."""
    worker = RolloutWorker(EvalSpec(config.env.id, config.env.kwargs, config.policy.name,
                                    config.policy.options))
    try:
        seeds = tuple(range(TEST_SEED, TEST_SEED + episodes))
        (result,) = worker.evaluate(params[None].numpy(), [EvalTask(0, seeds, 0)],
                                    ObsNormalizer(enabled=False))
    finally:
        worker.close()
    return float(np.mean(result.returns))


def run_one(args: argparse.Namespace, variant: str, seed: int) -> Run:
    config = apply_overrides(load_config(ROOT / f"configs/gridmaze-{variant}.yaml"),
                             overrides(args, variant, seed))
    start = time.perf_counter()
    result = train(config)
    seconds = time.perf_counter() - start
    lines = (result.run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    curve = [(int(r["progress/evaluations"]), float(r["fitness/champion"]))
             for r in map(json.loads, lines)]
    fresh = fresh_episode_reward(config, result.best_params, args.test_episodes)
    return Run(variant, seed, result.best_params.numel(), result.evaluations, result.env_steps,
               seconds, result.best_fitness, fresh, curve)


def summary(values: list[float]) -> str:
    """median [IQR low, high]"""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return f"{median:.1f} [{q1:.1f}, {q3:.1f}]"


def report(args: argparse.Namespace, runs: list[Run], command: str, seconds: float) -> str:
    by_variant = {v: [r for r in runs if r.variant == v] for v in VARIANTS}
    first = runs[0]
    lines = [
        "# GridMaze: non-plastic vs plastic vs neuromodulated RNNs, evolved",
        "",
        "Written by `scripts/experiment_gridmaze.py`. Command (from the repository root):",
        "",
        "```",
        command,
        "```",
        "",
        "## Setup",
        "",
        "`smevo/GridMaze-v0`, size 11, 200 steps per episode, reward 10 per goal (then a "
        "teleport). Networks from `configs/gridmaze-{rnn,plastic,neuromod}.yaml`: tanh RNN "
        "with 26 units, Hebbian plastic RNN with 20 units (learned eta, per-connection "
        "alpha), simple-neuromodulated plastic RNN with 20 units (tanh modulator, fanout, "
        "clip 2); each evolved with the truncation GA and SM-G-ABS (magnitude 0.1, each "
        "weight's change clipped to 0.2), "
        f"population {args.population} (parents: {max(1, args.population // 4)}, elites: 1), "
        f"{args.generations} generations, {args.episodes} episodes per fitness evaluation, "
        f"SM-G-ABS on {args.archive} recorded episode(s) of the parent, "
        f"{args.seeds} seeds per network, vectorized backend, one CPU thread. Every run used "
        f"{first.evaluations} evaluations ({first.env_steps:,} env steps). Whole experiment: "
        f"{seconds / 60:.1f} min.",
        "",
        "**How small this budget is.** The papers trained these networks by A2C on 30 "
        "episodes per update for 200,000 updates (6 million episodes, ~1.2 billion steps) "
        "and plot the first 100k episodes; evolution here saw "
        f"{first.evaluations * args.episodes} training episodes per run, about "
        f"{6e6 / max(1, first.evaluations * args.episodes):,.0f} times fewer. SM-G-ABS is "
        "the bottleneck: it backpropagates each of the 200 steps' outputs through the whole "
        "recorded episode, about 1 s per child on one core for these ~1.3k-parameter nets. "
        "This is a smoke-scale comparison; it cannot confirm or refute the papers' claim.",
        "",
        "## Results",
        "",
        f"Reward per episode, median [inter-quartile range] over {args.seeds} seeds, at "
        f"equal evaluations ({first.evaluations}). *Validated*: the trainer's champion on "
        f"its validation episodes; *fresh*: the champion on {args.test_episodes} episodes "
        f"with unseen seeds. Reference levels (size 11): uniform random policy "
        f"{RANDOM_LEVEL}, goal-knowing shortest-path oracle {ORACLE_LEVEL:.0f}.",
        "",
        "| network | parameters | validated | fresh | seconds per run |",
        "|---|---|---|---|---|",
    ]
    for variant, group in by_variant.items():
        lines.append(
            f"| {variant} | {group[0].parameters:,} | {summary([r.validated for r in group])} "
            f"| {summary([r.test for r in group])} "
            f"| {np.median([r.seconds for r in group]):.0f} |"
        )
    fresh = {v: float(np.median([r.test for r in g])) for v, g in by_variant.items()}
    seconds = {v: float(np.median([r.seconds for r in g])) for v, g in by_variant.items()}
    below = [v for v, level in fresh.items() if level < RANDOM_LEVEL]
    lines += [
        "",
        f"Networks whose fresh-episode median is below the uniform random policy's "
        f"{RANDOM_LEVEL}: {', '.join(below) or 'none'}. Validated scores are the best of a "
        "generation's elites on a few noisy episodes, so they overstate the champion (the "
        "fresh column is the unbiased one). Seconds per run are wall time on a machine shared "
        f"with other jobs; at equal evaluations the plastic and neuromod runs took "
        f"{seconds['plastic'] / seconds['rnn']:.1f}x and "
        f"{seconds['neuromod'] / seconds['rnn']:.1f}x the RNN's time (SM-G-ABS through "
        "their traces).",
    ]
    lines += ["", "Per seed (fresh-episode reward):", ""]
    for variant, group in by_variant.items():
        values = ", ".join(f"{r.test:.1f}" for r in group)
        lines.append(f"- {variant}: {values}")
    lines += [
        "",
        "Validated champion by generation (median over seeds; x = evaluations):",
        "",
        "| evaluations | " + " | ".join(VARIANTS) + " |",
        "|---|" + "---|" * len(VARIANTS),
    ]
    for g, (evaluations, _) in enumerate(first.curve):
        medians = [np.median([r.curve[g][1] for r in by_variant[v]]) for v in VARIANTS]
        lines.append(f"| {evaluations} | " + " | ".join(f"{m:.1f}" for m in medians) + " |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    command = "python scripts/experiment_gridmaze.py " + " ".join(argv)
    start = time.perf_counter()
    runs = []
    for seed in range(args.seeds):
        for variant in VARIANTS:
            run = run_one(args, variant, seed)
            runs.append(run)
            print(f"{variant} seed {seed}: validated {run.validated:.1f}, fresh {run.test:.1f}, "
                  f"{run.evaluations} evaluations, {run.seconds:.0f} s", flush=True)
    text = report(args, runs, command.strip(), time.perf_counter() - start)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
