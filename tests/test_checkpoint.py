"""smevo.checkpoint: atomic writes, keep-K pruning, clear errors, survival of SIGKILL."""

from __future__ import annotations

import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from smevo.checkpoint import (
    FORMAT,
    VERSION,
    CheckpointError,
    NewerCheckpointError,
    atomic_torch_save,
    atomic_write_bytes,
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_latest_checkpoint,
    load_torch_file,
    save_checkpoint,
)

REPO = Path(__file__).resolve().parents[1]


def example_state(generation: int = 3) -> dict:
    rng = np.random.default_rng(7)
    rng.standard_normal(5)
    generator = torch.Generator().manual_seed(11)
    torch.randn(3, generator=generator)
    return {
        "generation": generation,
        "population": [np.arange(6, dtype=np.float32) * i for i in range(3)],
        "fitness": np.array([1.0, np.nan, -np.inf]),
        "best": np.float64(2.5),
        "solved": np.array([True, False]),
        "rng": rng.bit_generator.state,
        "torch_rng": generator.get_state(),
        "params": torch.linspace(0, 1, 5),
        "counters": {"evaluations": 10**12, "steps": 2**70},
        "archive": ([1, 2], {"k": None}, b"bytes"),
        "ids": {0: "a", 1: "b"},
    }


def assert_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


@pytest.mark.bitexact  # resume equals the uninterrupted run
def test_round_trip_restores_every_kind_of_state(tmp_path):
    state = example_state()
    path = save_checkpoint(tmp_path, 3, state, keep=3)
    assert path == tmp_path / "checkpoints" / "gen_000003.pt" == checkpoint_path(tmp_path, 3)
    loaded = load_checkpoint(path)
    assert_same(state, loaded)
    # the restored RNG states continue the same streams
    rng = np.random.default_rng()
    rng.bit_generator.state = loaded["rng"]
    original = np.random.default_rng(7)
    original.standard_normal(5)
    np.testing.assert_array_equal(rng.standard_normal(4), original.standard_normal(4))
    generator = torch.Generator()
    generator.set_state(loaded["torch_rng"])
    reference = torch.Generator().manual_seed(11)
    torch.randn(3, generator=reference)
    assert torch.equal(torch.randn(4, generator=generator), torch.randn(4, generator=reference))


def test_payload_carries_format_version_and_generation(tmp_path):
    path = save_checkpoint(tmp_path, 12, {"x": 1}, keep=1)
    payload = load_torch_file(path)
    assert payload == {"format": FORMAT, "version": VERSION, "generation": 12, "state": {"x": 1}}


def test_keep_prunes_all_but_the_newest(tmp_path):
    for generation in range(1, 8):
        save_checkpoint(tmp_path, generation, {"g": generation}, keep=3)
    assert [g for g, _ in list_checkpoints(tmp_path)] == [5, 6, 7]
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 7)
    save_checkpoint(tmp_path, 8, {"g": 8}, keep=1)
    assert [g for g, _ in list_checkpoints(tmp_path)] == [8]


def test_generations_past_six_digits_sort_numerically(tmp_path):
    save_checkpoint(tmp_path, 999_999, {}, keep=5)
    save_checkpoint(tmp_path, 1_000_000, {}, keep=5)
    assert latest_checkpoint(tmp_path).name == "gen_1000000.pt"


def test_saving_an_earlier_generation_drops_the_abandoned_future(tmp_path):
    for generation in (10, 20, 30):
        save_checkpoint(tmp_path, generation, {"g": generation}, keep=5)
    save_checkpoint(tmp_path, 21, {"g": 21}, keep=5)  # resumed from 20, then diverged
    assert [g for g, _ in list_checkpoints(tmp_path)] == [10, 20, 21]


def test_no_checkpoint(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "notes.txt").write_text("hi")
    assert latest_checkpoint(tmp_path) is None


def test_leftover_temp_file_is_ignored_then_cleaned(tmp_path):
    save_checkpoint(tmp_path, 1, {"g": 1}, keep=3)
    leftover = tmp_path / "checkpoints" / ".gen_000002.pt.0123456789abcdef.tmp"
    leftover.write_bytes(b"half a checkpoint")
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 1)
    save_checkpoint(tmp_path, 2, {"g": 2}, keep=3)
    assert not leftover.exists()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "gen_000001.pt",
        "gen_000002.pt",
    ]


def test_a_failing_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "best.pt"
    atomic_torch_save({"v": 1}, target)

    def crash(obj, file):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_torch_save({"v": 2}, target)
    monkeypatch.undo()
    assert load_torch_file(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_atomic_write_bytes_replaces_and_cleans(tmp_path):
    target = tmp_path / "file.bin"
    (tmp_path / ".file.bin.fedcba9876543210.tmp").write_bytes(b"orphan")
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_state_that_is_not_plain_data_is_rejected_before_writing(tmp_path):
    state = {"rng": {"generator": np.random.default_rng(0)}}
    with pytest.raises(CheckpointError, match=r"state\['rng'\]\['generator'\]: numpy\.random"):
        save_checkpoint(tmp_path, 1, state, keep=1)
    with pytest.raises(CheckpointError, match="numpy dtype object"):
        save_checkpoint(tmp_path, 1, {"a": np.array([None])}, keep=1)
    with pytest.raises(CheckpointError, match=r"obj\[0\]: pathlib"):
        atomic_torch_save([Path("x")], tmp_path / "best.pt")
    assert list_checkpoints(tmp_path) == []


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path, 1, example_state(), keep=1)
    data = path.read_bytes()
    for size in (0, 10, len(data) // 2, len(data) - 5):
        path.write_bytes(data[:size])
        with pytest.raises(CheckpointError, match="truncated, corrupt, or not written by smevo"):
            load_checkpoint(path)


def test_foreign_files_are_clear_errors(tmp_path):
    foreign = tmp_path / "model.pt"
    torch.save({"a": 1}, foreign)
    with pytest.raises(CheckpointError, match="not a smevo checkpoint"):
        load_checkpoint(foreign)
    torch.save(torch.zeros(3), foreign)
    with pytest.raises(CheckpointError, match="not a smevo checkpoint"):
        load_checkpoint(foreign)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(random.Random(0).randbytes(4096))
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(noise)
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(Exploit(), protocol=2))
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(path)
    torch.save({"format": FORMAT, "version": 1, "state": Path("x")}, path)
    with pytest.raises(CheckpointError, match="holds an object of type pathlib"):
        load_checkpoint(path)


def test_newer_version_is_refused(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format": FORMAT, "version": VERSION + 1, "generation": 1, "state": {}}, path)
    with pytest.raises(CheckpointError,
                       match=rf"newer smevo .*version {VERSION + 1}.*reads up to {VERSION}"):
        load_checkpoint(path)
    torch.save({"format": FORMAT, "version": "x", "state": {}}, path)
    with pytest.raises(CheckpointError, match="corrupt smevo checkpoint"):
        load_checkpoint(path)


def test_latest_readable_checkpoint_skips_unreadable_newer_ones(tmp_path):
    assert load_latest_checkpoint(tmp_path) is None
    for generation in (1, 2, 3):
        save_checkpoint(tmp_path, generation, {"g": generation}, keep=3)
    checkpoint_path(tmp_path, 3).write_bytes(b"torn")
    path, state, unreadable = load_latest_checkpoint(tmp_path)
    assert (path, state) == (checkpoint_path(tmp_path, 2), {"g": 2})
    assert len(unreadable) == 1 and "gen_000003.pt: cannot read" in unreadable[0]
    for generation in (1, 2):
        checkpoint_path(tmp_path, generation).write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"no checkpoint of .* can be read; the newest: "
                                              r".*gen_000003\.pt: cannot read"):
        load_latest_checkpoint(tmp_path)


def test_a_checkpoint_of_a_newer_smevo_is_not_skipped(tmp_path):
    save_checkpoint(tmp_path, 1, {"g": 1}, keep=2)
    torch.save({"format": FORMAT, "version": VERSION + 1, "generation": 2, "state": {}},
               checkpoint_path(tmp_path, 2))
    with pytest.raises(NewerCheckpointError, match="written by a newer smevo"):
        load_latest_checkpoint(tmp_path)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="keep must be >= 1"):
        save_checkpoint(tmp_path, 1, {}, keep=0)
    with pytest.raises(ValueError, match="generation must be >= 0"):
        save_checkpoint(tmp_path, -1, {}, keep=1)


WRITER = textwrap.dedent(
    """
    import sys, torch
    from smevo.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
    run = sys.argv[1]
    latest = latest_checkpoint(run)
    generation = 0 if latest is None else load_checkpoint(latest)["generation"] + 1
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    while True:
        weights = torch.full((1 << 20,), float(generation))
        save_checkpoint(run, generation, {"generation": generation, "weights": weights}, keep=2)
        generation += 1
    """
)


@pytest.mark.bitexact  # a checkpoint is stored exactly
@pytest.mark.processes
def test_sigkill_during_saves_never_leaves_a_broken_checkpoint(tmp_path):
    """Kill a writer at random moments; every checkpoint left under a final name loads."""
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    timing = random.Random(1)
    newest = []
    for _ in range(4):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": pythonpath},
            text=True,
        )
        try:
            assert child.stdout.readline() == "ready\n"
            before = latest_checkpoint(tmp_path)
            deadline = time.monotonic() + 30
            while latest_checkpoint(tmp_path) == before and time.monotonic() < deadline:
                time.sleep(0.001)  # wait for one save of this round, then kill at a random moment
            time.sleep(timing.uniform(0, 0.1))
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            child.kill()
            child.wait(timeout=30)
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        found = list_checkpoints(tmp_path)
        assert found, "the writer saved nothing"
        for generation, path in found:
            state = load_checkpoint(path)
            assert state["generation"] == generation
            assert torch.equal(state["weights"], torch.full((1 << 20,), float(generation)))
        newest.append(found[-1][0])
    assert newest == sorted(newest) and newest[-1] > newest[0]
