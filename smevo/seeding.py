"""Every random draw of a run derives from the run seed and *what* is drawn, never from which
worker draws it, so a run is the same whatever the backend and the number of workers."""

from __future__ import annotations

import numpy as np
import torch

# Stream tags: the first key after the run seed says what a stream is for.
INIT, EVALUATION, VALIDATION, MUTATION, SELECTION, CONFIRMATION = range(6)


def derive_seed(run_seed: int, *keys: int) -> int:
    """A 63-bit seed for the stream named by `keys` under `run_seed`."""
    state = np.random.SeedSequence([run_seed, *keys]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def numpy_rng(run_seed: int, *keys: int) -> np.random.Generator:
    """A numpy generator for the stream named by `keys`."""
    return np.random.default_rng(np.random.SeedSequence([run_seed, *keys]))


def torch_generator(run_seed: int, *keys: int) -> torch.Generator:
    """A CPU torch generator for the stream named by `keys`."""
    return torch.Generator().manual_seed(derive_seed(run_seed, *keys))


def episode_seeds(run_seed: int, count: int, *keys: int) -> list[int]:
    """One env seed per episode of the evaluation named by `keys`."""
    state = np.random.SeedSequence([run_seed, *keys]).generate_state(count, dtype=np.uint32)
    return [int(s) for s in state]


def derive_seeds(run_seed: int, keys: np.ndarray) -> list[int]:
    """`derive_seed(run_seed, *row)` for every row of `keys` `[N, K]`, at once."""
    state = _seed_sequence_states(run_seed, keys, 2).astype(np.int64)
    return ((state[:, 0] << 31) ^ state[:, 1]).tolist()


def episode_seed_rows(run_seed: int, count: int, keys: np.ndarray) -> list[list[int]]:
    """`episode_seeds(run_seed, count, *row)` for every row of `keys` `[N, K]`, at once."""
    return _seed_sequence_states(run_seed, keys, count).tolist()


def torch_generators(run_seed: int, keys: np.ndarray) -> list[torch.Generator]:
    """`torch_generator(run_seed, *row)` for every row of `keys` `[N, K]`."""
    return [torch.Generator().manual_seed(seed) for seed in derive_seeds(run_seed, keys)]


# NumPy's `SeedSequence` (NEP 19, after M. O'Neill's seed_seq): pool of four 32-bit words, its
# hash and mix multipliers. A stable algorithm: NumPy guarantees the states it derives.
_POOL_SIZE, _SHIFT = 4, np.uint32(16)
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = np.uint32(0xCA01F9DD), np.uint32(0x4973F715)
_ONE_WORD = 0xFFFFFFFF
"""Entropy values below this are one word each, as SeedSequence splits them."""


def _hashed(value: np.ndarray, constant: int, multiplier: int) -> tuple[np.ndarray, int]:
    """SeedSequence's hash of 32-bit words `value` under `constant`, and the next constant."""
    value = value ^ np.uint32(constant)
    constant = (constant * multiplier) & 0xFFFFFFFF
    value = value * np.uint32(constant)
    return value ^ (value >> _SHIFT), constant


def _seed_sequence_states(run_seed: int, keys: np.ndarray, words: int) -> np.ndarray:
    """`SeedSequence([run_seed, *row]).generate_state(words, uint32)` `[N, words]` for every
    row of `keys`: the same hashing, one NumPy operation per step for all rows instead of a
    SeedSequence object per row (a generation's tasks and children ask for thousands).
    Values of a word or more go to SeedSequence itself, row by row."""
    keys = np.asarray(keys, dtype=np.int64)
    if not (0 <= run_seed < _ONE_WORD and (keys.size == 0 or
                                             (keys.min() >= 0 and keys.max() < _ONE_WORD))):
        return np.array([np.random.SeedSequence([run_seed, *row.tolist()])
                         .generate_state(words, dtype=np.uint32) for row in keys],
                        dtype=np.uint32).reshape(len(keys), words)
    entropy = np.column_stack([np.full(len(keys), run_seed), keys]).astype(np.uint32)
    constant = _INIT_A

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal constant
        hashed, constant = _hashed(value, constant, _MULT_A)
        return hashed

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = _MIX_L * x - _MIX_R * y
        return result ^ (result >> _SHIFT)

    length = entropy.shape[1]
    zero = np.zeros(len(entropy), dtype=np.uint32)
    pool = [hashmix(entropy[:, i] if i < length else zero) for i in range(_POOL_SIZE)]
    for source in range(_POOL_SIZE):
        for target in range(_POOL_SIZE):
            if source != target:
                pool[target] = mix(pool[target], hashmix(pool[source]))
    for source in range(_POOL_SIZE, length):
        for target in range(_POOL_SIZE):
            pool[target] = mix(pool[target], hashmix(entropy[:, source]))
    constant = _INIT_B
    state = np.empty((len(entropy), words), dtype=np.uint32)
    for i in range(words):
        state[:, i], constant = _hashed(pool[i % _POOL_SIZE], constant, _MULT_B)
    return state
