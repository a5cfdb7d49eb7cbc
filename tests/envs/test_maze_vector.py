"""The native maze vector env: one C++ call per step, the same results as single envs."""

from __future__ import annotations

import pickle
import threading
import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import AutoresetMode

import smevo_envs  # noqa: F401  (registers the envs)
from smevo_envs import _maze
from smevo_envs.maze import BreadcrumbHardMazeVectorEnv, core_maze, load_maze

N = 5


def _actions(seed: int, steps: int, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).random((steps, n, 2), dtype=np.float32)


def test_make_vec_uses_the_native_vector_env():
    envs = gym.make_vec(
        "smevo/BreadcrumbHardMaze-v0", num_envs=N, vectorization_mode="vector_entry_point"
    )
    assert isinstance(envs.unwrapped, BreadcrumbHardMazeVectorEnv)
    assert envs.num_envs == N
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.single_observation_space == gym.spaces.Box(0, 1, (11,), np.float32)
    assert envs.single_action_space == gym.spaces.Box(0, 1, (2,), np.float32)
    assert envs.observation_space == gym.spaces.Box(0, 1, (N, 11), np.float32)
    assert envs.action_space == gym.spaces.Box(0, 1, (N, 2), np.float32)
    default = gym.make_vec("smevo/BreadcrumbHardMaze-v0", num_envs=2)
    assert isinstance(default.unwrapped, BreadcrumbHardMazeVectorEnv)
    options = gym.make_vec("smevo/BreadcrumbHardMaze-v0", num_envs=2, frame_skip=1)
    assert options.unwrapped.frame_skip == 1


@pytest.mark.parametrize("frame_skip", [1, 3])
@pytest.mark.bitexact
def test_lockstep_with_single_envs(frame_skip):
    env_steps = -(-400 // frame_skip)
    vector = BreadcrumbHardMazeVectorEnv(num_envs=N, frame_skip=frame_skip)
    singles = [gym.make("smevo/BreadcrumbHardMaze-v0", frame_skip=frame_skip) for _ in range(N)]
    observations, info = vector.reset(seed=11)
    single_resets = [env.reset(seed=11 + i) for i, env in enumerate(singles)]
    assert np.array_equal(observations, np.stack([o for o, _ in single_resets]))
    assert np.array_equal(info["position"], np.stack([i["position"] for _, i in single_resets]))

    actions = _actions(frame_skip, 2 * env_steps + 1)
    pending_reset = False
    for t, batch in enumerate(actions):
        observations, rewards, terminated, truncated, info = vector.step(batch)
        if pending_reset:  # NEXT_STEP: this step resets every robot, ignoring its action
            results = [(*env.reset(), 0.0, False, False) for env in singles]
            results = [(o, r, te, tr, i) for o, i, r, te, tr in results]
        else:
            results = [env.step(a) for env, a in zip(singles, batch, strict=True)]
        expected = [np.stack([r[k] for r in results]) for k in range(4)]
        assert np.array_equal(observations, expected[0]), t
        assert np.array_equal(rewards, expected[1].astype(np.float64)), t
        assert np.array_equal(terminated, expected[2]) and np.array_equal(truncated, expected[3])
        for key in ("position", "heading", "solved", "breadcrumb_distance", "euclidean_distance"):
            assert np.array_equal(info[key], np.stack([r[4][key] for r in results])), (t, key)
            assert info[f"_{key}"].all()
        pending_reset = bool(truncated.all())
        assert truncated.any() == pending_reset  # all robots share the horizon
        assert pending_reset == (t in (env_steps - 1, 2 * env_steps))
    assert rewards.dtype == np.float64


def test_same_as_the_sync_vector_env_including_infos():
    native = gym.make_vec(
        "smevo/BreadcrumbHardMaze-v0", num_envs=3, vectorization_mode="vector_entry_point"
    )
    sync = gym.make_vec("smevo/BreadcrumbHardMaze-v0", num_envs=3, vectorization_mode="sync")
    assert data_equivalence(native.reset(seed=5), sync.reset(seed=5), exact=True)
    for batch in _actions(1, 140, n=3):  # one episode, the autoreset step, and a few more
        assert data_equivalence(native.step(batch), sync.step(batch), exact=True)
    mask = np.array([True, False, True])
    assert data_equivalence(
        native.reset(options={"reset_mask": mask}),
        sync.reset(options={"reset_mask": mask}),
        exact=True,
    )
    for batch in _actions(2, 5, n=3):
        assert data_equivalence(native.step(batch), sync.step(batch), exact=True)


@pytest.mark.bitexact
def test_same_seed_same_results_and_rewards_at_the_end():
    first, second = (BreadcrumbHardMazeVectorEnv(num_envs=4) for _ in range(2))
    assert data_equivalence(first.reset(seed=3), second.reset(seed=3), exact=True)
    for batch in _actions(4, 134, n=4):
        a, b = first.step(batch), second.step(batch)
        assert data_equivalence(a, b, exact=True)
    _, rewards, _, truncated, info = a
    assert truncated.all()
    assert np.array_equal(rewards, -info["breadcrumb_distance"])


@pytest.mark.bitexact
def test_partial_reset_mask():
    envs = BreadcrumbHardMazeVectorEnv(num_envs=3, frame_skip=1)
    envs.reset()
    for _ in range(30):
        *_, info = envs.step(np.full((3, 2), [0.5, 1.0], np.float32))
    moved = info["position"]
    mask = np.array([False, True, False])
    _, info = envs.reset(options={"reset_mask": mask})
    assert info["_position"].tolist() == [False, True, False]
    assert info["position"][1].tolist() == [36.0, 184.0]
    assert info["position"][0].tolist() == [0.0, 0.0]  # not reported, as SyncVectorEnv does
    positions = envs._robots.status()["position"]
    assert np.array_equal(positions[[0, 2]], moved[[0, 2]])
    for bad in (np.array([1, 0, 1]), np.array([True, False]), [True, False, True]):
        with pytest.raises(ValueError, match="reset_mask"):
            envs.reset(options={"reset_mask": bad})


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((N, 3), np.float32),
        np.zeros((N + 1, 2), np.float32),
        np.zeros(2, np.float32),
        np.full((N, 2), np.nan, np.float32),
        np.full((N, 2), np.inf, np.float32),
    ],
)
def test_bad_actions_raise_and_change_nothing(bad):
    envs = BreadcrumbHardMazeVectorEnv(num_envs=N)
    envs.reset()
    envs.step(np.full((N, 2), 0.7, np.float32))
    before = envs._robots.get_state()
    with pytest.raises(ValueError, match="actions"):
        envs.step(bad)
    assert data_equivalence(envs._robots.get_state(), before, exact=True)


def test_pickled_vector_env_steps_identically():
    envs = BreadcrumbHardMazeVectorEnv(num_envs=4)
    envs.reset(seed=0)
    actions = _actions(6, 140, n=4)
    for batch in actions[:60]:
        envs.step(batch)
    copy = pickle.loads(pickle.dumps(envs))
    for batch in actions[60:]:  # through the end of the episode and the autoreset
        assert data_equivalence(envs.step(batch), copy.step(batch), exact=True)


def test_step_before_reset():
    with pytest.raises(gym.error.ResetNeeded):
        BreadcrumbHardMazeVectorEnv(num_envs=2).step(np.zeros((2, 2), np.float32))


def test_rgb_array_shows_every_robot():
    envs = BreadcrumbHardMazeVectorEnv(num_envs=8, render_mode="rgb_array")
    envs.reset()
    for batch in _actions(9, 30, n=8):
        envs.step(batch)
    frame = envs.render()
    assert frame.shape == (651, 636, 3) and frame.dtype == np.uint8
    envs.close()


def test_the_batch_step_releases_the_gil():
    robots = _maze.Robots(core_maze(load_maze()), 10_000)
    actions = np.full((10_000, 2), [0.6, 1.0], np.float32)
    span = {}

    def work():
        span["start"] = time.perf_counter()
        robots.step(actions, 400)  # 4 million robot-steps: a few hundred milliseconds
        span["end"] = time.perf_counter()

    worker = threading.Thread(target=work)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
    worker.join()
    duration = span["end"] - span["start"]
    inside = [t for t in ticks if span["start"] + 0.2 * duration < t < span["end"] - 0.1 * duration]
    assert duration > 0.05
    assert len(inside) > 100  # this thread kept running while C++ stepped the robots
