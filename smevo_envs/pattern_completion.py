"""Binary pattern memorisation and completion (differentiable plasticity's first task).

`pattern_completion_batch` draws whole episodes as arrays (inputs and targets), the supervised
form the task was trained in (`smevo fit`); `PatternCompletionEnv` plays one such episode
step by step as a Gymnasium env, drawing it with the same function, for evolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from smevo_envs._drawing import RendersCells, beside, signed_colours, square
from smevo_envs._validation import (
    checked_box_action,
    checked_int,
    checked_options,
    checked_render_mode,
    step_after_the_end,
)
from smevo_envs.capabilities import EnvCapabilities


@dataclass(frozen=True)
class PatternSchedule:
    """The constants of one pattern-completion setting (reference/plasticity.md, section 2).

    Defaults are `simple/simplest.py`'s: 1000-bit i.i.d. ±1 patterns, 5 per episode, shown in
    2 cycles (each a fresh shuffle) for 6 steps each with 4 blank steps after, then one of
    them, degraded, for 6 steps: 106 steps. `degrade` is the fraction of the test pattern's
    bits set to 0: each bit independently with that probability, or exactly that share of
    the bits with `exact_degrade` (`simple.py`). `balanced` patterns hold exactly half +1 and
    half -1 (`simple.py`). Inputs are the bits times `input_gain` (20: a "soft clamp" of
    tanh neurons).
    """

    pattern_size: int = 1000
    n_patterns: int = 5
    cycles: int = 2
    presentation: int = 6
    gap: int = 4
    test_time: int = 6
    degrade: float = 0.5
    exact_degrade: bool = False
    balanced: bool = False
    input_gain: float = 20.0

    def __post_init__(self) -> None:
        checked_int(self.pattern_size, "pattern_size", 1)
        checked_int(self.n_patterns, "n_patterns", 1)
        checked_int(self.cycles, "cycles", 1)
        checked_int(self.presentation, "presentation", 1)
        checked_int(self.gap, "gap", 0)
        checked_int(self.test_time, "test_time", 1)
        if not 0.0 <= self.degrade <= 1.0:
            raise ValueError(f"degrade must be in [0, 1], got {self.degrade!r}")
        if not 0.0 < self.input_gain < np.finfo(np.float32).max:
            raise ValueError(f"input_gain must be a positive float32, got {self.input_gain!r}")

    @property
    def steps(self) -> int:
        """Steps per episode: cycles * n_patterns * (presentation + gap) + test_time."""
        return self.cycles * self.n_patterns * (self.presentation + self.gap) + self.test_time


def pattern_completion_batch(
    rng: np.random.Generator, batch: int, schedule: PatternSchedule | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`batch` independent episodes: inputs `[batch, steps, pattern_size]` float32 (already
    times `input_gain`) and targets `[batch, pattern_size]` float32, the undegraded test
    patterns. Every draw comes from `rng`, in a fixed order."""
    s = schedule or PatternSchedule()
    n, size = s.n_patterns, s.pattern_size
    if s.balanced:
        halves = np.where(np.arange(size) < size // 2, -1.0, 1.0)
        patterns = halves[np.argsort(rng.random((batch, n, size)), axis=-1)]
    else:
        patterns = rng.choice(np.array([-1.0, 1.0]), size=(batch, n, size))
    order = np.argsort(rng.random((batch, s.cycles, n)), axis=-1)
    test = rng.integers(n, size=batch)
    if s.exact_degrade:
        ranks = np.argsort(np.argsort(rng.random((batch, size)), axis=-1), axis=-1)
        zeroed = ranks < round(s.degrade * size)
    else:
        zeroed = rng.random((batch, size)) < s.degrade
    rows = np.arange(batch)
    targets = patterns[rows, test]
    block = s.presentation + s.gap
    inputs = np.zeros((batch, s.steps, size))
    for cycle in range(s.cycles):
        for k in range(n):
            start = (cycle * n + k) * block
            shown = patterns[rows, order[:, cycle, k]]
            inputs[:, start : start + s.presentation] = shown[:, None, :]
    inputs[:, s.steps - s.test_time :] = np.where(zeroed, 0.0, targets)[:, None, :]
    return (s.input_gain * inputs).astype(np.float32), targets.astype(np.float32)


def bit_error(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Sign error rate over the last axis, |sign(output) - target| / 2 averaged: a wrong sign
    counts 1, an output of exactly 0 counts 1/2 (a coin flip)."""
    return (np.abs(np.sign(outputs) - targets) / 2).mean(axis=-1)


class PatternCompletionEnv(RendersCells, gym.Env[np.ndarray, np.ndarray]):
    """Memorise a few binary patterns within an episode, then complete a degraded one.

    ## Description

    The first task of Miconi, Stanley & Clune, *Differentiable plasticity* (ICML 2018),
    `simple/simplest.py`. Each episode draws `n_patterns` random ±1 patterns of
    `pattern_size` bits. They are shown `cycles` times, in a fresh random order each cycle,
    each for `presentation` steps followed by `gap` blank (all-zero) steps. Then one of them
    is shown again for `test_time` steps with part of its bits zeroed (`degrade`); at the
    last step the agent must output the whole pattern. The patterns are new every episode,
    so they must be stored within the episode: fixed weights cannot, Hebbian traces can.
    With the defaults an episode is 2 * 5 * (6 + 4) + 6 = 106 steps.

    ## Action Space

    `Box(-1, 1, (pattern_size,), float32)`: the completed pattern. Only the action of the
    last step is scored; earlier ones are checked and ignored. Out-of-bound values are
    clipped to [-1, 1]; NaN and infinity are refused with a ValueError.

    ## Observation Space

    `Box(-input_gain, input_gain, (pattern_size,), float32)`: the input row of the current
    step, the shown bits times `input_gain` (20), zeros in gaps and at zeroed test bits.

    | Num | Observation                          | Min          | Max         |
    |-----|--------------------------------------|--------------|-------------|
    | i   | bit i of the pattern shown, x gain   | -input_gain  | input_gain  |

    ## Rewards

    0 at every step but the last. At the last step the reward is minus the mean squared
    error per bit, `-mean((action - target)**2)` in [-4, 0], against the full (undegraded)
    test pattern.

    ## Starting State

    Patterns, presentation order, test pattern and the degradation mask are drawn from
    `self.np_random` at `reset` (by `pattern_completion_batch`, the supervised form of the
    task). The first observation is the first step's input row.

    ## Episode End

    The episode terminates (`terminated=True`) after the schedule's steps (106 by default).
    There is no truncation. A step after the end warns and returns the last observation
    again with reward 0.

    ## Information

    `reset` returns an empty dict. The last step returns `{"bit_error": e}`: the sign error
    rate, |sign(action) - target| / 2 averaged over the bits. Chance is about 0.25: the shown
    half is trivially right, the zeroed half a coin flip.

    ## Rendering

    `render_mode="rgb_array"`: three square grids of cells in grey levels (-1 black, 0 grey,
    1 white), side by side: the current input row (divided by `input_gain`), the last action
    and, after the last step, the target pattern.

    ## Arguments

    ```python
    gym.make("smevo/PatternCompletion-v0", pattern_size=1000, n_patterns=5, cycles=2,
             presentation=6, gap=4, test_time=6, degrade=0.5, exact_degrade=False,
             balanced=False, input_gain=20.0)
    ```

    The defaults are `simple/simplest.py`'s; the paper's network comparison used
    `pattern_size=50, n_patterns=2, cycles=1, presentation=3, gap=1, test_time=3` (11 steps).
    See `PatternSchedule` for every argument. The registered `reward_threshold` is -0.04,
    a mean squared error of at most 0.04 per bit (every bit within 0.2 of its target, on
    average).

    ## Version History

    * v0: initial version.

    ## Example

    >>> import gymnasium as gym
    >>> import smevo_envs
    >>> env = gym.make("smevo/PatternCompletion-v0", pattern_size=8, n_patterns=2, cycles=1,
    ...                presentation=1, gap=1, test_time=1)
    >>> observation, info = env.reset(seed=0)
    >>> observation.shape, env.unwrapped.schedule.steps
    ((8,), 5)
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}
    capabilities: ClassVar[EnvCapabilities] = EnvCapabilities(
        end_reward="minus the completion error, at the test step")

    def __init__(self, render_mode: str | None = None, **schedule: Any):
        self.render_mode = checked_render_mode(render_mode, self.metadata)
        self.schedule = PatternSchedule(**schedule)
        size, gain = self.schedule.pattern_size, self.schedule.input_gain
        self.observation_space = spaces.Box(-gain, gain, shape=(size,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(size,), dtype=np.float32)

        self.inputs: np.ndarray | None = None
        self.target: np.ndarray | None = None
        self.t = 0
        self.last_action = np.full(size, np.nan)  # the last step's (clipped) action

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        checked_options(options, ())
        inputs, targets = pattern_completion_batch(self.np_random, 1, self.schedule)
        self.inputs, self.target, self.t = inputs[0], targets[0], 0
        self.last_action = np.full(self.schedule.pattern_size, np.nan)
        return self.inputs[0], {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.inputs is None or self.target is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        action = checked_box_action(action, self.action_space)
        if self.t >= self.schedule.steps:
            last = np.zeros_like(self.inputs[0])
            return step_after_the_end(last, terminated=True, truncated=False)
        self.last_action = action
        self.t += 1
        if self.t < self.schedule.steps:
            return self.inputs[self.t], 0.0, False, False, {}
        reward = -float(np.mean((action - self.target) ** 2))
        info = {"bit_error": float(bit_error(action, self.target))}
        return np.zeros_like(self.inputs[0]), reward, True, False, info

    def _cells(self) -> list[np.ndarray]:
        size = self.schedule.pattern_size
        running = self.inputs is not None and self.t < self.schedule.steps
        shown = self.inputs[self.t] / self.schedule.input_gain if running else np.zeros(size)
        ended = self.target is not None and not running
        target = self.target if ended else np.full(size, np.nan)
        grids = (square(values) for values in (shown, self.last_action, target))
        return [beside(*(signed_colours(grid) for grid in grids))]
