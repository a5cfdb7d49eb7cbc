"""Making environments by id: Gymnasium ids, ``module:EnvId`` and ``module:factory``.

Every place that turns ``env.id`` into an env (the trainer's workers, `smevo eval`,
`smevo watch`, the CLI's checks) goes through `make_env`, so that an id means the same thing
everywhere and an unknown one is always a one-line `ValueError` naming the valid ids and the
closest match. The ``smevo/`` ids are registered by importing `smevo_envs`, done here on
demand so that ``smevo/...`` works without the user importing anything.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec

from smevo._registry import unknown_name_message

__all__ = ["SMEVO_NAMESPACE", "env_description", "env_names", "make_env"]

SMEVO_NAMESPACE = "smevo/"
"""The prefix of the ids that `smevo_envs` registers."""


def _register_smevo_envs(env_id: str) -> None:
    """Import `smevo_envs` so its ids exist; a failure matters only for a ``smevo/`` id.

    A broken `smevo_envs` (say, an unbuilt extension) must not stop a user training on
    CartPole, but asking for one of its envs must show why it is missing.
    """
    try:
        importlib.import_module("smevo_envs")
    except ImportError as error:
        if env_id.split(":")[-1].startswith(SMEVO_NAMESPACE):
            raise ValueError(
                f"env {env_id!r} needs smevo_envs, which failed to import: {error}"
            ) from None


def _import_module(module: str, env_id: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ValueError(f"env {env_id!r}: cannot import module {module!r}: {error}") from None


def make_env(
    env_id: str, kwargs: dict[str, Any] | None = None, render_mode: str | None = None
) -> gym.Env:
    """A new env for `env_id`, made with `kwargs` (and `render_mode` when given).

    `env_id` is a registered Gymnasium id (``CartPole-v1``, ``smevo/Easy-v0``), Gymnasium's
    ``module:EnvId`` (the module is imported first, e.g. ``smevo_envs:smevo/Easy-v0``), or
    ``module:factory`` where ``module.factory(**kwargs)`` returns a `gymnasium.Env`.
    Every failure to make the env is a `ValueError` with a one-line message: an unknown id
    (with the valid ids and the closest one), a module that does not import, keyword
    arguments the env does not take, a missing optional dependency (naming the extra).
    """
    kwargs = dict(kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    _register_smevo_envs(env_id)
    module, _, name = env_id.rpartition(":")
    if module:
        factory = getattr(_import_module(module, env_id), name, None)
        if name not in gym.registry and callable(factory):
            return _from_factory(env_id, factory, kwargs)
    if name not in gym.registry:
        raise ValueError(unknown_name_message("env", name, env_names()))
    try:
        return gym.make(name, **kwargs)
    except TypeError as error:
        raise ValueError(f"env {env_id!r} with kwargs {kwargs}: {_first_line(error)}") from None
    except gym.error.Error as error:  # e.g. DependencyNotInstalled, naming the pip extra
        raise ValueError(f"env {env_id!r}: {_first_line(error)}") from None


def _from_factory(env_id: str, factory: Any, kwargs: dict[str, Any]) -> gym.Env:
    """``factory(**kwargs)``, checked to be a Gymnasium env."""
    try:
        env = factory(**kwargs)
    except TypeError as error:
        raise ValueError(f"env {env_id!r} with kwargs {kwargs}: {_first_line(error)}") from None
    if not isinstance(env, gym.Env):
        raise ValueError(
            f"env {env_id!r}: the factory returned {type(env).__name__}, not a gymnasium.Env"
        )
    return env


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def env_names() -> list[str]:
    """Every registered env id: the ``smevo/`` ones first, then the rest, each group sorted."""
    _register_smevo_envs("")
    ids = sorted(gym.registry)
    return [i for i in ids if i.startswith(SMEVO_NAMESPACE)] + [
        i for i in ids if not i.startswith(SMEVO_NAMESPACE)
    ]


def env_description(env_id: str) -> str:
    """A one-line description of a registered id from its spec alone (nothing is imported)."""
    spec: EnvSpec = gym.spec(env_id)
    entry = spec.entry_point if isinstance(spec.entry_point, str) else "a callable"
    details = []
    if spec.kwargs:
        details.append(", ".join(f"{k}={v!r}" for k, v in spec.kwargs.items()))
    if spec.max_episode_steps is not None:
        details.append(f"at most {spec.max_episode_steps} steps")
    if spec.reward_threshold is not None:
        details.append(f"solved at {spec.reward_threshold:g}")
    return entry + (f" ({'; '.join(details)})" if details else "")
