"""Benchmark: rollouts with the population forward on a GPU (`--device cuda`) against the CPU.

For the policies whose forward dominates a step: the CarRacing `cnn` of
`configs/carracing.yaml` (96x96x3 frames, ~216k parameters) and the reference's deep maze net
(`mlp` hidden 125, depth 65: 64 hidden 125x125 tanh layers, ~1M parameters) on
smevo/BreadcrumbHardMaze-v0. For each, one `RolloutWorker` per device (what the vectorized
backend and each process worker run) evaluates the same `--population` genomes on the same
episodes (one each, at most `--max-steps` steps): the envs step on the CPU, the forward runs
on the device (`EvalSpec.device`; on the CPU the default path, the maze's fused C++ rollout
included). Rounds alternate between the devices after a warm-up round each, so that other load
slows both alike; prints env steps per second per device (median [range] over `--rounds`), the
device's speed-up over the CPU, and the largest difference between the two devices' fitnesses
(a GPU's float64 kernels round otherwise than the CPU's: close, not equal).

Without CUDA the CPU rows alone are timed and the script says so; the device path itself is
tested on the CPU (`tests/test_device_rollout.py`, `device="cpu"`, transfers counted).

    python scripts/bench_device.py [--population 32] [--max-steps 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from smevo import functional
from smevo.config import load_config
from smevo.envs import make_env
from smevo.evaluation import EvalSpec, EvalTask, ObsNormalizer, RolloutWorker
from smevo.policies import make_policy

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEEP_MAZE_NET = {"hidden": 125, "depth": 65, "activation": "tanh", "init": "xavier",
                 "output_activation": "sigmoid"}


def specs() -> dict[str, EvalSpec]:
    """The benchmark's rows: what a worker of each evaluates (device left unset)."""
    carracing = load_config(CONFIGS / "carracing.yaml")
    return {
        "CarRacing-v3 cnn": EvalSpec(carracing.env.id, dict(carracing.env.kwargs), "cnn",
                                     dict(carracing.policy.options)),
        "hard maze mlp 64x125": EvalSpec("smevo/BreadcrumbHardMaze-v0", {}, "mlp",
                                         DEEP_MAZE_NET),
    }


def genomes(spec: EvalSpec, population: int, seed: int) -> np.ndarray:
    """`population` genomes around one freshly initialised net of the spec's policy."""
    torch.manual_seed(seed)
    probe = make_env(spec.env_id, spec.env_kwargs)
    policy = make_policy(spec.policy_name, probe.observation_space, probe.action_space,
                         **spec.policy_options)
    probe.close()
    generator = torch.Generator().manual_seed(seed)
    flat = functional.get_flat(policy)
    return (flat + 0.05 * torch.randn(population, flat.numel(), generator=generator)).numpy()


def timed_round(worker: RolloutWorker, params: np.ndarray, seed: int) -> tuple[float, np.ndarray]:
    """Env steps per second of one round (one episode per genome from seeds `seed + i`) and
    the genomes' fitnesses."""
    tasks = [EvalTask(i, (seed + i,), seed + i) for i in range(len(params))]
    start = time.perf_counter()
    results = worker.evaluate(params, tasks, ObsNormalizer())
    seconds = time.perf_counter() - start
    fitness = np.array([r.fitness for r in sorted(results, key=lambda r: r.index)])
    return sum(r.steps for r in results) / seconds, fitness


def bench(name: str, spec: EvalSpec, devices: list[str], args: argparse.Namespace) -> None:
    """Time `spec`'s rollouts on each of `devices` in alternating rounds and print the row."""
    params = genomes(spec, args.population, args.seed)
    workers = {device: RolloutWorker(EvalSpec(**{**vars(spec), "max_steps": args.max_steps,
                                                  "device": None if device == "cpu" else device}))
               for device in devices}
    rates: dict[str, list[float]] = {device: [] for device in devices}
    fitness: dict[str, np.ndarray] = {}
    for worker in workers.values():
        timed_round(worker, params, args.seed + 10_000)  # warm-up: seeds no timed round uses
    for k in range(args.rounds):
        for device in devices if k % 2 == 0 else devices[::-1]:
            rate, fitness[device] = timed_round(workers[device], params, args.seed + k)
            rates[device].append(rate)
    for worker in workers.values():
        worker.close()
    print(f"{name}: {params.shape[1]:,} parameters, population {args.population}, at most "
          f"{args.max_steps} steps per episode; env steps/s, median [range] of {args.rounds} "
          "rounds")
    cpu = statistics.median(rates["cpu"])
    for device in devices:
        median = statistics.median(rates[device])
        print(f"  {device:6s} {median:10.0f} [{min(rates[device]):.0f}-{max(rates[device]):.0f}]"
              f"  {median / cpu:5.2f}x the CPU")
    for device in devices[1:]:
        gap = float(np.max(np.abs(fitness[device] - fitness["cpu"])))
        print(f"  largest |fitness {device} - fitness cpu| in the last round: {gap:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=32)
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=list(specs()), help="one row only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    if len(devices) == 1:
        print("no CUDA device here: the CPU rows alone (the device path is tested on the CPU)")
    else:
        print(f"cuda: {torch.cuda.get_device_name(0)}; CPU: one torch thread")
    for name, spec in specs().items():
        if args.only in (None, name):
            bench(name, spec, devices, args)


if __name__ == "__main__":
    main()
