"""The ``smevo`` argument parser: one subcommand per verb, its help texts, and the argument
types and flags several verbs share. Each verb's function is looked up in its module
(`smevo.commands.training`, ...) when the parser is built; none of them imports the library
before it runs, so building the parser and answering ``--help`` stays fast."""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from typing import Any, NoReturn

from smevo.commands import curves, gradient, listing, playing, reproduction, training
from smevo.commands.common import PROG, UsageError
from smevo.commands.flags import FIT_FLAGS, FIT_OPTION_FLAGS, TRAIN_FLAGS
from smevo.config import config_fields
from smevo.fit_config import FitConfig


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise `UsageError` instead of printing usage and exiting,
    so that `smevo.cli.main` reports them in its one-line format."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    """``--trust-env-code``, for the commands that make the env a file names."""
    parser.add_argument(
        "--trust-env-code",
        action="store_true",
        help="make the env even if its id in the file names code to import or call "
        "('module:factory'); only for files from someone you trust",
    )


def add_debug_argument(parser: argparse.ArgumentParser, default: Any) -> None:
    """``--debug``, accepted before the command and after it (a command's parser leaves it
    unset unless given, with `default` argparse.SUPPRESS, so the global one stands)."""
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show the Python traceback of an internal error (for a bug report)",
    )


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `low` (argparse names the flag in the error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def add_agent_arguments(parser: argparse.ArgumentParser, episodes: int) -> None:
    """The arguments of the commands that play a trained agent: which, how long, which seeds."""
    parser.add_argument("run", metavar="RUN", help="run directory or agent .pt file")
    parser.add_argument(
        "--episodes", type=_int_at_least(1), default=episodes,
        help=f"episodes (default {episodes})",
    )
    parser.add_argument(
        "--seed", type=_int_at_least(0), default=0,
        help="episode e resets with seed+e (default 0)",
    )


def _version() -> str:
    """``smevo 0.1.0 (Python 3.11.9, torch 2.5.1, gymnasium 1.0.0)``: what a bug report needs.
    Versions come from the installed distributions' metadata, so that no command imports torch
    or Gymnasium before it needs them."""
    from importlib.metadata import version

    from smevo import __version__

    return (
        f"{PROG} {__version__} (Python {platform.python_version()}, torch {version('torch')}, "
        f"gymnasium {version('gymnasium')})"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``smevo`` argument parser with one subcommand per user action."""
    parser = _Parser(
        prog=PROG,
        description="Neuroevolution for Gymnasium with the safe mutation operators of "
        "Lehman et al. (2018).",
    )
    parser.add_argument("--version", action="version", version=_version())
    add_debug_argument(parser, default=False)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    helps = {f.key: f.help for f in config_fields()}

    train = commands.add_parser(
        "train",
        help="train a population; writes runs/<env>-<mutation>-<time>/",
        description="Train. The config is built from the defaults, then --config FILE, then "
        "the flags below, then each --set KEY=VALUE in order. `smevo list config` shows "
        "every key.",
    )
    train.add_argument("--config", metavar="FILE", help="YAML file with a partial config")
    for flag, key, kind, metavar in TRAIN_FLAGS:
        train.add_argument(flag, type=kind, metavar=metavar, help=f"{helps[key]} [{key}]")
    train.add_argument(
        "--quiet", action="store_true", help=f"{helps['logging.quiet']} [logging.quiet]"
    )
    train.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="set any config key, e.g. --set algorithm.options.parents=10 "
        "--set policy.options.hidden=32 (repeatable; applied last)",
    )
    train.set_defaults(command=training.cmd_train)

    resume = commands.add_parser(
        "resume",
        help="continue a run from its newest checkpoint",
        description="Continue RUN from its newest checkpoint (an unreadable newest one is "
        "skipped, and said so); the result equals an uninterrupted run with the same seed. "
        "Refused while another process trains RUN, for a checkpoint copied from another "
        "run, and when RUN/config.yaml was changed outside its budget, evaluation and "
        "logging settings. To branch a run, copy its directory and resume the copy.",
    )
    resume.add_argument("run", metavar="RUN", help="the run directory")
    resume.add_argument(
        "--generations",
        type=int,
        metavar="N",
        help="raise the generation budget to N [budget.generations]",
    )
    add_trust_argument(resume)
    resume.set_defaults(command=training.cmd_resume)

    evaluate = commands.add_parser(
        "eval",
        help="score a run's best agent on fresh episodes",
        description="Play RUN/best.pt (or an agent .pt file) on seeded episodes and report "
        "the mean and spread of the return and the fraction solved.",
    )
    add_agent_arguments(evaluate, episodes=20)
    add_trust_argument(evaluate)
    evaluate.set_defaults(command=playing.cmd_eval)

    watch = commands.add_parser(
        "watch",
        help="see a run's best agent act (window, or --record a video)",
        description="Render RUN/best.pt acting, in a window, or into a .gif/.mp4 file.",
    )
    add_agent_arguments(watch, episodes=1)
    watch.add_argument(
        "--record",
        metavar="FILE",
        help="write the frames to FILE.gif or FILE.mp4 (needs imageio-ffmpeg) instead of "
        "opening a window",
    )
    add_trust_argument(watch)
    watch.set_defaults(command=playing.cmd_watch)

    lists = commands.add_parser(
        "list",
        help="list envs, policies, mutations, algorithms, backends or config keys",
        description="Registered names with a line each, those of installed plugins (entry "
        "points smevo.mutations, smevo.policies, smevo.algorithms, smevo.backends) "
        "included; everything when WHAT is left out.",
    )
    lists.add_argument("what", nargs="?", choices=list(listing.LISTINGS), help="what to list")
    lists.add_argument(
        "section",
        nargs="?",
        metavar="SECTION",
        help="with config: only this section's keys (e.g. mutation) or one key",
    )
    lists.set_defaults(command=listing.cmd_list)

    plot = commands.add_parser(
        "plot",
        help="plot learning curves of runs (median and IQR across seeds)",
        description="Plot METRIC against evaluations for RUNs; runs with the same mutation "
        "and env are one curve (median, interquartile band).",
    )
    plot.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    plot.add_argument("--out", required=True, metavar="FILE.png", help="the image to write")
    plot.add_argument(
        "--metric", default="fitness/best", help="metrics.jsonl key (default fitness/best)"
    )
    plot.add_argument(
        "--x", default="progress/evaluations", help="x-axis key (default progress/evaluations)"
    )
    plot.set_defaults(command=curves.cmd_plot)

    fit = commands.add_parser(
        "fit",
        help="train a recurrent policy by gradient descent (BPTT, Adam) on a differentiable "
        "task",
        description="Gradient training on a task's episodes drawn as arrays (pattern-completion: "
        "smevo/PatternCompletion-v0; parity: smevo/RecurrentParity-v0), for comparing with "
        "evolution on the same network. The config is built as train's: defaults, --config "
        "FILE, the flags below, then each --set KEY=VALUE. Writes a run directory (config.yaml, "
        "TensorBoard, metrics.jsonl, best.pt). Example (the differentiable-plasticity curve "
        "on 50-bit patterns): smevo fit "
        "--task pattern-completion --policy plastic --policy-opt hidden=50 --policy-opt "
        "io=direct --task-opt pattern_size=50 --task-opt n_patterns=2 --task-opt cycles=1 "
        "--task-opt presentation=6 --task-opt gap=2 --task-opt test_time=3 --task-opt "
        "balanced=true --task-opt exact_degrade=true --updates 400 --batch 64 --lr 3e-3",
    )
    fit.add_argument("--config", metavar="FILE",
                     help="YAML file with a partial fit config (e.g. a fit run's config.yaml)")
    fit_helps = {f.key: f.help for f in config_fields(FitConfig())}
    for flag, key, kind, metavar in FIT_FLAGS:
        fit.add_argument(flag, type=kind, metavar=metavar, help=f"{fit_helps[key]} [{key}]")
    for flag, key, example in FIT_OPTION_FLAGS:
        fit.add_argument(flag, action="append", metavar="KEY=VALUE",
                         help=f"set one key of {key}, e.g. {flag} {example} (repeatable)")
    fit.add_argument("--quiet", action="store_true",
                     help=f"{fit_helps['logging.quiet']} [logging.quiet]")
    fit.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="set any fit config key, e.g. --set fit.lr=1e-3 (repeatable; "
                     "applied last)")
    fit.set_defaults(command=gradient.cmd_fit)

    meta = commands.add_parser(
        "a2c",
        help="meta-train a recurrent, plastic or neuromodulated policy by episodic A2C "
        "(Backpropamine)",
        description="Episodic A2C (advantage actor-critic over whole episodes, BPTT, Adam) "
        "as in Backpropamine: batches of episodes played together, returns without "
        "bootstrap, each episode's own value as baseline. Writes a run directory (config.yaml, "
        "TensorBoard, metrics.jsonl, checkpoints, best.pt). Example: smevo a2c --config "
        "configs/gridmaze-neuromod-a2c.yaml --set budget.episodes=3000",
    )
    source = meta.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="FILE", help="YAML file with a partial A2C config")
    source.add_argument("--resume", metavar="RUN",
                        help="continue the A2C run RUN from its newest checkpoint")
    meta.add_argument("--set", action="append", metavar="KEY=VALUE",
                      help="set any config key, e.g. --set budget.episodes=3000 (repeatable; "
                      "with --resume only budget and logging keys)")
    add_trust_argument(meta)
    meta.set_defaults(command=gradient.cmd_a2c)
    for command in commands.choices.values():
        add_debug_argument(command, default=argparse.SUPPRESS)
    reproduce = commands.add_parser(  # its own parser reads every argument, --help included
        "reproduce", prefix_chars="\0", add_help=False,
        help="run the paper's experiment grid and write its report (smevo reproduce --help)")
    reproduce.add_argument("argv", nargs=argparse.REMAINDER)
    reproduce.set_defaults(command=reproduction.cmd_reproduce)
    return parser
