"""Stacks of recurrent cells (tanh RNN, GRU, LSTM) with a linear head: the parity networks."""

from __future__ import annotations

import math
from typing import ClassVar

import gymnasium as gym
import torch
from torch import nn

from smevo.policies.base import (
    OUTPUT_ACTIVATION_HELP,
    OUTPUT_ACTIVATIONS,
    VALUE_HEAD_HELP,
    Policy,
    State,
    build_value_head,
    flat_box_size,
    pick,
    read_value,
)
from smevo.policies.decoders import output_size

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


class RecurrentCell(nn.Module):
    """One cell with PyTorch's parameter layout and init, written with plain tensor ops.

    Plain ops (rather than the fused `torch.gru_cell` kernels) keep every `torch.func`
    transform (vmap, jvp, vjp) available on every device. An LSTM's state is `[h, c]`
    concatenated on the last axis so that every layer's state is a single tensor.
    """

    def __init__(self, kind: str, input_size: int, hidden: int) -> None:
        super().__init__()
        self.kind = kind
        self.hidden = hidden
        gates = pick(GATES, "cell", kind)
        self.weight_ih = nn.Parameter(torch.empty(gates * hidden, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gates * hidden, hidden))
        self.bias_ih = nn.Parameter(torch.empty(gates * hidden))
        self.bias_hh = nn.Parameter(torch.empty(gates * hidden))
        bound = 1.0 / math.sqrt(hidden)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    @property
    def state_size(self) -> int:
        return 2 * self.hidden if self.kind == "lstm" else self.hidden

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.step(x, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)

    def step(
        self, x: torch.Tensor, state: torch.Tensor, weight_ih: torch.Tensor,
        weight_hh: torch.Tensor, bias_ih: torch.Tensor, bias_hh: torch.Tensor,
    ) -> torch.Tensor:
        """The cell's arithmetic with these parameters: its own (`forward`), or G genomes'
        stacked ones (weights `[G, out, in]`, biases `[G, 1, out]`, inputs and state `[G, B,
        ...]`), which a population's rollout steps at once without `vmap`."""
        h = state[..., : self.hidden]
        gi = x @ weight_ih.mT + bias_ih
        gh = h @ weight_hh.mT + bias_hh
        if self.kind == "rnn":
            return torch.tanh(gi + gh)
        if self.kind == "gru":
            i_r, i_z, i_n = gi.chunk(3, dim=-1)
            h_r, h_z, h_n = gh.chunk(3, dim=-1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            return (1 - z) * n + z * h
        c = state[..., self.hidden :]
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.cat([torch.sigmoid(o) * torch.tanh(c), c], dim=-1)


class RecurrentPolicy(Policy):
    """`layers` stacked cells of `hidden` units (each feeding the next), then Linear(hidden -> K).

    The paper's parity network is `layers=2, hidden=15` with a tanh RNN (782 parameters), a
    GRU (2,282) or an LSTM (3,032). State: a tuple with one tensor per layer, zero at reset.
    """

    is_recurrent = True
    option_help: ClassVar[dict[str, str]] = {
        "cell": f"the recurrent cell: {', '.join(GATES)} (fixed by the registered name)",
        "hidden": "units in each recurrent layer",
        "layers": "number of stacked recurrent layers",
        "output_activation": OUTPUT_ACTIVATION_HELP,
        "value_head": VALUE_HEAD_HELP,
    }

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        cell: str = "rnn",
        hidden: int = 15,
        layers: int = 2,
        output_activation: str = "linear",
        value_head: bool = False,
    ) -> None:
        super().__init__(output_size(action_space))
        if layers < 1 or hidden < 1:
            raise ValueError(f"{cell} needs layers >= 1 and hidden >= 1, got {layers=} {hidden=}")
        self.input_size = flat_box_size(observation_space, cell)
        sizes = [self.input_size] + [hidden] * layers
        self.cells = nn.ModuleList(
            RecurrentCell(cell, fan_in, hidden) for fan_in in sizes[:-1]
        )
        self.head = nn.Linear(hidden, self.output_size)
        self.output_activation = pick(OUTPUT_ACTIVATIONS, "output activation", output_activation)
        self.value_head = build_value_head(hidden, value_head)

    def initial_state(self, batch: int) -> State:
        weight = self.head.weight
        return tuple(
            weight.new_zeros(batch, cell.state_size) for cell in self.cells
        )

    def forward(self, obs: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        if state is None:
            state = self.initial_state(obs.shape[0])
        x = obs.reshape(obs.shape[0], self.input_size).to(self.head.weight.dtype)
        new_state = []
        for cell, layer_state in zip(self.cells, state, strict=True):
            layer_state = cell(x, layer_state)
            new_state.append(layer_state)
            x = layer_state[..., : cell.hidden]
        return self.output_activation(self.head(x)), tuple(new_state)

    def features(self, state: State) -> torch.Tensor:
        """The last layer's hidden units `[B, hidden]` in `state`: what the value head reads."""
        last = self.cells[-1]
        return state[-1][..., : last.hidden]

    def value(self, features: torch.Tensor) -> torch.Tensor:
        """The value head's estimates `[...]` for hidden units `[..., hidden]` (`features` of
        the states a step returned, one or stacked; needs ``value_head=True``)."""
        return read_value(self.value_head, features, self.cells[0].kind)
