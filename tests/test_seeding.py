"""Seed streams: the batched derivations (a generation's tasks and children at once) give what
NumPy's SeedSequence gives one stream at a time."""

import numpy as np
import pytest
import torch

from smevo.seeding import (
    derive_seed,
    derive_seeds,
    episode_seed_rows,
    episode_seeds,
    torch_generator,
    torch_generators,
)

RNG = np.random.default_rng(20261204)
KEY_SETS = [
    pytest.param(RNG.integers(0, 10, size=(9, k)), id=f"small-{k}-keys") for k in range(7)
] + [
    pytest.param(RNG.integers(0, 2**32 - 1, size=(9, k)), id=f"wide-{k}-keys") for k in (1, 3, 5)
]


@pytest.mark.parametrize("run_seed", [0, 7, 2**32 - 2])
@pytest.mark.parametrize("keys", KEY_SETS)
def test_batched_streams_equal_one_stream_at_a_time(run_seed, keys):
    rows = [[int(k) for k in row] for row in keys]
    assert derive_seeds(run_seed, keys) == [derive_seed(run_seed, *row) for row in rows]
    for count in (1, 2, 5, 9):
        assert episode_seed_rows(run_seed, count, keys) == [
            episode_seeds(run_seed, count, *row) for row in rows]


@pytest.mark.parametrize(("run_seed", "key"), [(2**32 - 1, 3), (2**40 + 5, 3), (4, 2**33)])
def test_values_of_a_word_or_more_are_hashed_as_seed_sequence_splits_them(run_seed, key):
    keys = np.array([[1, key], [key, 2]])
    assert derive_seeds(run_seed, keys) == [derive_seed(run_seed, 1, key),
                                            derive_seed(run_seed, key, 2)]
    assert episode_seed_rows(run_seed, 3, keys)[1] == episode_seeds(run_seed, 3, key, 2)


def test_no_rows_no_seeds():
    empty = np.zeros((0, 3), dtype=np.int64)
    assert derive_seeds(5, empty) == [] and episode_seed_rows(5, 4, empty) == []
    assert torch_generators(5, empty) == []


@pytest.mark.bitexact  # one seed, one stream of draws
def test_batched_generators_draw_what_one_at_a_time_draws():
    keys = np.array([(3, 11, i) for i in range(6)])
    for batched, row in zip(torch_generators(9, keys), keys.tolist(), strict=True):
        assert torch.equal(torch.randn(5, generator=batched),
                           torch.randn(5, generator=torch_generator(9, *row)))
