"""Backpropamine's stimulus-response ("sr") task: learn which cue is rewarded, within an episode."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from smevo_envs._validation import (
    checked_discrete_action,
    checked_int,
    checked_options,
    checked_render_mode,
)

_BLANK, _GO = -1, -2  # stimulus codes besides cue indices


class CueRewardEnv(gym.Env[np.ndarray, np.int64]):
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
    the last trial stands). `terminated` is always False.

    ## Information

    `reset` returns `{"target": i}`. Every step returns `{"go": bool}`, and at Go steps also
    `{"correct": bool}` (the answer was right, before any flip).

    ## Arguments

    ```python
    gym.make("smevo/CueReward-v0", n_cues=4, cue_size=20, episode_length=120, reward=1.0,
             response_cost=0.0, flip_probability=0.0)
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

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "render_fps": 4}

    def __init__(
        self,
        render_mode: str | None = None,
        *,
        n_cues: int = 4,
        cue_size: int = 20,
        episode_length: int = 120,
        reward: float = 1.0,
        response_cost: float = 0.0,
        flip_probability: float = 0.0,
    ):
        self.render_mode = checked_render_mode(render_mode, self.metadata)
        self.cue_size = checked_int(cue_size, "cue_size", 1)
        self.n_cues = checked_int(n_cues, "n_cues", 2, 2**cue_size if cue_size < 31 else None)
        self.episode_length = checked_int(episode_length, "episode_length", 1)
        for name, value in (("reward", reward), ("response_cost", response_cost)):
            if not (isinstance(value, int | float) and 0 <= value < 1e30):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0.0 <= flip_probability <= 1.0:
            raise ValueError(f"flip_probability must be in [0, 1], got {flip_probability!r}")
        self.reward, self.response_cost = float(reward), float(response_cost)
        self.flip_probability = float(flip_probability)

        size = cue_size + 7
        low, high = np.zeros(size, np.float32), np.ones(size, np.float32)
        low[:cue_size] = -1.0
        low[cue_size + 3] = -(self.reward + self.response_cost)
        high[cue_size + 3] = max(self.reward, 1.0)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Discrete(2)

        self.cues: np.ndarray | None = None
        self.stimuli = np.zeros(0, dtype=np.int64)  # per step: a cue index, _BLANK or _GO
        self.target_shown = np.zeros(0, dtype=bool)  # per step: the trial holds the target
        self.target = 0
        self.t = 0
        self.previous_reward = 0.0
        self.previous_action = -1

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        checked_options(options, ())
        rng = self.np_random
        cues = rng.choice(np.array([-1.0, 1.0]), size=(self.n_cues, self.cue_size))
        while len(np.unique(cues, axis=0)) < self.n_cues:  # distinct cues (nearly always)
            cues = rng.choice(np.array([-1.0, 1.0]), size=(self.n_cues, self.cue_size))
        self.cues = cues
        self.target = int(rng.integers(self.n_cues))
        stimuli: list[int] = []
        target_shown: list[bool] = []
        shown_per_trial = self.n_cues // 2
        while len(stimuli) < self.episode_length:
            length = shown_per_trial + 3 + int(rng.integers(self.n_cues))
            middle = np.full(length - 3, _BLANK)
            shown = rng.choice(self.n_cues, size=shown_per_trial, replace=False)
            middle[rng.permutation(length - 3)[:shown_per_trial]] = shown
            stimuli += [_BLANK, *middle.tolist(), _GO, _BLANK]
            target_shown += [bool(self.target in shown)] * length
        self.stimuli = np.array(stimuli[: self.episode_length])
        self.target_shown = np.array(target_shown[: self.episode_length])
        self.t, self.previous_reward, self.previous_action = 0, 0.0, -1
        return self._observation(), {"target": self.target}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.cues is None or self.t >= self.episode_length:
            raise gym.error.ResetNeeded("call reset() before step() (and after the episode ends)")
        action = checked_discrete_action(action, self.action_space)
        reward = 0.0 - self.response_cost * action
        info: dict[str, Any] = {"go": bool(self.stimuli[self.t] == _GO)}
        if info["go"]:
            info["correct"] = action == int(self.target_shown[self.t])
            sign = 1.0 if info["correct"] else -1.0
            if self.flip_probability > 0 and self.np_random.random() < self.flip_probability:
                sign = -sign
            reward += sign * self.reward
        self.t += 1
        self.previous_reward, self.previous_action = reward, action
        truncated = self.t >= self.episode_length
        return self._observation(), float(reward), False, truncated, info

    def _observation(self) -> np.ndarray:
        obs = np.zeros(self.cue_size + 7, dtype=np.float32)
        stimulus = self.stimuli[self.t] if self.t < self.episode_length else _BLANK
        if stimulus >= 0:
            obs[: self.cue_size] = self.cues[stimulus]
        c = self.cue_size
        obs[c] = stimulus == _GO
        obs[c + 1] = 1.0
        obs[c + 2] = self.t / self.episode_length
        obs[c + 3] = self.previous_reward
        if self.previous_action >= 0:
            obs[c + 5 + self.previous_action] = 1.0
        return obs
