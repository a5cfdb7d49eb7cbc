"""What a run needs of this machine, checked up front: a device it can compute on, and memory.

`check_device` accepts a device only if a tensor can be made on it: torch knows device types
(xpu, hpu, ...) it was not built for and fails on their first use, and the meta device makes
tensors without data.

Without a memory bound, a population of 10^11, an archive of 10^12 observations or a million
workers is allocated (or spawned) until the machine swaps to a halt. `check_memory` estimates
what a run holds at once from its config and its policy's parameter count (the policy is
built on torch's meta device, which allocates nothing) and refuses, with one line naming the
size to lower, a run whose estimate exceeds the machine's physical memory. The estimate leaves
out what it cannot know (the envs' own state, torch's workspaces), so a run it accepts may
still not fit: it turns a hang into an error, it does not predict memory use.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch

from smevo.config import Config

__all__ = [
    "Need",
    "check_device",
    "check_episodes",
    "check_fits",
    "check_memory",
    "parameter_count",
    "physical_memory",
    "run_needs",
]

GENOME_BYTES = 4
"""A genome element: float32."""
OBSERVATION_BYTES = 4
"""An archived observation element: float32."""
EPISODE_BYTES = 64
"""What each episode of a generation holds at least: its seed (a Python int in its task) and
its return (a Python float in its result)."""
EPISODE_RESULT_BYTES = 200
"""What `Agent.run_episodes` keeps per episode at least: a dict of its return, length and
solved flag."""
WORKER_BYTES = 100 * 2**20
"""A worker process's own memory once torch is imported (measured: about 150 MiB)."""


class Need(NamedTuple):
    """Memory a run holds for one purpose: how many bytes, for what, and which keys set it."""

    bytes: int
    what: str
    keys: str


def _first_line(error: BaseException) -> str:
    """'Type: first line of the message' (torch's messages run to paragraphs)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:100] if lines else ''}"


def check_device(name: str) -> None:
    """Raise `ValueError` unless torch knows device `name` and this machine can compute on it."""
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"device {name!r}: {_first_line(error)}") from None
    if device.type == "meta":
        raise ValueError(f"device {name!r} holds no data and cannot run a policy; use cpu")
    try:
        torch.zeros(1, device=device)
    except Exception as error:  # torch fails in many ways here (Assertion, NotImplemented...)
        raise ValueError(
            f"device {name!r} is not available on this machine ({_first_line(error)}); use cpu"
        ) from None


def physical_memory() -> int | None:
    """This machine's physical memory in bytes, or None where the OS does not tell."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows), or no such name
        return None


def parameter_count(config: Config, observation_space: gym.Space, action_space: gym.Space) -> int:
    """The number of parameters of the config's policy, counted without allocating them.

    Raises `ValueError` when the policy cannot be built from its options (a size so large
    that torch's size arithmetic overflows, or an option of the wrong type).
    """
    from smevo.policies import make_policy

    try:
        with torch.device("meta"):
            policy = make_policy(
                config.policy.name, observation_space, action_space, **config.policy.options
            )
    except (TypeError, RuntimeError, OverflowError) as error:
        raise ValueError(
            f"policy {config.policy.name!r} with options {config.policy.options}: cannot be "
            f"built ({_first_line(error)})"
        ) from None
    return sum(parameter.numel() for parameter in policy.parameters())


def _workers(config: Config) -> int:
    """Worker processes the run starts on this machine (0 when it evaluates in process)."""
    from smevo.evaluation import BACKENDS

    evaluation = config.evaluation
    backend = BACKENDS.get(evaluation.backend)
    return backend.local_workers(evaluation.workers, evaluation.ray_address)


def run_needs(config: Config, parameters: int, observation_size: int) -> list[Need]:
    """What a run of `config` holds at once, with a policy of `parameters` parameters and
    observations of `observation_size` elements: the population's genomes and its children's,
    every individual's observation archive at full size (the vectorized backend, the default,
    allocates them together), each episode's seed and return, and the worker processes."""
    from smevo.algorithms import ALGORITHMS, algorithm_options

    algorithm = config.algorithm
    options = algorithm_options(algorithm.name, algorithm.population, algorithm.options)
    population, children, validated = ALGORITHMS.get(algorithm.name).footprint(
        algorithm.population, options)
    episodes = population * config.env.episodes + validated * algorithm.elite_episodes
    workers = _workers(config)
    return [
        Need(
            (population + children) * parameters * GENOME_BYTES,
            f"genomes ({population:,} individuals and {children:,} children of "
            f"{parameters:,} parameters)",
            "algorithm.population (or algorithm.options.batch) or the policy's size",
        ),
        Need(
            population * config.mutation.archive_size * observation_size * OBSERVATION_BYTES,
            f"observation archives ({population:,} individuals × "
            f"{config.mutation.archive_size:,} observations of {observation_size:,} numbers)",
            "mutation.archive_size or algorithm.population",
        ),
        Need(
            episodes * EPISODE_BYTES,
            f"episodes ({episodes:,} per generation)",
            "env.episodes, algorithm.elite_episodes or algorithm.population",
        ),
        Need(workers * WORKER_BYTES, f"worker processes ({workers:,})", "evaluation.workers"),
    ]


def _size(count: int) -> str:
    """Bytes as a person reads them: '23.5 GiB'."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024 or unit == "EiB":
            break
        value /= 1024
    return f"{value:.3g} {unit}"


def check_fits(needs: list[Need]) -> None:
    """Raise `ValueError` if `needs` together exceed this machine's memory, naming the total,
    the machine's memory, the largest part and the keys that size it. Does nothing where the
    OS does not report its memory."""
    memory = physical_memory()
    total = sum(need.bytes for need in needs)
    if memory is None or total <= memory:
        return
    largest = max(needs, key=lambda need: need.bytes)
    raise ValueError(
        f"this needs at least {_size(total)} of memory, more than this machine's "
        f"{_size(memory)}; {_size(largest.bytes)} of it for {largest.what}: lower "
        f"{largest.keys}"
    )


def check_memory(config: Config, observation_space: gym.Space, action_space: gym.Space) -> None:
    """Raise `ValueError` if a run of `config` cannot fit in this machine's memory."""
    observation_size = int(np.prod(observation_space.shape or (1,)))
    parameters = parameter_count(config, observation_space, action_space)
    check_fits(run_needs(config, parameters, observation_size))


def check_episodes(episodes: int, flag: str) -> None:
    """Raise `ValueError` if the results of `episodes` played episodes cannot fit in memory."""
    check_fits([Need(episodes * EPISODE_RESULT_BYTES, f"{episodes:,} episode results", flag)])
