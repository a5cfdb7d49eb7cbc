"""The flags that set config keys (``smevo train``, ``smevo fit``) and the one order in which
a config is built from them: defaults <- ``--config`` file <- explicit flags <- ``--set``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from smevo.commands.common import UsageError
from smevo.config import Config, apply_overrides, config_from_dict, config_to_dict, load_config

# `smevo train` flags: (flag, config key, type, metavar). The help text is the config field's.
TRAIN_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--env", "env.id", str, "ID"),
    ("--mutation", "mutation.name", str, "NAME"),
    ("--mutation-mag", "mutation.magnitude", float, "M"),
    ("--policy", "policy.name", str, "NAME"),
    ("--algo", "algorithm.name", str, "NAME"),
    ("--pop", "algorithm.population", int, "N"),
    ("--generations", "budget.generations", int, "N"),
    ("--max-evals", "budget.evaluations", int, "N"),
    ("--seed", "seed", int, "N"),
    ("--backend", "evaluation.backend", str, "NAME"),
    ("--workers", "evaluation.workers", int, "N"),
    ("--ray-address", "evaluation.ray_address", str, "ADDR"),
    ("--device", "device", str, "DEV"),
    ("--logdir", "logging.logdir", str, "DIR"),
    ("--name", "logging.name", str, "NAME"),
)

# `smevo fit` flags, as TRAIN_FLAGS (keys of `smevo.fit_config.FitConfig`).
FIT_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--task", "task.name", str, "NAME"),
    ("--policy", "policy.name", str, "NAME"),
    ("--updates", "fit.updates", int, "N"),
    ("--batch", "fit.batch_size", int, "N"),
    ("--lr", "fit.lr", float, "LR"),
    ("--lr-schedule", "fit.lr_schedule", str, "NAME"),
    ("--grad-clip", "fit.grad_clip", float, "NORM"),
    ("--seed", "seed", int, "N"),
    ("--eval-episodes", "fit.eval_episodes", int, "N"),
    ("--log-every", "logging.log_every", int, "N"),
    ("--logdir", "logging.logdir", str, "DIR"),
    ("--name", "logging.name", str, "NAME"),
)
FIT_OPTION_FLAGS = (("--policy-opt", "policy.options", "hidden=50"),
                    ("--task-opt", "task.options", "pattern_size=50"))
"""`smevo fit` flags that set one option (``KEY=VALUE``) of a free-form section: (flag,
config key, example)."""


def train_config(args: argparse.Namespace) -> Config:
    """The run's config: defaults <- ``--config`` file <- explicit flags <- ``--set``."""
    return config_from_args(args, Config, TRAIN_FLAGS)


def config_from_args(
    args: argparse.Namespace,
    schema: type,
    flags: Sequence[tuple[str, str, type, str]],
    overrides: Sequence[str] = (),
) -> Any:
    """A config of `schema` built in the CLI's one order: defaults <- ``--config`` file <-
    the explicit `flags` (and ``--quiet``) <- `overrides` <- ``--set``, each checked by
    `smevo.config`."""
    config = load_config(args.config, schema) if args.config else schema()
    data = config_to_dict(config)
    for flag, key, _, _ in flags:
        value = getattr(args, _dest(flag))
        if value is not None:
            _set_key(data, key, value)
    if args.quiet:
        _set_key(data, "logging.quiet", True)
    return apply_overrides(config_from_dict(data, schema), [*overrides, *(args.set or [])])


def option_overrides(args: argparse.Namespace) -> list[str]:
    """``--policy-opt hidden=50`` as the override ``policy.options.hidden=50`` (and so on for
    `FIT_OPTION_FLAGS`), in the order given per flag."""
    overrides = []
    for flag, key, example in FIT_OPTION_FLAGS:
        for item in getattr(args, _dest(flag)) or []:
            name, sep, raw = item.partition("=")
            if not sep or not name.strip():
                raise UsageError(f"{flag} {item}: expected KEY=VALUE, e.g. {flag} {example}")
            overrides.append(f"{key}.{name.strip()}={raw}")
    return overrides


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _set_key(data: dict[str, Any], key: str, value: Any) -> None:
    *sections, name = key.split(".")
    for section in sections:
        data = data[section]
    data[name] = value
