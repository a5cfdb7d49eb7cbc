"""Observation normalisation: `eval` and `watch` feed the policy what training fed it."""

import gymnasium as gym
import numpy as np
import pytest

from smevo.agent import Agent, load_agent, save_agent
from smevo.config import Config, config_to_dict
from smevo.evaluation.obs_norm import CLIP, ObsNormalizer
from smevo.functional import get_flat
from smevo.policies import make_policy

OPTIONS = {"hidden": 4, "depth": 1}
SCALES = np.array([1e-3, 0.7, 30.0, 4e3])  # features orders of magnitude apart, as BipedalWalker's


def trained_normalizer(rng: np.random.Generator) -> ObsNormalizer:
    """Statistics merged over three generations of CartPole-sized float32 observations."""
    normalizer = ObsNormalizer(enabled=True)
    for _ in range(3):
        normalizer.update((rng.normal(size=(200, 4)) * SCALES + 0.3).astype(np.float32))
    return normalizer


def saved_agent(path, obs_norm) -> Agent:
    """A random CartPole mlp with statistics `obs_norm`, saved as best.pt and loaded back."""
    env = gym.make("CartPole-v1")
    policy = make_policy("mlp", env.observation_space, env.action_space, **OPTIONS)
    env.close()
    save_agent(path, env_id="CartPole-v1", env_kwargs={}, policy_name="mlp",
               policy_options=OPTIONS, params=get_flat(policy), obs_norm=obs_norm,
               fitness=0.0, generation=3, config=config_to_dict(Config()))
    return load_agent(path)


@pytest.mark.bitexact  # eval acts exactly as training did
def test_the_saved_agent_normalises_bit_for_bit_as_the_trainer(tmp_path):
    rng = np.random.default_rng(0)
    normalizer = trained_normalizer(rng)
    agent = saved_agent(tmp_path / "best.pt", normalizer.export())
    try:
        # The trainer's rollouts see float32 observations (rollout.py rounds them first).
        observations = (rng.normal(size=(2000, 4)) * SCALES + 0.3).astype(np.float32)
        trainer = normalizer(observations)
        played = np.stack([agent.normalize(obs) for obs in observations])
    finally:
        agent.close()
    assert trainer.dtype == played.dtype == np.float32
    assert np.abs(trainer).max() < CLIP  # nothing clipped: every entry tests the arithmetic
    np.testing.assert_array_equal(played, trainer)


def test_float32_statistics_of_older_agents_still_load_and_act(tmp_path):
    exported = trained_normalizer(np.random.default_rng(1)).export()
    stats = {key: value.astype(np.float32) for key, value in exported.items()}
    agent = saved_agent(tmp_path / "best.pt", stats)
    try:
        obs = np.full(4, 0.3, np.float32)
        expected = (obs - stats["mean"].astype(np.float64)) / stats["std"]
        np.testing.assert_allclose(agent.normalize(obs), np.clip(expected, -CLIP, CLIP),
                                   rtol=1e-6)
        assert agent.act(obs) in (0, 1)
    finally:
        agent.close()
