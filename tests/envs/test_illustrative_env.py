"""smevo/Easy-v0, Medium-v0, GradientWashout-v0: rows, targets and rewards by hand."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import smevo_envs  # noqa: F401  (registers the envs)
from smevo_envs.illustrative import IllustrativeEnv


def _rollout(env, actions):
    observations = [env.reset(seed=0)[0].tolist()]
    rewards, ends = [], []
    for action in actions:
        observation, reward, terminated, truncated, _ = env.step(np.array(action))
        observations.append(observation.tolist())
        rewards.append(reward)
        ends.append((terminated, truncated))
    return observations, rewards, ends


def test_easy_by_hand():
    observations, rewards, ends = _rollout(gym.make("smevo/Easy-v0"), [[0.5, 2.0], [-1.0, 1.0]])
    assert observations == [[0.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
    # targets (0, 1), (0, 1): -(0.5² + 1²), -(1² + 0²)
    assert rewards == [-1.25, -1.0]
    assert ends == [(False, False), (True, False)]


def test_medium_by_hand():
    observations, rewards, _ = _rollout(gym.make("smevo/Medium-v0"), [[1.5, 0.5], [0.0, 1.0]])
    assert observations == [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    # targets (1, 0) then (0, 1): -(0.5² + 0.5²), 0
    assert rewards == [-0.5, 0.0]


def test_washout_by_hand():
    observations, rewards, _ = _rollout(
        gym.make("smevo/GradientWashout-v0"), [[3.0, 1.0], [-1.0, 0.0]]
    )
    assert observations == [[1.0, 1.0], [-1.0, -1.0], [0.0, 0.0]]
    # targets (1, 1) then (-1, -1): -(2² + 0²), -(0² + 1²)
    assert rewards == [-4.0, -1.0]


def _toy2w(w0, w1):
    """The paper's two-weight model y = (100·w0·x0, 0.1·w1·x1)."""
    return lambda x: np.array([100.0 * w0 * x[0], 0.1 * w1 * x[1]])


@pytest.mark.parametrize(
    ("env_id", "w0", "w1", "expected"),
    [
        ("smevo/Easy-v0", 123.0, 10.0, 0.0),  # w0 is irrelevant in easy
        ("smevo/Easy-v0", 0.0, 0.0, -2.0),  # y = 0: error 1 per row
        ("smevo/Medium-v0", 0.01, 10.0, 0.0),
        ("smevo/Medium-v0", 0.02, 10.0, -1.0),  # y0 = 2 on row (1, 0): error 1
        ("smevo/GradientWashout-v0", 0.01, 10.0, 0.0),
        ("smevo/GradientWashout-v0", 0.02, 20.0, -4.0),  # y = 2x: error 1 + 1 per row
    ],
)
def test_toy_model_returns(env_id, w0, w1, expected):
    env = gym.make(env_id)
    policy = _toy2w(w0, w1)
    observation, _ = env.reset(seed=1)
    total, terminated = 0.0, False
    while not terminated:
        observation, reward, terminated, truncated, _ = env.step(policy(observation))
        total += reward
        assert not truncated
    assert total == pytest.approx(expected, abs=1e-9)


def test_repeats_feeds_the_rows_in_order():
    env = gym.make("smevo/GradientWashout-v0", repeats=4)
    observations, rewards, ends = _rollout(env, [[0.0, 0.0]] * 8)
    assert observations[:-1] == [[1.0, 1.0], [-1.0, -1.0]] * 4
    assert rewards == [-2.0] * 8
    assert [terminated for terminated, _ in ends] == [False] * 7 + [True]


@pytest.mark.parametrize("kwargs", [{"task": "hard"}, {"repeats": 0}, {"repeats": 1.5}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="task|repeats"):
        IllustrativeEnv(**kwargs)


def test_spaces():
    env = IllustrativeEnv(task="medium")
    assert env.observation_space == gym.spaces.Box(-1, 1, (2,), np.float32)
    assert env.action_space == gym.spaces.Box(-1e6, 1e6, (2,), np.float32)
