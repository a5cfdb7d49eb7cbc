"""Running the grid: each cell is run, resumed from its checkpoint or skipped, and leaves its
record (plus what its experiment draws or scores: a weight trajectory, a maze end point, the
champion's reward on fresh episodes).

Runs go through smevo's public API: `smevo.train` / `smevo.resume` for a cell, and a
hand-driven `Trainer` (`Trainer.step`) to replay the hill climber's weight trajectory.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import numpy as np
import torch

import smevo
from smevo.agent import load_agent
from smevo.checkpoint import atomic_write_bytes, latest_checkpoint
from smevo.config import Config, load_config
from smevo.evaluation import EvalSpec, EvalTask, ObsNormalizer, RolloutWorker
from smevo.evaluation.obs_norm import FrozenNormalizer
from smevo.experiments.grid import (
    ROOT,
    TRAJECTORY_SEED,
    Cell,
    Settings,
    cell_config,
)
from smevo.experiments.provenance import Provenance, core_seconds
from smevo.experiments.records import (
    RECORD_FORMAT,
    curve,
    downsample,
    median_divergence,
    read_record,
    recorded,
    result_settings,
    twin_record,
)
from smevo.functional import get_flat
from smevo.interrupts import StopSignals
from smevo.plotting import read_metrics
from smevo.run_lock import RunLock, RunLockedError
from smevo.trainer import Trainer


def say(line: str) -> None:
    """Print one line of progress now (a grid runs for hours; its log is read while it runs)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


TRAJECTORY_POINTS = 200
"""Points of a recorded weight trajectory."""


def resumable(run_dir: Path, config: Config) -> bool:
    """Whether `run_dir` holds a checkpointed run started at `config`'s settings."""
    saved = run_dir / "config.yaml"
    return (saved.is_file() and latest_checkpoint(run_dir) is not None
            and result_settings(load_config(saved)) == result_settings(config))


def weight_trajectory(run_dir: Path, steps: int) -> list[list[float]]:
    """The hill climber's weights after each of its `steps` steps (`TRAJECTORY_POINTS` of
    them at most, the last kept), by replaying the run in process (same config and seed, so
    the same run; `metrics.jsonl` holds no weights)."""
    points = []
    with Trainer(load_config(run_dir / "config.yaml")) as trainer:
        for _ in range(steps):
            trainer.step()
            points.append([float(w) for w in trainer.algorithm.population.params[0]])
    return downsample(points, TRAJECTORY_POINTS)


def end_position(run_dir: Path) -> list[float]:
    """Where the run's best agent (`best.pt`) stands at the end of one maze episode."""
    agent = load_agent(run_dir / "best.pt")
    try:
        obs, info = agent.env.reset(seed=0)
        agent.reset_state()
        done = False
        while not done:
            obs, _, terminated, truncated, info = agent.env.step(agent.act(obs))
            done = terminated or truncated
        return [float(v) for v in info["position"]]
    finally:
        agent.close()


FRESH_EPISODES = 100
"""Episodes a champion is scored on after its run (`fresh_episodes`)."""
FRESH_SEED = 1_000_000
"""The fresh episodes are seeded FRESH_SEED, FRESH_SEED + 1, ...: the trainer seeds its
episodes by hashing (`smevo.seeding.episode_seeds`, uint32), so practically never these."""


def fresh_episodes(run_dir: Path, episodes: int = FRESH_EPISODES) -> dict[str, Any]:
    """The reward of the run's champion (`best.pt`) on `episodes` fresh episodes: their
    number, first seed, mean and standard deviation. The training fitness is the best of noisy
    evaluations and overstates the champion; this does not. The episodes run as the trainer's
    do, all at once in one rollout worker (`smevo eval` plays the same ones one by one)."""
    config = load_config(run_dir / "config.yaml")
    agent = load_agent(run_dir / "best.pt")
    try:
        params = get_flat(agent.policy)
        stats = agent.obs_norm
    finally:
        agent.close()
    normalizer = (ObsNormalizer(enabled=False) if stats is None
                  else FrozenNormalizer(stats["mean"], stats["std"]))
    worker = RolloutWorker(EvalSpec(config.env.id, config.env.kwargs, config.policy.name,
                                    config.policy.options, max_steps=config.env.max_steps))
    try:
        task = EvalTask(0, tuple(range(FRESH_SEED, FRESH_SEED + episodes)), 0)
        (result,) = worker.evaluate(params[None].numpy(), [task], normalizer)
    finally:
        worker.close()
    return {"episodes": episodes, "first_seed": FRESH_SEED,
            "mean": float(np.mean(result.returns)), "std": float(np.std(result.returns))}


def extras(cell: Cell, run_dir: Path, result: smevo.TrainResult) -> dict[str, Any]:
    """What the experiment records beyond the result (`Experiment.extra`)."""
    if cell.experiment.extra == "trajectory" and cell.seed == TRAJECTORY_SEED:
        return {"trajectory": weight_trajectory(run_dir, result.generations)}
    if cell.experiment.extra == "end_position":
        return {"end_position": end_position(run_dir)}
    if cell.experiment.extra == "fresh_episodes":
        return {"fresh_episodes": fresh_episodes(run_dir)}
    return {}


def make_record(cell: Cell, settings: Settings, run_dir: Path, result: smevo.TrainResult,
                provenance: Provenance) -> dict[str, Any]:
    """A finished run's record, everything the report and `status` read (without timing)."""
    config = load_config(run_dir / "config.yaml")
    metrics = read_metrics(run_dir)
    format_name, version = RECORD_FORMAT
    return {
        "format": format_name,
        "version": version,
        "experiment": cell.experiment.name,
        "domain": cell.domain.name,
        "network": cell.domain.network,
        "operator": cell.operator,
        "seed": cell.seed,
        "magnitude": config.mutation.magnitude,
        "options": config.mutation.options,
        "budget_evaluations": config.budget.evaluations,
        "budget_generations": config.budget.generations,
        "best_fitness": result.best_fitness,
        "generations": result.generations,
        "evaluations": result.evaluations,
        "env_steps": result.env_steps,
        "solved": result.solved,
        "stopped_by": result.stopped_by,
        "wall_seconds": float(metrics[-1]["perf/wall_time"]),
        "quick": settings.quick,
        "command": settings.command,
        "config": result_settings(config),
        "curve": curve(metrics),
        "divergence": median_divergence(metrics),
        "code": provenance.code,
        "machine": provenance.machine,
    } | extras(cell, run_dir, result)


def commit_record(path: Path, message: str, root: Path = ROOT) -> None:
    """Commit the record at `path` and nothing else to the repository at `root`: `git add` of
    that file, then `git commit --only` of it, so whatever else is modified or staged stays
    as it was. A
    failure (e.g. another git command holding the index) is reported and the grid goes on:
    the record stays on disk for a later commit."""
    for args in (("add", "--", str(path)),
                 ("commit", "--only", "--quiet", "-m", message, "--", str(path))):
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=False)
        if done.returncode:
            say(f"warning: git {args[0]} {path} failed ({done.stderr.strip()}); the record "
                "is on disk, uncommitted")
            return


def run_cell(cell: Cell, settings: Settings,
             provenance: Provenance) -> tuple[str, dict[str, Any]]:
    """Run or resume one cell that has no record at its settings: ("ran" | "resumed", the
    record it wrote). A `RunLockedError` if another process is training its run (another
    grid's, say): that run is left alone."""
    config = cell_config(cell, settings)
    run_dir = cell.run_dir(settings.runs_dir)
    start, cores = time.perf_counter(), core_seconds()
    if resumable(run_dir, config):
        how, result = "resumed", smevo.resume(run_dir)
    else:
        if run_dir.exists():
            with RunLock(run_dir):  # not while another process writes it, checkpoint or not
                shutil.rmtree(run_dir)  # cut short before a checkpoint, or at other settings
        how, result = "ran", smevo.train(config)
    record = make_record(cell, settings, run_dir, result, provenance)
    record |= {"resumed": how == "resumed", "seconds": time.perf_counter() - start,
               "core_seconds": core_seconds() - cores}
    save_record(cell.record_path(settings.data_dir), record)
    return how, record


def save_record(path: Path, record: dict[str, Any]) -> None:
    """Write `record` at `path` atomically (a kill leaves the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode("utf-8"))


_Job = tuple[int, Cell, Settings, Provenance]
_Outcome = tuple[int, Cell, str, dict[str, Any] | None]


def _run_job(job: _Job) -> _Outcome:
    """`run_cell` for a numbered cell, in whichever process runs it; a cell whose run
    another process is training is skipped (no record: why instead of how)."""
    number, cell, settings, provenance = job
    try:
        return (number, cell, *run_cell(cell, settings, provenance))
    except RunLockedError as busy:
        return (number, cell, f"skipped, {busy}", None)


def _send_outcome(job: _Job, connection: Connection, handlers: dict[int, Any]) -> None:
    """A `--jobs` process: run its cell and hand the outcome back. It answers signals as a
    grid of one process would (`handlers`: what the grid's own process had before it began
    waiting on its jobs), so its run stops itself with a checkpoint."""
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    torch.set_num_threads(1)  # one core per job (a spawned process does not inherit it)
    try:
        connection.send(_run_job(job))
    except KeyboardInterrupt:
        sys.exit(130)  # stopped with its checkpoint, as its "interrupted" event line says


START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"
"""How `--jobs` starts its processes: forked on Linux (a fresh interpreter would import torch
again for every cell), spawned elsewhere (macOS's system libraries are not fork-safe)."""


def _in_processes(jobs: int, work: list[_Job]) -> Iterator[_Outcome]:
    """Each job's outcome as it finishes, `jobs` processes at a time, one process per cell (its
    memory and threads go with it). A process that dies without an outcome stops the grid
    with an error naming its cell. On the way out (that error, or the first Ctrl-C or SIGTERM,
    which raises `KeyboardInterrupt` here as it would in a run) the runs still going get
    SIGTERM, the trainer's orderly stop, and are waited for (later signals are ignored), so
    each ends with a checkpoint that the same command resumes."""
    context = multiprocessing.get_context(START_METHOD)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    waiting = deque(work)
    running: dict[Connection, tuple[BaseProcess, _Job]] = {}
    with StopSignals() as stop:
        try:
            with stop.interruptible():
                while waiting or running:
                    while waiting and len(running) < jobs:
                        job = waiting.popleft()
                        receiver, process = _started(context, job, handlers)
                        running[receiver] = (process, job)
                    for receiver in wait(list(running)):
                        yield _received(receiver, *running.pop(receiver))
        finally:
            for process, _ in running.values():
                process.terminate()
            for process, _ in running.values():
                process.join()


def _started(context: BaseContext, job: _Job,
             handlers: dict[int, Any]) -> tuple[Connection, BaseProcess]:
    """A process running `job` (with the signal handlers `handlers` restored), and the end of
    the pipe its outcome arrives on."""
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_send_outcome, args=(job, sender, handlers))
    process.start()
    sender.close()  # the child holds the only other end: its exit is EOF
    return receiver, process


def _received(receiver: Connection, process: BaseProcess, job: _Job) -> _Outcome:
    """The outcome a finished job's process sent, once it has exited."""
    try:
        outcome = receiver.recv()
    except EOFError:
        outcome = None
    process.join()
    if outcome is None:
        cell = job[1]
        raise RuntimeError(
            f"the run of {cell.experiment.name}/{cell.name} seed{cell.seed} died (exit code "
            f"{process.exitcode}) before writing its record; the same command resumes it "
            "from its last checkpoint")
    return outcome


def run_grid(cells: list[Cell], settings: Settings, jobs: int = 1) -> dict[str, int]:
    """Run every cell without a record at its settings, `jobs` at a time, one line each as it
    finishes (the others are skipped first); each record is committed by this process when
    `settings.commit_records` (so concurrent jobs never race for git's index). Returns how
    many ran, resumed, were skipped (finished before) and were left to another process
    training their runs ("busy")."""
    counts = {"ran": 0, "resumed": 0, "skipped": 0, "busy": 0}
    provenance = Provenance.here()
    pending: list[_Job] = []
    for number, cell in enumerate(cells, start=1):
        config = cell_config(cell, settings)
        path = cell.record_path(settings.data_dir)
        if recorded(read_record(path), config):
            how = "skipped"
        elif (twin := twin_record(cell, settings, config)) is not None:
            save_record(path, twin)
            if settings.commit_records:
                commit_record(path, f"reproduce: record {cell.experiment.name}/{cell.name} "
                                    f"seed{cell.seed} (the run of {twin['same_run_as']})")
            how = f"the same run as {twin['same_run_as']}: its record copied"
        else:
            pending.append((number, cell, settings, provenance))
            continue
        counts["skipped"] += 1
        say(f"{_numbered(number, len(cells), cell)}: finished before, {how}")
    outcomes = map(_run_job, pending) if jobs == 1 else _in_processes(jobs, pending)
    for number, cell, how, record in outcomes:
        if record is None:
            counts["busy"] += 1
            say(f"{_numbered(number, len(cells), cell)}: {how}")
            continue
        counts[how] += 1
        if settings.commit_records:
            commit_record(cell.record_path(settings.data_dir),
                          f"reproduce: record {cell.experiment.name}/{cell.name} "
                          f"seed{cell.seed}")
        outcome = "solved" if record["solved"] else "not solved"
        say(f"{_numbered(number, len(cells), cell)}: {how} in {record['seconds']:.1f} s, "
            f"{record['evaluations']:,} evaluations, fitness {record['best_fitness']:.4g}, "
            f"{outcome}")
    return counts


def _numbered(number: int, total: int, cell: Cell) -> str:
    """How a cell's progress line names it: its place in the grid, experiment, name, seed."""
    return f"[{number}/{total}] {cell.experiment.name}/{cell.name} seed{cell.seed}"
