"""``smevo fit`` and ``smevo a2c``: the verbs that train a policy by gradient descent (BPTT,
Adam) instead of evolution — on a differentiable task, or by episodic A2C."""

from __future__ import annotations

import argparse
from pathlib import Path

from smevo.commands.common import check_output_dir, say
from smevo.commands.flags import FIT_FLAGS, config_from_args, option_overrides
from smevo.config import apply_overrides, check_run_name
from smevo.fit_config import FitConfig


def cmd_fit(args: argparse.Namespace) -> int:
    """`smevo fit`: gradient training of a policy on a differentiable task."""
    from smevo.fit import fit

    if args.name is not None:
        check_run_name(args.name, "--name")
    config = config_from_args(args, FitConfig, FIT_FLAGS, option_overrides(args))
    check_output_dir(Path(config.logging.logdir),
                     "--logdir" if args.logdir is not None else "logging.logdir")
    updates = config.fit.updates

    def progress(update: int, metrics: dict[str, float]) -> None:
        say(f"update {update}/{updates}: loss {metrics['fit/loss']:.4g}, "
            f"error {metrics['fit/error']:.4f}")

    result = fit(config, on_log=None if config.logging.quiet else progress)
    say(
        f"done: {result.updates} updates ({result.episodes:,} episodes) in "
        f"{result.seconds:.1f} s; error on {config.fit.eval_episodes} fresh episodes "
        f"{result.final_error:.4f}; run in {result.run_dir} (curves: tensorboard --logdir "
        f"{result.run_dir.parent}; agent: smevo eval {result.run_dir})"
    )
    return 0


def cmd_a2c(args: argparse.Namespace) -> int:
    """`smevo a2c`: episodic A2C meta-training from a config, or the resume of such a run."""
    from smevo.a2c import a2c, load_a2c_config, resume_a2c

    if args.resume is not None:
        result = resume_a2c(args.resume, args.set or [], trust_env_code=args.trust_env_code)
    else:
        config = apply_overrides(load_a2c_config(args.config), args.set or [])
        check_output_dir(Path(config.logging.logdir), "logging.logdir")
        result = a2c(config)
    say(
        f"done: {result.updates} updates ({result.episodes:,} episodes, {result.stopped_by} "
        f"budget); mean reward of the final policy on fresh episodes {result.final_reward:.4g}; "
        f"run in {result.run_dir} (curves: tensorboard --logdir {result.run_dir.parent}; "
        f"agent: smevo eval {result.run_dir})"
    )
    return 0
