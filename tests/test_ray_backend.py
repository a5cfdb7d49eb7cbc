"""The ray backend on a real local Ray instance (2 CPUs): same run as the serial backend, and
an actor killed in the middle of a generation loses nothing."""

import logging
from functools import partial

import backend_helpers
import pytest
import ray
import torch

from smevo import train
from smevo.config import Config, apply_overrides
from smevo.evaluation import ObsNormalizer, make_backend
from smevo.evaluation.backends import SerialBackend
from smevo.evaluation.ray_backend import RayBackend

SEED = 11
SPEC, same, metrics = backend_helpers.SPEC, backend_helpers.same, backend_helpers.metrics
population = partial(backend_helpers.population, seed=SEED)
tasks = partial(backend_helpers.tasks, seed=SEED)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance with 2 CPUs for the whole module (backends reuse it)."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    yield
    ray.shutdown()



@pytest.mark.bitexact  # same seed, same results on every backend
@pytest.mark.processes
def test_starts_and_stops_its_own_local_ray():
    # First in the module, before `local_ray` starts the shared instance.
    assert not ray.is_initialized(), "must run before the module's shared Ray instance"
    params, normalizer, work = population(6), ObsNormalizer(), tasks(6, 0)
    serial = SerialBackend(SPEC)
    expected = serial.evaluate(params, work, normalizer)
    serial.close()
    backend = RayBackend(SPEC, workers=2)
    try:
        assert ray.is_initialized() and ray.cluster_resources()["CPU"] == 2
        assert same(backend.evaluate(params, work, normalizer), expected)
        assert backend.events() == []
    finally:
        backend.close()
    assert not ray.is_initialized()


def test_unreachable_address_is_a_clear_error():
    assert not ray.is_initialized(), "must run before the module's shared Ray instance"
    with pytest.raises(ValueError, match="no Ray cluster answers at '127.0.0.1:1'"):
        make_backend("ray", SPEC, workers=1, address="127.0.0.1:1")
    assert not ray.is_initialized()


@pytest.mark.usefixtures("local_ray")
@pytest.mark.bitexact  # same seed, same results on every backend
@pytest.mark.processes
def test_short_run_matches_serial(tmp_path):
    def run(backend: str):
        config = apply_overrides(Config(), [
            f"logging.logdir={tmp_path / backend}", "logging.quiet=true", "seed=3",
            "env.id=CartPole-v1", "env.episodes=2", "policy.name=mlp",
            "policy.options={hidden: 16, depth: 1, activation: tanh}",
            "mutation.name=SM-G-SUM", "mutation.magnitude=0.1",
            "algorithm.population=16", "algorithm.options.parents=4", "algorithm.elite_episodes=2",
            "budget.generations=3", "budget.stop_when_solved=false",
            f"evaluation.backend={backend}", "evaluation.workers=2"])
        result = train(config)
        return metrics(result.run_dir), result.best_params

    serial_metrics, serial_best = run("serial")
    ray_metrics, ray_best = run("ray")
    assert len(serial_metrics) == 3
    assert ray_metrics == serial_metrics
    assert torch.equal(ray_best, serial_best)
    assert ray.is_initialized()  # the backend used the module's Ray and left it running


@pytest.mark.usefixtures("local_ray")
@pytest.mark.bitexact  # same seed, same results on every backend
@pytest.mark.processes
def test_actor_killed_mid_generation_loses_nothing():
    # 64 individuals: enough for more groups than actors.
    params, normalizer, work = population(64), ObsNormalizer(), tasks(64, 0)
    serial = SerialBackend(SPEC)
    expected = serial.evaluate(params, work, normalizer)
    serial.close()
    backend = make_backend("ray", SPEC, workers=2)
    submit, submitted, killed = backend._submit, [], []

    def kill_then_submit(slot, *args):
        # Mid-generation: the third group goes to the actor that returned the first result,
        # while other groups are still running or waiting. Kill that actor (and wait until
        # Ray reports it dead), so that this group is certainly lost and must be re-run.
        submitted.append(slot)
        if len(submitted) == 3:
            actor = backend._actors[slot]
            ray.kill(actor)
            with pytest.raises(ray.exceptions.RayActorError):
                for _ in range(100):
                    ray.get(actor.ready.remote())
            killed.append(actor)
        return submit(slot, *args)

    backend._submit = kill_then_submit
    try:
        results = backend.evaluate(params, work, normalizer)
        assert same(results, expected)
        assert killed and killed[0] not in backend._actors
        events = backend.events()
        assert len(events) == 1 and "Ray actor died" in events[0], events
        assert backend.events() == []
        # The replacement works like any actor; without a death one submission fewer.
        with_death = len(submitted)
        assert same(backend.evaluate(params, work, normalizer), expected)
        assert len(submitted) - with_death == with_death - 1
        assert backend.events() == []
    finally:
        backend.close()
    assert ray.is_initialized()
