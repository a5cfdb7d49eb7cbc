"""``smevo eval`` and ``smevo watch``: a run's saved best agent scored on fresh seeded
episodes, or seen acting in a window or a video file."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from smevo.commands.common import check_output_file, say
from smevo.commands.showing import (
    check_video_path,
    display_problem,
    unshowable,
    video_writer,
)


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
    say(
        f"{path}: {_agent_origin(agent)}; {args.episodes} episodes "
        f"of {_env_id(agent)}, seeds {args.seed}..{args.seed + args.episodes - 1}"
    )
    say(_describe_episodes(results, agent.solve_threshold))
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
    from smevo.console import champion_text

    return champion_text(agent.fitness, agent.generation)


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
    problem = unshowable(env_id, modes, record)
    if problem is not None:
        raise ValueError(f"{problem}; score it without pictures: smevo eval {args.run}")
    if record:
        return "rgb_array"
    problem = display_problem()
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
            writer = video_writer(record, agent.env.metadata.get("render_fps") or 30)

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
        say(
            f"episode {episode} (seed {args.seed + episode}): return {result['return']:.6g}, "
            f"length {result['length']}{', solved' if result['solved'] else ''}"
        )
    if record is not None:
        say(f"recorded {record}")
    return 0
