"""A user's own env code, as `tests/test_env_trust.py` names it in env ids: a `module:factory`
(`make_cartpole`) and a `module:EnvId` whose id exists once this module is imported
(`REGISTERED_ID`, as a third-party env package registers its ids)."""

import gymnasium as gym

REGISTERED_ID = "smevo_test/TrustedCartPole-v0"

if REGISTERED_ID not in gym.registry:
    gym.register(REGISTERED_ID, entry_point="gymnasium.envs.classic_control:CartPoleEnv",
                 max_episode_steps=500)


def make_cartpole(**kwargs):
    """A legitimate factory: CartPole-v1 with `kwargs`."""
    return gym.make("CartPole-v1", **kwargs)
