"""The config of an A2C run: one typed tree, filled from YAML and ``--set`` like `smevo train`'s.

The tree is read, overridden and written by `smevo.config` (unknown keys, wrong types and
out-of-range values are one-line `ConfigError`s naming the dotted key); only its sections
and ranges live here. The policy section is `smevo train`'s own. Defaults are Backpropamine's
grid-maze figure config (reference/plasticity.md §4): batch 30, gamma 0.9, value weight 0.1,
squared-probability weight 0.03, Adam lr 1e-4 eps 1e-4, gradient norm clipped at 4, no
optimiser step in the first 100 updates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smevo.config import (
    ConfigError,
    PolicyConfig,
    check_minimums,
    check_positive,
    check_run_name,
    load_config,
)

__all__ = ["A2CConfig", "A2CEnvConfig", "A2CLoggingConfig", "A2CSettings", "load_a2c_config"]


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class A2CEnvConfig:
    """The env whose episodes are played, `a2c.batch` at a time, through its vector twin."""

    id: str = field(default="smevo/GridMaze-v0",
                    metadata=_help("Gymnasium id with a Discrete action space"))
    kwargs: dict[str, Any] = field(default_factory=dict,
                                   metadata=_help("keyword arguments passed to gymnasium.make"))


@dataclass
class A2CSettings:
    """Episodic advantage actor-critic, as the Backpropamine code trains its networks."""

    batch: int = field(default=30, metadata=_help("episodes played together per update"))
    gamma: float = field(default=0.9, metadata=_help("discount of the returns (no bootstrap)"))
    value_weight: float = field(default=0.1, metadata=_help("weight of the value loss"))
    concentration_weight: float = field(
        default=0.03,
        metadata=_help("weight of the summed squared action probabilities (the reference's "
                       "'entropy' term, a penalty on concentrated policies)"),
    )
    lr: float = field(default=1e-4, metadata=_help("Adam learning rate"))
    adam_eps: float = field(default=1e-4, metadata=_help("Adam epsilon"))
    grad_clip: float | None = field(default=4.0,
                                    metadata=_help("clip the gradient norm (null: never)"))
    burn_in: int = field(default=100,
                         metadata=_help("updates at the start with no optimiser step"))
    eval_episodes: int = field(
        default=100, metadata=_help("fresh episodes that score the final policy (best.pt)"))
    threads: int = field(
        default=1,
        metadata=_help("torch intra-op threads while training (1 suits the small per-step "
                       "tensors, and a machine shared with other runs)"))


@dataclass
class A2CBudget:
    """When to stop: the first budget reached ends the run (null: no limit)."""

    episodes: int | None = field(
        default=100_000,
        metadata=_help("stop once this many episodes are played (whole updates of a2c.batch)"))
    wall_time: float | None = field(default=None,
                                    metadata=_help("stop after this many seconds"))


@dataclass
class A2CLoggingConfig:
    """Where and how the run is recorded."""

    logdir: str = field(default="runs", metadata=_help("directory that holds one folder per run"))
    name: str | None = field(
        default=None, metadata=_help("run folder name (null: <env>-a2c-<policy>-<UTC time>)"))
    checkpoint_every: int = field(
        default=100, metadata=_help("save a checkpoint (and best.pt) every this many updates"))
    keep_checkpoints: int = field(default=3,
                                  metadata=_help("keep only the newest this many checkpoints"))
    quiet: bool = field(default=False, metadata=_help("no console progress"))


@dataclass
class A2CConfig:
    """Everything an A2C run needs; `config.yaml` in its run folder is this tree, resolved."""

    seed: int = field(default=0, metadata=_help("the run seed: init, mazes and actions"))
    env: A2CEnvConfig = field(default_factory=A2CEnvConfig, metadata=_help("environment"))
    policy: PolicyConfig = field(
        default_factory=lambda: PolicyConfig(name="neuromod", options={"hidden": 100}),
        metadata=_help("recurrent policy; A2C adds value_head=true to its options"))
    a2c: A2CSettings = field(default_factory=A2CSettings, metadata=_help("A2C settings"))
    budget: A2CBudget = field(default_factory=A2CBudget, metadata=_help("stopping criteria"))
    logging: A2CLoggingConfig = field(default_factory=A2CLoggingConfig,
                                      metadata=_help("run directory, checkpoints, console"))

    def check_ranges(self) -> None:
        """Value ranges that need no other module; the first violation raises `ConfigError`."""
        a2c, budget, logging = self.a2c, self.budget, self.logging
        check_minimums((("seed", self.seed, 0), ("a2c.batch", a2c.batch, 1),
                        ("a2c.burn_in", a2c.burn_in, 0),
                        ("a2c.eval_episodes", a2c.eval_episodes, 1),
                        ("a2c.threads", a2c.threads, 1), ("budget.episodes", budget.episodes, 1),
                        ("logging.checkpoint_every", logging.checkpoint_every, 1),
                        ("logging.keep_checkpoints", logging.keep_checkpoints, 1)))
        ranges = (("a2c.gamma", a2c.gamma, 0.0, 1.0), ("a2c.value_weight", a2c.value_weight,
                  0.0, math.inf), ("a2c.concentration_weight", a2c.concentration_weight,
                  0.0, math.inf))
        for key, value, low, high in ranges:
            if not (math.isfinite(value) and low <= value <= high):
                raise ConfigError(f"{key} must be a finite number in [{low}, {high}], "
                                  f"got {value!r}")
        check_positive((("a2c.lr", a2c.lr), ("a2c.adam_eps", a2c.adam_eps),
                        ("a2c.grad_clip", a2c.grad_clip), ("budget.wall_time", budget.wall_time)))
        if self.policy.options.get("value_head", True) is not True:
            raise ConfigError("policy.options.value_head: A2C needs the value head; "
                              "leave the option out (A2C sets it)")
        if logging.name is not None:
            check_run_name(logging.name, "logging.name")


def load_a2c_config(path: str | Path) -> A2CConfig:
    """An A2C config from a YAML file (partial; defaults fill the rest)."""
    return load_config(path, A2CConfig)
