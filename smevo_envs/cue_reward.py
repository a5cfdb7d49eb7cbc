"""Backpropamine's stimulus-response ("sr") task: learn which cue is rewarded, within an episode.

A Gymnasium env and its NumPy-batched vector twin, both over one batched core
(`CueRewardCore`); the single env is a batch of one. Every random draw of a sub-env comes from
that sub-env's own generator, in the same order in both, so a vector env reset with seeds s_i
steps every sub-env exactly like a single env reset with s_i.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from smevo_envs._core_vector import CoreVectorEnv
from smevo_envs._drawing import (
    AGENT,
    FREE,
    HIGHLIGHT,
    RIGHT,
    UNKNOWN,
    WALL,
    WRONG,
    RendersCells,
    signed_colours,
)
from smevo_envs._validation import (
    checked_discrete_action,
    checked_int,
    checked_options,
    checked_render_mode,
    step_after_the_end,
)
from smevo_envs.capabilities import EnvCapabilities

_BLANK, _GO = -1, -2  # stimulus codes besides cue indices


@dataclass(frozen=True)
class CueSettings:
    """The task's arguments (see `CueRewardEnv`), checked."""

    n_cues: int = 4
    cue_size: int = 20
    episode_length: int = 120
    reward: float = 1.0
    response_cost: float = 0.0
    flip_probability: float = 0.0

    def __post_init__(self) -> None:
        checked_int(self.cue_size, "cue_size", 1)
        most_cues = 2**self.cue_size if self.cue_size < 31 else None
        checked_int(self.n_cues, "n_cues", 2, most_cues)
        checked_int(self.episode_length, "episode_length", 1)
        for name in ("reward", "response_cost"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < 1e30):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (isinstance(self.flip_probability, int | float)
                and 0.0 <= self.flip_probability <= 1.0):
            raise ValueError(f"flip_probability must be in [0, 1], got {self.flip_probability!r}")

    @property
    def observation_space(self) -> spaces.Box:
        size = self.cue_size + 7
        low, high = np.zeros(size, np.float32), np.ones(size, np.float32)
        low[: self.cue_size] = -1.0
        low[self.cue_size + 3] = -(float(self.reward) + float(self.response_cost))
        high[self.cue_size + 3] = max(float(self.reward), 1.0)
        return spaces.Box(low, high, dtype=np.float32)


class CueRewardCore:
    """`n` episodes of the task as arrays: cues, target, per-step stimuli, clock, last
    reward and action. Episode i draws everything from the generator passed for it."""

    def __init__(self, n: int, settings: CueSettings) -> None:
        self.settings = s = settings
        self.cues = np.zeros((n, s.n_cues, s.cue_size))
        self.target = np.zeros(n, dtype=np.int64)
        self.stimuli = np.full((n, s.episode_length), _BLANK)  # a cue index, _BLANK or _GO
        self.target_shown = np.zeros((n, s.episode_length), dtype=bool)  # trial holds target
        self.t = np.zeros(n, dtype=np.int64)
        self.previous_reward = np.zeros(n)
        self.previous_action = np.full(n, -1)

    def reset(self, i: int, rng: np.random.Generator) -> None:
        """Draw episode i: distinct cues, the target, then every trial of the episode."""
        s = self.settings
        cues = rng.choice(np.array([-1.0, 1.0]), size=(s.n_cues, s.cue_size))
        while len(np.unique(cues, axis=0)) < s.n_cues:  # distinct cues (nearly always)
            cues = rng.choice(np.array([-1.0, 1.0]), size=(s.n_cues, s.cue_size))
        target = int(rng.integers(s.n_cues))
        stimuli: list[int] = []
        target_shown: list[bool] = []
        shown_per_trial = s.n_cues // 2
        while len(stimuli) < s.episode_length:
            length = shown_per_trial + 3 + int(rng.integers(s.n_cues))
            middle = np.full(length - 3, _BLANK)
            shown = rng.choice(s.n_cues, size=shown_per_trial, replace=False)
            middle[rng.permutation(length - 3)[:shown_per_trial]] = shown
            stimuli += [_BLANK, *middle.tolist(), _GO, _BLANK]
            target_shown += [bool(target in shown)] * length
        self.cues[i], self.target[i] = cues, target
        self.stimuli[i] = stimuli[: s.episode_length]
        self.target_shown[i] = target_shown[: s.episode_length]
        self.t[i], self.previous_reward[i], self.previous_action[i] = 0, 0.0, -1

    def step(
        self, actions: np.ndarray, active: np.ndarray, rngs: Sequence[np.random.Generator]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Act in the `active` episodes; returns rewards (0 elsewhere), which were at a Go
        step, and which answered right (before any flip)."""
        s = self.settings
        rows = np.arange(len(self.t))
        now = np.minimum(self.t, s.episode_length - 1)
        go = active & (self.stimuli[rows, now] == _GO)
        correct = go & (actions == self.target_shown[rows, now])
        sign = np.where(correct, 1.0, -1.0)
        if s.flip_probability > 0:
            for i in np.flatnonzero(go):
                if rngs[i].random() < s.flip_probability:
                    sign[i] = -sign[i]
        rewards = np.where(active, 0.0 - s.response_cost * actions, 0.0)
        rewards[go] += sign[go] * s.reward
        self.t[active] += 1
        self.previous_reward[active] = rewards[active]
        self.previous_action[active] = actions[active]
        return rewards, go, correct

    def observations(self) -> np.ndarray:
        """The `[n, cue_size + 7]` float32 observations (see `CueRewardEnv`)."""
        s, c = self.settings, self.settings.cue_size
        rows = np.arange(len(self.t))
        now = np.minimum(self.t, s.episode_length - 1)
        stimulus = np.where(self.t < s.episode_length, self.stimuli[rows, now], _BLANK)
        obs = np.zeros((len(self.t), c + 7), dtype=np.float32)
        cue = stimulus >= 0
        obs[cue, :c] = self.cues[rows[cue], stimulus[cue]]
        obs[:, c] = stimulus == _GO
        obs[:, c + 1] = 1.0
        obs[:, c + 2] = self.t / s.episode_length
        obs[:, c + 3] = self.previous_reward
        acted = self.previous_action >= 0
        obs[rows[acted], c + 5 + self.previous_action[acted]] = 1.0
        return obs


class CueRewardEnv(RendersCells, gym.Env[np.ndarray, np.int64]):
    """Find out by trial and error which of a few random cues is the rewarded one.

    ## Description

    The cue/reward association task of Miconi et al., *Backpropamine* (ICLR 2019),
    `sr/srbatch.py`. Each episode draws `n_cues` (4) distinct random ±1 cues of `cue_size`
    (20) bits and secretly picks one as the target. The episode is a series of trials of
    `n_cues // 2 + 3 + U{0, n_cues - 1}` steps (5 to 8): a blank step, then `n_cues // 2`
    (2) distinct random cues and blank steps in random order, then a "Go" step, then a blank
    step. Only the action taken at the Go step counts: responding (1) is right when the
    target was among the trial's cues, not responding (0) when it was not; half the trials
    contain it. The reward arrives as an input on the next step, so the target can only be
    found by experimenting and remembering: fixed weights cannot know it.

    ## Action Space

    `Discrete(2)`: 0 "no", 1 "yes, respond". The agent acts at every step.

    ## Observation Space

    `Box(27,)` float32:

    | Num   | Observation                                              | Min          | Max    |
    |-------|----------------------------------------------------------|--------------|--------|
    | 0-19  | the cue shown this step (0 at blank and Go steps)        | -1           | 1      |
    | 20    | Go bit: 1 at the step whose action is scored             | 0            | 1      |
    | 21    | bias, always 1                                           | 0            | 1      |
    | 22    | steps so far / episode_length                            | 0            | 1      |
    | 23    | the reward of the previous step                          | -(r + cost)  | r      |
    | 24    | unused, always 0                                         | 0            | 1      |
    | 25-26 | one-hot of the previous action (both 0 at step 0)        | 0            | 1      |

    (Rows 0-19 have `cue_size` entries; the later indices shift with it.)

    ## Rewards

    At a Go step: +`reward` (1) for the right answer, -`reward` for the wrong one (its sign
    flipped with probability `flip_probability`, 0 by default). Responding costs
    `response_cost` (0) at any step. About 18 trials fit in 120 steps, so a perfect agent
    nears +18 minus the trials it spends identifying the target; a fixed answer averages 0.

    ## Starting State

    Cues, target and every trial of the episode are drawn from `self.np_random` at `reset`.

    ## Episode End

    After `episode_length` (120) steps the episode is truncated (`truncated=True`, wherever
    the last trial stands). `terminated` is always False. A step after the end warns and
    returns the last observation again with reward 0.

    ## Information

    `reset` returns `{"target": i}`. Every step returns `{"go": bool}`, and at Go steps also
    `{"correct": bool}` (the answer was right, before any flip).

    ## Rendering

    `render_mode="rgb_array"`: the cue of this step in grey levels (-1 black, +1 white, grey
    at blank steps), and below it three cells: the Go signal (yellow at a Go step), the
    previous reward (green positive, red negative) and the previous action (blue 1, dark 0).

    ## Arguments

    ```python
    gym.make("smevo/CueReward-v0", n_cues=4, cue_size=20, episode_length=120, reward=1.0,
             response_cost=0.0, flip_probability=0.0)
    gym.make_vec("smevo/CueReward-v0", num_envs=30)  # the NumPy-batched vector env
    ```

    The defaults are the paper's (`--ni 4 --cs 20 --eplen 120 --rew 1 --wp 0 --pf 0`). The
    registered `reward_threshold` is 10.

    ## Version History

    * v0: initial version.

    ## Example

    >>> import gymnasium as gym
    >>> import smevo_envs
    >>> env = gym.make("smevo/CueReward-v0")
    >>> observation, info = env.reset(seed=0)
    >>> observation.shape, observation[20:].tolist()
    ((27,), [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}
    capabilities: ClassVar[EnvCapabilities] = EnvCapabilities(vector_seeding="per_env")

    def __init__(self, render_mode: str | None = None, **settings: Any):
        self.render_mode = checked_render_mode(render_mode, self.metadata)
        self.settings = CueSettings(**settings)
        self.episode_length = self.settings.episode_length
        self.observation_space = self.settings.observation_space
        self.action_space = spaces.Discrete(2)
        self._core = CueRewardCore(1, self.settings)
        self._started = False

    @property
    def cues(self) -> np.ndarray:
        """This episode's cues, `[n_cues, cue_size]` of ±1."""
        return self._core.cues[0]

    @property
    def target(self) -> int:
        """The index of this episode's rewarded cue."""
        return int(self._core.target[0])

    @property
    def stimuli(self) -> np.ndarray:
        """Per step of the episode: the index of the cue shown, -1 blank, -2 Go."""
        return self._core.stimuli[0]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        checked_options(options, ())
        self._core.reset(0, self.np_random)
        self._started = True
        return self._core.observations()[0], {"target": self.target}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        action = checked_discrete_action(action, self.action_space)
        if self._core.t[0] >= self.episode_length:
            return step_after_the_end(self._core.observations()[0], False, truncated=True)
        rewards, go, correct = self._core.step(
            np.array([action]), np.ones(1, dtype=bool), [self.np_random]
        )
        info: dict[str, Any] = {"go": bool(go[0])}
        if info["go"]:
            info["correct"] = bool(correct[0])
        truncated = bool(self._core.t[0] >= self.episode_length)
        return self._core.observations()[0], float(rewards[0]), False, truncated, info

    def _cells(self) -> list[np.ndarray]:
        observation = self._core.observations()[0]
        c = self.settings.cue_size
        cue = observation[:c] if observation[:c].any() else np.full(c, np.nan)
        reward = self._core.previous_reward[0]
        action = self._core.previous_action[0]
        signals = [
            HIGHLIGHT if observation[c] else FREE,
            RIGHT if reward > 0 else WRONG if reward < 0 else FREE,
            UNKNOWN if action < 0 else AGENT if action else WALL,
        ]
        return [signed_colours(cue[None]), np.array([signals], dtype=np.uint8)]


class CueRewardVectorEnv(CoreVectorEnv):
    """`num_envs` cue/reward episodes stepped together with NumPy, each with its own generator.

    The same task as `CueRewardEnv` (see its docstring), batched: observations
    (num_envs, cue_size + 7) float32, actions (num_envs,) integers in {0, 1}, rewards
    float64, `terminated` always False. Infos: `target` (num_envs,) at reset; `go` at every
    step and `correct` where `go` is True, each with its mask (`_target`, `_go`, `_correct`).

    Seeding: `reset(seed=s)` gives sub-env i the seed s + i; `reset(seed=[s_0, ...])` one seed
    per sub-env; anything else is refused (see `_validation.checked_seeds`). Either way
    sub-env i then behaves exactly like a single env reset with its seed (same cues, trials
    and flips, same observations for the same actions).

    Autoreset: `AutoresetMode.NEXT_STEP`. A sub-env whose episode ended on one step is reset
    on the next `step()`, which ignores its action and returns its first observation with
    reward 0 and `terminated = truncated = False`.

    Created by `gym.make_vec("smevo/CueReward-v0", num_envs=N)` (the registered
    `vector_entry_point`) with the single env's keyword arguments.
    """

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **settings: Any):
        self.settings = CueSettings(**settings)
        self._setup(num_envs, render_mode, self.settings.observation_space, 2,
                    lambda n: CueRewardCore(n, self.settings))

    def _episode_over(self) -> np.ndarray:
        return self._core.t >= self.settings.episode_length

    def _rewards_and_info(
        self, outcome: tuple[np.ndarray, np.ndarray, np.ndarray], stepped: np.ndarray
    ) -> tuple[np.ndarray, dict[str, Any]]:
        rewards, go, correct = outcome
        return rewards, {"go": go, "_go": stepped, "correct": correct, "_correct": go.copy()}

    def _reset_info(self) -> dict[str, Any]:
        every = np.ones(self.num_envs, dtype=np.bool_)
        return {"target": self._core.target.copy(), "_target": every}
