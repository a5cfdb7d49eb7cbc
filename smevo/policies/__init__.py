"""Policies: networks with one calling convention, built by name from an env's spaces."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
from torch import nn

from smevo._registry import Registry, check_options, keyword_options
from smevo.policies.base import Policy, PolicySpec, State
from smevo.policies.cnn import CNN
from smevo.policies.decoders import ActionDecoder, output_size
from smevo.policies.mlp import MLP
from smevo.policies.plastic import NeuromodPolicy, PlasticPolicy
from smevo.policies.recurrent import RecurrentPolicy
from smevo.policies.toy import Toy2W

__all__ = [
    "POLICIES",
    "ActionDecoder",
    "Policy",
    "PolicyOption",
    "PolicySpec",
    "State",
    "make_policy",
    "output_size",
    "policy_from_spec",
    "policy_option_help",
    "policy_options",
]

POLICIES: Registry[Callable[..., Policy]] = Registry("policy", entry_points="smevo.policies")
POLICIES.add("mlp", MLP)
for _cell in ("rnn", "gru", "lstm"):
    POLICIES.add(_cell, functools.partial(RecurrentPolicy, cell=_cell))
POLICIES.add("cnn", CNN)
POLICIES.add("toy2w", Toy2W)
POLICIES.add("plastic", PlasticPolicy)
POLICIES.add("neuromod", NeuromodPolicy)


class PolicyOption(NamedTuple):
    """One keyword option of a registered policy: its name, default and meaning."""

    name: str
    default: Any
    meaning: str


def policy_option_help(name: str) -> list[PolicyOption]:
    """The keyword options policy `name` accepts (those its registry entry does not fix),
    each with its default and the one-line meaning from the class's `option_help`."""
    factory = POLICIES.get(name)
    target = factory.func if isinstance(factory, functools.partial) else factory
    meanings = getattr(target, "option_help", {})
    return [PolicyOption(option, default, meanings.get(option, ""))
            for option, default in keyword_options(factory).items()]


def policy_options(name: str) -> list[str]:
    """The keyword options that policy `name` accepts."""
    return [option.name for option in policy_option_help(name)]


def make_policy(
    name: str, observation_space: gym.Space, action_space: gym.Space, **options: Any
) -> Policy:
    """Build policy `name` for an env's spaces; unknown names or options raise `ValueError`."""
    canonical = POLICIES.canonical(name)
    check_options("policy", canonical, options, policy_options(canonical))
    policy = POLICIES.get(canonical)(observation_space, action_space, **options)
    _check_convention(canonical, policy, action_space)
    policy.spec = PolicySpec(canonical, observation_space, action_space, dict(options))
    return policy


def _check_convention(name: str, policy: Any, action_space: gym.Space) -> None:
    """A `ValueError` unless `policy` (a plugin's, maybe) is an `nn.Module` with smevo's
    calling convention: `forward(obs, state)`, `initial_state(batch)`, `is_recurrent`. A
    plugin's plain module gets `output_size`, the raw outputs that safe mutation measures per
    sample: what the action decoder reads."""
    missing = [attr for attr in ("initial_state", "is_recurrent") if not hasattr(policy, attr)]
    if not isinstance(policy, nn.Module) or missing:
        origin = POLICIES.plugin(name)
        raise ValueError(
            f"policy {name!r}{f' of the plugin {origin}' if origin else ''} built a "
            f"{type(policy).__name__}, not a torch.nn.Module with forward(obs, state), "
            f"initial_state(batch) and is_recurrent"
            + (f" (missing: {', '.join(missing)})" if missing else "")
        )
    if not hasattr(policy, "output_size"):
        policy.output_size = output_size(action_space)


def policy_from_spec(spec: PolicySpec) -> Policy:
    """Rebuild the (randomly initialised) policy a spec describes."""
    return make_policy(spec.name, spec.observation_space, spec.action_space, **spec.options)
