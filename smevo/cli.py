"""The ``smevo`` command: parses, builds a config, calls the library — nothing more.

    smevo train --env CartPole-v1 --mutation SM-G-SUM    # a run in runs/<env>-<mutation>-<time>
    smevo resume RUN                                     # continue it from its last checkpoint
    smevo eval RUN                                       # score best.pt on fresh episodes
    smevo watch RUN [--record FILE.gif]                  # see best.pt act
    smevo list [envs|policies|mutations|algorithms|config]
    smevo plot RUN... --out curves.png                   # median and IQR across seeds
    smevo fit --task pattern-completion --policy plastic # gradient training (BPTT, Adam)

A config is built in one order: defaults, then ``--config FILE``, then explicit flags, then
``--set key=value`` in the order given. Names (env, policy, mutation, algorithm) and the
policy's fit to the env's spaces are checked before a run starts. Every error the user can
cause — a `ValueError` (config, checkpoint, unknown name, bad spaces) or a missing file —
is one line ``smevo: error: <message>`` on stderr and exit status 2, never a traceback;
Ctrl-C exits with 130 (the trainer checkpoints on its way out).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch

from smevo.config import (
    Config,
    apply_overrides,
    config_fields,
    config_from_dict,
    config_to_dict,
    load_config,
)

__all__ = [
    "agent_path",
    "build_parser",
    "check_runnable",
    "check_video_path",
    "main",
    "train_config",
]

PROG = "smevo"

MAGNITUDE = {
    "control": "sigma of the Gaussian",
    "SM-R": "target divergence, reached by line search",
    "SM-G-SUM": "sigma for a weight of average sensitivity",
    "SM-G-ABS": "sigma for a weight of average sensitivity",
    "SM-G-SO": "sigma for a weight of average sensitivity",
    "SM-G-FO": "target divergence, in closed form (first order)",
}
"""What `mutation.magnitude` means for each operator (DESIGN.md, 'Mutation operator')."""

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


class UsageError(ValueError):
    """A command line argparse rejects; reported like every other user error."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise `UsageError` instead of printing usage and exiting,
    so that `main` reports them in its one-line format."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- output


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _one_line(error: BaseException) -> str:
    """The message of `error` on one line (multi-line library messages joined by '; ')."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


def _first_paragraph(obj: Any) -> str:
    """The first paragraph of `obj`'s docstring, on one line."""
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


# --------------------------------------------------------------------------- train


def train_config(args: argparse.Namespace) -> Config:
    """The run's config: defaults <- ``--config`` file <- explicit flags <- ``--set``."""
    config = load_config(args.config) if args.config else Config()
    data = config_to_dict(config)
    for flag, key, _, _ in TRAIN_FLAGS:
        value = getattr(args, _dest(flag))
        if value is not None:
            _set_key(data, key, value)
    if args.quiet:
        _set_key(data, "logging.quiet", True)
    return apply_overrides(config_from_dict(data), args.set or [])


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _set_key(data: dict[str, Any], key: str, value: Any) -> None:
    *sections, name = key.split(".")
    for section in sections:
        data = data[section]
    data[name] = value


def check_runnable(config: Config) -> None:
    """Fail fast, before a run directory exists: every name is registered, the mutation's
    options are valid, the device exists, and the policy can serve the env's spaces.

    Raises `ValueError` with the registry's message (valid names and the closest match).
    """
    from smevo.algorithms import ALGORITHMS
    from smevo.envs import make_env
    from smevo.mutations import make_mutation
    from smevo.policies import POLICIES, make_policy

    make_mutation(config.mutation.name, config.mutation.magnitude, **config.mutation.options)
    ALGORITHMS.canonical(config.algorithm.name)
    POLICIES.canonical(config.policy.name)
    _check_device(config.device)
    env = make_env(config.env.id, config.env.kwargs)
    try:
        make_policy(
            config.policy.name, env.observation_space, env.action_space, **config.policy.options
        )
    finally:
        env.close()


def _check_device(name: str) -> None:
    """A `ValueError` unless torch knows device `name` and this machine has it."""
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"device {name!r}: {_one_line(error)}") from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if not available.get(device.type, True):
        raise ValueError(f"device {name!r} is not available on this machine; use --device cpu")


def _summary(result: Any) -> str:
    """The one line a finished (or resumed) run ends with, with where to look next."""
    run_dir = Path(result.run_dir)
    status = "solved" if result.solved else f"stopped ({result.stopped_by} budget reached)"
    return (
        f"{status}: validated best {result.best_fitness:.6g} after {result.generations} "
        f"generations, {result.evaluations:,} evaluations, {result.env_steps:,} env steps; "
        f"run in {run_dir} (curves: tensorboard --logdir {run_dir.parent}; "
        f"agent: smevo watch {run_dir})"
    )


def cmd_train(args: argparse.Namespace) -> int:
    """`smevo train`: build the config, check it, train, print the summary."""
    import smevo

    config = train_config(args)
    check_runnable(config)
    _say(_summary(smevo.train(config)))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """`smevo resume RUN`: continue a run from its newest checkpoint."""
    import smevo

    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    overrides = None if args.generations is None else [f"budget.generations={args.generations}"]
    _say(_summary(smevo.resume(run_dir, overrides=overrides)))
    return 0


# --------------------------------------------------------------------------- eval / watch


def agent_path(run: str | Path) -> Path:
    """``RUN/best.pt`` for a run directory, or `run` itself for a file."""
    path = Path(run)
    if path.is_dir():
        path = path / "best.pt"
        if not path.is_file():
            raise FileNotFoundError(
                f"{run}: no best.pt yet (a run writes it after its first generation)"
            )
    elif not path.is_file():
        raise FileNotFoundError(f"{run}: no such run directory or agent file")
    return path


def _describe_episodes(results: list[dict[str, Any]], threshold: float | None) -> str:
    returns = [r["return"] for r in results]
    spread = statistics.pstdev(returns)
    solved = sum(r["solved"] for r in results)
    criterion = "the env's solved flag" + (
        "" if threshold is None else f" or return >= {threshold:g}"
    )
    return (
        f"return {statistics.fmean(returns):.6g} ± {spread:.3g} "
        f"(min {min(returns):.6g}, max {max(returns):.6g}), "
        f"mean length {statistics.fmean(r['length'] for r in results):.1f}, "
        f"solved {solved}/{len(results)} ({100 * solved / len(results):.0f}%; {criterion})"
    )


def cmd_eval(args: argparse.Namespace) -> int:
    """`smevo eval RUN`: score the saved best agent on fresh seeded episodes."""
    from smevo.agent import load_agent

    path = agent_path(args.run)
    agent = load_agent(path)
    try:
        results = agent.run_episodes(args.episodes, args.seed)
    finally:
        agent.close()
    env_id = agent.config.get("env", {}).get("id", "")
    _say(
        f"{path} (generation {agent.generation}, training fitness {agent.fitness:.6g}) on "
        f"{env_id}, {args.episodes} episodes, seeds {args.seed}..{args.seed + args.episodes - 1}"
    )
    _say(_describe_episodes(results, agent.solve_threshold))
    return 0


VIDEO_SUFFIXES = (".gif", ".mp4")


def check_video_path(path: Path) -> None:
    """A `ValueError` unless frames can be written to `path`: a .gif (always), or a .mp4
    when imageio-ffmpeg is installed. Checked before the agent acts, not after."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"--record {path}: the file must end in {' or '.join(VIDEO_SUFFIXES)}")
    if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ValueError(
            f"--record {path}: writing .mp4 needs imageio-ffmpeg: pip install imageio-ffmpeg "
            "(or record a .gif)"
        )


def _video_writer(path: Path, fps: float) -> Any:
    """An imageio writer that streams frames to `path` (checked by `check_video_path`)."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        return imageio.get_writer(path, mode="I", duration=1000.0 / fps, loop=0)
    return imageio.get_writer(path, fps=fps)


def cmd_watch(args: argparse.Namespace) -> int:
    """`smevo watch RUN`: the saved best agent in a window, or recorded to a video file."""
    from smevo.agent import load_agent

    path = agent_path(args.run)
    record = Path(args.record) if args.record else None
    if record is not None:
        check_video_path(record)
    agent = load_agent(path, render_mode="rgb_array" if record else "human")
    writer = None
    try:
        if record is not None:
            writer = _video_writer(record, agent.env.metadata.get("render_fps") or 30)

            def on_step(env: Any) -> None:
                writer.append_data(env.render())

        results = agent.run_episodes(
            args.episodes, args.seed, on_step=on_step if record is not None else None
        )
    finally:
        if writer is not None:
            writer.close()
        agent.close()
    for episode, result in enumerate(results):
        _say(
            f"episode {episode} (seed {args.seed + episode}): return {result['return']:.6g}, "
            f"length {result['length']}{', solved' if result['solved'] else ''}"
        )
    if record is not None:
        _say(f"recorded {record}")
    return 0


# --------------------------------------------------------------------------- list / plot


def _table(title: str, rows: Sequence[tuple[str, str]]) -> None:
    width = max((len(name) for name, _ in rows), default=0)
    _say(f"{title}:")
    for name, text in rows:
        _say(f"  {name:<{width}}  {text}")


def _list_envs() -> None:
    from smevo.envs import env_description, env_names

    _table("envs", [(name, env_description(name)) for name in env_names()])


def _list_policies() -> None:
    from smevo.policies import POLICIES, policy_options

    rows = []
    for name in POLICIES.names():
        factory = POLICIES.get(name)
        fixed = getattr(factory, "keywords", {})
        doc = _first_paragraph(getattr(factory, "func", factory))
        preset = "".join(f"[{k}={v}] " for k, v in fixed.items())
        rows.append((name, f"{preset}{doc} Options: {', '.join(policy_options(name)) or 'none'}."))
    _table("policies", rows)


def _list_mutations() -> None:
    from smevo.mutations import MUTATIONS, mutation_options

    rows = [
        (
            name,
            f"{_first_paragraph(MUTATIONS.get(name)).removeprefix(f'{name}: ')} "
            f"Magnitude: {MAGNITUDE[name]}. "
            f"Options: {', '.join(mutation_options(name)) or 'none'}.",
        )
        for name in MUTATIONS.names()
    ]
    _table("mutations", rows)


def _list_algorithms() -> None:
    from smevo.algorithms import ALGORITHMS

    _table("algorithms", [(name, _first_paragraph(ALGORITHMS.get(name))) for name in ALGORITHMS])


def _list_config() -> None:
    rows = [(f.key, f"{f.type} = {json.dumps(f.value)}: {f.help}") for f in config_fields()]
    _table("config keys (defaults; set with --set KEY=VALUE or in a --config file)", rows)


LISTINGS: dict[str, Callable[[], None]] = {
    "envs": _list_envs,
    "policies": _list_policies,
    "mutations": _list_mutations,
    "algorithms": _list_algorithms,
    "config": _list_config,
}


def cmd_list(args: argparse.Namespace) -> int:
    """`smevo list [WHAT]`: registered names with a line each (everything when WHAT is left out)."""
    for index, name in enumerate([args.what] if args.what else LISTINGS):
        if index:
            _say()
        LISTINGS[name]()
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """`smevo plot RUN... --out FILE.png`: median and IQR curves across runs."""
    from smevo.plotting import plot_runs

    out = plot_runs([Path(run) for run in args.runs], Path(args.out), metric=args.metric, x=args.x)
    _say(f"wrote {out}")
    return 0


# --------------------------------------------------------------------------- fit


def _key_values(items: Sequence[str] | None, flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict, each value read as YAML (``hidden=50`` is an int)."""
    import yaml

    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} {item}: expected KEY=VALUE, e.g. {flag} hidden=50")
        try:
            options[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise UsageError(f"{flag} {item}: {raw!r} is not a valid value") from None
    return options


def cmd_fit(args: argparse.Namespace) -> int:
    """`smevo fit`: gradient training of a policy on a differentiable task."""
    from smevo.fit import fit

    def progress(update: int, metrics: dict[str, float]) -> None:
        _say(f"update {update}/{args.updates}: loss {metrics['fit/loss']:.4g}, "
             f"error {metrics['fit/error']:.4f}")

    result = fit(
        args.task, args.policy,
        policy_options=_key_values(args.policy_opt, "--policy-opt"),
        task_options=_key_values(args.task_opt, "--task-opt"),
        updates=args.updates, batch_size=args.batch, lr=args.lr, lr_schedule=args.lr_schedule,
        grad_clip=args.grad_clip, seed=args.seed, eval_episodes=args.eval_episodes,
        logdir=args.logdir, name=args.name, log_every=args.log_every,
        on_log=None if args.quiet else progress,
    )
    _say(
        f"done: {result.updates} updates ({result.episodes:,} episodes) in "
        f"{result.seconds:.1f} s; error on {args.eval_episodes} fresh episodes "
        f"{result.final_error:.4f}; run in {result.run_dir} (curves: tensorboard --logdir "
        f"{result.run_dir.parent}; agent: smevo eval {result.run_dir})"
    )
    return 0


# --------------------------------------------------------------------------- parser


def add_agent_arguments(parser: argparse.ArgumentParser, episodes: int) -> None:
    """The arguments of the commands that play a trained agent: which, how long, which seeds."""
    parser.add_argument("run", metavar="RUN", help="run directory or agent .pt file")
    parser.add_argument(
        "--episodes", type=int, default=episodes, help=f"episodes (default {episodes})"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="episode e resets with seed+e (default 0)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``smevo`` argument parser with one subcommand per user action."""
    parser = _Parser(
        prog=PROG,
        description="Neuroevolution for Gymnasium with the safe mutation operators of "
        "Lehman et al. (2018).",
    )
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
        help="set any config key, e.g. --set algorithm.parents=10 "
        "--set policy.options.hidden=32 (repeatable; applied last)",
    )
    train.set_defaults(command=cmd_train)

    resume = commands.add_parser(
        "resume",
        help="continue a run from its newest checkpoint",
        description="Continue RUN from its newest checkpoint; the result equals an "
        "uninterrupted run with the same seed.",
    )
    resume.add_argument("run", metavar="RUN", help="the run directory")
    resume.add_argument(
        "--generations",
        type=int,
        metavar="N",
        help="raise the generation budget to N [budget.generations]",
    )
    resume.set_defaults(command=cmd_resume)

    evaluate = commands.add_parser(
        "eval",
        help="score a run's best agent on fresh episodes",
        description="Play RUN/best.pt (or an agent .pt file) on seeded episodes and report "
        "the mean and spread of the return and the fraction solved.",
    )
    add_agent_arguments(evaluate, episodes=20)
    evaluate.set_defaults(command=cmd_eval)

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
    watch.set_defaults(command=cmd_watch)

    listing = commands.add_parser(
        "list",
        help="list envs, policies, mutations, algorithms or config keys",
        description="Registered names with a line each; everything when WHAT is left out.",
    )
    listing.add_argument("what", nargs="?", choices=list(LISTINGS), help="what to list")
    listing.set_defaults(command=cmd_list)

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
    plot.set_defaults(command=cmd_plot)

    fit = commands.add_parser(
        "fit",
        help="train a recurrent policy by gradient descent (BPTT, Adam) on a differentiable "
        "task",
        description="Gradient training on a task's episodes drawn as arrays (pattern-completion: "
        "smevo/PatternCompletion-v0; parity: smevo/RecurrentParity-v0), for comparing with "
        "evolution on the same network. Writes a run directory (TensorBoard, metrics.jsonl, "
        "best.pt). Example (the differentiable-plasticity curve on 50-bit patterns): smevo fit "
        "--task pattern-completion --policy plastic --policy-opt hidden=50 --policy-opt "
        "io=direct --task-opt pattern_size=50 --task-opt n_patterns=2 --task-opt cycles=1 "
        "--task-opt presentation=6 --task-opt gap=2 --task-opt test_time=3 --task-opt "
        "balanced=true --task-opt exact_degrade=true --updates 400 --batch 64 --lr 3e-3",
    )
    fit.add_argument("--task", required=True, metavar="NAME",
                     help="pattern-completion or parity")
    fit.add_argument("--policy", default="plastic", metavar="NAME",
                     help="a recurrent policy (default plastic; see `smevo list policies`)")
    fit.add_argument("--policy-opt", action="append", metavar="KEY=VALUE",
                     help="policy option, e.g. hidden=50 (repeatable)")
    fit.add_argument("--task-opt", action="append", metavar="KEY=VALUE",
                     help="task option: the env's keyword arguments, e.g. pattern_size=50 "
                     "(repeatable)")
    fit.add_argument("--updates", type=int, default=1000, metavar="N",
                     help="Adam updates (default 1000)")
    fit.add_argument("--batch", type=int, default=1, metavar="N",
                     help="episodes per update (default 1, as in the reference)")
    fit.add_argument("--lr", type=float, default=3e-4, help="learning rate (default 3e-4)")
    fit.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"],
                     help="constant, or cosine decay to 0 (default constant)")
    fit.add_argument("--grad-clip", type=float, metavar="NORM",
                     help="clip the gradient norm (default: no clipping)")
    fit.add_argument("--seed", type=int, default=0, help="seeds init and episodes (default 0)")
    fit.add_argument("--eval-episodes", type=int, default=100, metavar="N",
                     help="fresh episodes for the final error (default 100)")
    fit.add_argument("--log-every", type=int, default=10, metavar="N",
                     help="log the mean loss and error of every N updates (default 10)")
    fit.add_argument("--logdir", default="runs", metavar="DIR",
                     help="directory that holds one folder per run (default runs)")
    fit.add_argument("--name", metavar="NAME",
                     help="run folder name (default <task>-fit-<policy>-<UTC time>)")
    fit.add_argument("--quiet", action="store_true", help="no progress lines")
    fit.set_defaults(command=cmd_fit)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``smevo`` command line; returns the exit status (2 for a user error)."""
    try:
        args = build_parser().parse_args(argv)
        return args.command(args)
    except SystemExit as done:  # --help and --version exit through argparse
        return done.code if isinstance(done.code, int) else 0
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError) as error:
        sys.stderr.write(f"{PROG}: error: {_one_line(error)}\n")
        return 2
    except BrokenPipeError:  # e.g. `smevo list envs | head`: stop writing, no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
