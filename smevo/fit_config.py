"""The config of a `smevo fit` run: one typed tree, filled from YAML and ``--set`` like
`smevo train`'s, and the names its keys take (`TASKS`, `LR_SCHEDULES`).

The tree is read, overridden and written by `smevo.config` (unknown keys, wrong types and
out-of-range values are one-line `ConfigError`s naming the dotted key), so a run's
``config.yaml`` loads back with ``load_config(path, FitConfig)``; only its sections and
ranges live here. The policy section is `smevo train`'s own. This module imports no torch,
so that ``smevo --help`` can show the keys; the training is `smevo.fit`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smevo._registry import Registry
from smevo.config import (
    ConfigError,
    PolicyConfig,
    check_minimums,
    check_positive,
    check_run_name,
)

__all__ = ["LR_SCHEDULES", "TASKS", "FitConfig", "FitLoggingConfig", "FitSettings",
           "FitTaskConfig"]

LR_SCHEDULES: dict[str, Callable[[int], Callable[[int], float]]] = {
    "constant": lambda updates: lambda update: 1.0,
    "cosine": lambda updates: lambda update: 0.5 * (1 + math.cos(math.pi * update / updates)),
}
"""Learning-rate multipliers by update, given the number of updates: constant, or a cosine
decay to 0 at the last update (which settles the final parameters)."""

TASKS: Registry[Callable[..., Any]] = Registry("fit task")
"""Differentiable tasks by name: each a callable ``(**env_kwargs) -> smevo.fit.FitTask``,
imported when first used."""
TASKS.add("pattern-completion", "smevo.fit:pattern_completion_task")
TASKS.add("parity", "smevo.fit:parity_task")


def _help(text: str) -> dict[str, str]:
    """Field metadata carrying the help text that ``smevo fit --help`` shows."""
    return {"help": text}


@dataclass
class FitTaskConfig:
    """The differentiable task: the supervised form of an smevo env."""

    name: str = field(default="pattern-completion",
                      metadata=_help(f"the task: {' or '.join(TASKS.names())}"))
    options: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help("the task's env keyword arguments, e.g. {pattern_size: 50}"))


@dataclass
class FitSettings:
    """BPTT with Adam; the defaults are `simplest.py`'s: one episode per update, lr 3e-4."""

    updates: int = field(default=1000, metadata=_help("Adam updates"))
    batch_size: int = field(default=1, metadata=_help("episodes per update"))
    lr: float = field(default=3e-4, metadata=_help("learning rate"))
    lr_schedule: str = field(
        default="constant",
        metadata=_help(f"learning-rate multiplier by update: {' or '.join(LR_SCHEDULES)} "
                       "(a decay to 0 at the last update)"))
    grad_clip: float | None = field(default=None,
                                    metadata=_help("clip the gradient norm (null: never)"))
    eval_episodes: int = field(
        default=100, metadata=_help("fresh episodes that score the final parameters"))


@dataclass
class FitLoggingConfig:
    """Where and how the run is recorded."""

    logdir: str = field(default="runs", metadata=_help("directory that holds one folder per run"))
    name: str | None = field(
        default=None, metadata=_help("run folder name (null: <task>-fit-<policy>-<UTC time>)"))
    log_every: int = field(
        default=10, metadata=_help("log the mean loss and error of every this many updates"))
    quiet: bool = field(default=False, metadata=_help("no console progress (smevo fit)"))


@dataclass
class FitConfig:
    """Everything a fit run depends on; `config.yaml` in its run folder is this tree."""

    seed: int = field(default=0, metadata=_help("seeds the policy's init and the episodes"))
    task: FitTaskConfig = field(default_factory=FitTaskConfig, metadata=_help("task"))
    policy: PolicyConfig = field(default_factory=lambda: PolicyConfig(name="plastic"),
                                 metadata=_help("recurrent policy network"))
    fit: FitSettings = field(default_factory=FitSettings, metadata=_help("BPTT and Adam"))
    logging: FitLoggingConfig = field(default_factory=FitLoggingConfig,
                                      metadata=_help("run directory, console"))

    def check_ranges(self) -> None:
        """Value ranges that need no other module; the first violation raises `ConfigError`."""
        settings = self.fit
        check_minimums((("seed", self.seed, 0), ("fit.updates", settings.updates, 1),
                        ("fit.batch_size", settings.batch_size, 1),
                        ("fit.eval_episodes", settings.eval_episodes, 1),
                        ("logging.log_every", self.logging.log_every, 1)))
        check_positive((("fit.lr", settings.lr), ("fit.grad_clip", settings.grad_clip)))
        if settings.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"fit.lr_schedule must be one of {', '.join(LR_SCHEDULES)}; "
                              f"got {settings.lr_schedule!r}")
        if self.logging.name is not None:
            check_run_name(self.logging.name, "logging.name")
