"""A small convolutional policy for pixel observations (CarRacing's 96x96x3 frames)."""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from smevo.policies.base import (
    ACTIVATIONS,
    OUTPUT_ACTIVATION_HELP,
    OUTPUT_ACTIVATIONS,
    Policy,
    State,
    pick,
)
from smevo.policies.decoders import output_size


class CNN(Policy):
    """Two strided convolutions (16@8x8/4, 32@4x4/2, as in the Atari DQN family), a hidden
    layer and a linear head. Accepts HxWxC (channels last, as Gymnasium's pixel envs emit)
    or CxHxW images; uint8 pixels are scaled to [0, 1].
    """

    option_help: ClassVar[dict[str, str]] = {
        "hidden": "units of the hidden layer between the convolutions and the head",
        "activation": f"activation after each convolution and the hidden layer: "
                      f"{', '.join(ACTIVATIONS)}",
        "output_activation": OUTPUT_ACTIVATION_HELP,
    }

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        hidden: int = 64,
        activation: str = "relu",
        output_activation: str = "linear",
    ) -> None:
        super().__init__(output_size(action_space))
        shape = getattr(observation_space, "shape", None)
        if not isinstance(observation_space, gym.spaces.Box) or len(shape) != 3:
            raise ValueError(
                f"policy 'cnn' needs an image Box observation (H, W, C), got {observation_space}"
            )
        self.channels_last = shape[-1] <= 4
        channels = shape[-1] if self.channels_last else shape[0]
        self.scale = 1.0 / 255.0 if observation_space.dtype == np.uint8 else 1.0
        act = pick(ACTIVATIONS, "activation", activation)
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=8, stride=4), act(),
            nn.Conv2d(16, 32, kernel_size=4, stride=2), act(),
            nn.Flatten(),
        )
        with torch.no_grad():
            probe = torch.zeros(1, channels, *(shape[:2] if self.channels_last else shape[1:]))
            flat = self.features(probe).shape[-1]
        self.head = nn.Sequential(
            nn.Linear(flat, hidden), act(), nn.Linear(hidden, self.output_size)
        )
        self.output_activation = pick(OUTPUT_ACTIVATIONS, "output activation", output_activation)

    def forward(self, obs: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        x = obs.to(self.head[0].weight.dtype) * self.scale
        if self.channels_last:
            x = x.movedim(-1, -3)
        return self.output_activation(self.head(self.features(x))), None
