"""Whether a config can run on this machine, decided in one place: `check_runnable`.

`Trainer` calls it before it starts anything (a backend, a worker, a run folder), so
``smevo train``, ``smevo resume``, `smevo.train` and a `Trainer` built by hand refuse a config
alike, with the same one-line `ValueError`. What it checks, cheapest first: the config's types
and ranges (`validate_config`); that every name resolves (algorithm, mutation, policy,
backend) and the algorithm and the mutation accept their options (their classes' signatures;
the algorithm's class checks their ranges); that the device can compute; that
``env.max_steps`` leaves the env a reward; that the env can be made; that the run fits in
memory; that the policy accepts its options and the env's spaces. What it builds
on the way is handed back (`Runnable`) so that nothing is built twice. `AskTell` calls it too,
with the caller's spaces in place of the env's.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

from smevo.agent import solve_threshold
from smevo.algorithms import ALGORITHMS, Algorithm, algorithm_options
from smevo.config import Config, EnvConfig, validate_config
from smevo.envs import make_env
from smevo.evaluation import BACKENDS
from smevo.evaluation.capabilities import env_capabilities
from smevo.mutations import Mutation, make_mutation
from smevo.policies import POLICIES, Policy, make_policy
from smevo.resources import check_device, check_memory

__all__ = ["Runnable", "check_max_steps", "check_runnable"]


def check_max_steps(env: EnvConfig) -> None:
    """Raise `ValueError` if `env.max_steps` would cut away the env's whole reward (the env
    class declares `EnvCapabilities.end_reward`); a shorter episode there is a different
    task, set in the env's own kwargs."""
    reward = env_capabilities(env.id).end_reward
    if env.max_steps is not None and reward is not None:
        raise ValueError(
            f"env.max_steps={env.max_steps} cannot be used with {env.id}: its reward ({reward}) "
            "arrives only when its own episode ends, so every cut episode would score 0; "
            "leave env.max_steps unset"
        )


@dataclass
class Runnable:
    """What `check_runnable` built while checking: the algorithm's class (built with
    ``algorithm.options``), the mutation operator, the policy (on the CPU, randomly
    initialised) and the solve threshold."""

    algorithm: type[Algorithm]
    mutation: Mutation
    policy: Policy
    threshold: float | None


def check_runnable(
    config: Config,
    *,
    trust_env_code: bool = False,
    spaces: tuple[gym.Space, gym.Space] | None = None,
) -> Runnable:
    """Raise `ValueError` (a `ConfigError` for types and ranges) unless `config` can run here;
    see the module docstring for what is checked. `trust_env_code` lets ``env.id`` name code
    (`smevo.envs.check_env_trust`): true for the caller's own config. `spaces` (observation,
    action), when given, stand for the env's, which is then not made (ask/tell: the caller
    evaluates)."""
    validate_config(config)
    algorithm = ALGORITHMS.get(config.algorithm.name)
    algorithm_options(config.algorithm.name, config.algorithm.population,
                      config.algorithm.options)
    mutation = make_mutation(config.mutation.name, config.mutation.magnitude,
                             **config.mutation.options)
    POLICIES.canonical(config.policy.name)  # an unknown name fails before the env is made
    BACKENDS.get(config.evaluation.backend)  # e.g. ray, when it is not installed
    check_device(config.device)
    spec = None
    if spaces is None:
        check_max_steps(config.env)
        probe = make_env(config.env.id, config.env.kwargs, trust_env_code=trust_env_code)
        try:
            spaces, spec = (probe.observation_space, probe.action_space), probe.spec
        finally:
            probe.close()
    check_memory(config, *spaces)
    policy = make_policy(config.policy.name, *spaces, **config.policy.options)
    threshold = solve_threshold(config.budget.solve_threshold, config.env.max_steps, spec)
    return Runnable(algorithm, mutation, policy, threshold)
