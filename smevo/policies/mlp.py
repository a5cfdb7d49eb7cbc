"""Feedforward multilayer perceptron of any depth, the paper's maze and deep networks."""

from __future__ import annotations

import itertools
from typing import ClassVar

import gymnasium as gym
import torch
from torch import nn

from smevo.policies.base import (
    ACTIVATION_HELP,
    ACTIVATIONS,
    OUTPUT_ACTIVATION_HELP,
    OUTPUT_ACTIVATIONS,
    Policy,
    State,
    flat_box_size,
    pick,
)
from smevo.policies.decoders import output_size

INITS = ("default", "xavier")


def init_linear(layer: nn.Linear, init: str) -> None:
    """Xavier-normal weights (the reference's maze init) or PyTorch's default; biases default."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    if init == "xavier":
        nn.init.xavier_normal_(layer.weight)


class MLP(Policy):
    """`depth` hidden layers of `hidden` units, each Linear + activation, then a linear head.

    depth=0 is a linear policy. The reference maze net (its `layers=6`: Linear(11->15), act,
    6 x [Linear(15->15), act], Linear(15->2), sigmoid; 1,652 parameters) is depth=7, hidden=15,
    activation="relu", init="xavier", output_activation="sigmoid".
    """

    option_help: ClassVar[dict[str, str]] = {
        "hidden": "units in each hidden layer",
        "depth": "number of hidden layers (0: a linear policy)",
        "activation": ACTIVATION_HELP,
        "init": "weights: default (PyTorch's) or xavier (Xavier-normal, the reference maze's)",
        "output_activation": OUTPUT_ACTIVATION_HELP,
    }

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        hidden: int = 64,
        depth: int = 2,
        activation: str = "tanh",
        init: str = "default",
        output_activation: str = "linear",
    ) -> None:
        super().__init__(output_size(action_space))
        if depth < 0 or hidden < 1:
            raise ValueError(f"mlp needs depth >= 0 and hidden >= 1, got {depth=} {hidden=}")
        act = pick(ACTIVATIONS, "activation", activation)
        self.input_size = flat_box_size(observation_space, "mlp")
        sizes = [self.input_size] + [hidden] * depth
        layers: list[nn.Module] = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            layers += [nn.Linear(fan_in, fan_out), act()]
        layers.append(nn.Linear(sizes[-1], self.output_size))
        for layer in layers:
            if isinstance(layer, nn.Linear):
                init_linear(layer, init)
        self.body = nn.Sequential(*layers)
        self.output_activation = pick(OUTPUT_ACTIVATIONS, "output activation", output_activation)

    def forward(self, obs: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        x = obs.reshape(obs.shape[0], self.input_size).to(self.body[0].weight.dtype)
        return self.output_activation(self.body(x)), None
