"""Types of the fused C++ rollouts (cpp/rollout_bindings.cpp). Use smevo.evaluation.native.

Both rollout functions roll out `groups` MLP genomes (`genomes[g]`: each layer's weight `[out, in]`
row-major, then its bias) on `episodes` episodes each, release the GIL while they run, and
raise ValueError for arguments of the wrong shape or size before touching any memory. The
result maps "returns", "steps", "solved" and "broken" to `[groups * episodes]` arrays
(genome-major), "archive" to each genome's reservoir sample of observations
`[groups, archive_size, obs]` and "seen" to how many observations it was offered `[groups]`.
"""

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from smevo_envs._maze import Maze

ACTIVATIONS: tuple[str, ...]
"""The activations the C++ forward applies (hidden or output), by smevo.policies' names."""

def cartpole(
    sizes: Sequence[int],
    hidden: str,
    output: str,
    genomes: ArrayLike,
    initial_states: ArrayLike,
    episodes: int,
    max_steps: int,
    obs_mean: ArrayLike | None,
    obs_std: ArrayLike | None,
    obs_clip: float,
    archive_size: int,
    sample_seeds: ArrayLike,
) -> dict[str, NDArray[np.generic]]:
    """CartPole-v1 as registered, from `initial_states` `[groups * episodes, 4]`;
    `max_steps` < 0: only the env's 500-step limit. Observations are normalised as
    `clip((obs - obs_mean) / obs_std, ±obs_clip)` when `obs_mean` is given."""

def maze(
    sizes: Sequence[int],
    hidden: str,
    output: str,
    genomes: ArrayLike,
    maze: Maze,
    frame_skip: int,
    euclidean: bool,
    episodes: int,
    max_steps: int,
    obs_mean: ArrayLike | None,
    obs_std: ArrayLike | None,
    obs_clip: float,
    archive_size: int,
    sample_seeds: ArrayLike,
) -> dict[str, NDArray[np.generic]]:
    """The hard maze `maze` (built by `smevo_envs.maze.core_maze`), each action held for
    `frame_skip` simulator steps, rewarded by breadcrumb or (`euclidean`) straight-line
    distance; otherwise as `cartpole`."""

class MlpForward:
    """An `mlp`'s forward for the lockstep loop: one call per step for a group's rows."""

    def __init__(self, sizes: Sequence[int], hidden: str, output: str) -> None: ...
    def __call__(
        self, genomes: ArrayLike, episodes: int, inputs: ArrayLike, active: ArrayLike
    ) -> NDArray[np.float32]:
        """Outputs `[groups * episodes, out]` of `inputs [groups * episodes, in]`, row r by
        genome `r // episodes` of `genomes [groups, params]` (float64), rounded to float32;
        zeros where `active[r]` is False. ValueError for arrays whose shapes do not fit."""
    def prepare(self, genomes: ArrayLike) -> NDArray[np.float64]:
        """`genomes [groups, params]` as `__call__` reads them (float64)."""

class CnnForward:
    """A `cnn`'s forward for the lockstep loop: one call per step for a group's frames."""

    def __init__(
        self,
        frame: Sequence[int],
        channels_last: bool,
        scale: float,
        convs: Sequence[Sequence[int]],
        hidden: int,
        outputs: int,
        activation: str,
        output: str,
    ) -> None:
        """`frame` is (height, width, channels), laid out [H, W, C] if `channels_last` else
        [C, H, W], each value multiplied by `scale`; `convs` (channels, kernel, stride,
        padding) each; then a hidden layer of `hidden` units and `outputs` outputs.
        ValueError for sizes that do not make a network."""
    @property
    def num_params(self) -> int:
        """The genome length (torch's parameter order)."""
    def prepare(self, genomes: ArrayLike) -> NDArray[np.float32]:
        """`genomes [groups, num_params]` (float32) laid out as `__call__` reads them."""
    def __call__(
        self, prepared: ArrayLike, episodes: int, inputs: ArrayLike, active: ArrayLike
    ) -> NDArray[np.float32]:
        """Outputs `[groups * episodes, outputs]` of frames `inputs [groups * episodes,
        H * W * C]`, row r by prepared genome `r // episodes`, rounded to float32; zeros where
        `active[r]` is False. ValueError for arrays whose shapes do not fit."""
