"""The fused C++ rollout: an `mlp` policy in CartPole-v1 or the hard maze, in one native call;
and its forward alone, which the lockstep loop of `rollout.py` uses for an `mlp` in any other env.

The lockstep loop of `rollout.py` pays a fixed Python cost per step however few individuals
are still running; here the whole rollout of a group (forward, env step, observation sample)
runs in C++ (`smevo.evaluation._rollout`, built with the maze simulator). It computes what the
Python loop computes: the same float64 forward rounded to float32, the same action decoding,
the same env arithmetic, the same reservoir sample. Which path a rollout takes depends only on
the env id (the native rollout its class declares, see `capabilities.py`), its kwargs and the
policy, never on the backend, so every backend still returns the same results;
`tests/test_native_rollout.py` checks the two paths against each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from torch import nn

from smevo._registry import unknown_name_message
from smevo.evaluation.capabilities import env_capabilities
from smevo.evaluation.env_pool import cartpole_start_states
from smevo.evaluation.obs_norm import CLIP, ObsNormalizer
from smevo.policies import CNN, MLP, Policy
from smevo.policies.base import ACTIVATIONS, OUTPUT_ACTIVATIONS

NativeCall = Callable[..., dict[str, np.ndarray]]


def _activation_names(hidden: nn.Module | None, output: nn.Module) -> tuple[str, str] | None:
    """The names of a policy's hidden activation (module instance, None for none) and output
    activation, if the C++ forward applies both (`_rollout.ACTIVATIONS`; a softmax head, say,
    takes the Python path)."""
    from smevo.evaluation import _rollout

    hidden_name = next((name for name, cls in ACTIVATIONS.items() if type(hidden) is cls),
                       "linear")
    output_name = next((name for name, module in OUTPUT_ACTIVATIONS.items()
                        if module is output), None)
    if hidden_name not in _rollout.ACTIVATIONS or output_name not in _rollout.ACTIVATIONS:
        return None
    return hidden_name, output_name


def mlp_layout(policy: Policy) -> tuple[list[int], str, str] | None:
    """(layer sizes, hidden activation, output activation) of an `mlp` policy the C++ forward
    can apply, or None."""
    if type(policy) is not MLP:
        return None
    linears = [m for m in policy.body if isinstance(m, nn.Linear)]
    sizes = [linears[0].in_features] + [layer.out_features for layer in linears]
    activations = [m for m in policy.body if not isinstance(m, nn.Linear)]
    names = _activation_names(activations[0] if activations else None,
                              policy.output_activation)
    return None if names is None else (sizes, *names)


def cnn_layout(policy: Policy) -> dict[str, Any] | None:
    """The `_rollout.CnnForward` arguments of a `cnn` policy the C++ forward can apply, or
    None."""
    if type(policy) is not CNN:
        return None
    convs = [m for m in policy.features if isinstance(m, nn.Conv2d)]
    hidden, output = (m for m in policy.head if isinstance(m, nn.Linear))
    names = _activation_names(policy.head[1], policy.output_activation)
    if names is None:
        return None
    return {
        "frame": list(policy.frame_shape),
        "channels_last": policy.channels_last,
        "scale": policy.scale,
        "convs": [[conv.out_channels, conv.kernel_size[0], conv.stride[0], conv.padding[0]]
                  for conv in convs],
        "hidden": hidden.out_features,
        "outputs": output.out_features,
        "activation": names[0],
        "output": names[1],
    }


def compiled_forward(policy: Policy) -> Any | None:
    """The C++ forward of an `mlp` or `cnn` policy whose layout `mlp_layout` or `cnn_layout`
    accepts (`_rollout.MlpForward`, the fused rollouts' own arithmetic, or
    `_rollout.CnnForward`), for the lockstep loop, or None."""
    from smevo.evaluation import _rollout

    if (layout := mlp_layout(policy)) is not None:
        return _rollout.MlpForward(*layout)
    if (cnn := cnn_layout(policy)) is not None:
        return _rollout.CnnForward(**cnn)
    return None


def _cartpole(env: gym.Env, kwargs: dict[str, Any]) -> NativeCall | None:
    """CartPole-v1 exactly as registered (any kwarg changes it: take the Python path)."""
    from smevo.evaluation import _rollout

    if kwargs:
        return None

    def call(seeds: list[int], **common: Any) -> dict[str, np.ndarray]:
        return _rollout.cartpole(initial_states=cartpole_start_states(seeds), **common)

    return call


def _maze(env: gym.Env, kwargs: dict[str, Any]) -> NativeCall | None:
    """The hard maze with the env's own (validated) frame skip, reward and maze file; any
    other kwarg (a render mode, a `max_episode_steps` time limit) takes the Python path."""
    from smevo.evaluation import _rollout
    from smevo_envs.maze import core_maze

    if set(kwargs) - {"frame_skip", "reward", "maze_file"}:
        return None
    maze_env = env.unwrapped
    core = core_maze(maze_env.maze)
    frame_skip, euclidean = maze_env.frame_skip, maze_env.reward == "euclidean"

    def call(seeds: list[int], **common: Any) -> dict[str, np.ndarray]:
        return _rollout.maze(maze=core, frame_skip=frame_skip, euclidean=euclidean, **common)

    return call


NATIVE_ROLLOUTS: dict[str, Callable[[gym.Env, dict[str, Any]], NativeCall | None]] = {
    "cartpole": _cartpole,
    "maze": _maze,
}
"""The fused rollouts of `_rollout`, by the `EnvCapabilities.native_rollout` name an env class
declares; each builder may still decline (None) for kwargs that change the env."""


class NativeRollout:
    """Rolls out groups of MLP genomes in a native env; see the module docstring."""

    def __init__(self, call: NativeCall, layout: tuple[list[int], str, str]) -> None:
        self._call = call
        self.sizes, self.hidden, self.output = layout

    @classmethod
    def build(
        cls, env_id: str, kwargs: dict[str, Any], env: gym.Env, policy: Policy
    ) -> NativeRollout | None:
        """The native rollout for this env (a probe instance of it) and policy, if the env's
        class declares one and the policy is one it can apply; a declared name this module
        does not know is a `ValueError`, never ignored."""
        layout = mlp_layout(policy)
        name = env_capabilities(env_id).native_rollout
        if layout is None or name is None:
            return None
        if name not in NATIVE_ROLLOUTS:
            raise ValueError(f"env {env_id!r}: " + unknown_name_message(
                "native rollout", name, list(NATIVE_ROLLOUTS)))
        call = NATIVE_ROLLOUTS[name](env, kwargs)
        return None if call is None else cls(call, layout)

    def __call__(
        self,
        params: np.ndarray,
        seeds: list[int],
        episodes: int,
        max_steps: int | None,
        normalizer: ObsNormalizer,
        archive_size: int,
        sample_seeds: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Returns, steps, solved and broken flags per episode (`[G * E]`, genome-major), each
        genome's observation archive `[G, archive_size, obs]` and how many observations it
        was offered (`seen [G]`)."""
        stats = normalizer.affine()
        mean, std = (None, None) if stats is None else stats
        return self._call(
            seeds,
            sizes=self.sizes,
            hidden=self.hidden,
            output=self.output,
            genomes=np.ascontiguousarray(params, dtype=np.float32),
            episodes=episodes,
            max_steps=-1 if max_steps is None else int(max_steps),
            obs_mean=mean,
            obs_std=std,
            obs_clip=CLIP,
            archive_size=archive_size,
            sample_seeds=sample_seeds,
        )
