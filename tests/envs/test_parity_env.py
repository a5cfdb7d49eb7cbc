"""smevo/RecurrentParity-v0: sequences, labels, and the log-likelihood reward."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

import smevo_envs
from smevo import functional
from smevo.evaluation import EvalSpec, EvalTask, ObsNormalizer, RolloutWorker
from smevo.evaluation.env_pool import NativeVectorPool, SingleEnvPool, make_env_pool
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
    assert env.action_space == gym.spaces.Box(-1e6, 1e6, (2,), np.float32)


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


def test_the_episode_terminates_after_the_last_bit():
    env = RecurrentParityEnv(n_bits=2)
    env.reset(options={"index": 1})
    env.step([0.0, 0.0])
    assert env.step([0.0, 0.0])[2] is True


def test_logits_beyond_the_bounds_are_clipped_and_give_finite_rewards():
    env = RecurrentParityEnv(n_bits=1)
    env.reset(options={"index": 1})  # label 1
    big = float(np.finfo(np.float32).max)
    _, reward, *_ = env.step([big, -big])
    assert reward == -2e6  # log_softmax of the logits clipped to (1e6, -1e6)
    env.reset(options={"index": 1})
    _, reward, _, _, info = env.step([-1e300, 1e300])
    assert reward == 0.0 and info["correct"]


# --------------------------------------------------------------------------- vector env


def _random_logits(rng, n):
    """Logits over a wide range, with exact ties and float32 extremes among them."""
    logits = rng.normal(scale=rng.choice([0.1, 3.0, 1e3], size=(n, 1)), size=(n, 2))
    logits[::7, 1] = logits[::7, 0]
    logits[3::11] = [float(np.finfo(np.float32).max), -float(np.finfo(np.float32).max)]
    return logits.astype(np.float32)


@pytest.mark.parametrize("n_bits", [1, 4])
@pytest.mark.parametrize("indexed", [True, False])
@pytest.mark.bitexact
def test_vector_env_equals_single_envs_step_for_step(n_bits, indexed):
    # Through autoresets too: three episodes each, with sequences then drawn from the seeds.
    n, rng = 37, np.random.default_rng(n_bits)
    seeds = rng.integers(0, 2**31, size=n).tolist()
    indices = rng.integers(0, 2**n_bits, size=n).tolist()
    vector = gym.make_vec("smevo/RecurrentParity-v0", num_envs=n, n_bits=n_bits,
                          vectorization_mode="vector_entry_point")
    assert isinstance(vector.unwrapped, smevo_envs.RecurrentParityVectorEnv)
    singles = [RecurrentParityEnv(n_bits=n_bits) for _ in range(n)]
    options = {"index": indices} if indexed else None
    observations, info = vector.reset(seed=seeds, options=options)
    expected = [env.reset(seed=s, options={"index": i} if indexed else None)
                for env, s, i in zip(singles, seeds, indices, strict=True)]
    assert np.array_equal(observations, np.stack([o for o, _ in expected]))
    assert info["index"].tolist() == [i["index"] for _, i in expected]
    needs_reset = [False] * n
    for _ in range(3 * (n_bits + 1)):
        logits = _random_logits(rng, n)
        observations, rewards, terminated, truncated, info = vector.step(logits)
        for k, env in enumerate(singles):
            if needs_reset[k]:  # the vector env's autoreset step
                obs, reward, term = env.reset()[0], 0.0, False
            else:
                obs, reward, term, _, single_info = env.step(logits[k])
                if term:
                    assert info["_correct"][k] and info["correct"][k] == single_info["correct"]
                    assert info["label"][k] == single_info["label"]
            assert np.array_equal(observations[k], obs)
            assert rewards[k] == reward and terminated[k] == term and not truncated[k]
            needs_reset[k] = term


def test_vector_env_rejects_bad_input():
    env = smevo_envs.RecurrentParityVectorEnv(3)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="a list of 3 ints"):
        env.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="index"):
        env.reset(options={"index": [0, 16, 1]})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"sequence": 1})
    env.reset(seed=0)
    for bad in (np.zeros((3, 3)), np.array([[0.0, np.nan]] * 3), np.full((3, 2), np.inf)):
        with pytest.raises(ValueError, match="actions"):
            env.step(bad)


@pytest.mark.bitexact
def test_trainer_pool_steps_parity_natively_with_identical_results():
    native = make_env_pool("smevo/RecurrentParity-v0", {}, index_episodes=True)
    assert isinstance(native, NativeVectorPool)
    single = SingleEnvPool("smevo/RecurrentParity-v0", {})
    seeds, options = list(range(40)), [{"index": e % 16} for e in range(40)]
    assert np.array_equal(native.reset(seeds, options), single.reset(seeds, options))
    active, rng = np.ones(40, dtype=bool), np.random.default_rng(5)
    for _ in range(4):
        logits = _random_logits(rng, 40)
        assert data_equivalence(native.step(logits, active), single.step(logits, active))


@pytest.mark.parametrize("policy", ["rnn", "gru", "lstm"])
@pytest.mark.bitexact
def test_rollouts_on_the_native_pool_equal_those_on_single_envs(policy):
    # The trainer's parity evaluation (16 indexed episodes per genome), genomes of several
    # scales and a broken (NaN) one: fitnesses, steps and recorded sequences all identical.
    spec = EvalSpec("smevo/RecurrentParity-v0", {}, policy, {"hidden": 5, "layers": 2},
                    index_episodes=True)
    worker = RolloutWorker(spec)
    assert isinstance(worker.pool, NativeVectorPool)
    dimension = len(functional.get_flat(worker.policy))
    rng = np.random.default_rng(3)
    params = rng.normal(size=(6, dimension)) * np.array([[0.1], [1.0], [3.0], [10.0], [30.0],
                                                         [1.0]])
    params[5, dimension // 2] = np.nan
    tasks = [EvalTask(i, tuple(range(100 * i, 100 * i + 16)), i) for i in range(6)]
    native = worker.evaluate(params.astype(np.float32), tasks, ObsNormalizer())
    worker.pool = SingleEnvPool(spec.env_id, spec.env_kwargs)
    single = worker.evaluate(params.astype(np.float32), tasks, ObsNormalizer())
    assert [r.fitness for r in native] == [r.fitness for r in single]
    assert [r.steps for r in native] == [r.steps for r in single]
    assert any(r.broken for r in native) and not all(r.broken for r in native)
    for a, b in zip(native, single, strict=True):
        assert a.broken == b.broken and a.solved == b.solved
        assert len(a.experiences) == len(b.experiences)
        assert all(np.array_equal(x, y) for x, y in zip(a.experiences, b.experiences,
                                                         strict=True))
