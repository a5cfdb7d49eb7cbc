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

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from smevo_envs.capabilities import EnvCapabilities

__all__ = ["GYMNASIUM_CAPABILITIES", "EnvCapabilities", "env_capabilities"]

GYMNASIUM_CAPABILITIES: dict[str, EnvCapabilities] = {
    "CartPole-v1": EnvCapabilities(vector_seeding="cartpole", native_rollout="cartpole"),
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
