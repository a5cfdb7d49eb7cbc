"""The process backend survives a worker killed by the OS in the middle of a generation."""

import multiprocessing.connection
import os
import signal

import gymnasium as gym
import numpy as np
import torch

from smevo import functional
from smevo.evaluation import EvalSpec, EvalTask, ObsNormalizer
from smevo.evaluation.backends import ProcessBackend, SerialBackend
from smevo.policies import make_policy
from smevo.seeding import EVALUATION, INIT, derive_seed, episode_seeds

SEED = 7
SPEC = EvalSpec(env_id="CartPole-v1", env_kwargs={}, policy_name="mlp",
                policy_options={"hidden": 16, "depth": 1}, archive_size=20)


def population(count: int) -> torch.Tensor:
    """`count` initialised genomes, individual i from its own seed stream (as the trainer)."""
    env = gym.make(SPEC.env_id)
    genomes = []
    for i in range(count):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(SEED, INIT, i))
            policy = make_policy(SPEC.policy_name, env.observation_space, env.action_space,
                                 **SPEC.policy_options)
            genomes.append(functional.get_flat(policy))
    env.close()
    return torch.stack(genomes)


def tasks(count: int, generation: int, episodes: int = 2) -> list[EvalTask]:
    """Generation `generation`'s evaluation tasks, seeded as `SearchContext.evaluate` does."""
    return [EvalTask(index=i,
                     seeds=tuple(episode_seeds(SEED, episodes, EVALUATION, generation, i)),
                     sample_seed=derive_seed(SEED, EVALUATION, generation, i, 1))
            for i in range(count)]


def same(a, b) -> bool:
    """Two result lists agree on everything, experiences included."""
    return len(a) == len(b) and all(
        (x.index, x.fitness, x.returns, x.steps, x.solved, x.broken)
        == (y.index, y.fitness, y.returns, y.steps, y.solved, y.broken)
        and np.array_equal(x.experiences, y.experiences)
        for x, y in zip(a, b, strict=True))


def test_worker_killed_mid_generation_loses_nothing():
    params, normalizer = population(24), ObsNormalizer()
    serial = SerialBackend(SPEC)
    expected = [serial.evaluate(params, tasks(24, g), normalizer) for g in (0, 1)]
    serial.close()
    backend = ProcessBackend(SPEC, workers=2)
    try:
        assert same(backend.evaluate(params, tasks(24, 0), normalizer), expected[0])
        assert backend.events() == []
        # Generation 1: SIGKILL a worker right after the first group has been handed out.
        pool, submit = backend._pool, backend._pool.submit
        victims = []

        def submit_then_kill(*args, **kwargs):
            future = submit(*args, **kwargs)
            if not victims:
                victims.append(backend.worker_pids()[0])
                os.kill(victims[0], signal.SIGKILL)
            return future

        pool.submit = submit_then_kill
        assert same(backend.evaluate(params, tasks(24, 1), normalizer), expected[1])
        assert backend._pool is not pool and victims[0] not in backend.worker_pids()
        events = backend.events()
        assert len(events) == 1 and "worker process died" in events[0]
    finally:
        backend.close()


def test_worker_killed_between_generations_loses_nothing():
    # A worker that dies while idle (the OOM killer during the driver's mutation phase) breaks
    # the pool before the next generation submits anything.
    params, normalizer = population(8), ObsNormalizer()
    serial = SerialBackend(SPEC)
    expected = serial.evaluate(params, tasks(8, 1), normalizer)
    serial.close()
    backend = ProcessBackend(SPEC, workers=2)
    try:
        backend.evaluate(params, tasks(8, 0), normalizer)
        victim = next(iter(backend._pool._processes.values()))
        os.kill(victim.pid, signal.SIGKILL)
        multiprocessing.connection.wait([victim.sentinel])
        assert same(backend.evaluate(params, tasks(8, 1), normalizer), expected)
        assert len(backend.events()) == 1
    finally:
        backend.close()
