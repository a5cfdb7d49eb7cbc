"""What the environments share: checks of actions, seeds and settings (a ValueError or
TypeError that says what was wrong and what is accepted), and the step after an episode's
end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import logger, spaces
from gymnasium.utils import seeding

OUTPUT_LIMIT = 1.0e6
"""The bound of the Box action spaces whose actions are raw network outputs (parity's
logits, the illustrative tasks' regression outputs). The tasks define no bound; this one is
finite, as Gymnasium's checkers and agents that sample or rescale actions need, yet far
beyond any output the paper's networks produce (smevo's action decoder clips to the space,
so a bound they reached would change what is scored). A float32 bound leaves room above it:
`OUTPUT_LIMIT + 100` is still a larger float32."""


def checked_box_action(action: Any, space: spaces.Box, what: str = "action") -> np.ndarray:
    """Return `action` as a float64 array of `space`'s shape, clipped to the space's bounds.

    The action must be array-like with a real (integer or floating) dtype, exactly the
    space's shape, and finite (NaN and infinity are refused: they are bugs, not directions);
    anything else raises ValueError. A finite value outside the bounds acts as the nearest
    bound, as in Gymnasium's own Box envs (agents such as SB3's rely on it).
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
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must be finite (no NaN or infinity), got {array.tolist()}")
    return np.clip(array, space.low, space.high)


def step_after_the_end(
    observation: np.ndarray, terminated: bool, truncated: bool
) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
    """What `step()` returns once an episode has ended, by Gymnasium's convention (its own
    envs, CartPole's for one, do the same): a warning, then the episode's last observation
    and end flags again with reward 0. Nothing moves; `reset()` starts the next episode."""
    logger.warn(
        "step() called after the episode ended (terminated or truncated): it returns the last "
        "observation again with reward 0; call reset() to start a new episode"
    )
    return observation, 0.0, terminated, truncated, {}


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


def checked_discrete_actions(actions: Any, n: int, num_envs: int) -> np.ndarray:
    """A vector env's `num_envs` actions of a Discrete(n) space as an int64 array, or raise
    ValueError: an integer array of shape (num_envs,) with every value in [0, n)."""
    array = np.asarray(actions)
    if (
        array.shape != (num_envs,)
        or array.dtype.kind not in "iu"
        or not bool(np.all((array >= 0) & (array < n)))
    ):
        raise ValueError(f"actions must be {num_envs} integers in [0, {n}), got {actions!r}")
    return array.astype(np.int64)


def checked_seeds(seed: Any, num_envs: int) -> list[int | None]:
    """The seed of each sub-env of a vector env, from what `reset(seed=...)` was given.

    Accepted: None (fresh entropy for every sub-env), an int s >= 0 (sub-env i gets s + i),
    or a list or tuple of `num_envs` ints >= 0, one per sub-env. Anything else, a bool, a
    float or a list of the wrong length included, is a TypeError or ValueError that says
    what is accepted. The same rules hold for every vector env of this package.
    """
    accepted = f"None, an int >= 0, or a list of {num_envs} ints >= 0 (one per sub-env)"
    if seed is None:
        return [None] * num_envs
    if _is_int(seed):
        seeds = [int(seed) + i for i in range(num_envs)]
    elif isinstance(seed, list | tuple) and all(_is_int(s) for s in seed):
        if len(seed) != num_envs:
            raise ValueError(f"seed must be {accepted}; got a list of {len(seed)} seeds")
        seeds = [int(s) for s in seed]
    else:
        raise TypeError(f"seed must be {accepted}; got {seed!r}")
    if min(seeds) < 0:
        raise ValueError(f"seed must be {accepted}; got {seed!r}")
    return seeds


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def sub_env_generators(seed: Any, num_envs: int) -> SubEnvGenerators:
    """One generator per sub-env of a vector env, each as a single env reset with its seed
    would get (see `checked_seeds` for what `seed` may be)."""
    return SubEnvGenerators(checked_seeds(seed, num_envs))


class SubEnvGenerators(Sequence[np.random.Generator]):
    """The generators of a vector env's sub-envs, each made from its seed when first used: a
    reset whose episodes draw nothing (parity's chosen sequences) makes none, and making a
    generator costs more than stepping a small task. A generator made late is the one made at
    once: it depends on its seed alone."""

    def __init__(self, seeds: list[int | None]) -> None:
        self._seeds = seeds
        self._made: list[np.random.Generator | None] = [None] * len(seeds)

    def __len__(self) -> int:
        return len(self._seeds)

    def __getitem__(self, index: int) -> np.random.Generator:  # type: ignore[override]
        made = self._made[index]
        if made is None:
            made = self._made[index] = seeding.np_random(self._seeds[index])[0]
        return made
