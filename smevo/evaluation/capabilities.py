"""What the trainer may batch or fuse for an env id, asked of the env's class.

An env class declares its `EnvCapabilities` (a vector twin that steps exactly like single
envs and how its sub-envs are seeded, whether its episodes can be indexed, a fused native
rollout); `env_capabilities` reads them from the class that a registered id's entry
point names, without making the env. The env pool (`env_pool.py`) and the fused rollout
(`native.py`) ask this module, so an env added with a declared twin is batched with no edit
here. Gymnasium's own envs cannot declare anything; the one smevo knows is declared on its
behalf in `GYMNASIUM_CAPABILITIES`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from smevo.envs import FreshEnvEachEpisode, make_env
from smevo_envs.capabilities import EnvCapabilities

__all__ = ["GYMNASIUM_CAPABILITIES", "EnvCapabilities", "env_capabilities", "make_episode_env"]

_BOX2D_WORLD_KEPT = EnvCapabilities(reset_keeps_state=True)
"""BipedalWalker and CarRacing keep one Box2D world for all their episodes (LunarLander makes a
new one at reset): the order in which that world holds bodies and contacts, and so the physics,
then depends on earlier episodes (measured: the same seed and policy gave returns -0.70 and
-2.23 after different episodes)."""

GYMNASIUM_CAPABILITIES: dict[str, EnvCapabilities] = {
    "CartPole-v1": EnvCapabilities(vector_seeding="cartpole", native_rollout="cartpole"),
    "BipedalWalker-v3": _BOX2D_WORLD_KEPT,
    "BipedalWalkerHardcore-v3": _BOX2D_WORLD_KEPT,
    "CarRacing-v3": _BOX2D_WORLD_KEPT,
}
"""Gymnasium envs smevo knows, keyed by id rather than class: the id pins the spec (CartPole-v1's
500-step limit) that the `"cartpole"` seeder of `env_pool.py` and the C++ rollout reproduce."""

_NOTHING = EnvCapabilities()
"""What a class that declares nothing gets: single envs, stepped one by one."""


def env_capabilities(env_id: str) -> EnvCapabilities:
    """The capabilities declared for `env_id` (``EnvId`` or ``module:EnvId``).

    The id's registered spec names the class; its ``capabilities`` attribute, if it is an
    `EnvCapabilities`, is the answer. An id that is not registered (a ``module:factory``, a
    module not imported yet) and a class that declares nothing get `EnvCapabilities()`.
    Nothing the id names is imported: only a registered entry point's module, which making
    the env imports anyway (`smevo.envs.check_env_trust` decides whether it may be made).
    """
    name = env_id.rpartition(":")[2]
    if name in GYMNASIUM_CAPABILITIES:
        return GYMNASIUM_CAPABILITIES[name]
    spec = gym.registry.get(name)
    if spec is None or spec.entry_point is None:
        return _NOTHING
    entry = spec.entry_point
    env_class = load_env_creator(entry) if isinstance(entry, str) else entry
    declared = getattr(env_class, "capabilities", None)
    return declared if isinstance(declared, EnvCapabilities) else _NOTHING


def make_episode_env(
    env_id: str,
    kwargs: dict[str, Any] | None = None,
    render_mode: str | None = None,
    *,
    trust_env_code: bool = False,
) -> gym.Env:
    """`make_env`, for playing episodes: where the env's reset keeps state
    (`EnvCapabilities.reset_keeps_state`), every episode gets a newly made env, so that an
    episode depends on its seed alone and the trainer, `smevo eval` and every backend play
    it alike."""
    def make() -> gym.Env:
        return make_env(env_id, kwargs, render_mode, trust_env_code=trust_env_code)

    return FreshEnvEachEpisode(make) if env_capabilities(env_id).reset_keeps_state else make()
