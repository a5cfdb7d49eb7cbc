"""The vector env of a task whose episodes a batched NumPy core steps together.

GridMaze and CueReward each keep their whole batch in one core object (``reset(i, rng)`` one
sub-env, ``step(actions, active, rngs)`` the active ones, ``observations()`` all of them),
which their single env drives with a batch of one. What is left for the vector env is the
same for every such task: one generator per sub-env seeded as a single env would be,
discrete actions checked, fixed-length episodes truncated, and Gymnasium's ``NEXT_STEP``
autoreset. `CoreVectorEnv` does that once; a task adds its spaces and its infos.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from smevo_envs._validation import (
    checked_discrete_actions,
    checked_int,
    checked_options,
    checked_render_mode,
    sub_env_generators,
)

__all__ = ["BatchedCore", "CoreVectorEnv"]


class BatchedCore(Protocol):
    """What `CoreVectorEnv` needs of a task's batched core."""

    def reset(self, i: int, rng: np.random.Generator) -> None: ...

    def step(
        self, actions: np.ndarray, active: np.ndarray, rngs: Sequence[np.random.Generator]
    ) -> Any: ...

    def observations(self) -> np.ndarray: ...


class CoreVectorEnv(VectorEnv, abc.ABC):
    """`num_envs` episodes of one task stepped by its batched core (see the module docstring).

    A subclass calls `_setup` from its ``__init__`` and says when episodes end
    (`_episode_over`), what a step's outcome means (`_rewards_and_info`) and what `reset`
    reports (`_reset_info`). Episodes never terminate; they are truncated at their length.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": [],
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def _setup(
        self,
        num_envs: int,
        render_mode: str | None,
        observation_space: spaces.Space,
        n_actions: int,
        make_core: Callable[[int], BatchedCore],
    ) -> None:
        """Check the arguments common to every such env and make the core of `num_envs`."""
        self.num_envs = checked_int(num_envs, "num_envs", 1, 2**24)
        self.render_mode = checked_render_mode(render_mode, self.metadata)
        self.single_observation_space = observation_space
        self.single_action_space = spaces.Discrete(n_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._core = make_core(self.num_envs)
        self._rngs: Sequence[np.random.Generator] = []
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)

    @abc.abstractmethod
    def _episode_over(self) -> np.ndarray:
        """(num_envs,) bool: which sub-envs have played their episode's last step."""

    @abc.abstractmethod
    def _rewards_and_info(
        self, outcome: Any, stepped: np.ndarray
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """The rewards and infos of a step from the core's `outcome`; `stepped` masks the
        sub-envs that acted (the others were being reset)."""

    @abc.abstractmethod
    def _reset_info(self) -> dict[str, Any]:
        """The infos `reset` returns."""

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        checked_options(options, ())
        if seed is not None or not self._rngs:
            self._rngs = sub_env_generators(seed, self.num_envs)
        for i, rng in enumerate(self._rngs):
            self._core.reset(i, rng)
        self._autoreset[:] = False
        return self._core.observations(), self._reset_info()

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._rngs:
            raise gym.error.ResetNeeded("call reset() before step()")
        actions = checked_discrete_actions(actions, int(self.single_action_space.n),
                                           self.num_envs)
        resetting = self._autoreset.copy()
        outcome = self._core.step(actions, ~resetting, self._rngs)
        for i in np.flatnonzero(resetting):
            self._core.reset(i, self._rngs[i])
        truncated = ~resetting & self._episode_over()
        self._autoreset = truncated.copy()
        terminated = np.zeros(self.num_envs, dtype=np.bool_)
        rewards, info = self._rewards_and_info(outcome, ~resetting)
        return self._core.observations(), rewards, terminated, truncated, info
