"""Provenance stamped on every record: the code (commit, dirty or not, smevo version) and the
machine (CPU, cores, Python, torch) a run ran on, and the core-seconds it used."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import smevo
from smevo.experiments.grid import DATA_DIR, ROOT


def git(*args: str) -> str | None:
    """The output of a read-only git command in the repository, None where git fails."""
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=False)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version() -> dict[str, Any]:
    """What code the runs of this process run: `commit`, the last commit that changed anything
    but the results folder (its records, report and figures: what runs write, so committing
    them does not change it), `head`, `dirty` (tracked files outside that folder differ from
    it; None: unknown) and the smevo version. Taken once, at start: the process keeps the code
    it imported whatever is committed meanwhile."""
    outputs = f":(exclude){DATA_DIR.parent.as_posix()}"
    changes = git("status", "--porcelain", "--untracked-files=no", "--", ".", outputs)
    return {"commit": git("log", "-1", "--format=%H", "--", ".", outputs),
            "head": git("rev-parse", "HEAD"),
            "dirty": None if changes is None else bool(changes),
            "smevo": smevo.__version__}


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The machine a run ran on, for the record."""
    return {"platform": platform.platform(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__}


def core_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (worker pools)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass(frozen=True)
class Provenance:
    """Where and on what code this process runs, stamped on every record it writes."""

    code: dict[str, Any]
    machine: dict[str, Any]

    @classmethod
    def here(cls) -> Provenance:
        """The provenance of this process, taken now."""
        return cls(code_version(), machine())
