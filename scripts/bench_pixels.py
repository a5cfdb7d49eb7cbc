"""Benchmark: smevo's evaluation of a cnn population on MinAtar against the env alone.

smevo: one `RolloutWorker` (what the vectorized backend and each process worker run) evaluates
a population of cnn genomes, one episode each, all stepped in lockstep with one forward call
per step (float64, as every rollout computes; a different genome per env): the C++ forward
(`_rollout.CnnForward`, the default on the CPU), and, for comparison in the same run, torch's
grouped convolutions (`evaluation.native=false`). The env
alone: as many MinAtar envs (made the same way), stepped in lockstep by one NumPy net of the
same shape (the same convolutions and layers, one set of weights for all envs, float32, one
matrix product per layer over the live envs' frames). Both count env steps per second of wall
time, in this run, on one thread each (torch and NumPy's BLAS), in rounds of one episode per
genome or env that alternate between the two; the ratio is the median over rounds of smevo's
rate over the env's (the target is >= 0.5), with its range. Episodes end by themselves or at
the config's `max_steps`.

With ``--train N`` it instead times whole generations, breeding included: a run of the config
for N generations (in this process, one torch thread), reporting generations 2..N (the first
breeds nothing): seconds per generation, evaluations and env steps (frames) per second.

    python scripts/bench_pixels.py                      # Breakout, shallow net, population 64
    python scripts/bench_pixels.py --config configs/minatar/deep.yaml --population 32
    python scripts/bench_pixels.py --train 6 --mutation control --config configs/minatar/deep.yaml
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # NumPy's BLAS on one thread, as torch

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from smevo import functional, train
from smevo.config import Config, apply_overrides, load_config
from smevo.envs import make_env
from smevo.evaluation import EvalSpec, EvalTask, ObsNormalizer, RolloutWorker
from smevo.policies import make_policy

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "minatar"


def numpy_net(policy: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """The cnn `policy` (its own weights) as a NumPy function of channel-last frames
    `[B, H, W, C]` -> outputs `[B, K]`, in float32: each convolution gathers its k*k shifted
    slices of the batch and applies one matrix product to all of them."""
    convs = [(m.weight.detach().numpy(), m.bias.detach().numpy(), m.stride[0], m.padding[0])
             for m in policy.features if isinstance(m, torch.nn.Conv2d)]
    # [out, C, k, k] -> [(kh, kw, C), out]: the order in which the slices are gathered
    convs = [(w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0]), b, w.shape[-1], stride, pad)
             for w, b, stride, pad in convs]
    (w1, b1), (w2, b2) = [(m.weight.detach().numpy().T, m.bias.detach().numpy())
                          for m in policy.head if isinstance(m, torch.nn.Linear)]

    def forward(frames: np.ndarray) -> np.ndarray:
        x = frames.astype(np.float32)
        for kernel, bias, k, stride, pad in convs:
            if pad:
                x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            h, w = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
            columns = np.concatenate([
                x[:, i:i + stride * (h - 1) + 1:stride, j:j + stride * (w - 1) + 1:stride]
                for i in range(k) for j in range(k)], axis=-1)
            x = np.maximum(columns.reshape(-1, kernel.shape[0]) @ kernel + bias, 0).reshape(
                len(x), h, w, -1)
        x = x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # torch flattens (C, H, W)
        return np.maximum(x @ w1 + b1, 0) @ w2 + b2

    return forward


Round = Callable[[int], int]
"""One timed round: evaluate one episode per env from `seed` on; returns the env steps taken."""


def env_alone(env_id: str, count: int, policy: torch.nn.Module, max_steps: int | None) -> Round:
    """A round of `count` envs (made here), one episode each from seeds `seed + i`, stepped
    in lockstep by the NumPy twin of `policy`."""
    envs = [make_env(env_id) for _ in range(count)]
    act = numpy_net(policy)

    def episodes(seed: int) -> int:
        frames = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
        running = np.ones(count, dtype=bool)
        lengths = np.zeros(count, dtype=np.int64)
        while running.any():
            live = np.flatnonzero(running)
            actions = act(frames[live]).argmax(axis=1)
            for i, action in zip(live, actions, strict=True):
                frames[i], _, terminated, truncated, _ = envs[i].step(action)
                lengths[i] += 1
                cut = max_steps is not None and lengths[i] >= max_steps
                running[i] = not (terminated or truncated or cut)
        return int(lengths.sum())

    return episodes


def smevo_round(worker: RolloutWorker, population: torch.Tensor) -> Round:
    """A round of `worker.evaluate` of `population`, one episode per genome from seeds
    `seed + i`."""
    params = population.numpy()

    def evaluate(seed: int) -> int:
        tasks = [EvalTask(i, (seed + i,), seed + i) for i in range(len(params))]
        return sum(r.steps for r in worker.evaluate(params, tasks, ObsNormalizer()))

    return evaluate


def alternating_rates(rounds: dict[str, Round], seeds: list[int]) -> dict[str, list[float]]:
    """Env steps per second of each round function, one timed round per seed each, after a
    warm-up round: the functions take turns, in reversed order every other seed, so that
    whatever else the machine does slows each alike (a busy machine shifted the ratio of two
    back-to-back blocks from 0.4 to 0.9 between runs)."""
    names = list(rounds)
    for run in rounds.values():
        run(seeds[-1] + 10_000)  # seeds no timed round uses
    rates: dict[str, list[float]] = {name: [] for name in names}
    for k, seed in enumerate(seeds):
        for name in names if k % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            steps = rounds[name](seed)
            rates[name].append(steps / (time.perf_counter() - start))
    return rates


def generation_costs(config: Config, generations: int) -> str:
    """Run `config` for `generations` generations and describe generations 2.. (bred ones):
    seconds each, evaluations and env steps per second, env steps per evaluation (the elite's
    re-evaluation is one evaluation of `elite_episodes` episodes)."""
    with tempfile.TemporaryDirectory() as logdir:
        result = train(apply_overrides(config, [
            f"budget.generations={generations}", "budget.env_steps=null",
            "budget.wall_time=null", "logging.quiet=true", "logging.histogram_every=0",
            f"logging.logdir={logdir}"]))
        lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    seconds = last["perf/wall_time"] - first["perf/wall_time"]
    evaluations = last["progress/evaluations"] - first["progress/evaluations"]
    steps = last["progress/env_steps"] - first["progress/env_steps"]
    bred = len(lines) - 1
    return (f"{seconds / bred:.2f} s/generation, {evaluations / seconds:.0f} evaluations/s, "
            f"{steps / seconds:.0f} env steps/s, {steps / evaluations:.1f} steps/evaluation "
            f"(generations 2-{len(lines)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(CONFIGS / "shallow.yaml"))
    parser.add_argument("--env", default=None, help="env id (default: the config's)")
    parser.add_argument("--population", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=20,
                        help="timed rounds of each side, alternating (a round: one episode "
                             "per genome or env)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=0, metavar="N",
                        help="time N generations of a run instead (the first is not counted)")
    parser.add_argument("--mutation", default=None, help="with --train: the operator")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_config(args.config)
    env_id = args.env or config.env.id
    if args.train:
        sets = [f"env.id={env_id}", f"algorithm.population={args.population}"]
        if args.mutation:
            sets.append(f"mutation.name={args.mutation}")
        config = apply_overrides(config, sets)
        print(f"{env_id}, {Path(args.config).stem} cnn, {config.mutation.name}, population "
              f"{args.population}, one torch thread: {generation_costs(config, args.train)}")
        return
    probe = make_env(env_id)
    policy = make_policy(config.policy.name, probe.observation_space, probe.action_space,
                         **config.policy.options)
    probe.close()
    generator = torch.Generator().manual_seed(args.seed)
    population = functional.get_flat(policy) + 0.05 * torch.randn(
        args.population, functional.num_params(policy), generator=generator)
    spec = EvalSpec(env_id, dict(config.env.kwargs), config.policy.name,
                    dict(config.policy.options), max_steps=config.env.max_steps,
                    archive_size=config.mutation.archive_size)
    seeds = [args.seed + args.population * (1 + r) for r in range(args.rounds)]
    workers = {"smevo": RolloutWorker(spec),
               "torch": RolloutWorker(dataclasses.replace(spec, native=False))}
    rates = alternating_rates({
        **{name: smevo_round(worker, population) for name, worker in workers.items()},
        "alone": env_alone(env_id, args.population, policy, config.env.max_steps),
    }, seeds)
    for worker in workers.values():
        worker.close()
    print(f"{env_id}, {config.policy.name} {config.policy.options}, "
          f"{functional.num_params(policy)} parameters, population {args.population}, "
          f"one torch thread; median of {args.rounds} alternating rounds [range]")
    for name, label in (("alone", "env alone (NumPy net, batched):"),
                        ("smevo", "smevo RolloutWorker:"),
                        ("torch", "same, torch's forward:")):
        print(f"  {label:32s}{statistics.median(rates[name]):10.0f} env steps/s "
              f"[{min(rates[name]):.0f}-{max(rates[name]):.0f}]")
    for name, label in (("smevo", "ratio"), ("torch", "ratio with torch's forward")):
        ratios = [ours / alone for ours, alone in zip(rates[name], rates["alone"], strict=True)]
        print(f"  {label}: {statistics.median(ratios):.2f} [{min(ratios):.2f}-"
              f"{max(ratios):.2f}]" + (" (target >= 0.5)" if name == "smevo" else ""))


if __name__ == "__main__":
    main()
