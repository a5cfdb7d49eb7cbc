"""Benchmark the trainer: env steps per second of smevo against EvoTorch, timed in the same run.

CartPole-v1, policy 4 -> 16 tanh -> 2 (argmax action), population 100, 10 generations, one
process and one torch thread. Rows: smevo's `vectorized` and `serial` backends with the
`control` operator (Gaussian noise, sigma 0.1), `vectorized` with SM-G-SUM (sigma 0.1),
`vectorized` with the fused C++ rollout turned off (`evaluation.native=false`: the Python
lockstep loop, which other envs and policies take), and the baseline, EvoTorch's `GymNE` +
`GeneticAlgorithm` with `GaussianMutation(stdev=0.1)` and no Ray actors. Each row is the
wall time of a whole run (set-up, evaluation, mutation and, for smevo, its logging to a
temporary run folder), the median of `--repeats` runs taken round the rows in turn after an
untimed one-generation warm-up of each; env steps are what each library counts itself
(`TrainResult.env_steps`, EvoTorch's `total_interaction_count`; GymNE resets its env
unseeded, so its count varies from run to run). Target: `vectorized` >= 20x EvoTorch's
steps/s.

EvoTorch lives only in the benchmark's venv (`.venv-bench`, which also sees `.venv`):

    make bench                                          # all benchmarks, this one included
    .venv-bench/bin/python scripts/bench_trainer.py [--generations 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from smevo import train
from smevo.config import Config, apply_overrides

ENV_ID = "CartPole-v1"
POPULATION = 100
SIGMA = 0.1
TARGET = 20.0
# smevo's truncation GA, pinned here so that defaults changing elsewhere cannot move the row.
PARENTS, ELITES, ELITE_EPISODES = 20, 1, 5


@dataclass
class Timing:
    """One timed run: what it did and how long it took."""

    generations: int
    env_steps: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.env_steps / self.seconds


def require_evotorch() -> None:
    """Exit with a one-line hint when EvoTorch (the baseline) is not importable."""
    try:
        import evotorch  # noqa: F401
    except ImportError:
        sys.exit("bench_trainer.py: EvoTorch is missing; run `make bench` (it builds .venv-bench "
                 "with EvoTorch) or run this script with .venv-bench/bin/python")


def smevo_run(
    backend: str, mutation: str, generations: int, seed: int, native: bool = True
) -> Timing:
    """Train with smevo's Python API; the run folder goes to a temporary directory.
    `native=False` turns the fused C++ rollout off (the Python lockstep loop instead)."""
    with tempfile.TemporaryDirectory(prefix="bench_trainer-") as logdir:
        config = apply_overrides(Config(), [
            f"env.id={ENV_ID}",
            f"seed={seed}",
            "policy.name=mlp",
            "policy.options={hidden: 16, depth: 1, activation: tanh}",
            f"mutation.name={mutation}",
            f"mutation.magnitude={SIGMA}",
            "algorithm.name=truncation",
            f"algorithm.population={POPULATION}",
            f"algorithm.parents={PARENTS}",
            f"algorithm.elites={ELITES}",
            f"algorithm.elite_episodes={ELITE_EPISODES}",
            f"budget.generations={generations}",
            "budget.stop_when_solved=false",
            f"evaluation.backend={backend}",
            f"evaluation.native={str(native).lower()}",
            "logging.quiet=true",
            f"logging.logdir={logdir}",
        ])
        start = time.perf_counter()
        result = train(config)
        seconds = time.perf_counter() - start
    return Timing(result.generations, result.env_steps, seconds)


def evotorch_run(generations: int, seed: int) -> Timing:
    """EvoTorch's GA on GymNE, in this process (num_actors=0: no Ray actors)."""
    from evotorch.algorithms import GeneticAlgorithm
    from evotorch.neuroevolution import GymNE
    from evotorch.operators import GaussianMutation

    torch.manual_seed(seed)
    start = time.perf_counter()
    problem = GymNE(
        env=ENV_ID,
        network=lambda: torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)),
        observation_normalization=False,
        num_episodes=1,
        num_actors=0,
        # PyTorch's default Linear init of this net spans +-0.5 (first layer) and +-0.25
        # (head); GymNE's own default, +-1e-5, starts every policy at ~10-step episodes.
        initial_bounds=(-0.5, 0.5),
    )
    searcher = GeneticAlgorithm(
        problem,
        popsize=POPULATION,
        operators=[GaussianMutation(problem, stdev=SIGMA)],
        elitist=True,
        re_evaluate=False,
    )
    searcher.run(generations)
    seconds = time.perf_counter() - start
    return Timing(searcher.step_count, int(searcher.status["total_interaction_count"]), seconds)


def median_timings(
    rows: dict[str, Callable[[int], Timing]], generations: int, repeats: int
) -> dict[str, Timing]:
    """Each row's median-rate timing of `repeats` full runs, after a one-generation warm-up.

    The repeats go round the rows in turn, so that load from elsewhere on the machine falls
    on every row alike rather than on whichever ran during it.
    """
    for run in rows.values():
        run(1)
    timings: dict[str, list[Timing]] = {name: [] for name in rows}
    for _ in range(repeats):
        for name, run in rows.items():
            timings[name].append(run(generations))
    return {name: sorted(ts, key=lambda t: t.rate)[len(ts) // 2] for name, ts in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row; median kept")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    require_evotorch()
    import evotorch

    logging.getLogger("evotorch").setLevel(logging.WARNING)  # no per-Problem INFO lines
    torch.set_num_threads(1)
    print(f"{ENV_ID}, mlp 4-16 tanh-2, population {POPULATION}, {args.generations} generations, "
          f"one process, torch {torch.__version__} with {torch.get_num_threads()} thread, "
          f"EvoTorch {evotorch.__version__}")

    rows: dict[str, Callable[[int], Timing]] = {
        "smevo vectorized, control": lambda g: smevo_run("vectorized", "control", g, args.seed),
        "smevo serial, control": lambda g: smevo_run("serial", "control", g, args.seed),
        "smevo vectorized, SM-G-SUM": lambda g: smevo_run("vectorized", "SM-G-SUM", g, args.seed),
        "smevo vectorized, no C++": lambda g: smevo_run("vectorized", "control", g, args.seed,
                                                        native=False),
        "EvoTorch GymNE + GA": lambda g: evotorch_run(g, args.seed),
    }
    timings = median_timings(rows, args.generations, args.repeats)
    baseline = timings["EvoTorch GymNE + GA"].rate

    print(f"\n{'backend':28s} {'generations':>11s} {'env steps':>10s} {'seconds':>8s} "
          f"{'steps/s':>9s} {'vs EvoTorch':>11s}")
    for name, t in timings.items():
        print(f"{name:28s} {t.generations:11d} {t.env_steps:10,d} {t.seconds:8.2f} "
              f"{t.rate:9,.0f} {t.rate / baseline:10.1f}x")

    ratio = timings["smevo vectorized, control"].rate / baseline
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"\ntarget: smevo vectorized >= {TARGET:.0f}x EvoTorch steps/s: {ratio:.1f}x ({verdict})")
    print(f"notes: smevo's truncation GA ({PARENTS} parents, {ELITES} elite) evaluates "
          f"{POPULATION} individuals in its first generation and {POPULATION - ELITES} children "
          f"after, plus {ELITE_EPISODES} validation episodes of the elite every generation;\n"
          f"EvoTorch's GA mutates all {POPULATION} parents, evaluates parents and children in its "
          f"first generation and only the {POPULATION} children after (re_evaluate=False), and "
          f"keeps the best {POPULATION} of the {2 * POPULATION} (elitist).")


if __name__ == "__main__":
    main()
