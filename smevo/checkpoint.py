"""Atomic checkpoints for exact resume.

A checkpoint is ``<run>/checkpoints/gen_<generation:06d>.pt``: a `torch.save` of
``{"format": "smevo-checkpoint", "version": 1, "generation": g, "state": state}``, where
`state` is whatever the trainer needs to continue exactly (population, fitnesses, RNG states,
counters). Every file reaches its final name atomically: it is written to a hidden temporary
file in the same directory, flushed and fsync'ed, `os.replace`d onto the final name, and the
directory is fsync'ed. A kill at any moment leaves the previous checkpoint or the new one,
never a half-written file under a final name; leftover temporary files (``.<name>.<hex>.tmp``)
are ignored by `latest_checkpoint` and removed by the next save.

Loading uses ``torch.load(weights_only=True)``: unpickling runs no code from the file. The
price is that `state` must be plain data: dicts, lists, tuples, sets, None, bool, int, float,
complex, str, bytes, `torch.Tensor` (torch generator states are ByteTensors),
`torch.Size`/`dtype`/`device`, and numpy arrays and scalars of non-object dtype (numpy's
reconstruction functions are the only globals allowed). `save_checkpoint` checks this before
writing and names the offending entry, so a trainer that stores, say, a
`numpy.random.Generator` object instead of its ``bit_generator.state`` fails at the first
save rather than at resume.

What a file names does not run either: the env id of a checkpoint's config, a run's
``config.yaml`` or a ``best.pt`` is made only if it names no code, unless the user says they
trust it (``--trust-env-code``; `smevo.envs.check_env_trust`). So opening a checkpoint (or a
``best.pt``) that someone sent you is safe.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

__all__ = [
    "FORMAT",
    "VERSION",
    "CheckpointError",
    "NewerCheckpointError",
    "atomic_torch_save",
    "atomic_write_bytes",
    "checkpoint_path",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_latest_checkpoint",
    "load_torch_file",
    "save_checkpoint",
]

FORMAT = "smevo-checkpoint"
"""The marker that tells a smevo checkpoint from any other torch file."""
VERSION = 2
"""The payload layout version this module writes and the newest it reads. 2: a recurrent
individual's observation sequences are packed into two arrays (`Population.state_dict`);
version 1 checkpoints still resume, and an older smevo refuses a version 2 one by name
instead of failing on the packed layout."""

_CHECKPOINT_NAME = re.compile(r"^gen_(\d+)\.pt$")
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{16}\.tmp$")

# numpy's pickle hooks: what an ndarray or a numpy scalar needs to be rebuilt, and the dtype
# classes (numpy >= 1.25) of plain numbers and bools. Nothing else from outside torch's
# default allow-list may be loaded; object and structured dtypes stay excluded.
_NUMPY_CORE = getattr(np, "_core", None) or np.core
_NUMPY_GLOBALS: list[Any] = [
    _NUMPY_CORE.multiarray._reconstruct,
    _NUMPY_CORE.multiarray.scalar,
    np.ndarray,
    np.dtype,
    *{
        cls: None  # a dict, because numpy.dtypes lists some classes under two names
        for name, cls in vars(getattr(np, "dtypes", object)).items()
        if name.endswith("DType") and name not in ("ObjectDType", "VoidDType", "StringDType")
    },
]


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or read back; the message says which and why."""


class NewerCheckpointError(CheckpointError):
    """A checkpoint written by a newer smevo: sound, but not readable by this one."""


# --------------------------------------------------------------------------- atomic writes


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX; Windows cannot open directories)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_temp_files(directory: Path, stem: str) -> None:
    """Delete leftover temporary files of an interrupted write whose target starts with `stem`.

    Only one process writes a run directory (`smevo.run_lock`), so any such file is an orphan.
    """
    for entry in directory.iterdir():
        if entry.name.startswith(f".{stem}") and _TEMP_NAME.match(entry.name):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write` on a temporary file next to `path`, then move it onto `path` atomically."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        with open(temp, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _fsync_directory(path.parent)
    _remove_temp_files(path.parent, path.name)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a mix."""
    _atomic_write(Path(path), lambda file: file.write(data))


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """`torch.save(obj, path)` with the guarantees of `atomic_write_bytes`.

    `obj` must be plain data (see the module docstring) so that `load_torch_file` can read
    it back without running code; a `CheckpointError` names the first entry that is not.
    """
    _check_plain(obj, "obj")
    _atomic_write(Path(path), lambda file: torch.save(obj, file))


def load_torch_file(path: str | Path) -> Any:
    """Read a file written by `atomic_torch_save`, safely (no code runs) and onto the CPU.

    Raises `CheckpointError` for a missing, truncated or corrupt file, or one that holds
    objects other than plain data.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with torch.serialization.safe_globals(_NUMPY_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        # torch's own text is not passed on: it advises loading with weights_only=False,
        # which would run code from the file.
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        reason = (
            f"it holds an object of type {found.group(1)}" if found
            else f"torch: {type(error).__name__}"
        )
        raise CheckpointError(
            f"{path}: cannot read ({reason}); the file is truncated, corrupt, or not written "
            "by smevo"
        ) from error


_PLAIN_LEAVES = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    torch.Tensor,
    torch.Size,
    torch.dtype,
    torch.device,
)


def _check_plain(obj: Any, where: str) -> None:
    """Raise `CheckpointError` naming the first entry of `obj` that weights-only loading rejects."""
    kind = type(obj)
    if kind in (dict, OrderedDict):
        for key, value in obj.items():
            _check_plain(key, f"{where} key {key!r}")
            _check_plain(value, f"{where}[{key!r}]")
    elif kind in (list, tuple, set, frozenset):
        for index, value in enumerate(obj):
            _check_plain(value, f"{where}[{index}]")
    elif isinstance(obj, np.ndarray | np.generic) and kind.__module__ == "numpy":
        if obj.dtype.hasobject or obj.dtype.fields is not None:
            raise CheckpointError(
                f"{where}: numpy dtype {obj.dtype} cannot be checkpointed; "
                "use arrays of numbers or bools"
            )
    elif not (kind in _PLAIN_LEAVES or isinstance(obj, torch.Tensor)):
        raise CheckpointError(
            f"{where}: {kind.__module__}.{kind.__qualname__} is not plain data; store its "
            "state (dicts, lists, numbers, tensors, numpy arrays) instead"
        )


# --------------------------------------------------------------------------- checkpoints


def checkpoint_path(run_dir: str | Path, generation: int) -> Path:
    """Where the checkpoint of `generation` lives in `run_dir`."""
    return Path(run_dir) / "checkpoints" / f"gen_{generation:06d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(generation, path) of every complete checkpoint in `run_dir`, oldest first."""
    directory = Path(run_dir) / "checkpoints"
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _CHECKPOINT_NAME.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint of `run_dir` (highest generation), or None if there is none."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def save_checkpoint(run_dir: str | Path, generation: int, state: dict[str, Any], keep: int) -> Path:
    """Write `state` as the checkpoint of `generation` atomically, keep the newest `keep`.

    Checkpoints of generations *after* `generation` are deleted too: they belong to a run
    that was resumed from an earlier checkpoint and has since diverged, so `latest_checkpoint`
    must not return them. Leftover temporary files of interrupted saves are removed.
    Returns the checkpoint's path.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    if generation < 0:
        raise ValueError(f"generation must be >= 0, got {generation}")
    _check_plain(state, "state")
    path = checkpoint_path(run_dir, generation)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, "generation": generation, "state": state}
    _atomic_write(path, lambda file: torch.save(payload, file))

    found = list_checkpoints(run_dir)
    older = [p for g, p in found if g < generation]
    stale = [p for g, p in found if g > generation]
    for old in [*older[: max(0, len(older) - (keep - 1))], *stale]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
    _remove_temp_files(path.parent, "gen_")
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The `state` saved in the checkpoint at `path`, with every tensor on the CPU.

    Raises `CheckpointError` for a missing, truncated or corrupt file, a file that is not a
    smevo checkpoint, or one written by a newer smevo.
    """
    payload = load_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a smevo checkpoint (a torch file without the {FORMAT!r} marker)"
        )
    version = payload.get("version")
    if not isinstance(version, int) or version < 1 or "state" not in payload:
        raise CheckpointError(f"{path}: corrupt smevo checkpoint (version {version!r})")
    if version > VERSION:
        raise NewerCheckpointError(
            f"{path}: written by a newer smevo (checkpoint version {version}; "
            f"this smevo reads up to {VERSION}); upgrade smevo to resume it"
        )
    return payload["state"]


def load_latest_checkpoint(
    run_dir: str | Path,
) -> tuple[Path, dict[str, Any], list[str]] | None:
    """The newest checkpoint of `run_dir` that reads back: its path, its state, and the
    error of each newer one that did not (a disk that lost its last write); None when the
    run has no checkpoint.

    Raises `CheckpointError` when no checkpoint reads back, and `NewerCheckpointError` at
    once for one written by a newer smevo (falling back past it would discard its work).
    """
    unreadable: list[str] = []
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            return path, load_checkpoint(path), unreadable
        except NewerCheckpointError:
            raise
        except CheckpointError as error:
            unreadable.append(str(error))
    if unreadable:
        raise CheckpointError(
            f"no checkpoint of {run_dir} can be read; the newest: {unreadable[0]}")
    return None
