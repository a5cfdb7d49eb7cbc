"""Recurrent parity: the safe-mutation paper's recurrent domain as a Gymnasium environment."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from smevo_envs._validation import (
    checked_box_action,
    checked_int,
    checked_options,
    checked_render_mode,
)


class RecurrentParityEnv(gym.Env[np.ndarray, np.ndarray]):
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

    `Box(-inf, inf, (2,), float32)`: the two class logits. They must be finite float32
    values; only the last step's logits are scored (earlier ones are ignored).

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

    ## Information

    `reset` returns `{"index": i}`. The last step returns `{"correct": bool, "label": int}`,
    `correct` meaning the larger logit is the true class (argmax, ties go to class 0).

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

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "render_fps": 1}

    def __init__(self, render_mode: str | None = None, *, n_bits: int = 4):
        self.render_mode = checked_render_mode(render_mode, self.metadata)
        self.n_bits = checked_int(n_bits, "n_bits", 1, 62)
        self.num_sequences = 2**self.n_bits
        self.observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)

        self.bits: np.ndarray | None = None
        self.label: int | None = None
        self.t = 0

    def sequence(self, index: int) -> np.ndarray:
        """The bits of sequence `index`, most significant first, as an int array."""
        index = checked_int(index, "index", 0, self.num_sequences - 1)
        return np.array(
            [(index >> (self.n_bits - 1 - k)) & 1 for k in range(self.n_bits)], dtype=np.int64
        )

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
        return self._observation(), {"index": index}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.bits is None or self.label is None or self.t >= self.n_bits:
            raise gym.error.ResetNeeded("call reset() before step() (and after the episode ends)")
        logits = checked_box_action(action, self.action_space)
        self.t += 1
        if self.t < self.n_bits:
            return self._observation(), 0.0, False, False, {}
        shifted = logits - logits.max()
        log_probabilities = shifted - np.log(np.exp(shifted).sum())
        info = {"correct": int(np.argmax(logits)) == self.label, "label": self.label}
        return self._observation(), float(log_probabilities[self.label]), True, False, info

    def _observation(self) -> np.ndarray:
        bit = self.bits[self.t] if self.bits is not None and self.t < self.n_bits else 0
        return np.array([bit], dtype=np.float32)
