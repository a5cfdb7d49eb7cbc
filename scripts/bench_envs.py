"""Benchmark: hard-maze robot-steps per second, C++ vector env against pure-Python physics.

A robot-step is one simulator step of one robot (an episode is 400 of them per robot, so an
env step with frame_skip=3 is 3 robot-steps per robot). Everything runs on one core: the
process is pinned to one CPU where the OS allows it, and the C++ core is single-threaded.

The Python baseline is `smevo_envs._maze_python` (the slow reference model the tests check
the C++ core against) in plain-float arithmetic, its fastest mode; it does the same work per
step (motor model, collision test against every wall, and sensors whenever an observation
is due). It has no per-step API overhead, the C++ env does (action checks, info dicts).

    python scripts/bench_envs.py                 # the default table
    python scripts/bench_envs.py --robots 1024 --episodes 10
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

from smevo_envs._maze_python import PythonRobots
from smevo_envs.maze import BreadcrumbHardMazeVectorEnv, load_maze


def pin_to_one_cpu(cpu: int) -> str:
    """Pin this process to `cpu`; return a description of where it runs."""
    if not hasattr(os, "sched_setaffinity"):
        return "one thread (this OS cannot pin a process)"
    os.sched_setaffinity(0, {cpu})
    return f"CPU {cpu} only"


def best_rate(run_episode: Callable[[], int], episodes: int, repeats: int) -> float:
    """Robot-steps per second: the best of `repeats` timings of `episodes` episodes."""
    run_episode()  # warm-up
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        robot_steps = sum(run_episode() for _ in range(episodes))
        best = max(best, robot_steps / (time.perf_counter() - start))
    return best


def cpp_vector_env(robots: int, frame_skip: int, seed: int) -> Callable[[], int]:
    envs = BreadcrumbHardMazeVectorEnv(num_envs=robots, frame_skip=frame_skip)
    env_steps = -(-envs.maze.steps // frame_skip)
    actions = np.random.default_rng(seed).random((env_steps, robots, 2), dtype=np.float32)

    def episode() -> int:
        envs.reset(seed=seed)
        for batch in actions:
            envs.step(batch)
        return envs.maze.steps * robots

    return episode


def python_physics(robots: int, frame_skip: int, seed: int, number: type) -> Callable[[], int]:
    maze = load_maze()
    model = PythonRobots(maze, robots, number=number)
    env_steps = -(-maze.steps // frame_skip)
    actions = np.random.default_rng(seed).random((env_steps, robots, 2), dtype=np.float32)

    def episode() -> int:
        model.reset()
        for batch in actions:
            model.step(batch, frame_skip)
        return maze.steps * robots

    return episode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, default=256, help="robots in the C++ vector env")
    parser.add_argument("--episodes", type=int, default=5, help="C++ episodes per timing")
    parser.add_argument(
        "--python-robots", type=int, default=8, help="robots of the (slow) Python model"
    )
    parser.add_argument("--python-episodes", type=int, default=1, help="Python episodes per timing")
    parser.add_argument("--repeats", type=int, default=3, help="timings; the best is kept")
    parser.add_argument("--cpu", type=int, default=0, help="the CPU to pin the process to")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random actions")
    args = parser.parse_args()

    where = pin_to_one_cpu(args.cpu)
    rows = []  # name, robots, frame_skip, robot-steps/s
    python = {}  # frame_skip -> the plain-float Python rate
    for frame_skip in (3, 1):
        python[frame_skip] = best_rate(
            python_physics(args.python_robots, frame_skip, args.seed, float),
            args.python_episodes,
            args.repeats,
        )
        cpp = best_rate(
            cpp_vector_env(args.robots, frame_skip, args.seed), args.episodes, args.repeats
        )
        rows.append(("C++ vector env (one call per step)", args.robots, frame_skip, cpp))
        rows.append(
            ("pure-Python physics, float", args.python_robots, frame_skip, python[frame_skip])
        )
    float32 = best_rate(
        python_physics(args.python_robots, 1, args.seed, np.float32),
        args.python_episodes,
        args.repeats,
    )
    rows.append(("pure-Python physics, float32 (tests)", args.python_robots, 1, float32))

    print(f"hard maze, 400 simulator steps per episode, random actions; {where}")
    header = f"{'implementation':<38} {'robots':>6} {'frame_skip':>10} {'robot-steps/s':>14}"
    print(f"{header} {'x Python':>9}")
    for name, robots, frame_skip, rate in rows:
        ratio = rate / python[frame_skip]
        print(f"{name:<38} {robots:>6} {frame_skip:>10} {rate:>14,.0f} {ratio:>8.1f}x")
    print(
        "x Python: against the plain-float Python physics at the same frame_skip "
        "(frame_skip=3 computes sensors every third step, for both)."
    )


if __name__ == "__main__":
    main()
