"""The process backend: how it starts its workers, and that it survives a worker killed by
the OS in the middle of a generation."""

import dataclasses
import multiprocessing.connection
import os
import shutil
import signal
import sys
import threading
from functools import partial

import backend_helpers
import pytest

from smevo.evaluation import ObsNormalizer, backends
from smevo.evaluation.backends import (
    ProcessBackend,
    SerialBackend,
    WorkerCrashError,
    worker_start_method,
)

SEED = 7
SPEC, same = backend_helpers.SPEC, backend_helpers.same
population = partial(backend_helpers.population, seed=SEED)
tasks = partial(backend_helpers.tasks, seed=SEED)


def serial_results(params, generation_tasks, spec=SPEC):
    """What the serial backend, the reference, returns for these genomes and tasks."""
    serial = SerialBackend(spec)
    try:
        return serial.evaluate(params, generation_tasks, ObsNormalizer())
    finally:
        serial.close()


def test_workers_are_forked_only_from_a_single_threaded_cpu_driver_on_linux(monkeypatch):
    # The thread count is set, not observed: an earlier test may have left a thread behind.
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    linux = "fork" if sys.platform.startswith("linux") else "spawn"
    assert worker_start_method(SPEC) == linux
    assert worker_start_method(dataclasses.replace(SPEC, device="cpu")) == linux
    assert worker_start_method(dataclasses.replace(SPEC, device="cuda")) == "spawn"
    monkeypatch.setattr(threading, "active_count", lambda: 2)  # e.g. TensorBoard's writer
    assert worker_start_method(SPEC) == "spawn"


LANES_SPEC = dataclasses.replace(SPEC, env_id="CartPole-v0")
"""CartPole-v0 takes the Python lockstep path over single envs, whose lanes are refilled from
the shared claims; CartPole-v1 (`SPEC`) the C++ rollout, claimed a group at a time."""


@pytest.mark.bitexact  # forked and spawned workers compute the same thing
@pytest.mark.processes
@pytest.mark.filterwarnings("ignore:.*CartPole-v0 is out of date")
@pytest.mark.parametrize("spec", [SPEC, LANES_SPEC], ids=["native-groups", "refilled-lanes"])
@pytest.mark.parametrize("method", sorted({"fork", "spawn"}
                                          & set(multiprocessing.get_all_start_methods())))
def test_forked_and_spawned_workers_give_the_serial_results(monkeypatch, method, spec):
    monkeypatch.setattr(backends, "worker_start_method", lambda spec: method)
    monkeypatch.setattr(backends, "MIN_GROUP_SIZE", 2)  # 15 lanes per worker, 10 claimed later
    params, normalizer = population(40, spec=spec), ObsNormalizer()
    expected = serial_results(params, tasks(40, 0), spec)
    backend = ProcessBackend(spec, workers=2)
    try:
        assert same(backend.evaluate(params, tasks(40, 0), normalizer), expected)
    finally:
        backend.close()


@pytest.mark.bitexact  # the same round, with the driver's work beside it
@pytest.mark.processes
def test_work_meanwhile_runs_once_while_the_workers_hold_the_tasks():
    """`evaluate_meanwhile` runs the driver's own work once the workers have the tasks (their
    calls are in the pool, or claims have begun), once, and the results are `evaluate`'s."""
    params, normalizer = population(40), ObsNormalizer()
    backend = ProcessBackend(SPEC, workers=2)
    seen = []
    try:
        expected = backend.evaluate(params, tasks(40, 0), normalizer)
        got = backend.evaluate_meanwhile(params, tasks(40, 0), normalizer, lambda: seen.append(
            bool(backend._pool._pending_work_items) or backend._counter.value > 0))
    finally:
        backend.close()
    assert seen == [True]
    assert same(got, expected)


@pytest.mark.bitexact
@pytest.mark.processes
@pytest.mark.filterwarnings("ignore:.*CartPole-v0 is out of date")
def test_genomes_sent_to_every_worker_where_shared_memory_has_no_room(monkeypatch):
    """A container's small /dev/shm: the genomes go with each call instead, same results."""
    monkeypatch.setattr(backends.shutil, "disk_usage", lambda path: shutil_usage(free=100))
    params = population(12, spec=LANES_SPEC)
    with backends.shared_genomes(params.numpy()) as genomes:
        assert genomes is not None and not isinstance(genomes, backends.SharedGenomes)
    backend = ProcessBackend(LANES_SPEC, workers=2)
    try:
        assert same(backend.evaluate(params, tasks(12, 1), ObsNormalizer()),
                    serial_results(params, tasks(12, 1), LANES_SPEC))
    finally:
        backend.close()


def shutil_usage(free: int):
    return shutil._ntuple_diskusage(total=free, used=0, free=free)


@pytest.mark.bitexact  # same results whatever happens to the workers
@pytest.mark.processes
def test_worker_killed_mid_generation_loses_nothing():
    params, normalizer = population(24), ObsNormalizer()
    expected = [serial_results(params, tasks(24, g)) for g in (0, 1, 2)]
    backend = ProcessBackend(SPEC, workers=2)
    try:
        assert same(backend.evaluate(params, tasks(24, 0), normalizer), expected[0])
        assert backend.events() == []
        # Generation 1: SIGKILL a worker right after the first call has been handed out.
        pool, submit = backend._pool, backend._pool.submit
        victims = []

        def submit_then_kill(*args, **kwargs):
            future = submit(*args, **kwargs)
            if not victims:
                victims.append(next(iter(pool._processes.values())))
                os.kill(victims[0].pid, signal.SIGKILL)
            return future

        pool.submit = submit_then_kill
        assert same(backend.evaluate(params, tasks(24, 1), normalizer), expected[1])
        # If the victim died before taking any work, the other worker may finish the whole
        # generation before the pool notices; the next generation then rebuilds it.
        multiprocessing.connection.wait([victims[0].sentinel])
        assert same(backend.evaluate(params, tasks(24, 2), normalizer), expected[2])
        assert backend._pool is not pool and victims[0].pid not in backend.worker_pids()
        events = backend.events()
        assert len(events) == 1 and "worker process died" in events[0]
    finally:
        backend.close()


@pytest.mark.bitexact  # same results whatever happens to the workers
@pytest.mark.processes
def test_worker_killed_between_generations_loses_nothing():
    # A worker that dies while idle (the OOM killer during the driver's mutation phase) breaks
    # the pool before the next generation submits anything.
    params, normalizer = population(8), ObsNormalizer()
    expected = serial_results(params, tasks(8, 1))
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


def test_workers_dying_past_the_restart_allowance_raise_one_clear_error(monkeypatch):
    def kill_workers(pool):
        for process in pool._processes.values():
            os.kill(process.pid, signal.SIGKILL)
        return pool

    backend = ProcessBackend(SPEC, workers=1)
    start_pool = backend._start_pool
    monkeypatch.setattr(backend, "_start_pool", lambda: kill_workers(start_pool()))
    kill_workers(backend._pool)
    try:
        with pytest.raises(WorkerCrashError, match="worker processes died 4 times in one "
                                                   "generation"):
            backend.evaluate(population(4), tasks(4, 0), ObsNormalizer())
    finally:
        backend.close()
