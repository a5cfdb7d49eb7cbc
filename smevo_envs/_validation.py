"""Checks shared by the environments: a bad action is a ValueError that says what was wrong."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding


def checked_box_action(action: Any, space: spaces.Box, what: str = "action") -> np.ndarray:
    """Return `action` as a float64 array of `space`'s shape, or raise ValueError.

    The action must be array-like with a real (integer or floating) dtype, exactly the
    space's shape, finite and representable in the space's dtype, and inside the space's
    bounds. A bounded space rejects out-of-range values instead of clipping them.
    """
    try:
        array = np.asarray(action)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{what} must be array-like with shape {space.shape}, got {action!r}"
        ) from error
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{what} must hold real numbers, got dtype {array.dtype}: {action!r}")
    if array.shape != space.shape:
        raise ValueError(f"{what} must have shape {space.shape}, got shape {array.shape}")
    array = array.astype(np.float64)
    largest = float(np.finfo(space.dtype).max)
    if not np.all(np.isfinite(array) & (np.abs(array) <= largest)):
        raise ValueError(
            f"{what} must be finite {np.dtype(space.dtype).name} values, got {array.tolist()}"
        )
    if np.any(array < space.low) or np.any(array > space.high):
        raise ValueError(
            f"{what} must lie within [{space.low.tolist()}, {space.high.tolist()}], "
            f"got {array.tolist()}"
        )
    return array


def checked_render_mode(render_mode: str | None, metadata: dict[str, Any]) -> str | None:
    """Return `render_mode` if it is None or one of metadata["render_modes"], else raise."""
    if render_mode is not None and render_mode not in metadata["render_modes"]:
        raise ValueError(
            f"render_mode must be None or one of {metadata['render_modes']}, got {render_mode!r}"
        )
    return render_mode


def checked_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    """Return `value` as an int in [low, high], or raise ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return int(value)


def checked_options(options: dict[str, Any] | None, allowed: tuple[str, ...]) -> dict[str, Any]:
    """Return `options` (None -> {}), or raise ValueError if it has a key not in `allowed`."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f"options must be a dict or None, got {type(options).__name__}")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown reset options {unknown}; valid options: {list(allowed)}")
    return options


def checked_discrete_action(action: Any, space: spaces.Discrete, what: str = "action") -> int:
    """Return `action` as an int of the Discrete `space`, or raise ValueError.

    Accepted: a Python or NumPy integer, or a 0-d integer array (what `space.sample()` and an
    argmax give). Booleans, floats (even integral ones), arrays with axes and values outside
    `[start, start + n)` are rejected.
    """
    array = np.asarray(action) if isinstance(action, np.ndarray | np.generic | int) else None
    if array is None or array.shape != () or array.dtype.kind not in "iu":
        raise ValueError(f"{what} must be an integer of {space}, got {action!r}")
    value = int(array)
    if not space.start <= value < space.start + space.n:
        raise ValueError(
            f"{what} must lie in [{space.start}, {space.start + space.n - 1}], got {value}"
        )
    return value


def sub_env_generators(
    seed: int | Sequence[int] | None, num_envs: int
) -> list[np.random.Generator]:
    """One generator per sub-env of a vector env, each as a single env reset with its seed
    would get: `seed=s` gives sub-env i the seed s + i, a sequence one seed each, None fresh
    entropy. A sequence of the wrong length is a ValueError."""
    if seed is None:
        seeds: list[int | None] = [None] * num_envs
    elif isinstance(seed, int | np.integer):
        seeds = [int(seed) + i for i in range(num_envs)]
    else:
        seeds = [int(s) for s in seed]
        if len(seeds) != num_envs:
            raise ValueError(f"reset needs {num_envs} seeds, got {len(seeds)}")
    return [seeding.np_random(s)[0] for s in seeds]
