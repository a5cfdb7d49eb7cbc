"""Pools of sub-environments stepped in lockstep: one per episode of every individual in a group.

Which pool an env gets depends only on the env id (what its class declares, see
`capabilities.py`), never on the backend, so every backend runs the same environment code. An
env whose class declares a vector twin that is seeded exactly like single envs (the C++ hard
maze, the grid maze, cue/reward, recurrent parity; Gymnasium's CartPole-v1, declared here on
its behalf) steps all sub-envs in one call; any other env is a list of single envs stepped in
a loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from smevo._registry import unknown_name_message
from smevo.evaluation.capabilities import env_capabilities, make_episode_env

StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Options = Sequence[dict | None]
"""Each sub-env's reset options (the trainer's only one: `{"index": e}` for episode e)."""


class EnvPool(Protocol):
    """`n` sub-envs; `solved` is each sub-env's `info["solved"]` (False where absent).
    `resets_sub_envs`: whether `reset_sub_envs` can start new episodes in some sub-envs while
    the others run on (a lockstep lane taking the next genome)."""

    resets_sub_envs: bool

    def reset(self, seeds: Sequence[int], options: Options) -> np.ndarray: ...

    def step(self, actions: np.ndarray, active: np.ndarray) -> StepResult: ...

    def close(self) -> None: ...


class SingleEnvPool:
    """Any Gymnasium env: a list of single envs, grown on demand and reused across groups
    (made anew for every episode where the env's reset keeps state, `make_episode_env`).
    `trust_env_code` is passed on to `make_env`."""

    resets_sub_envs = True

    def __init__(self, env_id: str, kwargs: dict[str, Any], trust_env_code: bool = False) -> None:
        self.env_id, self.kwargs, self.trust_env_code = env_id, kwargs, trust_env_code
        self.envs: list[gym.Env] = []
        self.n = 0

    def reset(self, seeds: Sequence[int], options: Options) -> np.ndarray:
        self.n = len(seeds)
        while len(self.envs) < self.n:
            self.envs.append(make_episode_env(self.env_id, self.kwargs,
                                              trust_env_code=self.trust_env_code))
        first = np.stack([
            env.reset(seed=seed, options=option)[0]
            for env, seed, option in zip(self.envs, seeds, options, strict=False)
        ])
        self._blank = np.zeros_like(first)
        return first

    def reset_sub_envs(self, indices: Sequence[int], seeds: Sequence[int], options: Options
                       ) -> np.ndarray:
        """Start new episodes in the sub-envs `indices` only; their first observations."""
        return np.stack([
            self.envs[i].reset(seed=seed, options=option)[0]
            for i, seed, option in zip(indices, seeds, options, strict=True)
        ])

    def step(self, actions: np.ndarray, active: np.ndarray) -> StepResult:
        """Step the active sub-envs; an inactive one's observation row is zeros (the caller
        ignores it) and its reward, flags and `solved` are 0/False."""
        obs = self._blank.copy()
        rewards = np.zeros(self.n)
        terminated, truncated, solved = np.zeros((3, self.n), dtype=bool)
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
    """Envs declared `"deterministic"`, without randomness in reset (the hard maze): one reset
    serves every seed."""
    return env.reset(seed=int(seeds[0]))[0]


def _seed_per_env(env: gym.vector.VectorEnv, seeds: Sequence[int], options: Options
                  ) -> np.ndarray:
    """Vector envs declared `"per_env"` (the grid maze, cue/reward, parity) take one seed per
    sub-env and then behave exactly like single envs reset with those seeds; an `index`
    option (parity's sequence) is passed on as one index per sub-env."""
    indexed = {"index": [option["index"] for option in options]} if any(options) else None
    return env.reset(seed=[int(s) for s in seeds], options=indexed)[0]


Seeder = Callable[[gym.vector.VectorEnv, Sequence[int], Options], np.ndarray]

VECTOR_SEEDERS: dict[str, Seeder] = {
    "per_env": _seed_per_env,
    "deterministic": _seed_deterministic,
    "cartpole": _seed_cartpole,
}
"""How to reset a vector twin as single envs with these seeds would be, by the
`EnvCapabilities.vector_seeding` its env class declares."""


def vector_seeder(env_id: str) -> Seeder | None:
    """The seeder for the vector twin that `env_id`'s class declares, or None if it declares
    none; a kind of seeding this module does not know is a `ValueError`, never ignored."""
    seeding = env_capabilities(env_id).vector_seeding
    if seeding is None:
        return None
    if seeding not in VECTOR_SEEDERS:
        raise ValueError(f"env {env_id!r}: " + unknown_name_message(
            "vector seeding", seeding, list(VECTOR_SEEDERS)))
    return VECTOR_SEEDERS[seeding]


class NativeVectorPool:
    """A registered native vector env (one C++/numpy call steps every sub-env), seeded as its
    env class declares (`vector_seeder`). A vector env resets all its sub-envs at once, so
    lanes are not refilled here: claims are taken a whole group at a time."""

    resets_sub_envs = False

    def __init__(self, env_id: str, kwargs: dict[str, Any], seeder: Seeder) -> None:
        self.env_id, self.kwargs, self.seeder = env_id, kwargs, seeder
        self.env: gym.vector.VectorEnv | None = None

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
    """The pool for an env id: its vector twin where the env class declares one seeded exactly
    like single envs (and taking indexed episodes, if `index_episodes`), made by the registered
    id alone so that nothing the id names is imported; single envs otherwise (made with
    `trust_env_code`, see `smevo.envs.make_env`)."""
    seeder = vector_seeder(env_id)
    if seeder is not None and (not index_episodes or env_capabilities(env_id).indexed_episodes):
        return NativeVectorPool(env_id.rpartition(":")[2], kwargs, seeder)
    return SingleEnvPool(env_id, kwargs, trust_env_code)
