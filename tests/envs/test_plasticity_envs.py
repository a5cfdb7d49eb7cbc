"""The plasticity papers' tasks: pattern completion, the grid maze and its vector twin, cue/reward.

check_env, same-seed rollouts and pickling are swept over every `smevo/` id in
test_gymnasium_conformance.py, the spec-sheet sections in test_envs_registry.py; here: the
reference levels and each task's rules.
"""

from __future__ import annotations

import doctest
import importlib
from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils import seeding
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import AutoresetMode

import smevo_envs  # noqa: F401  (registers the envs)
from smevo.evaluation.env_pool import NativeVectorPool, SingleEnvPool, make_env_pool
from smevo_envs.cue_reward import CueRewardEnv
from smevo_envs.grid_maze import MOVES, GridMazeEnv, GridMazeVectorEnv, maze_walls
from smevo_envs.pattern_completion import (
    PatternCompletionEnv,
    PatternSchedule,
    bit_error,
    pattern_completion_batch,
)

PLASTICITY_IDS = ("smevo/PatternCompletion-v0", "smevo/GridMaze-v0", "smevo/CueReward-v0")


@pytest.mark.parametrize("module", ["pattern_completion", "grid_maze", "cue_reward"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(f"smevo_envs.{module}"))
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("env_id", PLASTICITY_IDS)
@pytest.mark.parametrize("action", [4, -1, 1.0, True, np.array([1]), None, "1"])
def test_discrete_and_box_envs_reject_bad_actions(env_id, action):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


# --------------------------------------------------------------------------- pattern completion


@pytest.mark.bitexact
def test_batch_follows_the_presentation_schedule():
    s = PatternSchedule(pattern_size=40, n_patterns=3, cycles=2, presentation=2, gap=1,
                        test_time=2, exact_degrade=True, balanced=True)
    inputs, targets = pattern_completion_batch(np.random.default_rng(0), 5, s)
    assert s.steps == 2 * 3 * 3 + 2 == inputs.shape[1]
    assert inputs.shape == (5, 20, 40) and targets.shape == (5, 40)
    assert inputs.dtype == targets.dtype == np.float32
    shown = inputs[:, :18].reshape(5, 6, 3, 40)  # [batch, presentation, step in block, bits]
    assert np.all(shown[:, :, 2] == 0)  # the gap step
    assert np.array_equal(shown[:, :, 0], shown[:, :, 1])  # each pattern held 2 steps
    for b in range(5):
        patterns = shown[b, :3, 0] / 20
        assert np.all(np.abs(patterns) == 1) and np.all(patterns.sum(axis=1) == 0)  # balanced
        # each cycle shows every pattern once (a permutation), the target among them
        assert {tuple(p) for p in shown[b, 3:, 0] / 20} == {tuple(p) for p in patterns}
        assert any(np.array_equal(targets[b], p) for p in patterns)
        test = inputs[b, -1]
        assert np.array_equal(inputs[b, -2], test) and np.sum(test == 0) == 20  # exactly half
        assert np.array_equal(test[test != 0], 20 * targets[b][test != 0])


@pytest.mark.bitexact
def test_batches_are_a_function_of_the_generator():
    first = pattern_completion_batch(np.random.default_rng(3), 4)
    second = pattern_completion_batch(np.random.default_rng(3), 4)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_chance_error_is_a_quarter():
    """Copying the shown bits and leaving the zeroed ones at 0 (a coin flip) scores ~0.25."""
    inputs, targets = pattern_completion_batch(np.random.default_rng(0), 50)
    assert bit_error(np.sign(inputs[:, -1]), targets).mean() == pytest.approx(0.25, abs=0.01)
    guesses = np.where(inputs[:, -1] == 0,
                       np.random.default_rng(1).choice([-1.0, 1.0], targets.shape),
                       np.sign(inputs[:, -1]))
    assert bit_error(guesses, targets).mean() == pytest.approx(0.25, abs=0.01)


@pytest.mark.bitexact
def test_env_plays_one_batch_episode_and_scores_the_last_action():
    env = PatternCompletionEnv(pattern_size=30, n_patterns=2, cycles=1, presentation=2, gap=1,
                               test_time=2)
    observation, _ = env.reset(seed=5)
    rows = [observation]
    for _ in range(env.schedule.steps - 1):
        observation, reward, terminated, truncated, info = env.step(np.ones(30, np.float32))
        assert (reward, terminated, truncated, info) == (0.0, False, False, {})
        rows.append(observation)
    # The episode is what the batch generator draws from a generator seeded like the env's.
    inputs, targets = pattern_completion_batch(seeding.np_random(5)[0], 1, env.schedule)
    assert np.array_equal(np.stack(rows), inputs[0]) and np.array_equal(env.target, targets[0])
    answer = np.sign(rows[-1])  # shown bits right, zeroed bits 0
    _, reward, terminated, truncated, info = env.step(answer.astype(np.float32))
    assert terminated and not truncated
    assert reward == pytest.approx(-np.mean((answer - env.target) ** 2))
    assert info["bit_error"] == pytest.approx(np.mean(answer == 0) / 2)


def test_pattern_schedule_rejects_bad_settings():
    with pytest.raises(ValueError, match="degrade"):
        PatternSchedule(degrade=1.5)
    with pytest.raises(ValueError, match="presentation"):
        PatternSchedule(presentation=0)
    with pytest.raises(TypeError):
        gym.make("smevo/PatternCompletion-v0", pattern_bits=3)


# --------------------------------------------------------------------------- grid maze


def _distances(walls: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """Shortest-path steps from every free cell to every goal (BFS per goal)."""
    maps = {}
    for goal in map(tuple, np.argwhere(~walls)):
        d = np.full(walls.shape, 10**6)
        d[goal] = 0
        queue = deque([goal])
        while queue:
            cell = queue.popleft()
            for move in MOVES:
                nxt = (cell[0] + move[0], cell[1] + move[1])
                if not walls[nxt] and d[nxt] > d[cell] + 1:
                    d[nxt] = d[cell] + 1
                    queue.append(nxt)
        maps[goal] = d
    return maps


def _mean_episode_reward(policy, size: int = 11, episodes: int = 300) -> float:
    """Mean total reward of `policy(info, rng) -> actions` over `episodes` 200-step episodes."""
    env = GridMazeVectorEnv(episodes, size=size)
    _, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    total = np.zeros(episodes)
    for _ in range(200):
        _, rewards, _, truncated, info = env.step(policy(info, rng))
        total += rewards
    assert truncated.all()
    return float(total.mean())


def test_layout_matches_the_reference_free_cell_counts():
    assert [int((~maze_walls(n)).sum()) for n in (9, 11, 13)] == [41, 65, 97]
    walls = maze_walls(11)
    assert walls[0].all() and walls[:, -1].all() and walls[2, 2] and not walls[5, 5]
    assert not maze_walls(9)[4, 4]  # the centre is freed where it would be a pillar


def test_uniform_random_policy_collects_the_reference_7_6():
    reward = _mean_episode_reward(lambda info, rng: rng.integers(4, size=len(info["goal"])))
    assert reward == pytest.approx(7.6, rel=0.10)


def test_goal_knowing_shortest_path_oracle_collects_the_reference_325():
    maps = _distances(maze_walls(11))

    def oracle(info, rng):
        return np.array([
            np.argmin([maps[tuple(goal)][tuple(position + move)] for move in MOVES])
            for position, goal in zip(info["position"], info["goal"], strict=True)
        ])

    assert _mean_episode_reward(oracle) == pytest.approx(325, rel=0.10)


@pytest.mark.bitexact
def test_goal_pays_and_teleports():
    env = GridMazeEnv()
    _, info = env.reset(seed=0)
    goal, position = info["goal"], info["position"]
    assert np.array_equal(position, [5, 5]) and not np.array_equal(goal, [5, 5])
    maps = _distances(maze_walls(11))
    for step in range(1, 201):
        action = int(np.argmin([maps[tuple(goal)][tuple(position + m)] for m in MOVES]))
        observation, reward, terminated, truncated, info = env.step(action)
        assert not terminated and truncated == (step == 200)
        if reward == 10.0:
            assert not np.array_equal(info["position"], goal)  # teleported off the goal
            assert not maze_walls(11)[tuple(info["position"])]
            break
        position = info["position"]
    else:
        pytest.fail("the oracle never reached the goal")
    assert observation[12] == 10.0 and observation[13 + action] == 1.0


def test_walls_block_and_cost_the_wall_penalty():
    env = GridMazeEnv(wall_penalty=0.5)
    seed = next(s for s in range(100) if env.reset(seed=s)[1]["goal"][1] != 5)
    env.reset(seed=seed)
    for row in (4, 3, 2, 1):  # up column 5 (odd: no pillars) to the border
        _, reward, *_, info = env.step(0)
        assert reward == 0.0 and info["position"].tolist() == [row, 5]
    observation, reward, *_, info = env.step(0)
    assert reward == -0.5 and info["position"].tolist() == [1, 5]
    assert observation[12] == -0.5 and observation[1] == 1.0  # the border is right above


@pytest.mark.bitexact
def test_observation_layout():
    env = GridMazeEnv()
    observation, _ = env.reset(seed=2)
    assert observation.dtype == np.float32 and observation.shape == (17,)
    assert observation[9] == 0 and observation[10] == 1 and observation[11] == 0
    assert observation[12] == 0 and not observation[13:].any()  # nothing before the first action
    assert np.array_equal(observation[:9].reshape(3, 3), maze_walls(11)[4:7, 4:7])
    observation, *_ = env.step(3)
    assert observation[11] == pytest.approx(1 / 200) and observation[16] == 1.0
    quirk = GridMazeEnv(first_action_quirk=True)
    assert quirk.reset(seed=2)[0][13] == 1.0


@pytest.mark.bitexact
def test_vector_env_steps_every_maze_like_a_single_env_with_its_seed():
    n, seeds = 4, [10, 11, 12, 13]
    vector = gym.make_vec("smevo/GridMaze-v0", num_envs=n, vectorization_mode="vector_entry_point",
                          size=9, episode_length=30)
    assert isinstance(vector.unwrapped, GridMazeVectorEnv)
    assert vector.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    singles = [GridMazeEnv(size=9, episode_length=30) for _ in range(n)]
    observations, info = vector.reset(seed=seeds)
    resets = [env.reset(seed=s) for env, s in zip(singles, seeds, strict=True)]
    assert np.array_equal(observations, np.stack([o for o, _ in resets]))
    assert np.array_equal(info["goal"], np.stack([i["goal"] for _, i in resets]))
    actions = np.random.default_rng(0).integers(4, size=(75, n))
    pending_reset = False
    for batch in actions:  # 2.5 episodes: two NEXT_STEP autoresets on the way
        observations, rewards, terminated, truncated, info = vector.step(batch)
        for i, env in enumerate(singles):
            if pending_reset:
                expected = (env.reset()[0], 0.0, False, False)
            else:
                expected = env.step(int(batch[i]))[:4]
            assert np.array_equal(observations[i], expected[0])
            assert (rewards[i], terminated[i], truncated[i]) == expected[1:]
            assert np.array_equal(info["position"][i], env._core.position[0])
        pending_reset = bool(truncated.all())
    vector.close()


@pytest.mark.bitexact
def test_vector_env_seeding_variants_and_errors():
    env = GridMazeVectorEnv(3)
    first = env.reset(seed=7)[1]["goal"]
    assert np.array_equal(env.reset(seed=[7, 8, 9])[1]["goal"], first)
    with pytest.raises(ValueError, match="a list of 3 ints"):
        env.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="actions"):
        env.step(np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="actions"):
        env.step(np.array([0.0, 1.0, 2.0]))
    with pytest.raises(gym.error.ResetNeeded):
        GridMazeVectorEnv(2).step(np.zeros(2, dtype=np.int64))


@pytest.mark.bitexact
def test_trainer_pool_uses_the_native_vector_env_with_identical_results():
    native = make_env_pool("smevo/GridMaze-v0", {"episode_length": 20}, index_episodes=False)
    assert isinstance(native, NativeVectorPool)
    single = SingleEnvPool("smevo/GridMaze-v0", {"episode_length": 20})
    seeds, options = [3, 3, 99, 1234], [None] * 4
    assert np.array_equal(native.reset(seeds, options), single.reset(seeds, options))
    active = np.ones(4, dtype=bool)
    for actions in np.random.default_rng(1).integers(4, size=(20, 4)):
        assert data_equivalence(native.step(actions, active)[:4],
                                single.step(actions, active)[:4])


@pytest.mark.parametrize(
    "kwargs, message",
    [({"size": 10}, "odd"), ({"size": 3}, "size"), ({"episode_length": 0}, "episode_length"),
     ({"reward": -1.0}, "reward"), ({"wall_penalty": float("nan")}, "wall_penalty")],
)
def test_grid_maze_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GridMazeEnv(**kwargs)


# --------------------------------------------------------------------------- cue / reward


def _play_cue_reward(env: CueRewardEnv, answer, seed: int) -> tuple[float, list[dict]]:
    observation, info = env.reset(seed=seed)
    target = info["target"]
    shown: set[int] = set()
    total, infos, truncated = 0.0, [], False
    while not truncated:
        cue = observation[:20]
        for k, c in enumerate(env.cues):
            if cue.any() and np.array_equal(cue, c):
                shown.add(k)
        go = bool(observation[20])
        action = answer(target in shown) if go else 0
        if go:
            shown = set()
        observation, reward, _, truncated, info = env.step(action)
        total += reward
        infos.append(info)
    return total, infos


@pytest.mark.bitexact
def test_cue_reward_trials_oracle_and_fixed_answers():
    env = CueRewardEnv()
    oracle, infos = _play_cue_reward(env, lambda present: int(present), seed=0)
    go_steps = sum(info["go"] for info in infos)
    assert 15 <= go_steps <= 24 and oracle == go_steps  # every trial answered right
    assert all(info["correct"] for info in infos if info["go"])
    fixed = [_play_cue_reward(env, lambda present: 1, seed=s)[0] for s in range(60)]
    assert abs(np.mean(fixed)) < 2.0  # half the trials hold the target: a fixed answer ~ 0


def test_cue_reward_observation_carries_reward_and_action():
    env = CueRewardEnv(response_cost=0.25)
    observation, _ = env.reset(seed=1)
    assert observation.shape == (27,) and observation[21] == 1 and not observation[25:].any()
    assert not observation[:20].any()  # every trial opens with a blank step
    observation, reward, *_ = env.step(1)
    assert reward == -0.25 and observation[23] == -0.25 and observation[26] == 1.0
    assert observation[22] == pytest.approx(1 / 120)
    trials = np.split(env.stimuli, np.flatnonzero(env.stimuli == -2) + 2)[:-1]
    assert all(5 <= len(t) <= 8 and (t >= 0).sum() == 2 for t in trials)


@pytest.mark.bitexact
def test_cue_reward_flip_probability_one_inverts_every_go_reward():
    env = CueRewardEnv(flip_probability=1.0)
    total, infos = _play_cue_reward(env, lambda present: int(present), seed=0)
    assert total == -sum(info["go"] for info in infos)
