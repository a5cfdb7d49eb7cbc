"""Action decoders: raw policy outputs -> actions of a Gymnasium action space."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch


def output_size(action_space: gym.Space) -> int:
    """How many raw outputs a policy needs to act in `action_space`."""
    if isinstance(action_space, gym.spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, (gym.spaces.Box, gym.spaces.MultiBinary)):
        return math.prod(action_space.shape)
    raise ValueError(
        f"unsupported action space {action_space}; smevo serves Discrete, Box and MultiBinary"
    )


class ActionDecoder:
    """Turns a batch of raw outputs `[B, K]` into a batch of actions for one action space.

    Discrete: argmax. Box: reshape, then clip to the bounds (a policy whose output activation
    already maps into them, such as sigmoid for [0, 1], is left unchanged). MultiBinary: > 0.
    """

    def __init__(self, action_space: gym.Space) -> None:
        self.action_space = action_space
        self.size = output_size(action_space)
        if isinstance(action_space, gym.spaces.Box):
            self._low = np.broadcast_to(action_space.low, action_space.shape).reshape(-1)
            self._high = np.broadcast_to(action_space.high, action_space.shape).reshape(-1)

    def __call__(self, outputs: torch.Tensor) -> np.ndarray:
        return self.decode(outputs.detach().cpu().numpy())

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """The actions for raw outputs `[B, K]` already in a NumPy array."""
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return raw.argmax(axis=-1).astype(space.dtype) + space.start
        if isinstance(space, gym.spaces.MultiBinary):
            return (raw > 0).astype(space.dtype).reshape(raw.shape[0], *space.shape)
        clipped = np.clip(raw, self._low, self._high).astype(space.dtype)
        return clipped.reshape(raw.shape[0], *space.shape)
