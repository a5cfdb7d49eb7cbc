"""Benchmark scaling: evaluations per second against workers, and where a deep net's
generation goes.

Part 1 — LunarLander-v3, policy 8 -> 64 -> 64 tanh -> 4 (smevo `mlp`), the same population
of 64 freshly initialised genomes x 1 episode every generation (with that generation's
episode seeds). For the `process` and `ray` backends with 1 and 2 workers: one untimed warm-up
generation (start-up excluded), then the summed wall time of `backend.evaluate` over the
timed generations, the fastest of `--repeats` passes (on a shared machine other load only
ever slows a pass down). Prints evals/s, env steps/s and the 2-vs-1-worker speed-up (target:
>= 1.7x), and where the CPU went over the passes (Linux): cores' worth used by the workers,
the driver, Ray's own processes (raylet, GCS, agents) and anything else on the machine. Both
worker counts of the `ray` rows share one local Ray instance with 2 CPUs.
Then the driver's cost of mutating one child of this net (control, SM-G-SUM, SM-G-ABS).

Part 2 — the reference's deep maze net: `mlp` hidden=125, depth=65 (64 hidden 125x125
layers), tanh, xavier init, sigmoid outputs (1,009,752 parameters) on
smevo/BreadcrumbHardMaze-v0 (one deterministic 400-step episode), per operator (SM-G-ABS,
SM-G-SUM). The trainer's own truncation GA runs the generations (parents: the top fifth, one
elite, archives of 100 parent states, `weight_clip` 0.2) with the `process` backend; the time
inside `backend.evaluate` is evaluation, the rest of each generation is mutation (with
selection and bookkeeping, which are negligible). The first two generations are warm-ups
(the first only evaluates the initial population; the second's first mutation pays torch.func's
one-off start-up). Prints seconds per generation of each, the peak RSS of
this process (the driver, which mutates; a maximum over the whole script so far) and that of
the largest worker.

    python scripts/bench_scale.py [--generations 5] [--repeats 3] [--deep-pop 16]
                                  [--deep-generations 2] [--skip-scaling] [--skip-deep]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import time
from pathlib import Path

import torch

from smevo import functional
from smevo.config import Config, apply_overrides
from smevo.envs import make_env
from smevo.evaluation import EvalSpec, EvalTask, ObsNormalizer, RolloutWorker, make_backend
from smevo.evaluation.backends import Backend, ProcessBackend
from smevo.experiences import Experiences
from smevo.mutations import make_mutation
from smevo.policies import Policy, make_policy
from smevo.seeding import EVALUATION, INIT, MUTATION, derive_seed, episode_seeds, torch_generator
from smevo.trainer import Trainer

SEED = 0
TARGET_SPEEDUP = 1.7

LUNAR = EvalSpec(env_id="LunarLander-v3", env_kwargs={}, policy_name="mlp",
                 policy_options={"hidden": 64, "depth": 2, "activation": "tanh"})
DEEP = EvalSpec(env_id="smevo/BreadcrumbHardMaze-v0", env_kwargs={}, policy_name="mlp",
                policy_options={"hidden": 125, "depth": 65, "activation": "tanh",
                                "init": "xavier", "output_activation": "sigmoid"},
                archive_size=100)


def policy_of(spec: EvalSpec) -> Policy:
    """A freshly initialised policy for `spec` (initialised from torch's global generator)."""
    env = make_env(spec.env_id, spec.env_kwargs)
    policy = make_policy(spec.policy_name, env.observation_space, env.action_space,
                         **spec.policy_options)
    env.close()
    return policy


def population(spec: EvalSpec, count: int) -> torch.Tensor:
    """`count` initialised genomes, individual i from its own seed stream (as the trainer)."""
    genomes = []
    for i in range(count):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(SEED, INIT, i))
            genomes.append(functional.get_flat(policy_of(spec)))
    return torch.stack(genomes)


def tasks(count: int, generation: int) -> list[EvalTask]:
    """One episode per individual, seeded as `SearchContext.evaluate` seeds generation
    `generation`."""
    return [EvalTask(index=i, seeds=tuple(episode_seeds(SEED, 1, EVALUATION, generation, i)),
                     sample_seed=derive_seed(SEED, EVALUATION, generation, i, 1))
            for i in range(count)]


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """Every process's command line and CPU seconds (user + system) so far, from Linux's
    /proc (empty elsewhere)."""
    ticks, found = os.sysconf("SC_CLK_TCK"), {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # from field 3 (state) on
        found[int(entry.name)] = (command, (int(fields[11]) + int(fields[12])) / ticks)
    return found


def role(pid: int, command: str, workers: set[int]) -> str:
    """Whose CPU time a process's is, for the CPU-share line of the scaling table."""
    if pid in workers or command.startswith("ray::RolloutActor"):
        return "workers"
    if pid == os.getpid():
        return "driver"
    return "Ray runtime" if "ray" in command else "other"


def cpu_shares(before: dict[int, tuple[str, float]], wall: float,
               workers: set[int]) -> dict[str, float]:
    """Cores' worth of CPU each role used since the `before` snapshot, over `wall` seconds."""
    shares: dict[str, float] = {}
    for pid, (command, seconds) in cpu_seconds().items():
        used = seconds - before.get(pid, (command, 0.0))[1]
        key = role(pid, command, workers)
        shares[key] = shares.get(key, 0.0) + used / wall
    return shares


def throughput(
    backend: Backend, params: torch.Tensor, generations: int, repeats: int
) -> tuple[float, float, dict[str, float]]:
    """(evals/s, env steps/s) of `backend.evaluate` over generations 1..`generations`, after
    a warm-up generation; the fastest of `repeats` passes (other load only slows a pass).
    Also the cores' worth of CPU used by workers, driver, Ray's runtime and anything else
    over all passes."""
    normalizer = ObsNormalizer()
    backend.evaluate(params, tasks(len(params), 0), normalizer)
    workers = set(backend.worker_pids()) if isinstance(backend, ProcessBackend) else set()
    best, steps = float("inf"), 0
    before, started = cpu_seconds(), time.perf_counter()
    for _ in range(repeats):
        seconds, steps = 0.0, 0
        for generation in range(1, generations + 1):
            work = tasks(len(params), generation)
            start = time.perf_counter()
            results = backend.evaluate(params, work, normalizer)
            seconds += time.perf_counter() - start
            steps += sum(r.steps for r in results)
        best = min(best, seconds)
    shares = cpu_shares(before, time.perf_counter() - started, workers)
    return len(params) * generations / best, steps / best, shares


def bench_scaling(generations: int, pop: int, repeats: int) -> None:
    """Part 1: evals/s of the process and ray backends with 1 and 2 workers."""
    import ray  # optional dependency: only this part needs it

    params = population(LUNAR, pop)
    print(f"LunarLander-v3, mlp 8->64->64->4, population {pop} x 1 episode, "
          f"{generations} timed generations after a warm-up, best of {repeats} passes")
    print(f"{'backend':<9} {'workers':>7} {'evals/s':>9} {'steps/s':>9} {'speed-up':>9}   "
          "cores used: workers / driver / Ray runtime / other")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    try:
        for name in ("process", "ray"):
            rates = {}
            for workers in (1, 2):
                backend = make_backend(name, LUNAR, workers)
                try:
                    rates[workers] = throughput(backend, params, generations, repeats)
                finally:
                    backend.close()
                speedup = rates[workers][0] / rates[1][0]
                shares = rates[workers][2]
                used = " / ".join(f"{shares.get(k, 0.0):.2f}"
                                  for k in ("workers", "driver", "Ray runtime", "other"))
                print(f"{name:<9} {workers:>7} {rates[workers][0]:>9.1f} "
                      f"{rates[workers][1]:>9.0f} {speedup:>8.2f}x   {used}")
            speedup = rates[2][0] / rates[1][0]
            verdict = "meets" if speedup >= TARGET_SPEEDUP else "misses"
            print(f"  {name}: 2 workers {speedup:.3f}x one worker "
                  f"({verdict} the {TARGET_SPEEDUP}x target)")
    finally:
        ray.shutdown()
    bench_small_mutation(params)


def bench_small_mutation(params: torch.Tensor, repeats: int = 20) -> None:
    """Milliseconds per child of the driver's mutation for the LunarLander net, on the
    archive of one episode."""
    worker = RolloutWorker(LUNAR)
    [result] = worker.evaluate(params[:1].numpy(), tasks(1, 0), ObsNormalizer())
    worker.close()
    policy, batch = policy_of(LUNAR), Experiences.from_states(result.experiences)
    timings = []
    for operator in ("control", "SM-G-SUM", "SM-G-ABS"):
        mutation = make_mutation(operator, 0.1)
        mutation(params[0], policy, batch, torch_generator(SEED, MUTATION, 0, 0))  # warm-up
        start = time.perf_counter()
        for i in range(repeats):
            mutation(params[0], policy, batch, torch_generator(SEED, MUTATION, 0, i))
        timings.append(f"{operator} {1000 * (time.perf_counter() - start) / repeats:.2f}")
    print(f"driver mutation, ms per child ({len(batch.observations)} states): "
          + ", ".join(timings))


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of process `pid` in MB (Linux's VmHWM; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return math.nan
    return int(line.split()[1]) / 1024


def bench_deep(operator: str, pop: int, generations: int, workers: int) -> None:
    """The trainer's own truncation-GA generations of the deep maze net, split into the time
    in `backend.evaluate` and the rest (mutation in the driver, selection, bookkeeping)."""
    options = DEEP.policy_options
    config = apply_overrides(Config(), [
        f"seed={SEED}", f"env.id={DEEP.env_id}", "policy.name=mlp",
        f"policy.options={{hidden: {options['hidden']}, depth: {options['depth']}, "
        "activation: tanh, init: xavier, output_activation: sigmoid}",
        f"mutation.name={operator}", "mutation.magnitude=0.1",
        "mutation.options={weight_clip: 0.2}", "algorithm.name=truncation",
        f"algorithm.population={pop}", "algorithm.options.elites=1",
        "algorithm.elite_episodes=0",  # one deterministic episode: nothing to re-check
        "evaluation.backend=process", f"evaluation.workers={workers}",
    ])
    trainer = Trainer(config)
    backend = trainer.context.backend
    evaluate, evaluate_s = backend.evaluate, [0.0]

    def timed_evaluate(*args, **kwargs):
        start = time.perf_counter()
        results = evaluate(*args, **kwargs)
        evaluate_s[0] += time.perf_counter() - start
        return results

    backend.evaluate = timed_evaluate
    try:
        # Warm-ups: generation 0 only evaluates the initial population, and generation 1's
        # first mutation imports and compiles what torch.func needs (seconds, once a process).
        trainer.algorithm.step()
        trainer.algorithm.step()
        evaluate_s[0], total = 0.0, 0.0
        for _ in range(generations):
            start = time.perf_counter()
            trainer.algorithm.step()
            total += time.perf_counter() - start
        worker_mb = max(peak_rss_mb(pid) for pid in backend.backend.worker_pids())  # unwrapped
    finally:
        backend.close()
    evaluation = evaluate_s[0] / generations
    mutation = total / generations - evaluation
    per_mutation = mutation / (pop - 1)
    driver_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{operator:<9} {evaluation:>10.2f} {mutation:>10.2f} "
          f"{1000 * per_mutation:>9.0f} {mutation / evaluation:>9.2f} "
          f"{driver_mb:>10.0f} {worker_mb:>10.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=5,
                        help="timed generations per scaling row")
    parser.add_argument("--pop", type=int, default=64, help="scaling population")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed passes per scaling row; the fastest counts")
    parser.add_argument("--deep-pop", type=int, default=16, help="deep-net population")
    parser.add_argument("--deep-generations", type=int, default=2,
                        help="timed deep-net generations per operator")
    parser.add_argument("--deep-workers", type=int, default=2,
                        help="process workers evaluating the deep net")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--skip-deep", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the driver, like each worker, gets one core
    if not args.skip_scaling:
        bench_scaling(args.generations, args.pop, args.repeats)
    if not args.skip_deep:
        params = functional.num_params(policy_of(DEEP))
        print(f"\nBreadcrumbHardMaze-v0, mlp 11 -> 64x125 tanh -> 2 sigmoid ({params:,} params), "
              f"population {args.deep_pop}, {args.deep_workers} process workers, "
              f"{args.deep_generations} timed generations")
        print(f"{'operator':<9} {'eval s/gen':>10} {'mut s/gen':>10} {'ms/mut':>9} "
              f"{'mut/eval':>9} {'driver MB':>10} {'worker MB':>10}")
        for operator in ("SM-G-ABS", "SM-G-SUM"):
            bench_deep(operator, args.deep_pop, args.deep_generations, args.deep_workers)


if __name__ == "__main__":
    main()
