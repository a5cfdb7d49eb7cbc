"""Benchmark the mutation operators against the reference method, timed in the same run.

For each network — (a) the reference maze net 11 -> 6x15 ReLU -> 2 sigmoid with N=100 states,
(b) a 64x125 tanh MLP (~1M parameters) with N=100, (c) the parity GRU stack over the 16
sequences — prints ms per mutation for every operator, and ms for the reference way of
computing the sensitivities: a loop of autograd backward calls per output (SUM), per output
and per experience with a fresh forward each (ABS), and double backprop (SO).

Then (d), trainer-shaped: the shipped configs of the mutation-engine issue (the depth-7 maze
MLP, the parity GRU, the grid-maze plastic RNN), each set up as `smevo train` sets it up and
run for its first generation, so that the parents carry real archives. For the second
generation's parents, each operator's breeding of the generation's children
(`SearchContext.breed`) is timed against the evaluation of the same children (the config's
backend), and SM-G-ABS's per-sample Jacobians against the approach they replaced, one
`vmap(jacrev)` of the flat genome per sample, on the same parents and archives.

Targets: SM-G-ABS >= 10x faster than the loop on (a); SM-G-SUM <= 3x one forward+backward
over the experiences on (b); in (d), breeding at most about the evaluation's cost.

    python scripts/bench_mutations.py [--repeats 5] [--threads 1] [--only-generation]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from torch.func import jacrev, vmap

from smevo import functional as F
from smevo.algorithms import algorithm_options
from smevo.algorithms.base import GenerationLog, Population
from smevo.config import Config, apply_overrides, load_config
from smevo.experiences import Experiences
from smevo.mutations import MUTATIONS, make_mutation
from smevo.mutations.sensitivity import (
    norm_over_outputs,
    padded_experiences,
    parents_sensitivity,
)
from smevo.policies import make_policy
from smevo.trainer import Trainer

GENERATION_CONFIGS = {
    "maze depth 7": "configs/maze-deep-smg-abs.yaml",
    "parity GRU": "configs/parity-gru.yaml",
    "grid maze plastic": "configs/gridmaze-plastic.yaml",
}
"""(d)'s workloads: the issue's shipped configs, as `smevo train` runs them."""


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


def jacrev_abs(policy, params: torch.Tensor, experiences: Experiences) -> torch.Tensor:
    """SM-G-ABS's raw sensitivity as smevo computed it before per-piece, blocked Jacobians:
    one `vmap(jacrev)` of the flat genome over the samples (the baseline of (d))."""
    sequential = experiences.is_sequential

    def one_sample(flat: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        return F.forward_observations(policy, flat, sample[None], sequential)[0]

    weights = experiences.sample_weights() / experiences.num_samples
    jacobians = vmap(jacrev(one_sample), in_dims=(None, 0))(params, experiences.observations)
    summed = (jacobians.abs() * weights[..., None, None]).sum(dim=tuple(range(weights.ndim)))
    return norm_over_outputs(summed)


def generation_parents(config: Config, population: Population) -> np.ndarray:
    """The parent of each child of a generation, chosen as the config's algorithm chooses
    (seeded): steady state, the winners of `batch` tournaments; truncation, uniform draws
    from the top `parents` for every non-elite slot."""
    rng = np.random.default_rng(0)
    settings = config.algorithm
    options = algorithm_options(settings.name, settings.population, settings.options)
    if settings.name == "steady_state":
        return np.array([
            max(rng.choice(len(population), options["tournament"], replace=False),
                key=lambda member: population.fitness[member])
            for _ in range(options["batch"])])
    top = population.ranking()[:options["parents"]]
    return top[rng.integers(0, len(top), settings.population - options["elites"])]


def bench_generation(label: str, path: str, repeats: int) -> None:
    """(d) One workload: breeding a generation's children with each operator, against their
    evaluation and (SM-G-ABS) against `jacrev_abs` on the same parents."""
    config = apply_overrides(load_config(path), ["logging.quiet=true", "seed=1"])
    trainer = Trainer(config)
    try:
        algorithm, context = trainer.algorithm, trainer.context
        algorithm.step()  # generation 0: the parents and their archives
        population = algorithm.population
        parents = generation_parents(config, population)
        members = sorted(set(parents.tolist()))
        children = context.breed(population, parents, 1, GenerationLog())
        evaluation = timed(lambda: context.evaluate(children, 1, GenerationLog()), repeats)
        archive = [context.experiences(population.experiences[m]) for m in members]
        print(f"\n(d) {label} ({path}): {len(parents)} children of {len(members)} parents, "
              f"{F.num_params(context.policy):,} parameters, archives of "
              f"{archive[0].num_samples} samples; evaluating the children: {evaluation:.0f} ms")
        print(f"  {'operator':10s} {'breeding ms':>12s} {'x evaluation':>13s}")
        for name in MUTATIONS.names():
            context.mutation = make_mutation(name, config.mutation.magnitude,
                                             **config.mutation.options)
            ms = timed(lambda: context.breed(population, parents, 1, GenerationLog()), repeats)
            print(f"  {name:10s} {ms:12.0f} {ms / evaluation:12.2f}x")
        genomes = population.params[torch.as_tensor(members)]
        ours = timed(lambda: parents_sensitivity(
            context.policy, genomes, padded_experiences(archive, genomes.device), "ABS",
            "mean"), max(1, repeats // 2))
        before = timed(lambda: [jacrev_abs(context.policy, g, e)
                                for g, e in zip(genomes, archive, strict=True)],
                       max(1, repeats // 2))
        print(f"  SM-G-ABS sensitivities of the {len(members)} parents: {ours:.0f} ms, "
              f"vmap(jacrev) per parent {before:.0f} ms: {before / ours:.1f}x")
    finally:
        context.backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--only-generation", action="store_true",
                        help="only (d), the trainer-shaped workloads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}")
    if args.only_generation:
        for label, path in GENERATION_CONFIGS.items():
            bench_generation(label, path, args.repeats)
        return
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
    for label, path in GENERATION_CONFIGS.items():
        bench_generation(label, path, args.repeats)
    abs_ms, abs_loop, _ = results["(a)", "SM-G-ABS"]
    sum_ms, _, sum_base = results["(b)", "SM-G-SUM"]
    print("\ntargets:")
    print(f"  (a) SM-G-ABS vs the reference loop: {abs_loop / abs_ms:.1f}x faster (target >= 10x)")
    print(f"  (b) SM-G-SUM vs one forward+backward: {sum_ms / sum_base:.2f}x the cost"
          " (target <= 3x; includes the noise draw and measuring the child's divergence)")


if __name__ == "__main__":
    main()
