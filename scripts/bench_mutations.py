"""Benchmark the mutation operators against the reference method, timed in the same run.

For each network — (a) the reference maze net 11 -> 6x15 ReLU -> 2 sigmoid with N=100 states,
(b) a 64x125 tanh MLP (~1M parameters) with N=100, (c) the parity GRU stack over the 16
sequences — prints ms per mutation for every operator, and ms for the reference way of
computing the sensitivities: a loop of autograd backward calls per output (SUM), per output
and per experience with a fresh forward each (ABS), and double backprop (SO). Then (d): the
SM-G-SUM/ABS sensitivities of a generation's 50 parents of the maze net, batched as the
trainer computes them, against one parent at a time; the same for 50 parity-GRU parents on the
16 sequences.

Targets: SM-G-ABS >= 10x faster than the loop on (a); SM-G-SUM <= 3x one forward+backward
over the experiences on (b).

    python scripts/bench_mutations.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from smevo import functional as F
from smevo.experiences import Experiences
from smevo.mutations import MUTATIONS, make_mutation
from smevo.mutations.sensitivity import (
    DEFAULT_CHUNK_ELEMENTS,
    norm_over_outputs,
    parents_sensitivity,
    raw_sensitivity,
)
from smevo.policies import make_policy


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of `fn` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def reference_sum(policy, params, experiences):
    theta = params.clone().requires_grad_(True)
    outputs = F.forward(policy, theta, experiences)
    total = outputs.sum(dim=tuple(range(outputs.ndim - 1)))
    grads = [torch.autograd.grad(total[k], theta, retain_graph=True)[0]
             for k in range(outputs.shape[-1])]
    return norm_over_outputs(torch.stack(grads))


def reference_abs(policy, params, experiences):
    theta = params.clone().requires_grad_(True)
    total = torch.zeros(policy.output_size, params.numel())
    for n in range(len(experiences)):
        single = Experiences(experiences.observations[n : n + 1],
                             None if experiences.mask is None else experiences.mask[n : n + 1])
        for k in range(policy.output_size):
            output = F.forward(policy, theta, single)[..., k].sum()
            total[k] += torch.autograd.grad(output, theta)[0].abs()
    return norm_over_outputs(total / len(experiences))


def reference_so(policy, params, experiences, direction):
    theta = params.clone().requires_grad_(True)
    outputs = F.forward(policy, theta, experiences)
    loss = (outputs - outputs.detach()).square().sum(-1).mean()
    (grad,) = torch.autograd.grad(loss, theta, create_graph=True)
    (hd,) = torch.autograd.grad(grad @ direction, theta)
    return hd.abs().sqrt()


def forward_backward(policy, params, experiences):
    theta = params.clone().requires_grad_(True)
    F.forward(policy, theta, experiences).sum().backward()


def networks():
    maze_obs, maze_act = gym.spaces.Box(0, 1, (11,)), gym.spaces.Box(0, 1, (2,))
    maze = make_policy("mlp", maze_obs, maze_act, hidden=15, depth=7, activation="relu",
                       init="xavier", output_activation="sigmoid")
    deep = make_policy("mlp", maze_obs, maze_act, hidden=125, depth=65, activation="tanh",
                       init="xavier", output_activation="sigmoid")
    parity = make_policy("gru", gym.spaces.Box(0, 1, (1,)), gym.spaces.Box(-np.inf, np.inf, (2,)))
    bits = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))[:, :, None]
    states = torch.rand(100, 11)
    return [
        ("(a) maze 6x15 relu", maze, Experiences.from_states(states)),
        ("(b) 64x125 tanh", deep, Experiences.from_states(states)),
        ("(c) parity GRU", parity, Experiences.from_sequences(list(bits))),
    ]


def bench_generation(label: str, policy, archive: Callable[[], Experiences], repeats: int,
                     parents: int = 50) -> None:
    """(d) What the trainer does with a generation's parents: SM-G-SUM/ABS sensitivities of
    `parents` parents near the policy's genome, each on its own `archive()`, batched
    (`parents_sensitivity`) against one `raw_sensitivity` call per parent."""
    torch.manual_seed(1)
    genomes = F.get_flat(policy) + 0.1 * torch.randn(parents, F.num_params(policy))
    batches = [archive() for _ in range(parents)]
    print(f"\n(d) a generation's parents: {parents} {label} parents x "
          f"{batches[0].num_samples} samples")
    for kind in ("SUM", "ABS"):
        one_by_one = timed(lambda k=kind: [
            raw_sensitivity(policy, g, e, k, None, "mean", DEFAULT_CHUNK_ELEMENTS)
            for g, e in zip(genomes, batches, strict=True)], repeats)
        batched = timed(lambda k=kind: parents_sensitivity(policy, genomes, batches, k, "mean"),
                        repeats)
        print(f"  SM-G-{kind}: {batched:8.2f} ms batched, {one_by_one:8.2f} ms one parent at a "
              f"time: {one_by_one / batched:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}")
    results = {}
    for label, policy, experiences in networks():
        params = F.get_flat(policy)
        direction = torch.randn(params.shape)
        direction /= direction.norm()
        repeats = args.repeats
        print(f"\n{label}: {params.numel():,} parameters, {experiences.num_samples} samples")
        base = timed(lambda p=policy, x=params, e=experiences: forward_backward(p, x, e), repeats)
        print(f"  one forward+backward over the experiences: {base:9.2f} ms")
        loops = {
            "SM-G-SUM": timed(lambda p=policy, x=params, e=experiences:
                              reference_sum(p, x, e), repeats),
            "SM-G-ABS": timed(lambda p=policy, x=params, e=experiences:
                              reference_abs(p, x, e), max(1, repeats // 5)),
            "SM-G-SO": timed(lambda p=policy, x=params, e=experiences, d=direction:
                             reference_so(p, x, e, d), repeats),
        }
        print(f"  {'operator':10s} {'ms/mutation':>12s} {'reference loop':>15s} {'speed-up':>9s}"
              f" {'x fwd+bwd':>10s}")
        for name in MUTATIONS.names():
            operator = make_mutation(name, 0.01)
            generator = torch.Generator().manual_seed(0)
            ms = timed(lambda o=operator, p=policy, x=params, e=experiences, g=generator:
                       o(x, p, e, g), repeats)
            loop = loops.get(name)
            loop_text = f"{loop:12.2f} ms" if loop else " " * 15
            ratio = f"{loop / ms:8.1f}x" if loop else " " * 9
            print(f"  {name:10s} {ms:9.2f} ms {loop_text} {ratio} {ms / base:9.1f}x")
            results[label[:3], name] = (ms, loop, base)
    (_, maze, _), _, (_, parity, sequences) = networks()
    bench_generation("maze-net", maze, lambda: Experiences.from_states(torch.rand(100, 11)),
                     args.repeats)
    bench_generation("parity-GRU", parity, lambda: sequences, args.repeats)
    abs_ms, abs_loop, _ = results["(a)", "SM-G-ABS"]
    sum_ms, _, sum_base = results["(b)", "SM-G-SUM"]
    print("\ntargets:")
    print(f"  (a) SM-G-ABS vs the reference loop: {abs_loop / abs_ms:.1f}x faster (target >= 10x)")
    print(f"  (b) SM-G-SUM vs one forward+backward: {sum_ms / sum_base:.2f}x the cost"
          " (target <= 3x; includes the noise draw and measuring the child's divergence)")


if __name__ == "__main__":
    main()
