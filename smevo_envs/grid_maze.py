"""Backpropamine's meta-learning grid maze: a Gymnasium env and its NumPy-batched vector twin.

Both envs run the same batched core (`GridMazeCore`); the single env is a batch of one.
Randomness is drawn per maze from that maze's own generator, in the same order in both, so
a vector env reset with seeds s_i steps every maze exactly like a single env reset with s_i.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from smevo_envs._core_vector import CoreVectorEnv
from smevo_envs._drawing import AGENT, FREE, GOAL, WALL, RendersCells
from smevo_envs._validation import (
    checked_discrete_action,
    checked_int,
    checked_options,
    checked_render_mode,
    step_after_the_end,
)
from smevo_envs.capabilities import EnvCapabilities

OBSERVATION_SIZE = 17
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])  # up (row - 1), down, left, right
_NEIGHBOURHOOD = np.array([(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)])
_PREVIOUS_REWARD = 12
_PREVIOUS_ACTION = 13


def maze_walls(size: int) -> np.ndarray:
    """The `size` x `size` layout, True = wall: the border, and a pillar at every interior
    cell with even row and column, except the centre, which is always free."""
    rows, cols = np.indices((size, size))
    walls = (rows % 2 == 0) & (cols % 2 == 0)
    walls[[0, -1], :] = walls[:, [0, -1]] = True
    walls[size // 2, size // 2] = False
    return walls


def _checked_settings(size: Any, episode_length: Any, reward: Any, wall_penalty: Any) -> None:
    checked_int(size, "size", 5, 1001)
    if size % 2 == 0:
        raise ValueError(f"size must be odd, got {size}")
    checked_int(episode_length, "episode_length", 1)
    for name, value in (("reward", reward), ("wall_penalty", wall_penalty)):
        if not (isinstance(value, int | float) and 0 <= value < 1e30):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


class GridMazeCore:
    """`n` mazes of one layout as arrays: positions, goals, clocks, last reward and action.

    Every random draw of maze i uses the generator passed for it: the goal at a reset
    (uniform over free cells but the centre) and the teleport after a goal (uniform over
    free cells but the goal).
    """

    def __init__(
        self,
        n: int,
        size: int,
        episode_length: int,
        reward: float,
        wall_penalty: float,
        first_action_quirk: bool,
    ) -> None:
        self.walls = maze_walls(size)
        self.free = np.argwhere(~self.walls)
        centre = np.array([size // 2, size // 2])
        self.centre = centre
        self.goals = self.free[np.any(self.free != centre, axis=1)]
        self.episode_length = episode_length
        self.reward, self.wall_penalty = float(reward), float(wall_penalty)
        self.first_action_quirk = first_action_quirk
        self.position = np.tile(centre, (n, 1))
        self.goal = np.tile(self.goals[0], (n, 1))
        self.steps = np.zeros(n, dtype=np.int64)
        self.previous_reward = np.zeros(n)
        self.previous_action = np.full(n, -1)

    def reset(self, i: int, rng: np.random.Generator) -> None:
        """Start maze i's episode: a new goal, the agent at the centre."""
        self.goal[i] = self.goals[rng.integers(len(self.goals))]
        self.position[i] = self.centre
        self.steps[i] = 0
        self.previous_reward[i] = 0.0
        # The reference feeds "previous action 0" at step 0; by default nothing is shown.
        self.previous_action[i] = 0 if self.first_action_quirk else -1

    def step(
        self, actions: np.ndarray, active: np.ndarray, rngs: Sequence[np.random.Generator]
    ) -> np.ndarray:
        """Move the `active` mazes by `actions`; returns their rewards (0 elsewhere)."""
        target = self.position + MOVES[actions]
        blocked = self.walls[target[:, 0], target[:, 1]]
        moved = active & ~blocked
        self.position[moved] = target[moved]
        rewards = np.where(active & blocked, -self.wall_penalty, 0.0)
        found = active & np.all(self.position == self.goal, axis=1)
        rewards[found] += self.reward
        for i in np.flatnonzero(found):
            goal_index = np.flatnonzero(np.all(self.free == self.goal[i], axis=1))[0]
            k = rngs[i].integers(len(self.free) - 1)
            self.position[i] = self.free[k + (k >= goal_index)]
        self.steps[active] += 1
        self.previous_reward[active] = rewards[active]
        self.previous_action[active] = actions[active]
        return rewards

    def observations(self) -> np.ndarray:
        """The `[n, 17]` float32 observations (see `GridMazeEnv`)."""
        n = len(self.steps)
        cells = self.position[:, None, :] + _NEIGHBOURHOOD[None]
        obs = np.zeros((n, OBSERVATION_SIZE), dtype=np.float32)
        obs[:, :9] = self.walls[cells[..., 0], cells[..., 1]]
        obs[:, 10] = 1.0
        obs[:, 11] = self.steps / self.episode_length
        obs[:, _PREVIOUS_REWARD] = self.previous_reward
        shown = self.previous_action >= 0
        obs[np.flatnonzero(shown), _PREVIOUS_ACTION + self.previous_action[shown]] = 1.0
        return obs

    def info(self, i: int) -> dict[str, Any]:
        return {"position": self.position[i].copy(), "goal": self.goal[i].copy()}


def _observation_space(reward: float, wall_penalty: float) -> spaces.Box:
    low = np.zeros(OBSERVATION_SIZE, dtype=np.float32)
    high = np.ones(OBSERVATION_SIZE, dtype=np.float32)
    low[_PREVIOUS_REWARD] = -wall_penalty
    high[_PREVIOUS_REWARD] = max(reward, 1.0)
    return spaces.Box(low, high, dtype=np.float32)


class GridMazeEnv(RendersCells, gym.Env[np.ndarray, np.int64]):
    """Find an invisible goal in a grid maze, then return to it again and again.

    ## Description

    The maze task of Miconi et al., *Backpropamine* (ICLR 2019), `simplemaze/maze.py`. A
    `size` x `size` grid (odd size; 9, 11 or 13 in the papers) has a wall border and a pillar
    at every cell with even row and column (the centre is always free): 41 / 65 / 97 free
    cells for size 9 / 11 / 13. Each episode hides a goal in a random free cell (never the
    centre); the agent starts at the centre and sees only the walls around it. Reaching the
    goal earns `reward` and teleports the agent to a random free cell, so an agent that
    remembers where the goal was can collect it many times: the task rewards learning
    within the episode (meta-learning).

    ## Action Space

    `Discrete(4)`: 0 up (row - 1), 1 down, 2 left (column - 1), 3 right. A move into a wall
    or pillar leaves the agent in place.

    ## Observation Space

    `Box(17,)` float32:

    | Num   | Observation                                                   | Min  | Max    |
    |-------|---------------------------------------------------------------|------|--------|
    | 0-8   | the 3x3 cells around the agent, row-major: 1 wall, 0 free      | 0    | 1      |
    |       | (the centre, index 4, is always 0; the goal is never visible) |      |        |
    | 9     | unused, always 0                                              | 0    | 0      |
    | 10    | bias, always 1                                                | 1    | 1      |
    | 11    | steps so far / episode_length                                 | 0    | 1      |
    | 12    | the reward of the previous step (raw: 0, `reward` or          | -wp  | reward |
    |       | -`wall_penalty`)                                              |      |        |
    | 13-16 | one-hot of the previous action (all 0 before the first        | 0    | 1      |
    |       | action, or action 0 with `first_action_quirk`)                |      |        |

    ## Rewards

    `reward` (10) when a move lands on the goal; `-wall_penalty` (0) when a move is blocked;
    0 otherwise. Reference levels over 300 episodes of 200 steps: a uniform random policy
    collects about 13.9 / 7.6 / 5.5 for size 9 / 11 / 13, an agent that knows the goal and
    walks shortest paths about 408 / 325 / 272.

    ## Starting State

    The agent at the centre; the goal uniform over the other free cells, drawn from
    `self.np_random`. After each goal the agent is teleported to a free cell drawn uniformly
    from all but the goal (the centre included).

    ## Episode End

    After `episode_length` (200) steps the episode is truncated (`truncated=True`; the env
    counts the steps itself). `terminated` is always False. A step after the end warns and
    returns the last observation again with reward 0.

    ## Information

    `reset` and `step` return `position` and `goal` as (row, column) int arrays.

    ## Rendering

    `render_mode="rgb_array"`: the grid seen from above, walls dark, the goal green, the
    agent blue.

    ## Arguments

    ```python
    gym.make("smevo/GridMaze-v0", size=11, episode_length=200, reward=10.0,
             wall_penalty=0.0, first_action_quirk=False)
    gym.make_vec("smevo/GridMaze-v0", num_envs=30)  # the NumPy-batched vector env
    ```

    * `size`: odd side length, >= 5 (default 11, `simplemaze`'s; the papers' runs used 13).
    * `episode_length`: steps per episode (200; the ICML version used 250).
    * `reward`: reward of a goal (10). `wall_penalty`: cost of a blocked move (0; the
      ICML version used 0.1).
    * `first_action_quirk`: show previous action 0 at step 0, as the reference code did.

    The registered `reward_threshold` is 250, about three quarters of what a goal-knowing
    agent collects at size 11.

    ## Version History

    * v0: initial version.

    ## Example

    >>> import gymnasium as gym
    >>> import smevo_envs
    >>> env = gym.make("smevo/GridMaze-v0")
    >>> observation, info = env.reset(seed=0)
    >>> observation[:9].tolist(), info["position"].tolist()
    ([1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0], [5, 5])
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}
    capabilities: ClassVar[EnvCapabilities] = EnvCapabilities(vector_seeding="per_env")

    def __init__(
        self,
        render_mode: str | None = None,
        *,
        size: int = 11,
        episode_length: int = 200,
        reward: float = 10.0,
        wall_penalty: float = 0.0,
        first_action_quirk: bool = False,
    ):
        self.render_mode = checked_render_mode(render_mode, self.metadata)
        _checked_settings(size, episode_length, reward, wall_penalty)
        self.size, self.episode_length = size, episode_length
        self.observation_space = _observation_space(reward, wall_penalty)
        self.action_space = spaces.Discrete(4)
        self._core = GridMazeCore(1, size, episode_length, reward, wall_penalty,
                                  first_action_quirk)
        self._started = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        checked_options(options, ())
        self._core.reset(0, self.np_random)
        self._started = True
        return self._core.observations()[0], self._core.info(0)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        action = checked_discrete_action(action, self.action_space)
        if self._core.steps[0] >= self.episode_length:
            return step_after_the_end(self._core.observations()[0], False, truncated=True)
        rewards = self._core.step(np.array([action]), np.ones(1, dtype=bool), [self.np_random])
        truncated = bool(self._core.steps[0] >= self.episode_length)
        observation, info = self._core.observations()[0], self._core.info(0)
        return observation, float(rewards[0]), False, truncated, info

    def _cells(self) -> list[np.ndarray]:
        wall, free = np.array(WALL, np.uint8), np.array(FREE, np.uint8)
        cells = np.where(self._core.walls[..., None], wall, free)
        if self._started:
            cells[tuple(self._core.goal[0])] = GOAL
            cells[tuple(self._core.position[0])] = AGENT
        return [cells]


class GridMazeVectorEnv(CoreVectorEnv):
    """`num_envs` grid mazes stepped together with NumPy, each with its own generator.

    The same task as `GridMazeEnv` (see its docstring), batched: observations
    (num_envs, 17) float32, actions (num_envs,) integers in [0, 4), rewards float64,
    `terminated` always False. Infos batch the single env's (`position`, `goal`
    (num_envs, 2)) with the all-True masks `_position`, `_goal`.

    Seeding: `reset(seed=s)` gives maze i the seed s + i; `reset(seed=[s_0, ...])` one seed
    per maze. Either way maze i then behaves exactly like a single env reset with its seed
    (same goals, same teleports, same observations for the same actions).

    Autoreset: `AutoresetMode.NEXT_STEP`. A maze whose episode ended on one step is reset
    on the next `step()`, which ignores its action and returns its first observation with
    reward 0 and `terminated = truncated = False`.

    Created by `gym.make_vec("smevo/GridMaze-v0", num_envs=N)` (the registered
    `vector_entry_point`) with the single env's keyword arguments.
    """

    def __init__(
        self,
        num_envs: int = 1,
        render_mode: str | None = None,
        *,
        size: int = 11,
        episode_length: int = 200,
        reward: float = 10.0,
        wall_penalty: float = 0.0,
        first_action_quirk: bool = False,
    ):
        _checked_settings(size, episode_length, reward, wall_penalty)
        self.size, self.episode_length = size, episode_length
        self._setup(
            num_envs, render_mode, _observation_space(reward, wall_penalty), 4,
            lambda n: GridMazeCore(n, size, episode_length, reward, wall_penalty,
                                   first_action_quirk),
        )

    def _episode_over(self) -> np.ndarray:
        return self._core.steps >= self.episode_length

    def _rewards_and_info(
        self, outcome: np.ndarray, stepped: np.ndarray
    ) -> tuple[np.ndarray, dict[str, Any]]:
        return outcome, self._reset_info()  # where each maze stands, as at reset

    def _reset_info(self) -> dict[str, Any]:
        every = np.ones(self.num_envs, dtype=np.bool_)
        return {
            "position": self._core.position.copy(),
            "_position": every,
            "goal": self._core.goal.copy(),
            "_goal": every.copy(),
        }
