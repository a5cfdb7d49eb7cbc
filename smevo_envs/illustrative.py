"""The safe-mutation paper's illustrative two-weight tasks: Easy, Medium and GradientWashout."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from smevo_envs._drawing import RendersCells, signed_colours
from smevo_envs._validation import (
    OUTPUT_LIMIT,
    checked_box_action,
    checked_int,
    checked_options,
    checked_render_mode,
    step_after_the_end,
)

# task -> (input rows, target rows), as in the reference's sm_simple.py.
TASKS: dict[str, tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]] = {
    "easy": (((0.0, 1.0), (0.0, 1.0)), ((0.0, 1.0), (0.0, 1.0))),
    "medium": (((1.0, 0.0), (0.0, 1.0)), ((1.0, 0.0), (0.0, 1.0))),
    "washout": (((1.0, 1.0), (-1.0, -1.0)), ((1.0, 1.0), (-1.0, -1.0))),
}


class IllustrativeEnv(RendersCells, gym.Env[np.ndarray, np.ndarray]):
    """One of the paper's illustrative regression tasks, one input row per step.

    ## Description

    The illustrative domain of Lehman, Chen, Clune & Stanley, *Safe Mutations for Deep and
    Recurrent Neural Networks through Output Gradients* (GECCO 2018). An agent sees a fixed
    list of input rows x, one per step, and answers each with an output y; it is scored by
    the squared error to a target row. The paper pairs it with a two-weight model
    y = (100·w0·x0, 0.1·w1·x1) (smevo's `toy2w` policy), whose two weights differ in
    sensitivity by a factor of 1000:

    | task      | id                         | input rows        | targets           | optimum    |
    |-----------|----------------------------|-------------------|-------------------|------------|
    | `easy`    | `smevo/Easy-v0`            | (0, 1), (0, 1)    | (0, 1), (0, 1)    | w1 = 10    |
    | `medium`  | `smevo/Medium-v0`          | (1, 0), (0, 1)    | (1, 0), (0, 1)    | w0 = 0.01, |
    |           |                            |                   |                   | w1 = 10    |
    | `washout` | `smevo/GradientWashout-v0` | (1, 1), (-1, -1)  | (1, 1), (-1, -1)  | w0 = 0.01, |
    |           |                            |                   |                   | w1 = 10    |

    In `washout` the gradients of the output with respect to w0 from the two rows cancel
    when summed, so SM-G-SUM sees no sensitivity where there is a large one.

    ## Action Space

    `Box(-1e6, 1e6, (2,), float32)`: the output y for the current row. The task itself has
    no bound: ±1e6 is far beyond any output of the two-weight model here. Out-of-bound
    outputs are clipped to the bounds; NaN and infinity are refused with a ValueError.

    ## Observation Space

    `Box(-1, 1, (2,), float32)`: the current input row (x0, x1); zeros after the last step.

    ## Rewards

    Each step: minus the squared error of the answer to the current row,
    `-((y0 - t0)**2 + (y1 - t1)**2)`. The best return is 0.

    ## Starting State

    The first row. The task is deterministic: there is no randomness.

    ## Episode End

    The episode terminates (`terminated=True`) after the last row. There is no truncation.
    A step after the end warns and returns the last observation again with reward 0.

    ## Rendering

    `render_mode="rgb_array"`: three rows of two cells in grey levels (-1 black, 0 grey,
    1 white): the current input row, the last output and the target it was scored against.

    ## Arguments

    ```python
    gym.make("smevo/Easy-v0", repeats=1)
    ```

    * `task`: "easy", "medium" or "washout" (set by the registered id).
    * `repeats`: the rows are shown `repeats` times in order (default 1, two rows per
      episode; `repeats=4` gives the reference's 8 rows: r0, r1, r0, r1, ...).

    The registered `reward_threshold` is -0.01 (summed squared error below 0.01).

    ## Version History

    * v0: initial version.

    ## Example

    >>> import gymnasium as gym
    >>> import smevo_envs
    >>> env = gym.make("smevo/GradientWashout-v0")
    >>> env.reset(seed=0)
    (array([1., 1.], dtype=float32), {})
    >>> env.step([1.0, 0.5])[:4]
    (array([-1., -1.], dtype=float32), -0.25, False, False)
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(self, render_mode: str | None = None, *, task: str = "easy", repeats: int = 1):
        self.render_mode = checked_render_mode(render_mode, self.metadata)
        if task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
        self.task = task
        self.repeats = checked_int(repeats, "repeats", 1, 1_000_000)
        rows, targets = TASKS[task]
        self.rows = np.tile(np.array(rows, dtype=np.float32), (self.repeats, 1))
        self.targets = np.tile(np.array(targets, dtype=np.float64), (self.repeats, 1))
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-OUTPUT_LIMIT, OUTPUT_LIMIT, shape=(2,), dtype=np.float32)

        self.t: int | None = None
        self.last_output = np.full(2, np.nan)  # the last step's (clipped) action

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        checked_options(options, ())
        self.t = 0
        self.last_output = np.full(2, np.nan)
        return self.rows[0].copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.t is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        y = checked_box_action(action, self.action_space)
        if self.t >= len(self.rows):
            return step_after_the_end(np.zeros(2, np.float32), terminated=True, truncated=False)
        reward = -float(np.sum((y - self.targets[self.t]) ** 2))
        self.last_output = y
        self.t += 1
        terminated = self.t == len(self.rows)
        observation = np.zeros(2, dtype=np.float32) if terminated else self.rows[self.t].copy()
        return observation, reward, terminated, False, {}

    def _cells(self) -> list[np.ndarray]:
        nothing = np.full(2, np.nan)
        started = self.t is not None
        current = self.rows[self.t] if started and self.t < len(self.rows) else nothing
        scored = self.targets[self.t - 1] if started and self.t > 0 else nothing
        return [signed_colours(row[None]) for row in (current, self.last_output, scored)]
