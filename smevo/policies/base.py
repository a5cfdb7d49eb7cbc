"""The one calling convention every policy follows, and what is needed to rebuild one."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
from torch import nn

State = Any  # None, a tensor, or a tuple of tensors: whatever a policy threads through time.


@dataclass(frozen=True)
class PolicySpec:
    """Everything needed to rebuild a policy: registry name, options and the env's spaces."""

    name: str
    observation_space: gym.Space
    action_space: gym.Space
    options: dict[str, Any] = field(default_factory=dict)


class Policy(nn.Module):
    """A network mapping observations to raw outputs: `output, state = policy(obs, state)`.

    `obs` is batched (`[B, *obs_shape]`); `output` is `[B, output_size]`, the raw numbers that
    safe mutation measures (an action decoder turns them into actions). Feedforward policies
    take and return `state=None`; recurrent and plastic ones keep everything that changes
    within an episode in `state` (never in buffers), so `torch.func` transforms see through it.
    """

    is_recurrent: bool = False
    spec: PolicySpec
    option_help: ClassVar[dict[str, str]] = {}
    """What each keyword option of the constructor means, one line each: the registry's
    description of the options (`smevo list policies`)."""

    def __init__(self, output_size: int) -> None:
        super().__init__()
        self.output_size = output_size

    def initial_state(self, batch: int) -> State:
        """The state at the start of an episode for `batch` parallel episodes."""
        return None


VALUE_HEAD_HELP = (
    "add a Linear(hidden -> 1) state-value estimate, value(features(state)) (for A2C); the "
    "outputs and the other parameters stay as they are, the head's come last in the genome"
)


def build_value_head(hidden: int, enabled: bool) -> nn.Linear | None:
    """The optional value head of a recurrent policy: built last in its constructor, so that
    the genome without it keeps its layout (evolution results and bit-exact tests rely on it)
    and the genome with it merely grows at the end."""
    return nn.Linear(hidden, 1) if enabled else None


def read_value(head: nn.Linear | None, features: Any, name: str) -> Any:
    """`head(features)` without its last axis (`[..., H] -> [...]`), or a `ValueError` when
    the policy was built without ``value_head=True``."""
    if head is None:
        raise ValueError(f"policy {name!r} was built without value_head=True; it has no value")
    return head(features).squeeze(-1)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "selu": nn.SELU,
    "sigmoid": nn.Sigmoid,
    "linear": nn.Identity,
}

OUTPUT_ACTIVATIONS: dict[str, nn.Module] = {
    "linear": nn.Identity(),
    "sigmoid": nn.Sigmoid(),
    "tanh": nn.Tanh(),
    "softmax": nn.Softmax(dim=-1),
    "log_softmax": nn.LogSoftmax(dim=-1),
}


ACTIVATION_HELP = f"hidden units' activation: {', '.join(ACTIVATIONS)}"
OUTPUT_ACTIVATION_HELP = (
    f"applied to the raw outputs before the action decoder: {', '.join(OUTPUT_ACTIVATIONS)}"
)


def pick(table: dict[str, Any], kind: str, name: str) -> Any:
    """`table[name]`, or a `ValueError` listing the valid names."""
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}; valid: {', '.join(table)}")
    return table[name]


def flat_box_size(space: gym.Space, policy_name: str) -> int:
    """Input size of a flat observation space; a clear error for spaces the policy cannot serve."""
    if isinstance(space, gym.spaces.Box):
        return math.prod(space.shape)
    if isinstance(space, gym.spaces.Discrete):
        raise ValueError(
            f"policy {policy_name!r} needs a Box observation space, got {space}; "
            "wrap the env with gymnasium.wrappers.DiscreteToBox-style one-hot encoding"
        )
    raise ValueError(f"policy {policy_name!r} cannot serve observation space {space}")
