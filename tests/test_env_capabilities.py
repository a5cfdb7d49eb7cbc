"""Env classes declare what the trainer may batch or fuse, and what they declare holds.

The registry sweep: every registered smevo/ id (and each Gymnasium id smevo declares on its
behalf) declares a vector twin exactly when it registers one; the trainer's pool takes every
declared twin, and the twin steps like single envs bit for bit, alone and under a rollout;
every declared native rollout exists and computes what the Python loop does. Then: a new id
with a twin is batched with no edit to smevo, and a declaration smevo cannot honour is an
error, never ignored.
"""

from __future__ import annotations

import dataclasses
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import data_equivalence

import smevo_envs
from smevo.evaluation import EvalSpec, EvalTask, ObsNormalizer, RolloutWorker
from smevo.evaluation.capabilities import (
    GYMNASIUM_CAPABILITIES,
    env_capabilities,
    make_episode_env,
)
from smevo.evaluation.env_pool import (
    VECTOR_SEEDERS,
    NativeVectorPool,
    SingleEnvPool,
    make_env_pool,
)
from smevo.evaluation.native import NATIVE_ROLLOUTS, NativeRollout
from smevo.functional import get_flat
from smevo.policies import make_policy
from smevo_envs import EnvCapabilities
from smevo_envs.capabilities import VECTOR_SEEDINGS

SMEVO_IDS = sorted(i for i in gym.registry if i.startswith("smevo/"))
SWEPT_IDS = SMEVO_IDS + sorted(GYMNASIUM_CAPABILITIES)
TWIN_IDS = [i for i in SWEPT_IDS if env_capabilities(i).vector_seeding is not None]
INDEXED_IDS = [i for i in TWIN_IDS if env_capabilities(i).indexed_episodes]
NATIVE_IDS = [i for i in SWEPT_IDS if env_capabilities(i).native_rollout is not None]
SEEDS = [3, 3, 99, 1234, 0, 77]  # a repeated seed too


def test_the_sweep_covers_every_smevo_env_and_the_declarations_smevo_relies_on():
    assert sorted(smevo_envs.ENV_IDS) == SMEVO_IDS
    assert set(TWIN_IDS) >= {"CartPole-v1", "smevo/BreadcrumbHardMaze-v0", "smevo/GridMaze-v0",
                             "smevo/RecurrentParity-v0", "smevo/CueReward-v0"}
    assert INDEXED_IDS == ["smevo/RecurrentParity-v0"]
    assert sorted(NATIVE_IDS) == ["CartPole-v1", "smevo/BreadcrumbHardMaze-v0"]


@pytest.mark.parametrize("env_id", SMEVO_IDS)
def test_a_vector_twin_is_declared_exactly_when_one_is_registered(env_id):
    declared = env_capabilities(env_id)
    assert (declared.vector_seeding is not None) == (gym.spec(env_id).vector_entry_point
                                                     is not None)
    assert declared.vector_seeding in (None, *VECTOR_SEEDINGS)
    assert declared.native_rollout in (None, *NATIVE_ROLLOUTS)
    assert set(VECTOR_SEEDINGS) <= set(VECTOR_SEEDERS)


@pytest.mark.parametrize("env_id", SMEVO_IDS)
def test_episodes_are_declared_indexed_exactly_when_reset_takes_an_index(env_id):
    env = gym.make(env_id)
    if env_capabilities(env_id).indexed_episodes:
        for index in (0, 1):
            assert env.observation_space.contains(env.reset(seed=0, options={"index": index})[0])
    else:
        with pytest.raises(ValueError, match="unknown reset options"):
            env.reset(seed=0, options={"index": 0})


def _sampled_actions(space: spaces.Space, n: int, seed: int) -> np.ndarray:
    space.seed(seed)
    return np.stack([np.asarray(space.sample()) for _ in range(n)])


@pytest.mark.parametrize("index_episodes", [False, True], ids=["plain", "indexed"])
@pytest.mark.parametrize("env_id", TWIN_IDS)
@pytest.mark.bitexact
def test_a_declared_twin_is_the_pool_and_steps_like_single_envs(env_id, index_episodes):
    if index_episodes and env_id not in INDEXED_IDS:
        assert isinstance(make_env_pool(env_id, {}, index_episodes=True), SingleEnvPool)
        return
    native = make_env_pool(env_id, {}, index_episodes=index_episodes)
    assert isinstance(native, NativeVectorPool)
    single = SingleEnvPool(env_id, {})
    n = len(SEEDS)
    options = [{"index": e % 2} if index_episodes else None for e in range(n)]
    assert data_equivalence(native.reset(SEEDS, options), single.reset(SEEDS, options),
                            exact=True)
    action_space = gym.make(env_id).action_space
    active = np.ones(n, dtype=bool)
    for t in range(2000):  # as a rollout does: ended sub-envs drop out, until none is left
        actions = _sampled_actions(action_space, n, seed=t)
        ours, theirs = native.step(actions, active), single.step(actions, active)
        assert data_equivalence([a[active] for a in ours], [a[active] for a in theirs],
                                exact=True)
        active &= ~(theirs[2] | theirs[3])
        if not active.any():
            break
    assert not active.any(), "every episode should end within the test's horizon"
    native.close()
    single.close()


def _genomes(worker: RolloutWorker, count: int) -> np.ndarray:
    """`count` seeded genomes from timid to bold (bold ones roam, and reach what is random)."""
    size = len(get_flat(worker.policy))
    scales = np.geomspace(0.3, 30.0, count)[:, None]
    return (np.random.default_rng(11).normal(size=(count, size)) * scales).astype(np.float32)


def _same_results(a: list, b: list) -> None:
    for x, y in zip(a, b, strict=True):
        assert (x.index, x.fitness, x.returns, x.steps, x.solved, x.broken) == (
            y.index, y.fitness, y.returns, y.steps, y.solved, y.broken)
        for u, v in zip(x.experiences, y.experiences, strict=True):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("env_id", TWIN_IDS)
@pytest.mark.bitexact
def test_rollouts_through_a_declared_twin_equal_those_on_single_envs(env_id):
    # The trainer's lockstep path with a recurrent policy (never fused): fitnesses, steps and
    # recorded sequences are those single envs give. (Declaring the grid maze "deterministic"
    # makes this fail: a bold genome reaches a goal placed by the seed.)
    spec = EvalSpec(env_id, {}, "rnn", {"hidden": 6}, index_episodes=env_id in INDEXED_IDS)
    worker = RolloutWorker(spec)
    assert isinstance(worker.pool, NativeVectorPool) and worker.native is None
    params = _genomes(worker, 4)
    tasks = [EvalTask(i, (10 * i, 10 * i + 1, 10 * i + 1), 5 + i) for i in range(4)]
    batched = worker.evaluate(params, tasks, ObsNormalizer())
    worker.pool = SingleEnvPool(env_id, {})
    _same_results(batched, worker.evaluate(params, tasks, ObsNormalizer()))


@pytest.mark.parametrize("env_id", NATIVE_IDS)
@pytest.mark.bitexact
def test_a_declared_native_rollout_is_taken_and_matches_the_python_loop(env_id):
    spec = EvalSpec(env_id, {}, "mlp", {"hidden": 8}, archive_size=20)
    fused, loop = RolloutWorker(spec), RolloutWorker(dataclasses.replace(spec, native=False))
    assert fused.native is not None and loop.native is None
    params = _genomes(fused, 3)
    tasks = [EvalTask(i, (100 + i, 200 + i), 9 + i) for i in range(3)]
    _same_results(fused.evaluate(params, tasks, ObsNormalizer()),
                  loop.evaluate(params, tasks, ObsNormalizer()))


@pytest.fixture
def registered():
    """Registers ids for one test (namespace smevo_test/, outside the sweeps) and removes them."""
    ids = []

    def register(env_id: str, **spec) -> str:
        gym.register(env_id, **spec)
        ids.append(env_id)
        return env_id

    yield register
    for env_id in ids:
        del gym.registry[env_id]


@pytest.mark.bitexact
def test_a_new_id_with_a_declared_twin_is_batched_with_no_edit_to_smevo(registered):
    env_id = registered("smevo_test/ShortGridMaze-v0",
                        entry_point="smevo_envs.grid_maze:GridMazeEnv",
                        vector_entry_point="smevo_envs.grid_maze:GridMazeVectorEnv",
                        kwargs={"episode_length": 20})
    native = make_env_pool(env_id, {}, index_episodes=False)
    assert isinstance(native, NativeVectorPool)
    single = SingleEnvPool(env_id, {})
    assert np.array_equal(native.reset(SEEDS, [None] * 6), single.reset(SEEDS, [None] * 6))


class _Declares(gym.Env):
    """An env class whose declarations smevo cannot honour (set per test)."""

    observation_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = spaces.Discrete(2)
    capabilities: object = EnvCapabilities()


def _declaring(registered, capabilities: object) -> str:
    declares = type("Declares", (_Declares,), {"capabilities": capabilities})
    return registered("smevo_test/Declares-v0", entry_point=declares)


def test_an_unknown_vector_seeding_is_an_error_naming_the_known_ones(registered):
    env_id = _declaring(registered, EnvCapabilities(vector_seeding="per_episode"))
    with pytest.raises(ValueError, match="unknown vector seeding 'per_episode'; valid: per_env"):
        make_env_pool(env_id, {}, index_episodes=False)


def test_an_unknown_native_rollout_is_an_error_naming_the_known_ones(registered):
    env_id = _declaring(registered, EnvCapabilities(native_rollout="pendulum"))
    env = gym.make(env_id)
    policy = make_policy("mlp", env.observation_space, env.action_space).double()
    with pytest.raises(ValueError, match="unknown native rollout 'pendulum'; valid: cartpole"):
        NativeRollout.build(env_id, {}, env, policy)


def test_an_attribute_that_is_not_a_declaration_declares_nothing(registered):
    env_id = _declaring(registered, {"vector_seeding": "per_env"})  # a foreign env's own use
    assert env_capabilities(env_id) == EnvCapabilities()
    assert isinstance(make_env_pool(env_id, {}, index_episodes=False), SingleEnvPool)


def test_reading_capabilities_imports_nothing_the_id_names():
    module = "smevo_test_never_imported"
    assert env_capabilities(f"{module}:smevo/GridMaze-v0") == env_capabilities(
        "smevo/GridMaze-v0")
    assert env_capabilities(f"{module}:make_anything") == EnvCapabilities()
    pool = make_env_pool(f"{module}:smevo/GridMaze-v0", {}, index_episodes=False)
    pool.reset([1, 2], [None, None])
    assert module not in sys.modules


def test_an_env_that_declares_an_end_reward_refuses_max_steps_with_no_edit_to_smevo(registered):
    from smevo.config import EnvConfig
    from smevo.runnable import check_max_steps

    env_id = _declaring(registered, EnvCapabilities(end_reward="the score, at the end"))
    check_max_steps(EnvConfig(id=env_id))
    with pytest.raises(ValueError, match=r"its reward \(the score, at the end\) arrives only"):
        check_max_steps(EnvConfig(id=env_id, max_steps=5))
    check_max_steps(EnvConfig(id="smevo/GridMaze-v0", max_steps=5))  # rewards along the way


def _random_play(env: gym.Env, seed: int, steps: int, actions_seed: int) -> float:
    """The return of `steps` uniformly random actions (drawn from `actions_seed`)."""
    env.reset(seed=seed)
    rng, total = np.random.default_rng(actions_seed), 0.0
    for _ in range(steps):
        _, reward, terminated, truncated, _ = env.step(
            rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        total += float(reward)
        if terminated or truncated:
            break
    return total


@pytest.mark.bitexact
def test_an_episode_of_an_env_whose_reset_keeps_state_depends_on_its_seed_alone():
    # BipedalWalker keeps its Box2D world across resets: after these two episodes the same
    # seed and actions play out differently (found by a search over histories).
    history = [(511, 302, 950), (34, 58, 822)]
    assert env_capabilities("BipedalWalker-v3").reset_keeps_state
    plain = gym.make("BipedalWalker-v3")
    alone = _random_play(gym.make("BipedalWalker-v3"), 100, 300, 0)
    for seed, steps, actions_seed in history:
        _random_play(plain, seed, steps, actions_seed)
    assert _random_play(plain, 100, 300, 0) != alone  # the bug, in Gymnasium's env itself
    episodic = make_episode_env("BipedalWalker-v3")
    for seed, steps, actions_seed in history:
        _random_play(episodic, seed, steps, actions_seed)
    assert _random_play(episodic, 100, 300, 0) == alone
    assert not env_capabilities("LunarLander-v3").reset_keeps_state  # a new world at reset
