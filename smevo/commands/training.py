"""``smevo train`` and ``smevo resume``: an evolution run started from a config or continued
from its newest checkpoint, ending with one summary line that says where to look next."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from smevo.commands.common import UsageError, check_output_dir, say
from smevo.commands.flags import train_config
from smevo.commands.gradient import cmd_a2c
from smevo.commands.showing import display_problem, render_modes, unshowable


def _summary(result: Any) -> str:
    """The one line a finished (or resumed) run ends with, with where to look next."""
    from smevo.console import champion_text

    run_dir = Path(result.run_dir)
    status = "solved" if result.solved else f"stopped ({result.stopped_by} budget reached)"
    return (
        f"{status}: {champion_text(result.best_fitness, result.best_generation)} after "
        f"{result.generations} generations, {result.evaluations:,} evaluations, "
        f"{result.env_steps:,} env steps; run in {run_dir} (curves: tensorboard --logdir "
        f"{run_dir.parent}; agent: {_agent_hint(run_dir, result.env_id)})"
    )


def _agent_hint(run_dir: Path, env_id: str) -> str:
    """The command that shows a run's agent: `watch` in a window where the env can be shown
    and there is a display, `watch --record` where only a video can be made, else `eval`."""
    modes = render_modes(env_id)
    if unshowable(env_id, modes, record=False) is None and display_problem() is None:
        return f"smevo watch {run_dir}"
    if unshowable(env_id, modes, record=True) is None:
        return f"smevo watch {run_dir} --record agent.gif"
    return f"smevo eval {run_dir}"


def cmd_train(args: argparse.Namespace) -> int:
    """`smevo train`: build the config, check that it can run here (the trainer's own check,
    `smevo.runnable`, and that its logdir can be written), train, print the summary."""
    import smevo
    from smevo.runnable import check_runnable

    config = train_config(args)
    check_runnable(config, trust_env_code=True)  # the user's own config
    check_output_dir(Path(config.logging.logdir), "logging.logdir")
    say(_summary(smevo.train(config)))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """`smevo resume RUN`: continue a run (an A2C run too) from its newest checkpoint."""
    import smevo

    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    from smevo.a2c import is_a2c_run

    if is_a2c_run(run_dir):
        if args.generations is not None:
            raise UsageError(f"--generations: {run_dir} is an A2C run, whose budget is "
                             f"budget.episodes: smevo a2c --resume {run_dir} --set "
                             "budget.episodes=N")
        return cmd_a2c(argparse.Namespace(resume=run_dir, set=None,
                                          trust_env_code=args.trust_env_code))
    overrides = None if args.generations is None else [f"budget.generations={args.generations}"]
    say(_summary(smevo.resume(run_dir, overrides=overrides,
                              trust_env_code=args.trust_env_code)))
    return 0
