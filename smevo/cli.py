"""The ``smevo`` command: parses, builds a config, calls the library — nothing more.

    smevo train --env CartPole-v1 --mutation SM-G-SUM    # a run in runs/<env>-<mutation>-<time>
    smevo resume RUN                                     # continue it from its last checkpoint
    smevo eval RUN                                       # score best.pt on fresh episodes
    smevo watch RUN [--record FILE.gif]                  # see best.pt act
    smevo list [envs|policies|mutations|algorithms|backends|config [SECTION]]
    smevo plot RUN... --out curves.png                   # median and IQR across seeds
    smevo fit --task pattern-completion --policy plastic # gradient training (BPTT, Adam)
    smevo a2c --config configs/gridmaze-neuromod-a2c.yaml # episodic A2C meta-training

A config is built in one order: defaults, then ``--config FILE``, then explicit flags, then
``--set key=value`` in the order given. Names (env, policy, mutation, algorithm) and the
policy's fit to the env's spaces, the device, the output folders and the run's memory are
checked before a run starts. Every error the user can cause — a `ValueError` (config,
checkpoint, unknown name, bad spaces, sizes beyond memory) or an `OSError` (a missing file, a
folder that cannot be written) — is one line ``smevo: error: <message>`` on stderr and exit
status 2, never a traceback. Anything else is a bug: one line ``smevo: error: internal
error: ...`` and status 1 (``smevo --debug ...`` shows the traceback). Ctrl-C exits with 130
(the trainer checkpoints on its way out).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import platform
import signal
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from smevo._registry import Registry
from smevo.config import (
    Config,
    apply_overrides,
    check_run_name,
    config_fields,
    config_from_dict,
    config_to_dict,
    load_config,
)
from smevo.fit_config import FitConfig

__all__ = [
    "agent_path",
    "build_parser",
    "check_video_path",
    "main",
    "train_config",
]

PROG = "smevo"

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


def _os_error_line(error: OSError) -> str:
    """'PATH: Is a directory' for an OS error about a file, else its message on one line."""
    if error.strerror and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    return _one_line(error)


def _first_paragraph(obj: Any) -> str:
    """The first paragraph of `obj`'s docstring, on one line."""
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


# --------------------------------------------------------------------------- train


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


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _set_key(data: dict[str, Any], key: str, value: Any) -> None:
    *sections, name = key.split(".")
    for section in sections:
        data = data[section]
    data[name] = value


def _summary(result: Any) -> str:
    """The one line a finished (or resumed) run ends with, with where to look next."""
    from smevo.logging import champion_text

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
    modes = _render_modes(env_id)
    if _unshowable(env_id, modes, record=False) is None and _display_problem() is None:
        return f"smevo watch {run_dir}"
    if _unshowable(env_id, modes, record=True) is None:
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
    _say(_summary(smevo.train(config)))
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
    _say(_summary(smevo.resume(run_dir, overrides=overrides,
                               trust_env_code=args.trust_env_code)))
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
    from smevo.resources import check_episodes

    check_episodes(args.episodes, "--episodes")
    path = agent_path(args.run)
    agent = load_agent(path, trust_env_code=args.trust_env_code)
    try:
        results = agent.run_episodes(args.episodes, args.seed)
    finally:
        agent.close()
    _say(
        f"{path}: {_agent_origin(agent)}; {args.episodes} episodes "
        f"of {_env_id(agent)}, seeds {args.seed}..{args.seed + args.episodes - 1}"
    )
    _say(_describe_episodes(results, agent.solve_threshold))
    return 0


def _agent_origin(agent: Any) -> str:
    """What made the agent: the champion of an evolution run, or the result of `smevo fit`
    (whose agent stores minus its task error as fitness and its updates as generation) or
    `smevo a2c` (its mean reward and updates)."""
    if "fit" in agent.config:
        return f"trained by smevo fit, error {-agent.fitness:.4g} after {agent.generation} updates"
    if "a2c" in agent.config:
        return (f"trained by smevo a2c, mean reward {agent.fitness:.4g} (sampling) after "
                f"{agent.generation} updates")
    from smevo.logging import champion_text

    return champion_text(agent.fitness, agent.generation)


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


HEADLESS_SDL_DRIVERS = ("dummy", "offscreen")
"""SDL video drivers that open no window (pygame draws Gymnasium's windows through SDL)."""


def _display_problem() -> str | None:
    """Why no window can open here, or None: SDL told to draw nowhere, or a Linux session
    with neither an X11 nor a Wayland display."""
    driver = os.environ.get("SDL_VIDEODRIVER", "").lower()
    if driver in HEADLESS_SDL_DRIVERS:
        return f"SDL_VIDEODRIVER={driver} opens no window"
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "no display here (DISPLAY and WAYLAND_DISPLAY are unset)"
    return None


def _render_modes(env_id: str) -> list[str]:
    """The render modes a registered env's class declares, read from its spec without
    making an env; [] when unknown (an id that is not registered, e.g. a factory)."""
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    name = env_id.rpartition(":")[2]
    if name not in gym.registry:
        return []
    entry = gym.spec(name).entry_point
    try:
        creator = load_env_creator(entry) if isinstance(entry, str) else entry
    except (ImportError, AttributeError, gym.error.Error):
        return []
    return list(getattr(creator, "metadata", {}).get("render_modes") or [])


def _unshowable(env_id: str, modes: Sequence[str], record: bool) -> str | None:
    """Why `env_id`, whose render modes are `modes`, cannot be recorded (`record`) or shown
    in a window, or None. A window needs "human", or "rgb_array" shown by Gymnasium's
    `HumanRendering`; a video needs "rgb_array"."""
    needed = ("rgb_array",) if record else ("human", "rgb_array")
    if any(mode in modes for mode in needed):
        return None
    return (
        f"{env_id} cannot be {'recorded' if record else 'shown'}: it has no "
        f"{' or '.join(needed)} render (its render modes: {', '.join(modes) or 'none'})"
    )


def _env_id(agent: Any) -> str:
    """The id of the env a loaded agent acts in."""
    spec = agent.env.spec
    return agent.config.get("env", {}).get("id") or (spec.id if spec is not None else "its env")


def _watch_render_mode(path: Path, args: argparse.Namespace, record: bool) -> str:
    """The render mode `watch` makes the agent's env with: "rgb_array" to record; "human"
    for a window, or "rgb_array" when the env has no "human" mode (`cmd_watch` shows its
    frames). A `ValueError` naming what is missing when the env cannot be shown here."""
    from smevo.agent import load_agent

    probe = load_agent(path, trust_env_code=args.trust_env_code)
    env_id, modes = _env_id(probe), list(probe.env.metadata.get("render_modes") or [])
    probe.close()
    problem = _unshowable(env_id, modes, record)
    if problem is not None:
        raise ValueError(f"{problem}; score it without pictures: smevo eval {args.run}")
    if record:
        return "rgb_array"
    problem = _display_problem()
    if problem is not None:
        instead = (
            f"; record a video instead: smevo watch {args.run} --record agent.gif"
            if "rgb_array" in modes
            else ""
        )
        raise ValueError(f"cannot open a window: {problem}{instead}")
    return "human" if "human" in modes else "rgb_array"


def cmd_watch(args: argparse.Namespace) -> int:
    """`smevo watch RUN`: the saved best agent in a window, or recorded to a video file."""
    from gymnasium.wrappers import HumanRendering

    from smevo.agent import load_agent
    from smevo.resources import check_episodes

    check_episodes(args.episodes, "--episodes")
    path = agent_path(args.run)
    record = Path(args.record) if args.record else None
    if record is not None:
        check_video_path(record)
        check_output_file(record, "--record")
    mode = _watch_render_mode(path, args, record is not None)
    agent = load_agent(path, render_mode=mode, trust_env_code=args.trust_env_code)
    if record is None and mode != "human":
        agent.env = HumanRendering(agent.env)
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


def _list_registry(
    title: str, registry: Registry, describe: Callable[[str], list[tuple[str, str]]]
) -> None:
    """A table of `registry`'s names, each described by `describe` (its rows), a plugin's
    marked with its distribution. A plugin that cannot be loaded is a row saying why, and one
    left out (a clash with a built-in name) a line after the table: a broken plugin never
    hides the other names."""
    rows = []
    for name in registry.names():
        try:
            described = describe(name)
        except ValueError as error:  # the error names the plugin's distribution
            described = [(name, f"unavailable: {_one_line(error)}")]
        else:
            origin = registry.plugin(name)
            if origin is not None:
                described[0] = (name, f"[plugin {origin}] {described[0][1]}")
        rows += described
    _table(title, rows)
    for problem in registry.plugin_problems():
        _say(f"  note: {problem}")


def _describe_policy(name: str) -> list[tuple[str, str]]:
    """A policy's description, then one row per option: default and meaning (set with
    ``--set policy.options.NAME=VALUE``)."""
    from smevo.policies import POLICIES, policy_option_help

    factory = POLICIES.get(name)
    fixed = getattr(factory, "keywords", {})
    doc = _first_paragraph(getattr(factory, "func", factory))
    preset = "".join(f"[{k}={v}] " for k, v in fixed.items())
    options = policy_option_help(name)
    return [(name, f"{preset}{doc} Options:{'' if options else ' none.'}")] + [
        ("", f"  {option.name} = {json.dumps(option.default)}"
             + (f": {option.meaning}" if option.meaning else ""))
        for option in options
    ]


def _describe_mutation(name: str) -> list[tuple[str, str]]:
    """An operator's description, what its magnitude means, and its options with their
    defaults (its class's signature; set with ``--set mutation.options.NAME=VALUE``)."""
    from smevo._registry import keyword_options
    from smevo.mutations import MUTATIONS

    operator = MUTATIONS.get(name)
    options = ", ".join(f"{option} = {json.dumps(default, default=repr)}"
                        for option, default in keyword_options(operator).items())
    return [(name, f"{_first_paragraph(operator).removeprefix(f'{name}: ')} "
                   f"Magnitude: {operator.magnitude_means}. Options: {options or 'none'}.")]


def _list_policies() -> None:
    from smevo.policies import POLICIES

    _list_registry("policies", POLICIES, _describe_policy)


def _list_mutations() -> None:
    from smevo.mutations import MUTATIONS

    _list_registry("mutations", MUTATIONS, _describe_mutation)


def _list_algorithms() -> None:
    from smevo.algorithms import ALGORITHMS

    _list_registry("algorithms", ALGORITHMS,
                   lambda name: [(name, _first_paragraph(ALGORITHMS.get(name)))])


def _list_backends() -> None:
    from smevo.evaluation import BACKENDS

    _list_registry("backends", BACKENDS,
                   lambda name: [(name, _first_paragraph(BACKENDS.get(name)))])


def _list_config(section: str | None = None) -> None:
    """Every config key, or those of one `section` (``mutation``) or key (``mutation.name``)."""
    from smevo._registry import unknown_name_message

    fields = config_fields()
    if section is not None:
        chosen = [f for f in fields if f.key == section or f.key.startswith(f"{section}.")]
        if not chosen:
            sections = list(dict.fromkeys(f.key.split(".")[0] for f in fields))
            raise ValueError(unknown_name_message("config section", section, sections))
        fields = chosen
    rows = [(f.key, f"{f.type} = {json.dumps(f.value)}: {f.help}") for f in fields]
    _table("config keys (defaults; set with --set KEY=VALUE or in a --config file)", rows)


LISTINGS: dict[str, Callable[[], None]] = {
    "envs": _list_envs,
    "policies": _list_policies,
    "mutations": _list_mutations,
    "algorithms": _list_algorithms,
    "backends": _list_backends,
    "config": _list_config,
}


def cmd_list(args: argparse.Namespace) -> int:
    """`smevo list [WHAT]`: registered names with a line each (everything when WHAT is left
    out); `smevo list config SECTION`: the keys of one config section."""
    if args.section is not None:
        if args.what != "config":
            raise UsageError(
                f"only 'list config' takes a section (e.g. smevo list config {args.section})"
            )
        _list_config(args.section)
        return 0
    for index, name in enumerate([args.what] if args.what else LISTINGS):
        if index:
            _say()
        LISTINGS[name]()
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """`smevo plot RUN... --out FILE.png`: median and IQR curves across runs."""
    from smevo.plotting import image_path, plot_runs

    check_output_file(image_path(Path(args.out)), "--out")
    out = plot_runs([Path(run) for run in args.runs], Path(args.out), metric=args.metric, x=args.x)
    _say(f"wrote {out}")
    return 0


# --------------------------------------------------------------------------- fit


def _option_overrides(args: argparse.Namespace) -> list[str]:
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


def cmd_fit(args: argparse.Namespace) -> int:
    """`smevo fit`: gradient training of a policy on a differentiable task."""
    from smevo.fit import fit

    if args.name is not None:
        check_run_name(args.name, "--name")
    config = config_from_args(args, FitConfig, FIT_FLAGS, _option_overrides(args))
    check_output_dir(Path(config.logging.logdir),
                     "--logdir" if args.logdir is not None else "logging.logdir")
    updates = config.fit.updates

    def progress(update: int, metrics: dict[str, float]) -> None:
        _say(f"update {update}/{updates}: loss {metrics['fit/loss']:.4g}, "
             f"error {metrics['fit/error']:.4f}")

    result = fit(config, on_log=None if config.logging.quiet else progress)
    _say(
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
    _say(
        f"done: {result.updates} updates ({result.episodes:,} episodes, {result.stopped_by} "
        f"budget); mean reward of the final policy on fresh episodes {result.final_reward:.4g}; "
        f"run in {result.run_dir} (curves: tensorboard --logdir {result.run_dir.parent}; "
        f"agent: smevo eval {result.run_dir})"
    )
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """`smevo reproduce`: the experiment grid's command line (`smevo.experiments.cli`, which
    scripts/reproduce.py runs too), given every argument after the verb."""
    from smevo.experiments.cli import main as reproduce

    return reproduce(args.argv, prog=f"{PROG} reproduce", invocation=(PROG, "reproduce"))


# --------------------------------------------------------------------------- parser


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
        help="set any config key, e.g. --set algorithm.parents=10 "
        "--set policy.options.hidden=32 (repeatable; applied last)",
    )
    train.set_defaults(command=cmd_train)

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
    resume.set_defaults(command=cmd_resume)

    evaluate = commands.add_parser(
        "eval",
        help="score a run's best agent on fresh episodes",
        description="Play RUN/best.pt (or an agent .pt file) on seeded episodes and report "
        "the mean and spread of the return and the fraction solved.",
    )
    add_agent_arguments(evaluate, episodes=20)
    add_trust_argument(evaluate)
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
    add_trust_argument(watch)
    watch.set_defaults(command=cmd_watch)

    listing = commands.add_parser(
        "list",
        help="list envs, policies, mutations, algorithms, backends or config keys",
        description="Registered names with a line each, those of installed plugins (entry "
        "points smevo.mutations, smevo.policies, smevo.algorithms, smevo.backends) "
        "included; everything when WHAT is left out.",
    )
    listing.add_argument("what", nargs="?", choices=list(LISTINGS), help="what to list")
    listing.add_argument(
        "section",
        nargs="?",
        metavar="SECTION",
        help="with config: only this section's keys (e.g. mutation) or one key",
    )
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
    fit.set_defaults(command=cmd_fit)

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
    meta.set_defaults(command=cmd_a2c)
    for command in commands.choices.values():
        add_debug_argument(command, default=argparse.SUPPRESS)
    reproduce = commands.add_parser(  # its own parser reads every argument, --help included
        "reproduce", prefix_chars="\0", add_help=False,
        help="run the paper's experiment grid and write its report (smevo reproduce --help)")
    reproduce.add_argument("argv", nargs=argparse.REMAINDER)
    reproduce.set_defaults(command=cmd_reproduce)
    return parser


class _NeverRaised(Exception):
    """Stands in for `WorkerCrashError` while no backend has been imported (none can raise it)."""


def _worker_crash_error() -> type[Exception]:
    """`WorkerCrashError` if the backends are loaded, else a class nothing raises: `main` catches
    a crashed worker without importing the backends (and torch) for every command."""
    backends = sys.modules.get("smevo.evaluation.backends")
    return backends.WorkerCrashError if backends is not None else _NeverRaised


def main(argv: list[str] | None = None) -> int:
    """Run the ``smevo`` command line; returns the exit status: 2 for a user error (a bad
    value, name or file), 1 for an internal error (a bug: one line, the traceback with
    ``--debug``) or a crashed worker, 130 for Ctrl-C."""
    args = argparse.Namespace(debug=False)
    try:
        args = build_parser().parse_args(argv)
        return args.command(args)
    except SystemExit as done:  # --help and --version exit through argparse
        return done.code if isinstance(done.code, int) else 0
    except KeyboardInterrupt:
        if argv is None:  # this process exits now: a second Ctrl-C or SIGTERM must not
            for signum in (signal.SIGINT, signal.SIGTERM):  # interrupt its clean-up
                signal.signal(signum, signal.SIG_IGN)
        return 130
    except _worker_crash_error() as error:  # not the user's doing; the run is checkpointed
        sys.stderr.write(f"{PROG}: error: {_one_line(error)}\n")
        return 1
    except ValueError as error:
        sys.stderr.write(f"{PROG}: error: {_one_line(error)}\n")
        return 2
    except BrokenPipeError:  # e.g. `smevo list envs | head`: stop writing, no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as error:  # a file or folder that is missing, not writable, not a folder
        sys.stderr.write(f"{PROG}: error: {_os_error_line(error)}\n")
        return 2
    except MemoryError as error:  # a size the up-front checks do not bound (e.g. `fit`)
        sys.stderr.write(f"{PROG}: error: out of memory ({_one_line(error)}); use smaller sizes\n")
        return 2
    except Exception as error:  # a bug: one line, the traceback on request
        if args.debug:
            raise
        sys.stderr.write(
            f"{PROG}: error: internal error: {type(error).__name__}: {_one_line(error)} "
            f"(run '{PROG} --debug ...' for the traceback and report it)\n"
        )
        return 1
