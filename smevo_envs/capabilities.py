"""What an env class declares about itself for trainers that batch or fuse its episodes.

An env class sets ``capabilities: ClassVar[EnvCapabilities] = EnvCapabilities(...)``; a trainer
reads it from the class a registered id's entry point names, without making the env, and so
learns from the env itself whether its registered vector twin (the spec's
`vector_entry_point`) can stand in for single envs and how to seed that twin's sub-envs,
whether its episodes can be indexed, and which fused native rollout plays the env. A class that
declares nothing gets `EnvCapabilities()`: single envs stepped one by one.

Plain data (Gymnasium and NumPy are the only dependencies of this package), so a third-party
env package can declare the same facts by importing this module.
"""

from __future__ import annotations

from dataclasses import dataclass

VECTOR_SEEDINGS = ("per_env", "deterministic")
"""The ways a vector twin's sub-envs can be seeded exactly like single envs:

- ``"per_env"``: ``reset(seed=[s_0, ...])`` makes sub-env i behave exactly like a single env
  reset with seed s_i (same starts, same randomness, same observations for the same actions);
- ``"deterministic"``: reset draws nothing at random, so one reset serves every seed.
"""


@dataclass(frozen=True)
class EnvCapabilities:
    """What trainers may do with an env class beyond making single envs (see the module)."""

    vector_seeding: str | None = None
    """How the registered vector twin seeds its sub-envs: one of `VECTOR_SEEDINGS` (a trainer
    may know further kinds for envs it declares on their behalf, such as Gymnasium's); None:
    no twin, or none that steps exactly like single envs."""
    indexed_episodes: bool = False
    """Whether episodes can be enumerated: ``reset(options={"index": i})`` chooses episode i
    (parity's sequence i), and the twin, if any, takes one index per sub-env,
    ``options={"index": [i_0, ...]}``."""
    native_rollout: str | None = None
    """The name of the fused native rollout (policy, env and sampling in one compiled call)
    that plays this env, or None."""
    reset_keeps_state: bool = False
    """Whether reset leaves state of earlier episodes behind, so that an episode's course
    depends on what the env played before, not on its seed alone; trainers then make the
    env anew for every episode."""
    end_reward: str | None = None
    """What the reward is, for an env whose whole reward arrives when its own fixed-length
    episode ends (None: rewards come along the way). Cutting such an episode short
    (`env.max_steps`) would make every individual score 0, so trainers refuse to."""
