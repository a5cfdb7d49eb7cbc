"""Pools of sub-environments stepped in lockstep: one per episode of every individual in a group.

Which pool an env gets depends only on the env id, never on the backend, so every backend runs
the same environment code. Envs with an exactly seedable native vector implementation (the C++
hard maze, Gymnasium's CartPole, the grid maze, recurrent parity) step all sub-envs in one
call; any other env is a list of single envs stepped in a loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from smevo.envs import make_env

StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Options = Sequence[dict | None]
"""Each sub-env's reset options (the trainer's only one: `{"index": e}` for episode e)."""


class EnvPool(Protocol):
    """`n` sub-envs; `solved` is each sub-env's `info["solved"]` (False where absent)."""

    def reset(self, seeds: Sequence[int], options: Options) -> np.ndarray: ...

    def step(self, actions: np.ndarray, active: np.ndarray) -> StepResult: ...

    def close(self) -> None: ...


class SingleEnvPool:
    """Any Gymnasium env: a list of single envs, grown on demand and reused across groups.
    `trust_env_code` is passed on to `make_env`."""

    def __init__(self, env_id: str, kwargs: dict[str, Any], trust_env_code: bool = False) -> None:
        self.env_id, self.kwargs, self.trust_env_code = env_id, kwargs, trust_env_code
        self.envs: list[gym.Env] = []
        self.n = 0

    def reset(self, seeds: Sequence[int], options: Options) -> np.ndarray:
        self.n = len(seeds)
        while len(self.envs) < self.n:
            self.envs.append(make_env(self.env_id, self.kwargs,
                                      trust_env_code=self.trust_env_code))
        first = np.stack([
            env.reset(seed=seed, options=option)[0]
            for env, seed, option in zip(self.envs, seeds, options, strict=False)
        ])
        self._blank = np.zeros_like(first)
        return first

    def step(self, actions: np.ndarray, active: np.ndarray) -> StepResult:
        """Step the active sub-envs; an inactive one's observation row is zeros (the caller
        ignores it) and its reward, flags and `solved` are 0/False."""
        obs = self._blank.copy()
        rewards = np.zeros(self.n)
        terminated, truncated, solved = (np.zeros(self.n, dtype=bool) for _ in range(3))
        for i in np.flatnonzero(active).tolist():
            obs[i], rewards[i], terminated[i], truncated[i], info = self.envs[i].step(actions[i])
            if info:
                solved[i] = bool(info.get("solved", False))
        return obs, rewards, terminated, truncated, solved

    def close(self) -> None:
        for env in self.envs:
            env.close()


def cartpole_start_states(seeds: Sequence[int]) -> np.ndarray:
    """`[n, 4]` float64: the state a single `CartPole-v1` reset with each seed draws."""
    return np.stack([seeding.np_random(int(s))[0].uniform(-0.05, 0.05, size=(4,))
                     for s in seeds])


def _seed_cartpole(env: gym.vector.VectorEnv, seeds: Sequence[int], options: Options
                   ) -> np.ndarray:
    """CartPole's vector env seeds one generator for all sub-envs; give each sub-env the start
    state a single `CartPole-v1` reset with its own seed would draw."""
    env.reset(seed=int(seeds[0]))
    unwrapped = env.unwrapped
    unwrapped.state = cartpole_start_states(seeds).T.copy()
    return unwrapped.state.T.astype(np.float32)


def _seed_deterministic(env: gym.vector.VectorEnv, seeds: Sequence[int], options: Options
                        ) -> np.ndarray:
    """Envs without randomness in reset (the hard maze): one reset serves every seed."""
    return env.reset(seed=int(seeds[0]))[0]


def _seed_per_env(env: gym.vector.VectorEnv, seeds: Sequence[int], options: Options
                  ) -> np.ndarray:
    """Vector envs that take one seed per sub-env (the grid maze, parity) and then behave
    exactly like single envs reset with those seeds; an `index` option (parity's sequence)
    is passed on as one index per sub-env."""
    indexed = {"index": [option["index"] for option in options]} if any(options) else None
    return env.reset(seed=[int(s) for s in seeds], options=indexed)[0]


#: Native vector envs whose every sub-env can be seeded exactly like the single env.
NATIVE_VECTOR_SEEDERS: dict[str, Callable[[gym.vector.VectorEnv, Sequence[int], Options],
                                          np.ndarray]] = {
    "CartPole-v1": _seed_cartpole,
    "smevo/BreadcrumbHardMaze-v0": _seed_deterministic,
    "smevo/GridMaze-v0": _seed_per_env,
    "smevo/RecurrentParity-v0": _seed_per_env,
}
INDEXED_VECTOR_ENVS = frozenset({"smevo/RecurrentParity-v0"})
"""The native vector envs that take the per-episode `index` option (`env.index_episodes`)."""


class NativeVectorPool:
    """A registered native vector env (one C++/numpy call steps every sub-env)."""

    def __init__(self, env_id: str, kwargs: dict[str, Any]) -> None:
        self.env_id, self.kwargs = env_id, kwargs
        self.env: gym.vector.VectorEnv | None = None
        self.seeder = NATIVE_VECTOR_SEEDERS[env_id]

    def reset(self, seeds: Sequence[int], options: Options) -> np.ndarray:
        if self.env is None or self.env.num_envs != len(seeds):
            if self.env is not None:
                self.env.close()
            self.env = gym.make_vec(self.env_id, num_envs=len(seeds),
                                    vectorization_mode="vector_entry_point", **self.kwargs)
        return self.seeder(self.env, seeds, options)

    def step(self, actions: np.ndarray, active: np.ndarray) -> StepResult:
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        solved = np.asarray(info.get("solved", np.zeros(len(actions), dtype=bool)), dtype=bool)
        return obs, np.asarray(rewards, dtype=np.float64), terminated, truncated, solved

    def close(self) -> None:
        if self.env is not None:
            self.env.close()


def make_env_pool(
    env_id: str, kwargs: dict[str, Any], index_episodes: bool, *, trust_env_code: bool = False
) -> EnvPool:
    """The pool for an env id: native where exact (registered ids, naming no code), single
    envs otherwise (made with `trust_env_code`, see `smevo.envs.make_env`)."""
    if env_id in NATIVE_VECTOR_SEEDERS and (not index_episodes or env_id in INDEXED_VECTOR_ENVS):
        return NativeVectorPool(env_id, kwargs)
    return SingleEnvPool(env_id, kwargs, trust_env_code)
