"""The breadcrumb hard maze: a Gymnasium env and its native vector twin over the C++ core.

The simulator (sensors, motor model, collisions, breadcrumb map) is C++17 in `cpp/`, bound
as `smevo_envs._maze`; this module reads maze files (format: `_maze_file`), checks actions,
and shapes the results as Gymnasium expects. `smevo_envs._maze_python` holds a slow
pure-Python model of the same physics, used only to test the C++ core and to benchmark it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from smevo_envs import _maze
from smevo_envs._maze_file import HARD_MAZE_FILE, MAX_STEPS, MazeSpec, load_maze, parse_maze
from smevo_envs._validation import (
    checked_box_action,
    checked_int,
    checked_options,
    checked_render_mode,
    checked_seeds,
    step_after_the_end,
)
from smevo_envs.capabilities import EnvCapabilities

__all__ = [
    "REWARDS",
    "BreadcrumbHardMazeEnv",
    "BreadcrumbHardMazeVectorEnv",
    "MazeSpec",
    "core_maze",
    "load_maze",
    "parse_maze",
]

REWARDS = ("breadcrumb", "euclidean")


@functools.lru_cache(maxsize=16)
def core_maze(spec: MazeSpec) -> _maze.Maze:
    """The C++ maze (with its breadcrumb map) for `spec`, built once and shared."""
    return _maze.Maze(
        walls=np.array(spec.walls, dtype=np.float64).reshape(-1, 4),
        start=spec.start,
        start_heading=spec.start_heading,
        goal=spec.goal,
        steps=spec.steps,
    )


def _load(maze_file: str | os.PathLike[str] | None) -> tuple[MazeSpec, _maze.Maze]:
    """The maze file's spec and its C++ maze; a maze the simulator refuses (a grid too large
    for the breadcrumb map) is a ValueError naming the file."""
    spec = load_maze(maze_file)
    try:
        return spec, core_maze(spec)
    except ValueError as error:
        source = HARD_MAZE_FILE if maze_file is None else os.fspath(maze_file)
        raise ValueError(f"maze file {source}: {error}") from None


def _checked_settings(frame_skip: Any, reward: Any) -> tuple[int, str]:
    frame_skip = checked_int(frame_skip, "frame_skip", 1, MAX_STEPS)
    if reward not in REWARDS:
        raise ValueError(f"reward must be one of {list(REWARDS)}, got {reward!r}")
    return frame_skip, reward


def _observation_space() -> spaces.Box:
    return spaces.Box(0.0, 1.0, shape=(_maze.OBSERVATION_SIZE,), dtype=np.float32)


def _action_space() -> spaces.Box:
    return spaces.Box(0.0, 1.0, shape=(_maze.ACTION_SIZE,), dtype=np.float32)


class _PicklesRobotState:
    """Pickling for the envs: the C++ robots travel as their exact state (a dict of arrays)
    and are rebuilt, over the same maze, on unpickling; a renderer is not carried over."""

    maze: MazeSpec
    _robots: _maze.Robots

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_robots"] = self._robots.get_state()
        state["_renderer"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        robot_state = state.pop("_robots")
        self.__dict__.update(state)
        self._robots = _maze.Robots(core_maze(self.maze), len(robot_state["steps"]))
        self._robots.set_state(robot_state)


class BreadcrumbHardMazeEnv(_PicklesRobotState, gym.Env[np.ndarray, np.ndarray]):
    """Lehman & Stanley's hard maze, scored by breadcrumb (path) distance to the goal.

    ## Description

    The maze domain of Lehman, Chen, Clune & Stanley, *Safe Mutations for Deep and
    Recurrent Neural Networks through Output Gradients* (GECCO 2018), on the classic "hard
    maze" of Lehman & Stanley's novelty-search work. A round robot (radius 8) starts at the
    bottom left facing east and must reach the goal in the top-left pocket; the straight
    line towards the goal leads into a dead end. The fitness is not the straight-line
    distance but the *breadcrumb* distance: the length of the shortest path to the goal
    through the free space of the maze, so a robot is rewarded for progress along the route.

    The simulator is C++17 (`cpp/`), float32 like the reference. Each simulator step: the
    motor model sets target angular velocity (turn - 0.5)·6 degrees and target speed
    (speed - 0.5)·6 units, each changing by at most 0.2 per step and clamped to [-3, 3];
    the robot moves along its heading from before the turn, the heading is wrapped once into
    [0, 360]; a move that would bring the robot's centre closer than 8 to a wall is blocked
    (the robot stays put). Coordinates are screen coordinates (x right, y down), so positive
    angles turn clockwise on screen.

    ## Action Space

    `Box(0, 1, (2,), float32)`: (turn, speed). 0.5 means no turn / standstill; turn 1 turns
    clockwise at full rate, speed 1 drives forward at full speed, speed 0 backwards. Each
    action is held for `frame_skip` simulator steps. Out-of-bound values are clipped to
    [0, 1]; NaN and infinity are refused with a ValueError.

    ## Observation Space

    `Box(0, 1, (11,), float32)`:

    | Num  | Observation                                                         | Min | Max |
    |------|---------------------------------------------------------------------|-----|-----|
    | 0    | bias, always 1                                                      | 1   | 1   |
    | 1-6  | rangefinders at -90 (left), -45, 0 (ahead), 45, 90 (right), -180    | 0   | 1   |
    |      | degrees from the heading: distance to the nearest wall / 100        |     |     |
    |      | (1: no wall within 100)                                             |     |     |
    | 7-10 | goal radar: 1 if the goal's bearing lies in the slice front         | 0   | 1   |
    |      | [-45, 45), right [45, 135), rear [135, 225), left [225, 315)        |     |     |
    |      | degrees, else 0                                                     |     |     |

    ## Rewards

    0 until the last step; then minus the breadcrumb distance of the final position to the
    goal (`reward="breadcrumb"`, default) or minus its straight-line distance
    (`reward="euclidean"`). The breadcrumb distance is the number of 4-connected grid steps
    from the position's nearest integer grid point to the goal's, through grid points where
    the robot fits (no wall closer than 8), computed once per maze by a BFS in C++; grid
    points where the robot does not fit take the value of the nearest reachable point plus
    the grid steps to it, and positions outside the grid are clamped into it. It is 0 at the
    goal and 581 at the hard maze's start.

    ## Starting State

    The maze file's start position and heading ((36, 184), facing east, in the hard maze),
    at rest. There is no randomness in this environment.

    ## Episode End

    After the maze file's number of simulator steps (400): 134 env steps with
    `frame_skip=3`, the last one holding the action for the one simulator step left. The
    episode ends with `truncated=True` (a time limit; the env counts the steps itself);
    `terminated` is always False. Reaching the goal does not end the episode. A step after
    the end warns and returns the last observation again with reward 0.

    ## Information

    Every `reset` and `step` returns `position` (x, y) as a float64 array, `heading` in
    degrees, `solved` (whether the robot has ever been within 10 of the goal this episode,
    the paper's success criterion), `breadcrumb_distance` and `euclidean_distance` (of the
    current position to the goal).

    ## Arguments

    ```python
    gym.make("smevo/BreadcrumbHardMaze-v0", frame_skip=3, reward="breadcrumb", maze_file=None)
    gym.make_vec("smevo/BreadcrumbHardMaze-v0", num_envs=256)  # the C++ vector env
    ```

    * `frame_skip`: simulator steps per env step (default 3, as in the paper's runs).
    * `reward`: "breadcrumb" (default) or "euclidean".
    * `maze_file`: a maze in the reference text format (see `parse_maze`); None (default)
      is the hard maze shipped as `smevo_envs/data/hard_maze.txt`.

    The registered `reward_threshold` is -9: a final breadcrumb (or Euclidean) distance of at
    most 9 puts the robot within 9 + 0.71 < 10 of the goal, i.e. solved.

    ## Version History

    * v0: initial version.

    ## Example

    >>> import gymnasium as gym
    >>> import smevo_envs
    >>> env = gym.make("smevo/BreadcrumbHardMaze-v0")
    >>> observation, info = env.reset(seed=0)
    >>> observation.shape, info["position"].tolist(), info["breadcrumb_distance"]
    ((11,), [36.0, 184.0], 581.0)
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["human", "rgb_array"], "render_fps": 30}
    # The twin steps the same C++ core; no start is random; C++ also plays whole rollouts.
    capabilities: ClassVar[EnvCapabilities] = EnvCapabilities(
        vector_seeding="deterministic", native_rollout="maze",
        end_reward="minus the final distance to the goal, after the maze file's number of steps",
    )

    def __init__(
        self,
        render_mode: str | None = None,
        *,
        frame_skip: int = 3,
        reward: str = "breadcrumb",
        maze_file: str | os.PathLike[str] | None = None,
    ):
        self.render_mode = checked_render_mode(render_mode, self.metadata)
        self.frame_skip, self.reward = _checked_settings(frame_skip, reward)
        self.maze_file = maze_file
        self.maze, core = _load(maze_file)
        self.observation_space = _observation_space()
        self.action_space = _action_space()

        self._robots = _maze.Robots(core, 1)
        self._started = False
        self._running = False  # started, and the episode has not ended
        self._trail: list[tuple[float, float]] = []
        self._renderer: Any = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        checked_options(options, ())
        self._robots.reset()
        self._started = self._running = True
        status = self._robots.status()
        self._trail = [tuple(status["position"][0])] if self.render_mode else []
        if self.render_mode == "human":
            self.render()
        return self._robots.observations()[0], _info(status, 0)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        action = checked_box_action(action, self.action_space)
        if not self._running:
            return step_after_the_end(self._robots.observations()[0], False, truncated=True)
        self._robots.step(action.reshape(1, -1), self.frame_skip)
        status = self._robots.status()
        truncated = bool(status["done"][0])
        reward = 0.0 - float(status[f"{self.reward}_distance"][0]) if truncated else 0.0
        self._running = not truncated
        if self.render_mode:
            self._trail.append(tuple(status["position"][0]))
        if self.render_mode == "human":
            self.render()
        return self._robots.observations()[0], reward, False, truncated, _info(status, 0)

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='rgb_array' or "
                "'human' to gym.make"
            )
            return None
        if self._renderer is None:
            from smevo_envs._maze_render import MazeRenderer

            self._renderer = MazeRenderer(self.maze, self.render_mode, self.metadata["render_fps"])
        state = self._robots.get_state()
        return self._renderer.render(
            positions=state["position"].astype(np.float64),
            headings=state["heading"].astype(np.float64),
            observations=self._robots.observations(),
            trails=[self._trail],
        )

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _info(status: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    """One robot's info dict from a `Robots.status()` dict."""
    return {
        "position": status["position"][i].copy(),
        "heading": float(status["heading"][i]),
        "solved": bool(status["solved"][i]),
        "breadcrumb_distance": float(status["breadcrumb_distance"][i]),
        "euclidean_distance": float(status["euclidean_distance"][i]),
    }


_INFO_KEYS = ("position", "heading", "solved", "breadcrumb_distance", "euclidean_distance")


class BreadcrumbHardMazeVectorEnv(_PicklesRobotState, VectorEnv):
    """`num_envs` hard-maze robots stepped together in one C++ call, without the GIL.

    The same task as `BreadcrumbHardMazeEnv` (see its docstring), batched: observations
    (num_envs, 11) float32, actions (num_envs, 2) float32 in [0, 1] (clipped), rewards float64,
    `terminated` always False, `truncated` True at the end of an episode. Infos are batched
    the way `SyncVectorEnv` batches the single env's: every key as an array over robots
    (`position` (num_envs, 2) float64, `heading`, `breadcrumb_distance`,
    `euclidean_distance` float64, `solved` bool) plus a boolean mask `_key` saying which
    robots the value is for; unset entries are zeros.

    Autoreset: `AutoresetMode.NEXT_STEP`. A robot whose episode ended on one step is reset
    on the next `step()`, which ignores its action and returns its first observation with
    reward 0 and `terminated = truncated = False`. All robots share the fixed horizon, so a
    batch started together ends together and the next step resets all of it.
    `reset(options={"reset_mask": mask})` resets only the robots selected by the bool mask.

    Created by `gym.make_vec("smevo/BreadcrumbHardMaze-v0", num_envs=N)` (the registered
    `vector_entry_point`) with the single env's keyword arguments. `render_mode="rgb_array"`
    draws every robot in one frame. Picklable, like the single env.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array"],
        "render_fps": 30,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        render_mode: str | None = None,
        *,
        frame_skip: int = 3,
        reward: str = "breadcrumb",
        maze_file: str | os.PathLike[str] | None = None,
    ):
        self.num_envs = checked_int(num_envs, "num_envs", 1, 2**24)
        self.render_mode = checked_render_mode(render_mode, self.metadata)
        self.frame_skip, self.reward = _checked_settings(frame_skip, reward)
        self.maze_file = maze_file
        self.maze, core = _load(maze_file)

        self.single_observation_space = _observation_space()
        self.single_action_space = _action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        self._robots = _maze.Robots(core, self.num_envs)
        self._running = False
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)
        self._trails: list[np.ndarray] = []
        self._renderer: Any = None

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        # The maze holds no randomness: seeds are checked like every vector env's, and the
        # first seeds `np_random` (which nothing here draws from).
        super().reset(seed=checked_seeds(seed, self.num_envs)[0])
        options = checked_options(options, ("reset_mask",))
        mask = options.get("reset_mask")
        if mask is None:
            mask = np.ones(self.num_envs, dtype=np.bool_)
        elif not (
            isinstance(mask, np.ndarray)
            and mask.dtype == np.bool_
            and mask.shape == (self.num_envs,)
        ):
            raise ValueError(
                f"options['reset_mask'] must be a bool numpy array of shape ({self.num_envs},),"
                f" got {mask!r}"
            )
        self._robots.reset(mask)
        self._autoreset[mask] = False
        self._running = True
        status = self._robots.status()
        if self.render_mode:
            self._trails = [status["position"]]
        return self._robots.observations(), self._vector_info(status, mask)

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._running:
            raise gym.error.ResetNeeded("call reset() before step()")
        actions = checked_box_action(actions, self.action_space, what="actions")
        resetting = self._autoreset.copy()
        self._robots.step(actions, self.frame_skip, resetting)  # one C++ call, GIL released
        status = self._robots.status()
        truncated = status["done"] & ~resetting
        rewards = np.where(truncated, 0.0 - status[f"{self.reward}_distance"], 0.0)
        terminated = np.zeros(self.num_envs, dtype=np.bool_)
        self._autoreset = truncated.copy()
        if self.render_mode:
            if resetting.any():  # trails restart when any robot does
                self._trails = []
            self._trails.append(status["position"])
        info = self._vector_info(status, np.ones(self.num_envs, dtype=np.bool_))
        return self._robots.observations(), rewards, terminated, truncated, info

    def _vector_info(self, status: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, Any]:
        info: dict[str, Any] = {}
        for key in _INFO_KEYS:
            values = status[key].copy()
            values[~mask] = 0
            info[key] = values
            info[f"_{key}"] = mask.copy()
        return info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        if self._renderer is None:
            from smevo_envs._maze_render import MazeRenderer

            self._renderer = MazeRenderer(self.maze, self.render_mode, self.metadata["render_fps"])
        state = self._robots.get_state()
        trails = np.stack(self._trails, axis=1) if self._trails else None
        return self._renderer.render(
            positions=state["position"].astype(np.float64),
            headings=state["heading"].astype(np.float64),
            observations=self._robots.observations(),
            trails=list(trails) if trails is not None else [],
        )

    def close_extras(self, **kwargs: Any) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
