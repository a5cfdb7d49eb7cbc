"""Every vector env of smevo_envs takes the same seeds: None, an int, or one int per sub-env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

import smevo_envs
from smevo_envs import _validation
from smevo_envs._validation import sub_env_generators

VECTOR_IDS = [i for i in smevo_envs.ENV_IDS if gym.spec(i).vector_entry_point is not None]
N = 3
ACCEPTED = "seed must be None, an int >= 0, or a list of 3 ints >= 0 (one per sub-env)"


def _make(env_id: str) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, num_envs=N, vectorization_mode="vector_entry_point")


@pytest.mark.parametrize("env_id", VECTOR_IDS)
def test_an_int_seed_means_one_consecutive_seed_per_sub_env(env_id):
    expected = _make(env_id).reset(seed=7)
    for seeds in ([7, 8, 9], (7, 8, 9), np.int64(7), [np.int64(7), 8, np.int32(9)]):
        assert data_equivalence(_make(env_id).reset(seed=seeds), expected, exact=True)
    _make(env_id).reset(seed=None)


@pytest.mark.parametrize("env_id", VECTOR_IDS)
@pytest.mark.parametrize(
    "seed",
    [1.5, "7", True, -1, [1, 2], [1, 2, 3, 4], [1.5, 2, 3], [1, -2, 3], {"seed": 1},
     np.array([1.0, 2.0, 3.0])],
    ids=repr,
)
def test_anything_else_is_refused_saying_what_is_accepted(env_id, seed):
    env = _make(env_id)
    with pytest.raises((TypeError, ValueError)) as error:
        env.reset(seed=seed)
    assert ACCEPTED in str(error.value)


@pytest.mark.bitexact  # a late generator draws exactly what one made at reset would
def test_sub_env_generators_are_made_when_first_used_and_draw_as_made_at_reset(monkeypatch):
    made = []
    real = _validation.seeding.np_random
    monkeypatch.setattr(_validation.seeding, "np_random",
                        lambda seed: made.append(seed) or real(seed))
    generators = sub_env_generators([5, 6, 7], N)
    assert len(generators) == N and made == []
    drawn = generators[2].random(4)
    assert made == [7] and generators[2] is generators[2]
    np.testing.assert_array_equal(drawn, real(7)[0].random(4))

    env = gym.make_vec("smevo/RecurrentParity-v0", num_envs=N,
                       vectorization_mode="vector_entry_point")
    made.clear()
    env.reset(seed=[1, 2, 3], options={"index": [0, 5, 9]})  # the sequences are chosen
    assert made == []
