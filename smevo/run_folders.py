"""A run's folder: its name, its identity, and what a resume may change in it.

`train`, `fit` and `a2c` make their run folders the same way (`named_run_dir`, never an
existing folder); a run's identity (``RUN/run_id``) and its config guard its resume
(`check_same_run`): a checkpoint of another run, or a ``config.yaml`` changed beyond
`RESUMABLE_SECTIONS`, is refused.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smevo.config import Config, config_to_dict

__all__ = [
    "RESUMABLE_SECTIONS",
    "RUN_ID_FILE",
    "check_same_run",
    "config_changes",
    "named_run_dir",
    "new_run_dir",
    "run_identity",
    "unique_run_dir",
]

RUN_ID_FILE = "run_id"

RESUMABLE_SECTIONS = ("budget", "evaluation", "logging")
"""The config sections a resume may change: when the run stops, where it is evaluated (every
backend gives the same results) and how it is logged. A change anywhere else would make the
resumed run differ from the one that was started."""


def run_identity(run_dir: Path, adopt: str | None = None) -> str:
    """The run's identity from ``RUN/run_id``, a random id written when the run is made and
    stored in every checkpoint; a run made by an older smevo gets one now (`adopt`, its
    checkpoint's, when there is one)."""
    path = Path(run_dir) / RUN_ID_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    identity = adopt or secrets.token_hex(8)
    path.write_text(identity + "\n", encoding="utf-8")
    return identity


def check_same_run(run_dir: Path, checkpoint: Path, state: dict[str, Any], config: Config) -> None:
    """Refuse (`ValueError`) to resume `run_dir` from a checkpoint of another run, or with a
    config.yaml changed since the checkpoint beyond `RESUMABLE_SECTIONS`. Checkpoints of an
    older smevo carry no identity and pass the first test."""
    owner = state.get("run_id")
    identity = run_identity(run_dir, adopt=owner)
    if owner is not None and owner != identity:
        raise ValueError(
            f"{checkpoint} belongs to another run (run id {owner}; {run_dir} is {identity}): a "
            "run resumes only from its own checkpoints. To continue that run elsewhere, copy "
            "its whole directory and resume the copy"
        )
    changes = config_changes(state["config"], config_to_dict(config))
    if changes:
        raise ValueError(
            f"{run_dir / 'config.yaml'} was changed after the run started ({'; '.join(changes)})"
            f"; resuming would not continue the same run (only {', '.join(RESUMABLE_SECTIONS)} "
            "settings may change). Undo the change, or start a new run with it: smevo train "
            f"--config {run_dir / 'config.yaml'}"
        )


def config_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for each config key outside `RESUMABLE_SECTIONS` whose value
    differs between two `config_to_dict` trees (mappings such as ``policy.options`` compare
    whole). Keys only one tree has are skipped: a newer smevo added or dropped them, and
    the run has their defaults."""
    changes = []
    for section, old in before.items():
        if section in RESUMABLE_SECTIONS or section not in after:
            continue
        new = after[section]
        if isinstance(old, dict) and isinstance(new, dict):
            pairs = [(f"{section}.{key}", value, new[key])
                     for key, value in old.items() if key in new]
        else:
            pairs = [(section, old, new)]
        changes += [f"{key}: {a!r} -> {b!r}" for key, a, b in pairs if a != b]
    return changes


def new_run_dir(config: Config) -> Path:
    """`<logdir>/<name>`, by default `<env>-<mutation>-<UTC time>`; never an existing one."""
    return named_run_dir(config.logging.logdir, config.logging.name, config.env.id,
                         config.mutation.name)


def named_run_dir(logdir: str, name: str | None, *default_parts: str) -> Path:
    """A new run folder `<logdir>/<name>`, by default the parts and the UTC time joined by
    '-' (characters that do not belong in a folder name replaced by '_'), made unique by
    `unique_run_dir`: the run folders of `train`, `fit` and `a2c` alike."""
    if name is None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join((*default_parts, stamp)))
    return unique_run_dir(Path(logdir) / name)


def unique_run_dir(base: Path) -> Path:
    """Make and return `base`, or `base-1`, `base-2`, ... if it exists."""
    base.parent.mkdir(parents=True, exist_ok=True)
    suffix = 0
    while True:  # mkdir is atomic: two runs started together get two folders
        run_dir = base.with_name(f"{base.name}-{suffix}") if suffix else base
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            suffix += 1
