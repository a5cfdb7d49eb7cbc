"""Recurrent parity: the safe-mutation paper's recurrent domain as a Gymnasium environment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from smevo_envs._drawing import RIGHT, UNKNOWN, WRONG, RendersCells, filled, signed_colours
from smevo_envs._validation import (
    OUTPUT_LIMIT,
    checked_box_action,
    checked_int,
    checked_options,
    checked_render_mode,
    step_after_the_end,
    sub_env_generators,
)
from smevo_envs.capabilities import EnvCapabilities


def sequence_bits(indices: np.ndarray, n_bits: int) -> np.ndarray:
    """`[k, n_bits]` int64: the bits of sequences `indices`, most significant first."""
    shifts = np.arange(n_bits - 1, -1, -1, dtype=np.int64)
    return (np.asarray(indices, dtype=np.int64)[:, None] >> shifts) & 1


def label_log_probabilities(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """`[k]`: log_softmax(logits[j])[labels[j]] in float64, shifted by the max for range."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return log_probabilities[np.arange(len(labels)), labels]


def _spaces() -> tuple[spaces.Box, spaces.Box]:
    """One sub-env's observation (the current bit) and action (two class logits) spaces."""
    return (spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
            spaces.Box(-OUTPUT_LIMIT, OUTPUT_LIMIT, shape=(2,), dtype=np.float32))


class RecurrentParityEnv(RendersCells, gym.Env[np.ndarray, np.ndarray]):
    """The parity of a bit sequence, read one bit per step.

    ## Description

    The recurrent domain of Lehman, Chen, Clune & Stanley, *Safe Mutations for Deep and
    Recurrent Neural Networks through Output Gradients* (GECCO 2018). A sequence of
    `n_bits` bits (default 4, so 2**4 = 16 sequences) is shown one bit per step, most
    significant bit first. After the last bit the agent must say whether the number of ones
    is even (class 0) or odd (class 1). Only a network with memory can solve it.

    Sequence `i` is the `n_bits`-bit binary representation of `i`, MSB first: with
    `n_bits=4`, index 6 is the sequence 0, 1, 1, 0 with label 0. A fitness that covers every
    sequence resets with `options={"index": i}` for `i` in `range(2**n_bits)`.

    ## Action Space

    `Box(-1e6, 1e6, (2,), float32)`: the two class logits; only the last step's logits are
    scored (earlier ones are ignored). The task itself has no bound: ±1e6 is far beyond
    any logit a network produces here. Out-of-bound logits are clipped to the bounds;
    NaN and infinity are refused with a ValueError.

    ## Observation Space

    `Box(0, 1, (1,), float32)`:

    | Num | Observation                                    | Min | Max |
    |-----|------------------------------------------------|-----|-----|
    | 0   | the current bit (0 or 1); 0 after the last step | 0   | 1   |

    ## Rewards

    0 at every step but the last. At the last step the reward is the log-probability of the
    true class, `log_softmax(action)[label]` with `label = sum(bits) % 2`, i.e. minus the
    negative log-likelihood. The best return is 0 (approached, never reached).

    ## Starting State

    A sequence index drawn uniformly from `range(2**n_bits)` with `self.np_random`, unless
    `options={"index": i}` chooses it. The first observation is its first bit.

    ## Episode End

    The episode terminates (`terminated=True`) after `n_bits` steps. There is no truncation.
    A step after the end warns and returns the last observation again with reward 0.

    ## Information

    `reset` returns `{"index": i}`. The last step returns `{"correct": bool, "label": int}`,
    `correct` meaning the larger logit is the true class (argmax, ties go to class 0).

    ## Rendering

    `render_mode="rgb_array"`: the bits shown so far (black 1, white 0, grey not yet
    shown) and, after the last step, the answer (green right, red wrong).

    ## Arguments

    ```python
    gym.make("smevo/RecurrentParity-v0", n_bits=4)
    ```

    * `n_bits`: the length of every sequence, in [1, 62] (default 4).

    The registered `reward_threshold` is -0.04, the mean return the trainer treats as solved.
    With `n_bits=4`, a mean return over the 16 sequences of at least -0.04 means every
    sequence's log-probability is above 16 * -0.04 = -0.64 > log(1/2), so all 16 are
    classified correctly (the paper's "solved": accuracy 1.0).

    ## Version History

    * v0: initial version.

    ## Example

    >>> import gymnasium as gym
    >>> import smevo_envs
    >>> env = gym.make("smevo/RecurrentParity-v0")
    >>> env.reset(seed=0, options={"index": 6})
    (array([0.], dtype=float32), {'index': 6})
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 2}
    capabilities: ClassVar[EnvCapabilities] = EnvCapabilities(
        vector_seeding="per_env", indexed_episodes=True,
        end_reward="the log-probability of the parity, at the last bit",
    )

    def __init__(self, render_mode: str | None = None, *, n_bits: int = 4):
        self.render_mode = checked_render_mode(render_mode, self.metadata)
        self.n_bits = checked_int(n_bits, "n_bits", 1, 62)
        self.num_sequences = 2**self.n_bits
        self.observation_space, self.action_space = _spaces()

        self.bits: np.ndarray | None = None
        self.label: int | None = None
        self.t = 0
        self.correct: bool | None = None  # the last episode's answer, once given

    def sequence(self, index: int) -> np.ndarray:
        """The bits of sequence `index`, most significant first, as an int array."""
        index = checked_int(index, "index", 0, self.num_sequences - 1)
        return sequence_bits(np.array([index]), self.n_bits)[0]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = checked_options(options, ("index",))
        if "index" in options:
            index = checked_int(options["index"], "options['index']", 0, self.num_sequences - 1)
        else:
            index = int(self.np_random.integers(self.num_sequences))
        self.bits = self.sequence(index)
        self.label = int(self.bits.sum() % 2)
        self.t = 0
        self.correct = None
        return self._observation(), {"index": index}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.bits is None or self.label is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        logits = checked_box_action(action, self.action_space)
        if self.t >= self.n_bits:
            return step_after_the_end(self._observation(), terminated=True, truncated=False)
        self.t += 1
        if self.t < self.n_bits:
            return self._observation(), 0.0, False, False, {}
        reward = label_log_probabilities(logits[None], np.array([self.label]))[0]
        self.correct = int(np.argmax(logits)) == self.label
        info = {"correct": self.correct, "label": self.label}
        return self._observation(), float(reward), True, False, info

    def _observation(self) -> np.ndarray:
        bit = self.bits[self.t] if self.bits is not None and self.t < self.n_bits else 0
        return np.array([bit], dtype=np.float32)

    def _cells(self) -> list[np.ndarray]:
        shown = np.full(self.n_bits, np.nan)
        if self.bits is not None:
            seen = min(self.t + 1, self.n_bits)
            shown[:seen] = 1.0 - 2.0 * self.bits[:seen]  # 1 black, 0 white
        answer = UNKNOWN if self.correct is None else RIGHT if self.correct else WRONG
        return [signed_colours(shown[None]), filled((1, 1), answer)]


class RecurrentParityVectorEnv(VectorEnv):
    """`num_envs` recurrent parity tasks stepped by array operations.

    The same task as `RecurrentParityEnv` (see its docstring), batched: observations
    (num_envs, 1) float32, actions (num_envs, 2) logits (clipped to ±1e6 like the single
    env's; NaN and infinity refused), rewards float64 from the same arithmetic as the single
    env's. Infos: `index` (num_envs,) at reset; `correct`
    and `label` with their masks `_correct`, `_label` on the step that ends an episode.

    Seeding: `reset(seed=s)` gives sub-env i the seed s + i; `reset(seed=[s_0, ...])` one seed
    per sub-env; anything else is refused (see `_validation.checked_seeds`).
    `options={"index": [i_0, ...]}` (or one int for all) chooses the sequences; without it,
    each sub-env draws its sequence from its own generator. Either way sub-env i then
    behaves exactly like a single env reset with its seed and options.

    Autoreset: `AutoresetMode.NEXT_STEP`. A sub-env whose episode ended on one step is reset
    (a sequence drawn from its generator) on the next `step()`, which ignores its action and
    returns its first observation with reward 0 and `terminated = truncated = False`.

    Created by `gym.make_vec("smevo/RecurrentParity-v0", num_envs=N)` (the registered
    `vector_entry_point`) with the single env's keyword arguments.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": [],
        "render_fps": 2,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, *, n_bits: int = 4):
        self.num_envs = checked_int(num_envs, "num_envs", 1, 2**24)
        self.render_mode = checked_render_mode(render_mode, self.metadata)
        self.n_bits = checked_int(n_bits, "n_bits", 1, 62)
        self.num_sequences = 2**self.n_bits
        self.single_observation_space, self.single_action_space = _spaces()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._rngs: Sequence[np.random.Generator] = []
        self._bits = np.zeros((self.num_envs, self.n_bits), dtype=np.int64)
        self._labels = np.zeros(self.num_envs, dtype=np.int64)
        self._t = np.zeros(self.num_envs, dtype=np.int64)
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        options = checked_options(options, ("index",))
        if seed is not None or not self._rngs:
            self._rngs = sub_env_generators(seed, self.num_envs)
        if "index" in options:
            indices = np.broadcast_to(np.asarray(options["index"]), (self.num_envs,))
            indices = np.array([checked_int(i, "options['index']", 0, self.num_sequences - 1)
                                for i in indices.tolist()], dtype=np.int64)
        else:
            indices = np.array([rng.integers(self.num_sequences) for rng in self._rngs],
                               dtype=np.int64)
        self._start(np.arange(self.num_envs), indices)
        self._autoreset[:] = False
        return self._observations(), {"index": indices, "_index": np.ones(self.num_envs, bool)}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._rngs:
            raise gym.error.ResetNeeded("call reset() before step()")
        logits = checked_box_action(actions, self.action_space, what="actions")
        resetting = self._autoreset.copy()
        self._t[~resetting] += 1
        ended = ~resetting & (self._t >= self.n_bits)
        rewards = np.zeros(self.num_envs)
        correct = np.zeros(self.num_envs, dtype=np.bool_)
        if ended.any():
            rewards[ended] = label_log_probabilities(logits[ended], self._labels[ended])
            correct[ended] = np.argmax(logits[ended], axis=1) == self._labels[ended]
        restarted = np.flatnonzero(resetting)
        if len(restarted):
            self._start(restarted, np.array(
                [self._rngs[i].integers(self.num_sequences) for i in restarted], dtype=np.int64))
        self._autoreset = ended
        info = {"correct": correct, "_correct": ended.copy(),
                "label": self._labels.copy(), "_label": ended.copy()}
        truncated = np.zeros(self.num_envs, dtype=np.bool_)
        return self._observations(), rewards, ended.copy(), truncated, info

    def _start(self, envs: np.ndarray, indices: np.ndarray) -> None:
        self._bits[envs] = sequence_bits(indices, self.n_bits)
        self._labels[envs] = self._bits[envs].sum(axis=1) % 2
        self._t[envs] = 0

    def _observations(self) -> np.ndarray:
        padded = np.concatenate([self._bits, np.zeros((self.num_envs, 1), np.int64)], axis=1)
        bits = padded[np.arange(self.num_envs), np.minimum(self._t, self.n_bits)]
        return bits.astype(np.float32)[:, None]
