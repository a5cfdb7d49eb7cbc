"""Every smevo/ environment passes the checks of Gymnasium's own env test suite.

Gymnasium's `tests/envs` (test_envs.py, test_action_dim_check.py, test_rendering.py,
registration/) runs these checks on the envs Gymnasium ships; here they run, written anew, on
every id of `smevo_envs.ENV_IDS`: `check_env` with warnings as errors (except the three
Gymnasium's suite itself ignores), the passive checker, same-seed rollouts, pickling,
`rgb_array` frames, out-of-bound actions, the spec's round trip through JSON and `gym.make`
with `max_episode_steps`, and each vector entry point against Gymnasium's own
`SyncVectorEnv` of single envs.
"""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec
from gymnasium.utils.env_checker import check_env, data_equivalence

import smevo_envs

IDS = smevo_envs.ENV_IDS
BOX_IDS = [i for i in IDS if isinstance(gym.make(i).action_space, spaces.Box)]
DISCRETE_IDS = [i for i in IDS if isinstance(gym.make(i).action_space, spaces.Discrete)]
VECTOR_IDS = [i for i in IDS if gym.spec(i).vector_entry_point is not None]

# The warnings Gymnasium's own suite ignores (test_envs.py, CHECK_ENV_IGNORE_WARNINGS): an
# unbounded observation space, and a Box action space other than [-1, 1] or [0, 1] (a
# recommendation for SB3; parity's logits and the illustrative outputs are not normalised).
IGNORED_WARNINGS = (
    r".*A Box observation space minimum value is -infinity",
    r".*A Box observation space maximum value is infinity",
    r".*For Box action spaces, we recommend using a symmetric and normalized space",
)


@pytest.fixture
def warnings_are_errors():
    """Within the test, every warning but `IGNORED_WARNINGS` raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for message in IGNORED_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


def test_every_id_is_swept_and_the_vector_twins_are_vector_envs():
    assert sorted(BOX_IDS + DISCRETE_IDS) == sorted(IDS)
    for env_id in VECTOR_IDS:
        twin = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
        assert isinstance(twin.unwrapped, gym.vector.VectorEnv)
        twin.close()


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_with_warnings_as_errors(env_id, warnings_are_errors):
    env = gym.make(env_id).unwrapped
    check_env(env)  # also makes and renders every declared render mode
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_passive_checker_is_silent(env_id, warnings_are_errors):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.render()
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_action_spaces_are_bounded(env_id):
    space = gym.make(env_id).action_space
    if isinstance(space, spaces.Box):
        assert space.is_bounded("both")


def _rollout(env: gym.Env, seed: int, steps: int) -> list:
    """Everything `env` returns over `steps` sampled actions, resetting with `seed` at the
    start and after every episode, each observation checked to be in the space."""
    env.action_space.seed(seed)
    record = [env.reset(seed=seed)]
    for _ in range(steps):
        step = env.step(env.action_space.sample())
        assert env.observation_space.contains(step[0])
        record.append(step)
        if step[2] or step[3]:
            record.append(env.reset(seed=seed))
    return record


@pytest.mark.parametrize("env_id", IDS)
def test_rollouts_with_one_seed_are_identical(env_id):
    first = _rollout(gym.make(env_id, disable_env_checker=True), seed=0, steps=50)
    second = _rollout(gym.make(env_id, disable_env_checker=True), seed=0, steps=50)
    assert data_equivalence(first, second, exact=True)


@pytest.mark.parametrize("env_id", IDS)
def test_pickled_env_continues_identically(env_id):
    env = gym.make(env_id)
    env.reset(seed=123)
    env.action_space.seed(123)
    env.step(env.action_space.sample())
    copy = pickle.loads(pickle.dumps(env))
    for _ in range(5):
        action = env.action_space.sample()
        original, copied = env.step(action), copy.step(action)
        assert data_equivalence(original, copied, exact=True)
        if original[2] or original[3]:
            assert data_equivalence(env.reset(seed=3), copy.reset(seed=3), exact=True)


@pytest.mark.parametrize("env_id", IDS)
def test_a_step_after_the_end_warns_and_repeats_the_last_observation(env_id):
    env = gym.make(env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    last = env.step(env.action_space.sample())
    while not (last[2] or last[3]):
        last = env.step(env.action_space.sample())
    for _ in range(2):
        with pytest.warns(UserWarning, match="after the episode ended"):
            after = env.step(env.action_space.sample())
        assert data_equivalence(after, (last[0], 0.0, last[2], last[3], {}), exact=True)
    with pytest.raises(gym.error.ResetNeeded):  # before the first reset it is an error
        gym.make(env_id).unwrapped.step(env.action_space.sample())


def _check_frame(frame: np.ndarray) -> None:
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
    assert frame.ndim == 3 and frame.shape[2] == 3 and min(frame.shape[:2]) > 0


@pytest.mark.parametrize("env_id", IDS)
def test_rgb_array_frames(env_id):
    metadata = gym.make(env_id).metadata
    assert "rgb_array" in metadata["render_modes"]
    assert isinstance(metadata["render_fps"], int) and metadata["render_fps"] > 0
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    _check_frame(env.render())
    env.action_space.seed(0)
    env.step(env.action_space.sample())
    _check_frame(env.render())
    env.close()


@pytest.mark.parametrize("env_id", BOX_IDS)
def test_out_of_bound_box_actions_act_as_the_bound(env_id):
    env = gym.make(env_id, disable_env_checker=True)
    beyond = gym.make(env_id, disable_env_checker=True)
    env.reset(seed=42)
    beyond.reset(seed=42)
    space = env.action_space
    for i in range(space.shape[0]):
        for bound, direction in ((space.high, 1), (space.low, -1)):
            for distance in (100.0, 1e300):  # Gymnasium's OOB_VALUE, and beyond float32
                action = bound.astype(np.float64)
                action[i] += direction * distance
                step = env.step(bound)
                assert data_equivalence(step, beyond.step(action), exact=True)
                if step[2] or step[3]:
                    env.reset(seed=42)
                    beyond.reset(seed=42)


@pytest.mark.parametrize("env_id", BOX_IDS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_infinite_box_actions_are_refused(env_id, value):
    env = gym.make(env_id)
    env.reset(seed=0)
    action = env.action_space.sample().astype(np.float64)
    action[0] = value
    with pytest.raises(ValueError, match="finite"):
        env.step(action)


@pytest.mark.parametrize("env_id", DISCRETE_IDS)
def test_out_of_bound_discrete_actions_are_refused(env_id):
    env = gym.make(env_id)
    env.reset(seed=0)
    space = env.action_space
    for action in (space.start + space.n, space.start - 1):
        with pytest.raises(ValueError, match="action"):
            env.step(action)


@pytest.mark.parametrize("env_id", IDS)
def test_spec_round_trips_through_json_and_remakes_the_env(env_id):
    env = gym.make(env_id)
    spec = EnvSpec.from_json(env.spec.to_json())
    assert spec == env.spec
    remade = gym.make(spec)
    assert type(remade.unwrapped) is type(env.unwrapped)
    env.action_space.seed(1)
    action = env.action_space.sample()
    assert data_equivalence(env.reset(seed=1), remade.reset(seed=1), exact=True)
    assert data_equivalence(env.step(action), remade.step(action), exact=True)


@pytest.mark.parametrize("env_id", IDS)
def test_make_with_max_episode_steps_truncates_there(env_id):
    env = gym.make(env_id, max_episode_steps=2)
    assert env.spec.max_episode_steps == 2
    env.reset(seed=0)
    env.action_space.seed(0)
    _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    assert not (terminated or truncated)
    assert env.step(env.action_space.sample())[3]


@pytest.mark.parametrize(
    ("env_id", "kwargs", "steps"),
    [
        ("smevo/RecurrentParity-v0", {"n_bits": 6}, 6),
        ("smevo/Easy-v0", {"repeats": 4}, 8),
        ("smevo/BreadcrumbHardMaze-v0", {"frame_skip": 1}, 400),
        ("smevo/PatternCompletion-v0", {"pattern_size": 4, "cycles": 3}, 156),
        ("smevo/GridMaze-v0", {"episode_length": 250}, 250),
        ("smevo/CueReward-v0", {"episode_length": 150}, 150),
    ],
)
def test_arguments_that_lengthen_the_episode_are_not_cut_by_gym_make(env_id, kwargs, steps):
    # The horizon depends on the arguments, so no fixed max_episode_steps is registered:
    # the TimeLimit gym.make would add at the default horizon would cut these episodes.
    assert gym.spec(env_id).max_episode_steps is None
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    env.action_space.seed(0)
    ends = [any(env.step(env.action_space.sample())[2:4]) for _ in range(steps)]
    assert ends == [False] * (steps - 1) + [True]


def _vector_pair(env_id: str) -> tuple[gym.vector.VectorEnv, gym.vector.VectorEnv]:
    native = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    sync = gym.make_vec(env_id, num_envs=3, vectorization_mode="sync")
    return native, sync


@pytest.mark.parametrize("env_id", VECTOR_IDS)
@pytest.mark.bitexact
def test_vector_entry_point_steps_like_single_envs(env_id):
    native, sync = _vector_pair(env_id)
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"]
    assert native.single_action_space == sync.single_action_space
    assert native.single_observation_space == sync.single_observation_space
    assert np.array_equal(native.reset(seed=5)[0], sync.reset(seed=5)[0])
    horizon = {"smevo/RecurrentParity-v0": 4, "smevo/BreadcrumbHardMaze-v0": 134}
    native.action_space.seed(5)
    for _ in range(horizon.get(env_id, 200) + 6):  # past one episode end and its autoreset
        actions = native.action_space.sample()
        ours, theirs = native.step(actions)[:4], sync.step(actions)[:4]
        assert data_equivalence(ours, theirs, exact=True)


@pytest.mark.parametrize("env_id", [i for i in VECTOR_IDS if i in BOX_IDS])
def test_vector_out_of_bound_actions_act_as_the_bound(env_id):
    native, clipped = _vector_pair(env_id)[0], _vector_pair(env_id)[0]
    native.reset(seed=0)
    clipped.reset(seed=0)
    space = native.action_space
    for actions in (space.high.astype(np.float64) + 100.0, space.low.astype(np.float64) - 1e30):
        bound = np.clip(actions, space.low, space.high)
        assert data_equivalence(native.step(actions), clipped.step(bound), exact=True)
