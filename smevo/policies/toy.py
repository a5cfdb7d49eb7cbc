"""The paper's illustrative two-weight model, whose weights differ 1000x in sensitivity."""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from smevo.policies.base import Policy, State


class Toy2W(Policy):
    """y = (100 * w0 * x0, 0.1 * w1 * x1), w ~ U(-1, 1): pairs with `smevo/Easy-v0`,
    `smevo/Medium-v0` and `smevo/GradientWashout-v0`.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__(2)
        for space, what in ((observation_space, "observation"), (action_space, "action")):
            if not isinstance(space, gym.spaces.Box) or space.shape != (2,):
                raise ValueError(f"policy 'toy2w' needs a Box(2) {what} space, got {space}")
        self.w = nn.Parameter(torch.empty(2).uniform_(-1.0, 1.0))
        self.register_buffer("gains", torch.tensor([100.0, 0.1]), persistent=False)

    def forward(self, obs: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        return self.gains * self.w * obs.to(self.w.dtype), None
