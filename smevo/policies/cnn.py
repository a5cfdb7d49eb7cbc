"""A convolutional policy for pixel observations: CarRacing's 96x96x3 frames, MinAtar's
10x10xC boolean ones."""

from __future__ import annotations

from collections.abc import Sequence
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

DQN_CONVS = ((16, 8, 4), (32, 4, 2))
"""The default convolutions, (channels, kernel, stride): 16@8x8/4 then 32@4x4/2, as in the
Atari DQN family; sized for frames of about 84x84 and up (CarRacing's 96x96)."""


def check_convs(convs: Sequence[Sequence[int]]) -> list[tuple[int, int, int, int]]:
    """`convs` as (channels, kernel, stride, padding) tuples, padding 0 where left out; a
    `ValueError` unless each is 3 or 4 integers, the first three positive, padding >= 0."""
    layers = []
    for conv in convs:
        values = list(conv) if isinstance(conv, Sequence) else [conv]
        if (len(values) not in (3, 4) or not all(isinstance(v, int) for v in values)
                or min(values[:3]) < 1 or (len(values) == 4 and values[3] < 0)):
            raise ValueError(f"policy 'cnn': each of convs must be [channels, kernel, stride] "
                             f"or [channels, kernel, stride, padding], got {conv!r}")
        layers.append((*values, 0)[:4])
    if not layers:
        raise ValueError("policy 'cnn' needs at least one convolution in convs")
    return layers


class CNN(Policy):
    """Convolutions (`convs`; by default the DQN pair for large frames), a hidden layer and a
    linear head.

    Takes HxWxC frames (channels last, as Gymnasium's pixel envs and MinAtar emit) or CxHxW
    ones: channels are last unless the first axis is the shorter. uint8 pixels are scaled to
    [0, 1]; boolean frames (MinAtar's) are read as 0/1.
    """

    option_help: ClassVar[dict[str, str]] = {
        "convs": "the convolutions in order, each [channels, kernel, stride] or [channels, "
                 "kernel, stride, padding] (the default is DQN's pair, for large frames)",
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
        convs: Sequence[Sequence[int]] = DQN_CONVS,
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
        self.channels_last = shape[-1] <= shape[0]
        channels = shape[-1] if self.channels_last else shape[0]
        self.scale = 1.0 / 255.0 if observation_space.dtype == np.uint8 else 1.0
        act = pick(ACTIVATIONS, "activation", activation)
        layers: list[nn.Module] = []
        size = shape[:2] if self.channels_last else shape[1:]
        height, width = size
        self.frame_shape = (height, width, channels)  # one frame, whatever its layout
        for out, kernel, stride, padding in check_convs(convs):
            layers += [nn.Conv2d(channels, out, kernel, stride, padding), act()]
            channels = out
            height, width = ((side + 2 * padding - kernel) // stride + 1
                             for side in (height, width))
            if min(height, width) < 1:
                raise ValueError(f"policy 'cnn': convs {convs} shrink the {size[0]}x{size[1]} "
                                 f"frame to nothing; use smaller kernels or strides, or "
                                 f"padding (e.g. convs=[[16, 3, 1], [16, 3, 1]] for 10x10)")
        self.features = nn.Sequential(*layers, nn.Flatten())
        flat = channels * height * width  # what the convolutions leave of a frame
        self.head = nn.Sequential(
            nn.Linear(flat, hidden), act(), nn.Linear(hidden, self.output_size)
        )
        self.output_activation = pick(OUTPUT_ACTIVATIONS, "output activation", output_activation)

    def frames(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations `[..., H, W, C]` (or `[..., C, H, W]`) of any dtype as the
        convolutions read them: `[..., C, H, W]` in the network's dtype, uint8 scaled."""
        x = obs.to(self.head[0].weight.dtype) * self.scale
        return x.movedim(-1, -3) if self.channels_last else x

    def forward(self, obs: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        return self.output_activation(self.head(self.features(self.frames(obs)))), None
