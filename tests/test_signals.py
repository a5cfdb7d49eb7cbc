"""A run and its run directory under stress: Ctrl-C and SIGTERM (twice), SIGKILL of the driver,
workers that keep dying, two processes on one run, copied checkpoints, edited configs and
corrupt checkpoints. Real `python -m smevo` subprocesses with budgets no run reaches, so
that only the signal ends them."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from backend_helpers import metrics, run_configs

from smevo import resume, train
from smevo.checkpoint import latest_checkpoint, load_checkpoint, load_torch_file
from smevo.run_lock import RunLock, RunLockedError

CARTPOLE = [
    "env.id=CartPole-v1",
    "policy.name=mlp",
    "policy.options={hidden: 8, depth: 1}",
    "algorithm.population=16",
    "algorithm.options.parents=4",
    "algorithm.elite_episodes=2",
    "budget.stop_when_solved=false",
    "seed=3",
]
FOREVER = ["budget.generations=1000000000", "logging.checkpoint_every=1000000000"]
PROCESS = ["evaluation.backend=process", "evaluation.workers=2"]


def sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


config = run_configs(CARTPOLE)


def _as_in_a_terminal() -> None:
    # Its own process group, so that a signal can go to the driver and its workers at once
    # as a terminal's Ctrl-C does; SIGINT back to its default (a background job inherits it
    # ignored, and Python then keeps it ignored).
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def smevo(*args: str, script: Path | None = None, env: dict | None = None) -> subprocess.Popen:
    """`python -m smevo ARGS` (or `python SCRIPT ARGS`) with stderr piped."""
    command = [str(script)] if script else ["-m", "smevo"]
    return subprocess.Popen([sys.executable, *command, *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, preexec_fn=_as_in_a_terminal)


def train_forever(tmp_path: Path, *overrides: str, **popen) -> tuple[subprocess.Popen, Path]:
    process = smevo("train", "--logdir", tmp_path, "--name", "run",
                    *sets(*CARTPOLE, *FOREVER, *overrides), **popen)
    return process, tmp_path / "run"


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def logged(run_dir: Path) -> int:
    """How many generations a running run has logged so far."""
    try:
        return (run_dir / "metrics.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def assert_good_checkpoint(run_dir: Path) -> None:
    """The newest checkpoint is of the last logged generation, and best.pt holds the champion
    that generation logged."""
    lines = metrics(run_dir)
    assert lines, "no generation finished"
    assert load_checkpoint(latest_checkpoint(run_dir))["algorithm"]["generation"] == len(lines)
    assert load_torch_file(run_dir / "best.pt")["fitness"] == lines[-1]["fitness/champion"]


def assert_interrupted_cleanly(process: subprocess.Popen, stderr: bytes, signum: int) -> None:
    """Exit status 130, or death by a second signal that came after the run was closed (it
    may hurry the exit); no traceback; the "interrupted" line."""
    assert process.returncode in (130, -signum), stderr.decode()
    assert b"Traceback" not in stderr and b"KeyboardInterrupt" not in stderr, stderr.decode()
    assert b"interrupted; " in stderr, stderr.decode()


# --------------------------------------------------------------------------- signals

SECOND_SIGNAL_IN_SAVE = """
import os, sys, torch
from smevo.cli import main
save = torch.save
def signal_then_save(*args, **kwargs):  # the second signal lands in every file write
    os.kill(os.getpid(), int(os.environ["SMEVO_TEST_SIGNAL"]))
    return save(*args, **kwargs)
torch.save = signal_then_save
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_second_signal_during_the_checkpoint_write_changes_nothing(tmp_path, signum):
    # Checkpoints are written only on the way out here, so the second signal arrives while
    # the interrupted run writes best.pt and its checkpoint.
    script = tmp_path / "second_signal.py"
    script.write_text(SECOND_SIGNAL_IN_SAVE)
    process, run_dir = train_forever(tmp_path, script=script,
                                     env={"SMEVO_TEST_SIGNAL": str(int(signum))})
    wait_for(lambda: logged(run_dir) >= 1)
    time.sleep(0.3)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert_interrupted_cleanly(process, stderr, signum)
    assert_good_checkpoint(run_dir)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "SIGTERM"])
def test_two_signals_to_driver_and_workers_end_with_a_checkpoint(tmp_path, signum):
    # As a terminal's Ctrl-C (twice) or `timeout` does: to the whole process group.
    process, run_dir = train_forever(tmp_path, *PROCESS)
    wait_for(lambda: logged(run_dir) >= 1)
    time.sleep(0.5)
    workers = children(process.pid)
    os.killpg(process.pid, signum)
    time.sleep(0.05)
    os.killpg(process.pid, signum)
    _, stderr = process.communicate(timeout=60)
    assert_interrupted_cleanly(process, stderr, signum)
    assert_good_checkpoint(run_dir)
    wait_for(lambda: not any(map(alive, workers)), timeout=10)
    assert not [pid for pid in workers if alive(pid)]


def test_sigterm_before_the_first_generation_ends_says_so_and_leaves_nothing_running(tmp_path):
    # A population big enough that its first generation outlasts the workers' start (seconds,
    # not CartPole's usual milliseconds): the signal lands before any generation is finished.
    process, run_dir = train_forever(tmp_path, *PROCESS, "algorithm.population=4000")
    wait_for(lambda: (run_dir / "config.yaml").exists())
    workers = children(process.pid)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert_interrupted_cleanly(process, stderr, signal.SIGTERM)
    assert b"interrupted; no generation finished" in stderr
    wait_for(lambda: not any(map(alive, workers)), timeout=10)
    assert workers and not [pid for pid in workers if alive(pid)]


def test_sigkill_of_the_driver_leaves_no_worker_alive(tmp_path):
    process, run_dir = train_forever(tmp_path, *PROCESS)
    wait_for(lambda: logged(run_dir) >= 1)
    spawned = children(process.pid)  # the workers and multiprocessing's resource tracker
    assert len(spawned) >= 2
    process.kill()
    process.communicate(timeout=60)
    wait_for(lambda: not any(map(alive, spawned)), timeout=10)
    assert not [pid for pid in spawned if alive(pid)]


WORKERS_DIE = """
import os, signal, sys

def die_in_workers(driver_pid):
    # Each worker process, forked or spawned, marks the file at its first rollout call (the
    # process backend's workers evaluate what they claim). The first worker makes two rollout
    # calls (generation 1: the population, then the elite's validation) and dies at its third;
    # every later worker dies at its first.
    from smevo.evaluation import rollout
    evaluate, calls = rollout.RolloutWorker.evaluate_claimed, []
    marks = os.environ["SMEVO_TEST_WORKERS"]
    def evaluate_twice(self, *args, **kwargs):
        if os.getpid() != driver_pid:
            if not calls:
                with open(marks, "ab") as started:
                    started.write(b".")
            calls.append(1)
            if os.path.getsize(marks) > 1 and len(calls) == 1 or len(calls) > 2:
                os.kill(os.getpid(), signal.SIGKILL)
        return evaluate(self, *args, **kwargs)
    rollout.RolloutWorker.evaluate_claimed = evaluate_twice

if __name__ == "__mp_main__":  # a spawned worker runs this file's top level first
    die_in_workers(driver_pid=None)
if __name__ == "__main__":  # forked workers inherit the driver's patch
    die_in_workers(driver_pid=os.getpid())
    from smevo.cli import main
    sys.exit(main(sys.argv[1:]))
"""


def test_workers_dying_past_the_restart_allowance_end_with_a_checkpoint_and_one_line(tmp_path):
    script = tmp_path / "workers_die.py"
    script.write_text(WORKERS_DIE)
    process, run_dir = train_forever(
        tmp_path, "evaluation.backend=process", "evaluation.workers=1", "logging.quiet=true",
        script=script, env={"SMEVO_TEST_WORKERS": str(tmp_path / "workers")})
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1
    lines = stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smevo: error: worker processes died 4 times")
    assert "checkpoint at generation 1" in lines[0]
    assert_good_checkpoint(run_dir)


# --------------------------------------------------------------------------- one run, one owner


def test_a_second_resume_of_a_running_run_is_refused_and_lines_stay_one_per_generation(
        tmp_path):
    run_dir = train(config(tmp_path, "budget.generations=2")).run_dir
    first = smevo("resume", run_dir, "--generations", 10**9)
    wait_for(lambda: logged(run_dir) > 4)
    second = subprocess.run([sys.executable, "-m", "smevo", "resume", run_dir,
                             "--generations", str(10**9)], capture_output=True, timeout=120)
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=60)
    assert second.returncode == 2
    assert second.stderr.decode() == (
        f"smevo: error: {run_dir} is in use by another smevo process (PID {first.pid}); wait "
        "for it to end or stop it first\n")
    assert first.returncode == 130 and b"Traceback" not in stderr  # a quiet run
    generations = [line["generation"] for line in metrics(run_dir)]
    assert generations == list(range(1, len(generations) + 1))
    assert_good_checkpoint(run_dir)


def test_run_lock_is_exclusive_and_names_its_holder(tmp_path):
    held = rf"in use by another smevo process \(PID {os.getpid()}\)"
    with RunLock(tmp_path), pytest.raises(RunLockedError, match=held):
        RunLock(tmp_path).acquire()
    with RunLock(tmp_path):  # released
        pass


def test_runs_started_with_one_name_get_their_own_folders(tmp_path):
    first = train(config(tmp_path, "logging.name=same", "budget.generations=1")).run_dir
    second = train(config(tmp_path, "logging.name=same", "budget.generations=1")).run_dir
    assert (first.name, second.name) == ("same", "same-1")
    assert (first / "run_id").read_text() != (second / "run_id").read_text()


# --------------------------------------------------------------------------- what a resume accepts


def test_a_checkpoint_copied_from_another_run_is_refused(tmp_path):
    ours = train(config(tmp_path, "logging.name=ours", "budget.generations=1")).run_dir
    theirs = train(config(tmp_path, "logging.name=theirs", "budget.generations=2")).run_dir
    shutil.copy(latest_checkpoint(theirs), ours / "checkpoints")
    with pytest.raises(ValueError, match=r"gen_000002\.pt belongs to another run"):
        resume(ours, overrides=["budget.generations=3"])
    assert len(metrics(ours)) == 1
    # A copy of a whole run is that run: it resumes.
    shutil.copytree(theirs, tmp_path / "copy")
    assert resume(tmp_path / "copy", overrides=["budget.generations=3"]).generations == 3


def test_a_config_edited_after_the_start_is_refused_but_budgets_may_change(tmp_path):
    run_dir = train(config(tmp_path, "budget.generations=1")).run_dir
    path = run_dir / "config.yaml"
    original = path.read_text()
    path.write_text(original.replace("population: 16", "population: 20").replace(
        "seed: 3", "seed: 4"))
    with pytest.raises(ValueError, match=r"config\.yaml was changed after the run started "
                                         r"\(seed: 3 -> 4; algorithm\.population: 16 -> 20\)"):
        resume(run_dir)
    path.write_text(original.replace("generations: 1", "generations: 2"))
    assert resume(run_dir, overrides=["evaluation.backend=serial"]).generations == 2


@pytest.mark.bitexact  # resume equals the uninterrupted run
def test_a_corrupt_newest_checkpoint_falls_back_to_the_newest_good_one(tmp_path, capsys):
    base = ("logging.checkpoint_every=1", "env.max_steps=100")
    whole = train(config(tmp_path, "logging.name=whole", "budget.generations=4", *base))
    part = train(config(tmp_path, "logging.name=part", "budget.generations=3", *base)).run_dir
    newest = latest_checkpoint(part)
    newest.write_bytes(newest.read_bytes()[:200])
    capsys.readouterr()
    resumed = resume(part, overrides=["budget.generations=4", "logging.quiet=false"])
    notes = [line for line in capsys.readouterr().err.splitlines() if "cannot be read" in line]
    assert len(notes) == 1 and notes[0].endswith("resuming from gen_000002.pt")
    assert metrics(resumed.run_dir) == metrics(whole.run_dir)


@pytest.mark.bitexact  # resume equals the uninterrupted run
def test_a_run_without_a_checkpoint_starts_over(tmp_path):
    whole = train(config(tmp_path, "logging.name=whole", "budget.generations=2"))
    cut = train(config(tmp_path, "logging.name=cut", "budget.generations=2")).run_dir
    shutil.rmtree(cut / "checkpoints")
    (cut / "best.pt").unlink()
    assert metrics(resume(cut).run_dir) == metrics(whole.run_dir)
