"""smevo/RecurrentParity-v0: sequences, labels, and the log-likelihood reward."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import smevo_envs  # noqa: F401  (registers the envs)
from smevo_envs.parity import RecurrentParityEnv


def _episode(env, index, policy):
    """Run sequence `index` with policy(bits seen so far) -> logits; return bits, return, info."""
    observation, info = env.reset(options={"index": index})
    assert info == {"index": index}
    seen, total = [], 0.0
    while True:
        seen.append(int(observation[0]))
        observation, reward, terminated, truncated, info = env.step(policy(seen))
        total += reward
        assert not truncated
        if terminated:
            assert len(seen) == env.unwrapped.n_bits
            return seen, total, info, observation
        assert reward == 0.0


def _policy(seen):
    # depends on the bits, so that the logits differ between sequences
    return np.array([0.3 * sum(seen) - 0.2, 1.1 - 0.7 * seen[-1]], dtype=np.float32)


@pytest.mark.parametrize("n_bits", [1, 3, 4, 5])
def test_returns_over_all_sequences_are_minus_the_nll(n_bits):
    env = gym.make("smevo/RecurrentParity-v0", n_bits=n_bits)
    returns = []
    for index in range(2**n_bits):
        bits, total, info, last_observation = _episode(env, index, _policy)
        assert bits == [int(b) for b in format(index, f"0{n_bits}b")]  # MSB first
        label = sum(bits) % 2
        logits = [float(v) for v in _policy(bits)]
        nll = -logits[label] + math.log(math.exp(logits[0]) + math.exp(logits[1]))
        assert total == pytest.approx(-nll, rel=1e-6, abs=1e-9)
        assert info["label"] == label
        predicted = 0 if logits[0] >= logits[1] else 1  # ties go to class 0
        assert info["correct"] == (predicted == label)
        assert last_observation.tolist() == [0.0]
        returns.append(total)
    assert len(returns) == 2**n_bits


def test_default_has_16_sequences_of_4_bits():
    env = gym.make("smevo/RecurrentParity-v0").unwrapped
    assert env.n_bits == 4 and env.num_sequences == 16
    assert env.sequence(6).tolist() == [0, 1, 1, 0]
    assert env.sequence(11).tolist() == [1, 0, 1, 1]
    assert env.observation_space == gym.spaces.Box(0, 1, (1,), np.float32)
    assert env.action_space == gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)


def test_a_perfect_classifier_reaches_the_threshold():
    env = gym.make("smevo/RecurrentParity-v0")
    threshold = gym.spec("smevo/RecurrentParity-v0").reward_threshold

    def perfect(seen):
        odd = sum(seen) % 2
        return np.array([-5.0, 5.0] if odd else [5.0, -5.0], dtype=np.float32)

    results = [_episode(env, index, perfect) for index in range(16)]
    assert all(info["correct"] for _, _, info, _ in results)
    assert np.mean([total for _, total, _, _ in results]) >= threshold


def test_random_sequence_comes_from_np_random():
    env = gym.make("smevo/RecurrentParity-v0")
    indices = [env.reset(seed=seed)[1]["index"] for seed in range(64)]
    again = [env.reset(seed=seed)[1]["index"] for seed in range(64)]
    assert indices == again
    assert len(set(indices)) > 8  # uniform over 16: 64 draws hit many
    assert all(0 <= i < 16 for i in indices)


@pytest.mark.parametrize("index", [-1, 16, 1.5, "3", True, None])
def test_bad_index_is_a_value_error(index):
    env = gym.make("smevo/RecurrentParity-v0")
    with pytest.raises(ValueError, match="index"):
        env.reset(options={"index": index})


@pytest.mark.parametrize("n_bits", [0, 63, 2.0, "4"])
def test_bad_n_bits_is_a_value_error(n_bits):
    with pytest.raises(ValueError, match="n_bits"):
        RecurrentParityEnv(n_bits=n_bits)


def test_step_after_the_last_bit_needs_a_reset():
    env = RecurrentParityEnv(n_bits=2)
    env.reset(options={"index": 1})
    env.step([0.0, 0.0])
    assert env.step([0.0, 0.0])[2] is True
    with pytest.raises(gym.error.ResetNeeded):
        env.step([0.0, 0.0])


def test_extreme_finite_logits_give_finite_rewards():
    env = RecurrentParityEnv(n_bits=1)
    env.reset(options={"index": 1})  # label 1
    big = float(np.finfo(np.float32).max)
    _, reward, *_ = env.step([big, -big])
    assert reward == pytest.approx(-2 * big, rel=1e-6)
    env.reset(options={"index": 1})
    _, reward, _, _, info = env.step([-big, big])
    assert reward == 0.0 and info["correct"]
