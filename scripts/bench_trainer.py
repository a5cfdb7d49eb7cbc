"""Benchmark the trainer: env steps per second of smevo against EvoTorch and the env alone.

Two tables, each timed in one run. The first: CartPole-v1, policy 4 -> 16 tanh -> 2 (argmax
action), population 100, 10 generations, one process and one torch thread. Rows: smevo's
`vectorized` and `serial` backends with the `control` operator (Gaussian noise, sigma 0.1),
`vectorized` with SM-G-SUM (sigma 0.1), `vectorized` with the fused C++ rollout turned off
(`evaluation.native=false`: the Python lockstep loop, which other envs and policies take), and
the baseline, EvoTorch's `GymNE` + `GeneticAlgorithm` with `GaussianMutation(stdev=0.1)` and
no Ray actors. Each row is the wall time of a whole run (set-up, evaluation, mutation and, for
smevo, its logging to a temporary run folder), the median of `--repeats` runs taken round the
rows in turn after an untimed one-generation warm-up of each; env steps are what each library
counts itself (`TrainResult.env_steps`, EvoTorch's `total_interaction_count`; GymNE resets its
env unseeded, so its count varies from run to run). Target: `vectorized` >= 20x EvoTorch's
steps/s.

The second (`--generic`): envs that take the Python lockstep path (LunarLander-v3,
Pendulum-v1, Acrobot-v1), policy obs -> 32 -> 32 tanh -> K, control mutation, population 64,
15 generations, one episode per evaluation, set-up included, against the env alone: one
Gymnasium env (`gym.make`, wrappers included) stepped in a tight loop by a numpy MLP of the
same shape and init, its actions decoded as smevo decodes them (argmax; clip to the bounds),
for as many steps as the smevo run took. Each row shows the median and the range of
`--repeats` runs and its ratio to the env alone; EvoTorch (`GymNE` + GA, the same network and
population) joins when it is importable. Target: smevo >= 0.8 of the env alone on
LunarLander, >= 0.7 on Pendulum and Acrobot. With `--workers N` (N > 1) the smevo row runs
`--backend process --workers N` and is compared with N times the env alone (target: >= 0.8 of
it, on a machine with N free cores); a further row runs N env-alone copies at once in N
forked processes, what this machine's cores give when nothing but the env runs on them (on a
machine whose cores share caches, memory bandwidth or a clock budget, less than N times one).
Each smevo run's `perf/evaluation_share` (its time in the backend's evaluations; the rest is
the driver's serial work, which more workers do not shorten) is printed under its env.
`--envs` picks envs of the table, `--population` sets its population (e.g. to keep every
worker's share of it the same as N grows).

EvoTorch lives only in the benchmark's venv (`.venv-bench`, which also sees `.venv`):

    make bench                                          # all benchmarks, this one included
    .venv-bench/bin/python scripts/bench_trainer.py [--generations 10] [--repeats 3]
    .venv/bin/python scripts/bench_trainer.py --generic [--repeats 3] [--workers N]
        [--envs LunarLander-v3,Pendulum-v1] [--population 64]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from smevo import train
from smevo.config import Config, apply_overrides

ENV_ID = "CartPole-v1"
POPULATION = 100
SIGMA = 0.1
TARGET = 20.0
# smevo's truncation GA, pinned here so that defaults changing elsewhere cannot move the row.
PARENTS, ELITES, ELITE_EPISODES = 20, 1, 5

GENERIC_ENVS = {"LunarLander-v3": 0.8, "Pendulum-v1": 0.7, "Acrobot-v1": 0.7}
"""The generic table's envs and each one's target (smevo's share of the env alone's rate)."""
GENERIC_POPULATION, GENERIC_GENERATIONS, GENERIC_HIDDEN = 64, 15, 32
SCALING_TARGET = 0.8
"""With N process workers: smevo's share of N times the env alone's rate."""
ENV_ALONE_STEPS = 300_000
"""The env alone runs as many steps as smevo's run took, at most this many (a rate, and a
large population's run would otherwise time the env alone for minutes)."""


@dataclass
class Timing:
    """One timed run: what it did and how long it took."""

    generations: int
    env_steps: int
    seconds: float
    evaluation_share: float = float("nan")
    """smevo's `perf/evaluation_share` over the run's generations (their summed time in the
    backend's evaluations over their summed wall time); NaN for the other rows."""

    @property
    def rate(self) -> float:
        return self.env_steps / self.seconds


def has_evotorch() -> bool:
    """Whether EvoTorch (the baseline) is importable here."""
    try:
        import evotorch  # noqa: F401
    except ImportError:
        return False
    return True


def require_evotorch() -> None:
    """Exit with a one-line hint when EvoTorch (the baseline) is not importable."""
    if not has_evotorch():
        sys.exit("bench_trainer.py: EvoTorch is missing; run `make bench` (it builds .venv-bench "
                 "with EvoTorch) or run this script with .venv-bench/bin/python")


def smevo_run(
    backend: str, mutation: str, generations: int, seed: int, native: bool = True
) -> Timing:
    """Train with smevo's Python API; the run folder goes to a temporary directory.
    `native=False` turns the fused C++ rollout off (the Python lockstep loop instead)."""
    return timed_train([
        f"env.id={ENV_ID}",
        f"seed={seed}",
        "policy.name=mlp",
        "policy.options={hidden: 16, depth: 1, activation: tanh}",
        f"mutation.name={mutation}",
        f"mutation.magnitude={SIGMA}",
        "algorithm.name=truncation",
        f"algorithm.population={POPULATION}",
        f"algorithm.options.parents={PARENTS}",
        f"algorithm.options.elites={ELITES}",
        f"algorithm.elite_episodes={ELITE_EPISODES}",
        f"budget.generations={generations}",
        "budget.stop_when_solved=false",
        f"evaluation.backend={backend}",
        f"evaluation.native={str(native).lower()}",
    ])


def timed_train(overrides: list[str]) -> Timing:
    """One quiet `smevo.train` with these config overrides, its run folder in a temporary
    directory, timed from the call to its return."""
    with tempfile.TemporaryDirectory(prefix="bench_trainer-") as logdir:
        config = apply_overrides(
            Config(), [*overrides, "logging.quiet=true", f"logging.logdir={logdir}"])
        start = time.perf_counter()
        result = train(config)
        seconds = time.perf_counter() - start
        rows = [json.loads(line) for line in
                (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    walls = np.diff([0.0, *(row["perf/wall_time"] for row in rows)])  # each generation's
    shares = np.array([row["perf/evaluation_share"] for row in rows])
    return Timing(result.generations, result.env_steps, seconds,
                  float((shares * walls).sum() / walls.sum()))


def evotorch_run(
    generations: int, seed: int, env_id: str = ENV_ID, sizes: tuple[int, ...] = (4, 16, 2),
    popsize: int = POPULATION,
) -> Timing:
    """EvoTorch's GA on GymNE, in this process (num_actors=0: no Ray actors), with a tanh MLP
    of layer `sizes`."""
    from evotorch.algorithms import GeneticAlgorithm
    from evotorch.neuroevolution import GymNE
    from evotorch.operators import GaussianMutation

    # EvoTorch sets its own loggers' level on import: quiet its per-Problem INFO lines after.
    for name in ("evotorch", "evotorch.core"):
        logging.getLogger(name).setLevel(logging.WARNING)
    torch.manual_seed(seed)
    start = time.perf_counter()
    problem = GymNE(
        env=env_id,
        network=lambda: tanh_mlp(sizes),
        observation_normalization=False,
        num_episodes=1,
        num_actors=0,
        # PyTorch's default Linear init of the CartPole net spans +-0.5 (first layer) and
        # +-0.25 (head); GymNE's own default, +-1e-5, starts every policy at ~10-step episodes.
        initial_bounds=(-0.5, 0.5),
    )
    searcher = GeneticAlgorithm(
        problem,
        popsize=popsize,
        operators=[GaussianMutation(problem, stdev=SIGMA)],
        elitist=True,
        re_evaluate=False,
    )
    searcher.run(generations)
    seconds = time.perf_counter() - start
    return Timing(searcher.step_count, int(searcher.status["total_interaction_count"]), seconds)


def tanh_mlp(sizes: tuple[int, ...]) -> torch.nn.Sequential:
    """Linear layers of `sizes` with tanh between them (none after the last): smevo's `mlp`."""
    layers: list[torch.nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers[:-1])


def generic_sizes(env_id: str) -> tuple[int, ...]:
    """The generic table's layer sizes for `env_id`: obs -> 32 -> 32 -> K."""
    env = gym.make(env_id)
    space = env.action_space
    sizes = (int(np.prod(env.observation_space.shape)), GENERIC_HIDDEN, GENERIC_HIDDEN,
             int(space.n) if isinstance(space, gym.spaces.Discrete) else int(np.prod(space.shape)))
    env.close()
    return sizes


def generic_smevo_run(
    env_id: str, seed: int, generations: int = GENERIC_GENERATIONS, workers: int = 1,
    population: int = GENERIC_POPULATION,
) -> Timing:
    """smevo's `vectorized` backend (the Python lockstep path) with the generic table's
    settings; with several `workers`, the `process` backend (the same path in each)."""
    backend = "vectorized" if workers == 1 else "process"
    return timed_train([
        f"env.id={env_id}",
        f"seed={seed}",
        "policy.name=mlp",
        f"policy.options={{hidden: {GENERIC_HIDDEN}, depth: 2, activation: tanh}}",
        "mutation.name=control",
        f"algorithm.population={population}",
        f"budget.generations={generations}",
        "budget.stop_when_solved=false",
        f"evaluation.backend={backend}",
        f"evaluation.workers={workers}",
    ])


def env_alone_run(env_id: str, steps: int, seed: int) -> Timing:
    """One env stepped `steps` times (episodes reset with seeds seed, seed+1, ...) by a numpy
    tanh MLP of the generic table's shape with PyTorch's default init; actions decoded as
    smevo decodes them (argmax for Discrete, clip to the bounds for Box)."""
    torch.manual_seed(seed)
    net = tanh_mlp(generic_sizes(env_id))
    layers = [(m.weight.detach().numpy().T.astype(np.float64), m.bias.detach().numpy())
              for m in net if isinstance(m, torch.nn.Linear)]
    env = gym.make(env_id)
    space = env.action_space
    discrete = isinstance(space, gym.spaces.Discrete)
    start = time.perf_counter()
    done, episode = True, 0
    for _ in range(steps):
        if done:
            obs, _ = env.reset(seed=seed + episode)
            episode += 1
        x = obs
        for i, (weight, bias) in enumerate(layers):
            x = x @ weight + bias
            x = np.tanh(x) if i < len(layers) - 1 else x
        action = x.argmax() if discrete else np.clip(x, space.low, space.high).astype(space.dtype)
        obs, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    seconds = time.perf_counter() - start
    env.close()
    return Timing(episode, steps, seconds)


def _env_alone_copy(args: tuple[str, int, int]) -> Timing:
    return env_alone_run(*args)


def env_alone_copies(env_id: str, steps: int, seed: int, copies: int) -> Timing:
    """`copies` env-alone runs of `steps` each at once, in as many forked processes: their
    summed steps over the wall time of all of them (started together, after the fork)."""
    with multiprocessing.get_context("fork").Pool(copies) as pool:
        pool.map(_env_alone_copy, [(env_id, 100, seed)] * copies)  # imports, first calls
        start = time.perf_counter()
        pool.map(_env_alone_copy, [(env_id, steps, seed + 1000 * c) for c in range(copies)])
        seconds = time.perf_counter() - start
    return Timing(copies, copies * steps, seconds)


def generic_table(
    repeats: int, seed: int, with_evotorch: bool, workers: int = 1,
    envs: list[str] | None = None, population: int = GENERIC_POPULATION,
) -> None:
    """The generic-env table: per env, the env alone, smevo and (if importable) EvoTorch,
    `repeats` runs each taken in turn after an untimed one-generation warm-up (first imports,
    first calls); median rate, range and ratio to the env alone (times `workers`, which
    smevo's row uses; with several workers, also to `workers` env-alone copies at once)."""
    print()
    print(f"Generic envs (Python lockstep path): mlp obs-{GENERIC_HIDDEN}-{GENERIC_HIDDEN} "
          f"tanh-K, control, population {population}, {GENERIC_GENERATIONS} generations, "
          f"one episode per evaluation, set-up included; median of {repeats} runs [range]")
    print(f"{'env':15s} {'row':22s} {'env steps':>10s} {'steps/s':>22s} {'of env alone':>14s}")
    for env_id in envs or list(GENERIC_ENVS):
        row = "smevo vectorized" if workers == 1 else f"smevo process x{workers}"
        copies = f"env alone x{workers} at once"
        rates: dict[str, list[float]] = {"env alone (numpy)": [], row: []}
        if workers > 1:
            rates[copies] = []
        if with_evotorch:
            rates["EvoTorch GymNE + GA"] = []
        generic_smevo_run(env_id, seed, generations=1, workers=workers, population=population)
        steps, shares = 0, []
        for r in range(repeats):
            smevo = generic_smevo_run(env_id, seed + r, workers=workers, population=population)
            steps = smevo.env_steps
            rates[row].append(smevo.rate)
            shares.append(smevo.evaluation_share)
            alone_steps = min(steps, ENV_ALONE_STEPS)
            rates["env alone (numpy)"].append(env_alone_run(env_id, alone_steps, seed + r).rate)
            if workers > 1:
                rates[copies].append(env_alone_copies(env_id, alone_steps, seed + r,
                                                      workers).rate)
            if with_evotorch:
                rates["EvoTorch GymNE + GA"].append(evotorch_run(
                    GENERIC_GENERATIONS, seed + r, env_id, generic_sizes(env_id),
                    population).rate)
        alone = float(np.median(rates["env alone (numpy)"]))
        for name, values in rates.items():
            median = float(np.median(values))
            spread = f"[{min(values):,.0f}-{max(values):,.0f}]"
            print(f"{env_id:15s} {name:22s} {steps:10,d} {median:9,.0f} {spread:>12s} "
                  f"{median / alone:14.2f}")
        target = GENERIC_ENVS[env_id] if workers == 1 else SCALING_TARGET
        ratio = float(np.median(rates[row])) / (workers * alone)
        each = ", ".join(f"{s / (workers * a):.2f}" for s, a in
                         zip(rates[row], rates["env alone (numpy)"], strict=True))
        times = "" if workers == 1 else f"{workers} x "
        print(f"{'':15s} target smevo >= {target} of {times}the env alone: {ratio:.2f} "
              f"({'met' if ratio >= target else 'NOT met'}; run by run {each})")
        print(f"{'':15s} smevo's time in the backend's evaluations (perf/evaluation_share; "
              f"the rest is the driver's serial work): "
              f"{', '.join(f'{share:.2f}' for share in shares)}")
        if workers > 1:
            ceiling = float(np.median(rates[copies]))
            print(f"{'':15s} smevo of {workers} env-alone copies at once (this machine's "
                  f"ceiling, {ceiling / (workers * alone):.2f} of {times}one): "
                  f"{float(np.median(rates[row])) / ceiling:.2f}")


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
    parser.add_argument("--generic", action="store_true",
                        help="only the generic-env table (EvoTorch column if importable)")
    parser.add_argument("--workers", type=int, default=1,
                        help="generic table: smevo with --backend process --workers N, against "
                             "N times the env alone")
    parser.add_argument("--envs", type=lambda text: text.split(","),
                        help=f"generic table: some of {','.join(GENERIC_ENVS)}")
    parser.add_argument("--population", type=int, default=GENERIC_POPULATION,
                        help="generic table: the population of smevo's (and EvoTorch's) runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.generic:
        unknown = sorted(set(args.envs or []) - set(GENERIC_ENVS))
        if unknown:
            parser.error(f"--envs: {', '.join(unknown)} not in the table "
                         f"({', '.join(GENERIC_ENVS)})")
        generic_table(args.repeats, args.seed, with_evotorch=has_evotorch() and args.workers == 1,
                      workers=args.workers, envs=args.envs, population=args.population)
        return
    require_evotorch()
    import evotorch

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
    generic_table(args.repeats, args.seed, with_evotorch=True)


if __name__ == "__main__":
    main()
