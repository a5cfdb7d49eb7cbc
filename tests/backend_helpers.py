"""Shared by the backend and run tests: a CartPole spec, seeded genomes and tasks, result
equality, the config of a test run and a run's metrics."""

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from smevo import functional
from smevo.config import Config, apply_overrides
from smevo.evaluation import EvalTask
from smevo.evaluation.rollout import EvalSpec
from smevo.policies import make_policy
from smevo.seeding import EVALUATION, INIT, derive_seed, episode_seeds

SPEC = EvalSpec(env_id="CartPole-v1", env_kwargs={}, policy_name="mlp",
                policy_options={"hidden": 16, "depth": 1}, archive_size=20)


def population(count: int, seed: int, spec: EvalSpec = SPEC) -> torch.Tensor:
    """`count` initialised genomes of `spec`'s policy, individual i from its own seed stream
    (as the trainer)."""
    env = gym.make(spec.env_id)
    genomes = []
    for i in range(count):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(seed, INIT, i))
            policy = make_policy(spec.policy_name, env.observation_space, env.action_space,
                                 **spec.policy_options)
            genomes.append(functional.get_flat(policy))
    env.close()
    return torch.stack(genomes)


def tasks(count: int, generation: int, seed: int, episodes: int = 2) -> list[EvalTask]:
    """Generation `generation`'s evaluation tasks, seeded as `SearchContext.evaluate` does."""
    return [EvalTask(index=i,
                     seeds=tuple(episode_seeds(seed, episodes, EVALUATION, generation, i)),
                     sample_seed=derive_seed(seed, EVALUATION, generation, i, 1))
            for i in range(count)]


def same(a, b) -> bool:
    """Two result lists agree on everything, experiences included."""
    return len(a) == len(b) and all(
        (x.index, x.fitness, x.returns, x.steps, x.solved, x.broken)
        == (y.index, y.fitness, y.returns, y.steps, y.solved, y.broken)
        and np.array_equal(x.experiences, y.experiences)
        for x, y in zip(a, b, strict=True))


def metrics(run_dir: Path) -> list[dict]:
    """A run's metrics.jsonl without the timing scalars (`perf/`), which no two runs share."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("perf/")}
            for line in lines]


def run_configs(base: Sequence[str]) -> Callable[..., Config]:
    """`config(tmp_path, *overrides)` for a test module: the default config with its runs in
    `tmp_path`, quiet, then the module's `base` settings and the test's `overrides` (``--set``
    style strings)."""

    def config(tmp_path: Path, *overrides: str) -> Config:
        return apply_overrides(Config(), [f"logging.logdir={tmp_path}", "logging.quiet=true",
                                          *base, *overrides])

    return config
