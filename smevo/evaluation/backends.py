"""Evaluation backends: where groups of genomes are rolled out. All return identical results.

- `serial`: one individual at a time, in this process.
- `vectorized`: the whole population as one group: one `vmap`-ed forward per step.
- `process`: a pool of local worker processes (forked where that is safe, else spawned) that
  claim genomes from a shared counter as their lockstep lanes free up; a worker killed by the
  OS is replaced and the genomes it had not handed in re-run. The driver owns shutdown:
  workers ignore Ctrl-C and die with the driver, even when it is killed by SIGKILL.

(`ray` lives in `ray_backend.py`, which imports this module, never the reverse; the names are
registered in `registry.py`.)
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import itertools
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import resource_tracker, shared_memory
from typing import Any

import numpy as np
import torch

from smevo.evaluation.obs_norm import ObsNormalizer
from smevo.evaluation.rollout import EvalResult, EvalSpec, EvalTask, RolloutWorker

MAX_POOL_RESTARTS = 3
"""How often the process pool may be rebuilt within one generation before `WorkerCrashError`."""


class WorkerCrashError(RuntimeError):
    """Worker processes kept dying: more often in one generation than the restarts allowed."""


class Backend(abc.ABC):
    """Evaluates genomes `params [P, D]` on `tasks` (one per genome) and returns the results
    in task order."""

    name = "backend"

    @abc.abstractmethod
    def evaluate(
        self, params: torch.Tensor, tasks: list[EvalTask], normalizer: ObsNormalizer
    ) -> list[EvalResult]:
        """The results of `tasks` (task i evaluates genome `params[i]`), in task order."""

    def evaluate_meanwhile(
        self, params: torch.Tensor, tasks: list[EvalTask], normalizer: ObsNormalizer,
        meanwhile: Callable[[], None],
    ) -> list[EvalResult]:
        """`evaluate`, and `meanwhile` (work of this process that the results do not depend
        on) run once: a backend whose workers are other processes runs it once they have the
        tasks, so that it takes no wall time where a core is free; one that evaluates in
        this process runs it first."""
        meanwhile()
        return self.evaluate(params, tasks, normalizer)

    @abc.abstractmethod
    def close(self) -> None:
        """Release workers and envs."""

    def events(self) -> list[str]:
        """Notable events since the last call (e.g. a replaced worker), for the run log."""
        return []

    @classmethod
    def local_workers(cls, workers: int | None, address: str | None) -> int:
        """How many worker processes the backend would start on this machine for `workers`
        (None: one per core) and cluster `address` (0: it evaluates in this process), for
        the memory check before a run."""
        return 0


class SerialBackend(Backend):
    """One individual at a time, in this process."""

    name = "serial"

    def __init__(self, spec: EvalSpec, workers: int | None = None) -> None:
        self.worker = RolloutWorker(spec)

    def evaluate(self, params, tasks, normalizer):
        params = params.detach().cpu().numpy()
        return [self.worker.evaluate(params[i : i + 1], [task], normalizer)[0]
                for i, task in enumerate(tasks)]

    def close(self) -> None:
        self.worker.close()


class VectorizedBackend(Backend):
    """The whole population steps together: one batched forward, one vector-env step."""

    name = "vectorized"

    def __init__(self, spec: EvalSpec, workers: int | None = None) -> None:
        self.worker = RolloutWorker(spec)

    def evaluate(self, params, tasks, normalizer):
        return self.worker.evaluate(params.detach().cpu().numpy(), tasks, normalizer)

    def close(self) -> None:
        self.worker.close()


def nothing() -> None:
    """Nothing to do meanwhile."""


def once(work: Callable[[], None]) -> Callable[[], None]:
    """`work`, run by the first call only (a round that a crash repeats runs it once)."""
    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            work()
    return run


_process_worker: RolloutWorker | None = None
_claim_counter: Any = None
"""The pool's shared counter of claimed positions (a `multiprocessing.Value`)."""


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_PR_SET_PDEATHSIG = 1
DRIVER_POLL_SECONDS = 0.5
"""How often a worker's watchdog looks whether its driver is still its parent."""


@contextlib.contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread while it may start workers.

    A worker inherits the mask and keeps the signals blocked until its initializer ignores
    SIGINT, so a Ctrl-C sent to the whole process group while a worker imports torch cannot
    make it print a KeyboardInterrupt traceback. The driver loses nothing: the signal waits
    until the block ends (or another thread takes it) and Python then runs its handler.
    """
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _leave_shutdown_to_driver(driver_pid: int) -> None:
    """Make this worker ignore Ctrl-C (a terminal sends it to every process of the group;
    the driver owns shutdown) and die with its driver, however the driver dies.

    On Linux the kernel sends SIGKILL when the parent dies (PR_SET_PDEATHSIG); everywhere a
    watchdog thread exits the worker once its parent is no longer the driver. SIGTERM gets
    its default action back (a forked worker inherits the driver's handler, which only records
    a stop): the pool's own clean-up terminates workers with it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != driver_pid:  # the driver died before the line above
        os._exit(1)
    threading.Thread(target=_exit_without_driver, args=(driver_pid,), daemon=True,
                     name="smevo-driver-watchdog").start()


def _exit_without_driver(driver_pid: int) -> None:
    while os.getppid() == driver_pid:
        time.sleep(DRIVER_POLL_SECONDS)
    os._exit(1)


def _init_process_worker(spec: EvalSpec, driver_pid: int, counter: Any) -> None:
    global _process_worker, _claim_counter
    _leave_shutdown_to_driver(driver_pid)
    torch.set_num_threads(1)
    _process_worker = RolloutWorker(spec)
    _claim_counter = counter


SHM_DIR = "/dev/shm"
"""Where POSIX shared memory lives on Linux; a container may give it little room (Docker's
default is 64 MB), and writing past its room kills the writer with SIGBUS."""


@dataclass(frozen=True)
class SharedGenomes:
    """A call's genomes `[P, D]` in shared memory, written once by the driver: each worker
    reads only the rows it claims, instead of every worker being sent all of them."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@contextlib.contextmanager
def shared_genomes(params: np.ndarray) -> Iterator[SharedGenomes | np.ndarray]:
    """The genomes in a new shared block, removed when the block ends; the array itself
    (sent to every worker) where shared memory has no room for twice its size."""
    if os.path.isdir(SHM_DIR) and shutil.disk_usage(SHM_DIR).free < 2 * params.nbytes:
        yield params
        return
    memory = shared_memory.SharedMemory(create=True, size=max(1, params.nbytes))
    try:
        np.ndarray(params.shape, params.dtype, buffer=memory.buf)[...] = params
        yield SharedGenomes(memory.name, params.shape, params.dtype.str)
    finally:
        memory.close()
        memory.unlink()


class _CounterClaims:
    """Claims on the pool's shared counter: positions `0..count-1`, each handed to one
    worker, in the order the workers ask."""

    def __init__(self, counter: Any, count: int) -> None:
        self.counter, self.count = counter, count

    def __call__(self, n: int) -> range:
        with self.counter.get_lock():
            start = self.counter.value
            self.counter.value = end = min(self.count, start + n)
        return range(start, end)


def _evaluate_claimed_in_process(
    genomes: SharedGenomes | np.ndarray, tasks: list[EvalTask], normalizer: ObsNormalizer,
    lanes: int,
) -> list[tuple[int, EvalResult]]:
    claim = _CounterClaims(_claim_counter, len(tasks))
    if isinstance(genomes, np.ndarray):
        return _process_worker.evaluate_claimed(genomes, tasks, normalizer, claim, lanes)
    memory = shared_memory.SharedMemory(name=genomes.name)
    try:
        params = np.ndarray(genomes.shape, np.dtype(genomes.dtype), buffer=memory.buf)
        results = _process_worker.evaluate_claimed(params, tasks, normalizer, claim, lanes)
        del params  # the block closes only once no array views it
        return results
    finally:
        # After an exception its traceback may still view the block: it closes with it.
        with contextlib.suppress(BufferError):
            memory.close()


def split_groups(count: int, parts: int) -> list[slice]:
    """Split `count` items into at most `parts` contiguous, nearly equal slices."""
    parts = max(1, min(parts, count))
    bounds = np.linspace(0, count, parts + 1).round().astype(int)
    return [slice(a, b) for a, b in itertools.pairwise(bounds) if b > a]


GROUPS_PER_WORKER = 4
"""At most this many groups per Ray worker and generation: enough to balance uneven episode
lengths over the workers."""

MIN_GROUP_SIZE = 16
"""No smaller groups (or process workers' lanes) unless there would be fewer groups than
workers. A group pays a fixed cost per lockstep step (one batched forward, ~0.25 ms for an
8->64->64->4 net on one core, as much as about 13 more individuals in the group), so small
groups spend most of their time in overhead."""


def worker_groups(count: int, workers: int) -> list[slice]:
    """How the Ray backend cuts `count` individuals into groups for `workers` workers:
    several groups per worker for load balance, but none needlessly small."""
    return split_groups(count, min(GROUPS_PER_WORKER * workers,
                                   max(workers, count // MIN_GROUP_SIZE)))


def worker_lanes(count: int, workers: int) -> int:
    """How many of `count` genomes a process worker steps together: about three quarters of
    its share of the population, so that the last quarter is claimed lane by lane as genomes
    finish (which balances the workers' uneven episode lengths) while each lockstep step
    still serves many genomes (its fixed cost is what cheap envs pay for); no fewer than
    `MIN_GROUP_SIZE` lanes where the share allows."""
    share = -(-count // workers)
    return max(1, min(share, max(MIN_GROUP_SIZE, -(-3 * count // (4 * workers)))))


def worker_start_method(spec: EvalSpec) -> str:
    """How the process backend starts its workers: ``fork`` where it is safe, else ``spawn``.

    A forked worker starts in a fraction of a second, having inherited the driver's imports;
    a spawned one imports torch and the env again (3-5 s here, paid by every run and every
    pool rebuild, and by each of 64 workers at once on a big machine). Fork is safe only on
    Linux (macOS's system libraries are not fork-safe), while this process runs one thread
    (no lock that another thread holds can be copied locked into the child) and has not
    started CUDA, for workers whose forward runs on the CPU.
    """
    forkable = (
        sys.platform.startswith("linux")
        and threading.active_count() == 1
        and spec.device in (None, "cpu")
        and not torch.cuda.is_initialized()
    )
    return "fork" if forkable else "spawn"


class ProcessBackend(Backend):
    """Genomes spread over local worker processes (one torch thread each, started by
    `worker_start_method`).

    Each worker steps `worker_lanes` genomes in lockstep and claims the next genome from a
    counter shared by the pool whenever one of its lanes frees up, so that uneven episode
    lengths balance out over the workers; the genomes lie in shared memory (`SharedGenomes`).
    If the OS kills a worker, the pool is rebuilt and every genome whose result had not come
    back is evaluated again; results are keyed by task, so nothing is lost or counted twice.
    After `MAX_POOL_RESTARTS` rebuilds in one generation, `WorkerCrashError`.
    """

    name = "process"

    def __init__(self, spec: EvalSpec, workers: int | None = None) -> None:
        self.spec = spec
        self.workers = self.local_workers(workers, None)
        self._events: list[str] = []
        self._pool = self._start_pool()

    def _start_pool(self) -> ProcessPoolExecutor:
        """A new pool with every worker started now (a submit starts one worker while none
        is idle), not at the first evaluation: the trainer builds its backend where a stop
        signal is only recorded, so no worker is left half-started. The resource tracker
        starts first, so that forked workers share the driver's and a shared block outlives
        no one."""
        context = multiprocessing.get_context(worker_start_method(self.spec))
        resource_tracker.ensure_running()
        self._counter = context.Value("q", 0)
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_init_process_worker,
            initargs=(self.spec, os.getpid(), self._counter),
        )
        with _stop_signals_blocked():
            for _ in range(self.workers):
                pool.submit(os.getpid)
        return pool

    def worker_pids(self) -> list[int]:
        """The worker processes' ids (for tests that kill one)."""
        return [p.pid for p in self._pool._processes.values()]

    def _restart_pool(self, why: str) -> None:
        self._events.append(f"a worker process died; restarted the pool and {why}")
        self._kill_workers()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start_pool()

    def _a_worker_died(self) -> bool:
        """Whether the pool is broken or one of its workers has died: a dead process's
        sentinel stays ready, whoever reaped it (its `exitcode` reads None for a moment when
        the pool's own thread reaps it first)."""
        if self._pool._broken:
            return True
        processes = list((self._pool._processes or {}).values())
        return bool(multiprocessing.connection.wait([p.sentinel for p in processes], timeout=0))

    def _kill_workers(self) -> None:
        """Kill the pool's workers rather than ask them to stop: one that died may have
        died holding the pool's queue lock, which would leave the others blocked for good,
        and a group still running would be waited for."""
        for process in list((self._pool._processes or {}).values()):
            process.kill()

    def evaluate(self, params, tasks, normalizer):
        return self.evaluate_meanwhile(params, tasks, normalizer, nothing)

    def evaluate_meanwhile(self, params, tasks, normalizer, meanwhile):
        # A worker that died while idle, or after its last group, may not have broken the
        # pool yet (the pool only notices a death when no result is waiting): look first.
        if self._a_worker_died():
            self._restart_pool("re-ran nothing (it died between groups)")
        params = params.detach().cpu().numpy()
        results: dict[int, EvalResult] = {}
        meanwhile = once(meanwhile)
        for attempt in range(MAX_POOL_RESTARTS + 1):
            pending = [p for p in range(len(tasks)) if p not in results]
            try:
                self._evaluate_round(params, tasks, pending, normalizer, results, meanwhile)
                break
            except BrokenProcessPool:
                if attempt == MAX_POOL_RESTARTS:
                    raise WorkerCrashError(
                        f"worker processes died {attempt + 1} times in one generation, more "
                        f"often than the {MAX_POOL_RESTARTS} restarts allowed (killed by the "
                        "OS? out of memory? fewer --workers use less)"
                    ) from None
                left = len(tasks) - len(results)
                self._restart_pool(f"re-ran {left} individual(s) of this generation")
        meanwhile()
        return [results[p] for p in range(len(tasks))]

    def _evaluate_round(
        self, params: np.ndarray, tasks: list[EvalTask], pending: list[int],
        normalizer: ObsNormalizer, results: dict[int, EvalResult],
        meanwhile: Callable[[], None],
    ) -> None:
        """Evaluate the tasks at positions `pending` on the pool, running `meanwhile` once
        the workers have them and adding each result to `results` as its worker's call
        returns (a worker's death raises `BrokenProcessPool` after the results that did
        come back are in)."""
        with shared_genomes(params[pending]) as genomes:
            with self._counter.get_lock():
                self._counter.value = 0
            part = [tasks[p] for p in pending]
            lanes = worker_lanes(len(part), self.workers)
            futures = []
            try:  # submit raises too if a worker died since the last generation
                for _ in range(min(self.workers, len(part))):
                    futures.append(self._pool.submit(
                        _evaluate_claimed_in_process, genomes, part, normalizer, lanes))
                meanwhile()
                for future in futures:
                    for position, result in future.result():
                        results[pending[position]] = result
            except BrokenProcessPool:
                for future in futures:  # keep what finished before the crash
                    if future.done() and future.exception() is None:
                        for position, result in future.result():
                            results[pending[position]] = result
                raise

    def events(self) -> list[str]:
        events, self._events = self._events, []
        return events

    @classmethod
    def local_workers(cls, workers: int | None, address: str | None) -> int:
        return workers or os.cpu_count() or 1

    def close(self) -> None:
        """Stop the workers at once: they hold nothing worth waiting for, and an evaluation
        abandoned on Ctrl-C, SIGTERM or an error must not be finished first."""
        self._kill_workers()
        self._pool.shutdown(wait=True, cancel_futures=True)
