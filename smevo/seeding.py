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
