"""What every verb of the ``smevo`` command shares: the program's name, its usage error, its
printing, and the checks that a file or folder can be written before any work starts."""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import Any

PROG = "smevo"


class UsageError(ValueError):
    """A command line argparse rejects; reported like every other user error."""


def say(text: str = "") -> None:
    """Print one line of a verb's output on stdout."""
    sys.stdout.write(text + "\n")


def one_line(error: BaseException) -> str:
    """The message of `error` on one line (multi-line library messages joined by '; ')."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


def os_error_line(error: OSError) -> str:
    """'PATH: Is a directory' for an OS error about a file, else its message on one line."""
    if error.strerror and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    return one_line(error)


def first_paragraph(obj: Any) -> str:
    """The first paragraph of `obj`'s docstring, on one line."""
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _unwritable(directory: Path) -> str:
    """Why files cannot be written in `directory` (made when missing), or "": its nearest
    existing ancestor must be a directory this user may write in."""
    existing = next(path for path in (directory, *directory.parents) if path.exists())
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"no permission to write in {existing}"
    return ""


def check_output_dir(directory: Path, what: str) -> None:
    """A `ValueError` unless files can be written in `directory` (made when missing), checked
    before any work so that a run or a recording does not fail at its end."""
    problem = _unwritable(directory)
    if problem:
        raise ValueError(f"{what} {directory}: {problem}")


def check_output_file(path: Path, what: str) -> None:
    """A `ValueError` unless the file `path` can be written (see `check_output_dir`)."""
    problem = "is a directory; give a file name" if path.is_dir() else _unwritable(path.parent)
    if problem:
        raise ValueError(f"{what} {path}: {problem}")
