"""The saved agent (best.pt): round trip, acting as the trainer does, clear errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from smevo.agent import Agent, load_agent, save_agent
from smevo.checkpoint import CheckpointError, atomic_torch_save
from smevo.config import Config, config_to_dict
from smevo.envs import make_env
from smevo.functional import get_flat
from smevo.policies import make_policy

OPTIONS = {"hidden": 8, "depth": 1}


def save_cartpole_agent(path, obs_norm=None, seed=0):
    """A random CartPole mlp saved as best.pt; returns its genome."""
    torch.manual_seed(seed)
    env = gym.make("CartPole-v1")
    policy = make_policy("mlp", env.observation_space, env.action_space, **OPTIONS)
    env.close()
    params = get_flat(policy)
    save_agent(
        path,
        env_id="CartPole-v1",
        env_kwargs={},
        policy_name="mlp",
        policy_options=OPTIONS,
        params=params,
        obs_norm=obs_norm,
        fitness=12.5,
        generation=3,
        config=config_to_dict(Config()),
    )
    return params


@pytest.mark.bitexact  # a saved genome comes back exactly
def test_round_trip_restores_genome_and_metadata(tmp_path):
    params = save_cartpole_agent(tmp_path / "best.pt")
    agent = load_agent(tmp_path / "best.pt")
    try:
        assert torch.equal(get_flat(agent.policy), params)
        assert (agent.fitness, agent.generation) == (12.5, 3)
        assert agent.config["env"]["id"] == "CartPole-v1"
        assert agent.solve_threshold == 475.0  # the env's reward_threshold
        assert agent.obs_norm is None
    finally:
        agent.close()


def test_run_episodes_is_seeded_and_reports_each_episode(tmp_path):
    save_cartpole_agent(tmp_path / "best.pt")
    agent = load_agent(tmp_path / "best.pt")
    first = agent.run_episodes(3, seed=7)
    second = agent.run_episodes(3, seed=7)
    agent.close()
    assert first == second
    assert [set(r) for r in first] == [{"return", "length", "solved"}] * 3
    assert all(r["length"] >= 1 and r["return"] == r["length"] for r in first)  # +1 per step


@pytest.mark.bitexact  # eval acts exactly as training did
def test_act_matches_a_float64_forward_rounded_to_float32(tmp_path):
    mean, std = np.array([0.1, 0, 0, 0], np.float32), np.array([2, 1, 1, 0.5], np.float32)
    save_cartpole_agent(tmp_path / "best.pt", obs_norm={"mean": mean, "std": std})
    agent = load_agent(tmp_path / "best.pt")
    obs = np.array([4.0, 0.2, -0.1, 9.0], np.float32)
    expected_input = np.clip((obs - mean) / std, -5, 5)
    np.testing.assert_array_equal(agent.normalize(obs), expected_input)
    with torch.no_grad():
        output, _ = agent.policy(torch.as_tensor(expected_input, dtype=torch.float64)[None])
    assert agent.act(obs) == int(output.to(torch.float32).argmax())
    agent.close()


@pytest.mark.bitexact  # same input and state, same action
def test_recurrent_state_carries_over_and_resets(tmp_path):
    env = make_env("smevo/RecurrentParity-v0", {})
    torch.manual_seed(0)
    policy = make_policy("gru", env.observation_space, env.action_space, hidden=4, layers=1)
    agent = Agent(env, policy)
    obs = np.ones(1, np.float32)
    first = agent.act(obs)
    second = agent.act(obs)
    assert not np.array_equal(first, second)  # the same input, a different state
    agent.reset_state()
    np.testing.assert_array_equal(agent.act(obs), first)
    results = agent.run_episodes(2, seed=0)
    assert [r["length"] for r in results] == [4, 4]
    agent.close()


def test_missing_foreign_corrupt_and_newer_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_agent(tmp_path / "absent.pt")

    atomic_torch_save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a smevo agent"):
        load_agent(tmp_path / "foreign.pt")

    (tmp_path / "corrupt.pt").write_bytes(b"definitely not a torch file")
    with pytest.raises(CheckpointError, match="truncated, corrupt, or not written by smevo"):
        load_agent(tmp_path / "corrupt.pt")

    save_cartpole_agent(tmp_path / "best.pt")
    payload = torch.load(tmp_path / "best.pt", weights_only=False)
    atomic_torch_save({**payload, "version": 99}, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="newer smevo"):
        load_agent(tmp_path / "newer.pt")
    atomic_torch_save({**payload, "params": torch.zeros(5)}, tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match="cannot rebuild the policy"):
        load_agent(tmp_path / "wrong.pt")


def test_make_env_names_the_closest_id_and_accepts_module_syntax():
    with pytest.raises(ValueError, match="Did you mean 'CartPole-v1'"):
        make_env("CartPol-v1", {})
    env = make_env("smevo_envs:smevo/Easy-v0", {"repeats": 2})
    assert env.observation_space.shape == (2,)
    env.close()
    env = make_env("gymnasium.envs.classic_control.cartpole:CartPoleEnv", {},
                   trust_env_code=True)  # a factory: code, so only when trusted
    assert isinstance(env.unwrapped, gym.Env)
    env.close()
    with pytest.raises(ValueError, match="cannot import module"):
        make_env("no_such_module_xyz:Thing", {}, trust_env_code=True)
    with pytest.raises(ValueError, match="kwargs"):
        make_env("CartPole-v1", {"no_such_option": 1})


@pytest.mark.parametrize("policy_name", ["mlp", "gru"])
def test_episodes_equal_the_trainers_rollouts_on_the_same_seeds(tmp_path, policy_name):
    """`smevo eval` scores an agent exactly as training did (normalisation included)."""
    from smevo.evaluation import EvalSpec, EvalTask, ObsNormalizer, RolloutWorker

    torch.manual_seed(1)
    env = gym.make("CartPole-v1")
    options = {"hidden": 8}
    policy = make_policy(policy_name, env.observation_space, env.action_space, **options)
    normalizer = ObsNormalizer(enabled=True)
    normalizer.update(np.stack([env.observation_space.sample() * 0.01 for _ in range(50)]))
    env.close()
    agent = Agent(make_env("CartPole-v1", {}), policy, obs_norm=normalizer.export(), config={})
    seeds = tuple(range(20, 24))
    worker = RolloutWorker(EvalSpec("CartPole-v1", {}, policy_name, options))
    (expected,) = worker.evaluate(
        get_flat(policy)[None].numpy(), [EvalTask(0, seeds, 0)], normalizer
    )
    worker.close()
    assert [r["return"] for r in agent.run_episodes(len(seeds), seed=seeds[0])] == expected.returns
    agent.close()
