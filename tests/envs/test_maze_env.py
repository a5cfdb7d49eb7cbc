"""smevo/BreadcrumbHardMaze-v0: episode length, rewards, info, pickling, rendering."""

from __future__ import annotations

import pickle
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

import smevo_envs  # noqa: F401  (registers the envs)
from smevo_envs.maze import BreadcrumbHardMazeEnv

INFO_KEYS = {"position", "heading", "solved", "breadcrumb_distance", "euclidean_distance"}


def test_spaces_and_first_observation():
    env = gym.make("smevo/BreadcrumbHardMaze-v0")
    assert env.observation_space == gym.spaces.Box(0, 1, (11,), np.float32)
    assert env.action_space == gym.spaces.Box(0, 1, (2,), np.float32)
    observation, info = env.reset(seed=0)
    assert observation.dtype == np.float32 and observation.shape == (11,)
    assert observation[0] == 1.0
    # facing east at (36, 184): the goal (31, 20) is up the screen, i.e. on the robot's left
    assert observation[7:].tolist() == [0.0, 0.0, 0.0, 1.0]
    # the wall below (7, 202)-(195, 198) is about 17 away, the left wall about 29
    assert observation[5] == pytest.approx(0.1738, abs=1e-3)
    assert observation[6] == pytest.approx(0.2935, abs=1e-3)
    assert set(info) == INFO_KEYS
    assert info["position"].dtype == np.float64 and info["position"].tolist() == [36.0, 184.0]
    assert info["heading"] == 0.0 and info["solved"] is False
    assert info["breadcrumb_distance"] == 581.0
    assert info["euclidean_distance"] == pytest.approx(np.hypot(5.0, 164.0))


@pytest.mark.parametrize(("frame_skip", "env_steps"), [(1, 400), (3, 134), (7, 58), (400, 1)])
def test_episode_length_and_truncation(frame_skip, env_steps):
    env = gym.make("smevo/BreadcrumbHardMaze-v0", frame_skip=frame_skip)
    env.reset(seed=0)
    ends = []
    rewards = []
    for _ in range(env_steps):
        _, reward, terminated, truncated, info = env.step(np.array([0.6, 0.9], np.float32))
        assert set(info) == INFO_KEYS
        ends.append((terminated, truncated))
        rewards.append(reward)
    assert ends == [(False, False)] * (env_steps - 1) + [(False, True)]
    assert rewards[:-1] == [0.0] * (env_steps - 1)
    assert rewards[-1] == -info["breadcrumb_distance"] < 0.0


def test_frame_skip_holds_the_action():
    actions = np.random.default_rng(3).random((134, 2), dtype=np.float32)
    skipping = BreadcrumbHardMazeEnv(frame_skip=3)
    single = BreadcrumbHardMazeEnv(frame_skip=1)
    skipping.reset()
    single.reset()
    for action in actions:
        observation, reward, _, truncated, info = skipping.step(action)
        for _ in range(3):
            single_observation, single_reward, _, single_truncated, single_info = single.step(
                action
            )
            if single_truncated:
                break
        assert data_equivalence(
            (observation, reward, truncated, info),
            (single_observation, single_reward, single_truncated, single_info),
            exact=True,
        )


@pytest.mark.parametrize("reward", ["breadcrumb", "euclidean"])
def test_reward_options(reward):
    env = gym.make("smevo/BreadcrumbHardMaze-v0", reward=reward)
    env.reset(seed=0)
    truncated = False
    while not truncated:
        _, value, _, truncated, info = env.step(np.array([0.45, 1.0], np.float32))
    assert value == -info[f"{reward}_distance"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="reward"):
        BreadcrumbHardMazeEnv(reward="novelty")
    with pytest.raises(ValueError, match="frame_skip"):
        BreadcrumbHardMazeEnv(frame_skip=0)
    with pytest.raises(ValueError, match="frame_skip"):
        BreadcrumbHardMazeEnv(frame_skip=2.5)


@pytest.mark.parametrize(
    ("action", "nearest"),
    [([-0.01, 0.5], [0.0, 0.5]), ([0.5, 1.01], [0.5, 1.0]), ([200.0, -1e300], [1.0, 0.0])],
)
def test_out_of_range_actions_act_as_the_nearest_bound(action, nearest):
    env, clipped = BreadcrumbHardMazeEnv(), BreadcrumbHardMazeEnv()
    for e in (env, clipped):
        e.reset()
        e.step(np.array([0.5, 1.0], np.float32))
    assert data_equivalence(env.step(np.array(action)), clipped.step(np.array(nearest)), exact=True)
    assert data_equivalence(env._robots.get_state(), clipped._robots.get_state(), exact=True)


def test_pickle_mid_episode_replays_the_rest_exactly():
    env = gym.make("smevo/BreadcrumbHardMaze-v0")
    env.reset(seed=0)
    actions = np.random.default_rng(0).random((134, 2), dtype=np.float32)
    for action in actions[:50]:
        env.step(action)
    copy = pickle.loads(pickle.dumps(env))
    for action in actions[50:]:
        assert data_equivalence(env.step(action), copy.step(action), exact=True)


def test_rgb_array_rendering():
    env = gym.make("smevo/BreadcrumbHardMaze-v0", render_mode="rgb_array")
    env.reset(seed=0)
    for _ in range(20):
        env.step(np.array([0.55, 1.0], np.float32))
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape[:2] == (651, 636)  # the hard maze spans 192 x 197 units, at 3 px/unit
    renderer = env.unwrapped._renderer
    goal = renderer._pixel(31.0, 20.0)
    assert tuple(frame[goal[1], goal[0]]) == (40, 160, 60)  # the goal, in green
    robot = renderer._pixel(*env.unwrapped._robots.get_state()["position"][0])
    assert tuple(frame[robot[1] + 5, robot[0] - 5]) == (40, 90, 200)  # the robot, in blue
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) >= 5
    env.close()


def test_human_rendering_draws_to_a_window():
    env = gym.make("smevo/BreadcrumbHardMaze-v0", render_mode="human")
    env.reset(seed=0)
    assert env.render() is None
    env.step(np.array([0.5, 1.0], np.float32))
    assert env.unwrapped._renderer.window is not None
    env.close()
    env.close()  # closing twice is fine


def test_render_without_render_mode_warns():
    env = BreadcrumbHardMazeEnv()
    env.reset()
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


def test_rendering_without_pygame_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygame", None)
    env = BreadcrumbHardMazeEnv(render_mode="rgb_array")
    env.reset()
    with pytest.raises(gym.error.DependencyNotInstalled, match="pygame-ce"):
        env.render()
