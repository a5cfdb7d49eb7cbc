"""Making environments by id: Gymnasium ids, ``module:EnvId`` and ``module:factory``.

Every place that turns ``env.id`` into an env (the trainer's workers, `smevo eval`,
`smevo watch`, the CLI's checks) goes through `make_env`, so that an id means the same thing
everywhere and an unknown one is always a one-line `ValueError` naming the valid ids and the
closest match. The ``smevo/`` ids are registered by importing `smevo_envs`, done here on
demand so that ``smevo/...`` works without the user importing anything.

An id can name code: ``module:factory`` calls a function, and importing the module of
``module:EnvId`` runs that module. An id read from a file (a ``best.pt``, a checkpoint, a
run's ``config.yaml``) is somebody else's choice, so `make_env` makes it only if
`check_env_trust` allows it: unless the caller says the user trusts the id
(``--trust-env-code``, ``trust_env_code=True``), only ids that run no code beyond what this
process already runs are made. An id in a config the user passes to ``smevo train`` is the
user's own choice and is trusted.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec

from smevo._registry import unknown_name_message

__all__ = [
    "SMEVO_NAMESPACE",
    "TRUST_HINT",
    "UntrustedEnvError",
    "check_env_trust",
    "env_description",
    "env_names",
    "make_env",
]

SMEVO_NAMESPACE = "smevo/"
"""The prefix of the ids that `smevo_envs` registers."""

TRUST_HINT = "add --trust-env-code to allow it (trust_env_code=True in Python)"
"""How a user allows an env id that names code; the end of every refusal."""

OWN_ENV_PACKAGE = "smevo_envs"
"""smevo's own env package: importing it (or one of its modules) runs only smevo's code."""

ENV_LOADING_IDS = frozenset({"GymV21Environment-v0", "GymV26Environment-v0"})
"""Registered ids whose kwargs name another env to import and make (Gymnasium's gym
compatibility envs, live when shimmy is installed): their kwargs are code, not data."""


class UntrustedEnvError(ValueError):
    """An env id that would import or call code the user has not said they trust."""


LAZY_NAMESPACES = {
    "MinAtar/": ("smevo_envs.minatar", "pixels", True),
    "ALE/": ("smevo_envs.atari", "pixels", False),
    "Atari/": ("smevo_envs.atari", "pixels", False),
}
"""Other packages' id namespaces that `smevo_envs` registers on demand: prefix -> (the module
whose ``register()`` does it, the smevo extra that installs the package, whether listing
every env registers it too). MinAtar's are registered without importing `minatar`; the Atari
ones import ``ale_py`` (hundreds of ids), so only an id in them does, not a listing."""


def _register_smevo_envs(env_id: str) -> None:
    """Import `smevo_envs` so its ids exist, and register the `LAZY_NAMESPACES` one that
    `env_id` is in (every listed one for ``""``); a failure matters only for an id it would
    make.

    A broken `smevo_envs` (say, an unbuilt extension) must not stop a user training on
    CartPole, but asking for one of its envs must show why it is missing.
    """
    name = env_id.split(":")[-1]
    try:
        importlib.import_module(OWN_ENV_PACKAGE)
    except ImportError as error:
        if name.startswith((SMEVO_NAMESPACE, *LAZY_NAMESPACES)):
            raise ValueError(
                f"env {env_id!r} needs smevo_envs, which failed to import: {error}"
            ) from None
        return
    for prefix, (module, extra, listed) in LAZY_NAMESPACES.items():
        if (env_id and not name.startswith(prefix)) or (not env_id and not listed):
            continue
        installed = importlib.import_module(module).register()
        if env_id and not installed:
            raise ValueError(f"env {env_id!r} needs the {prefix.rstrip('/')} package: "
                             f"pip install 'smevo[{extra}]'")


def check_env_trust(env_id: str, *, trust_env_code: bool) -> None:
    """Raise `UntrustedEnvError` unless making `env_id` runs only code already running here,
    or the user trusts it (`trust_env_code`). The one place that decides which ids a file may
    name; it registers smevo's own ids first, so that they count as registered.

    Allowed without trust:

    - a registered Gymnasium id (``CartPole-v1``, ``smevo/Easy-v0``): installed code
      registered it, and a file's kwargs only parametrise it, except for `ENV_LOADING_IDS`;
    - ``module:EnvId`` with ``EnvId`` registered, where `module` is `OWN_ENV_PACKAGE` (or one
      of its modules) or is already imported in this process: importing it runs nothing new,
      so the id means what ``EnvId`` alone means.

    Everything else needs trust: ``module:factory`` (it calls the factory), and
    ``module:EnvId`` of a module not imported yet (importing a module runs its code; that is
    how it registers its ids).
    """
    _register_smevo_envs(env_id)
    if trust_env_code:
        return
    module, _, name = env_id.rpartition(":")
    if module and not _imports_nothing_new(module):
        raise UntrustedEnvError(f"env {env_id!r} imports module {module!r}, which runs its "
                                f"code; {TRUST_HINT}")
    if module and name not in gym.registry:
        raise UntrustedEnvError(f"env {env_id!r} calls {module}.{name}, code named by the "
                                f"id; {TRUST_HINT}")
    if name in ENV_LOADING_IDS:
        raise UntrustedEnvError(f"env {env_id!r} makes an env its kwargs name, which can be "
                                f"any code; {TRUST_HINT}")


def _imports_nothing_new(module: str) -> bool:
    """Importing `module` runs no code that is not already running: it is imported, or it is
    smevo's own env package."""
    own = module == OWN_ENV_PACKAGE or module.startswith(f"{OWN_ENV_PACKAGE}.")
    return own or sys.modules.get(module) is not None


def _import_module(module: str, env_id: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ValueError(f"env {env_id!r}: cannot import module {module!r}: {error}") from None


def make_env(
    env_id: str,
    kwargs: dict[str, Any] | None = None,
    render_mode: str | None = None,
    *,
    trust_env_code: bool = False,
) -> gym.Env:
    """A new env for `env_id`, made with `kwargs` (and `render_mode` when given).

    `env_id` is a registered Gymnasium id (``CartPole-v1``, ``smevo/Easy-v0``), Gymnasium's
    ``module:EnvId`` (the module is imported first, e.g. ``smevo_envs:smevo/Easy-v0``), or
    ``module:factory`` where ``module.factory(**kwargs)`` returns a `gymnasium.Env`.
    `trust_env_code` says the user chose `env_id` (their own config) or trusts whoever did;
    without it an id that names code is refused (`check_env_trust`). Every failure to make
    the env is a `ValueError` with a one-line message: an untrusted id (`UntrustedEnvError`),
    an unknown id (with the valid ids and the closest one), a module that does not import,
    keyword arguments the env does not take, a missing optional dependency (naming the extra).
    """
    check_env_trust(env_id, trust_env_code=trust_env_code)
    kwargs = dict(kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    module, _, name = env_id.rpartition(":")
    if module:
        factory = getattr(_import_module(module, env_id), name, None)
        if name not in gym.registry and callable(factory):
            return _from_factory(env_id, factory, kwargs)
    if name not in gym.registry:
        raise ValueError(unknown_name_message("env", name, env_names(), "smevo list envs"))
    try:
        return gym.make(name, **kwargs)
    except TypeError as error:
        raise ValueError(f"env {env_id!r} with kwargs {kwargs}: {_first_line(error)}") from None
    except gym.error.Error as error:  # e.g. DependencyNotInstalled, naming the pip extra
        raise ValueError(f"env {env_id!r}: {_first_line(error)}") from None


class FreshEnvEachEpisode(gym.Wrapper):
    """An env made anew at every reset but the first, for envs whose reset does not clear
    all their state (`EnvCapabilities.reset_keeps_state`)."""

    def __init__(self, make: Callable[[], gym.Env]) -> None:
        super().__init__(make())
        self._make, self._played = make, False

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if self._played:
            self.env.close()
            self.env = self._make()
        self._played = True
        return self.env.reset(**kwargs)


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
    """Every registered env id that can be made here: the ``smevo/`` ones first, then the
    rest, each group sorted. Ids whose code is missing here (an optional dependency such as
    MuJoCo or jax not installed) are left out, found without making any env (`_makeable`)."""
    _register_smevo_envs("")
    ids = sorted(i for i, spec in gym.registry.items() if _makeable(spec))
    return [i for i in ids if i.startswith(SMEVO_NAMESPACE)] + [
        i for i in ids if not i.startswith(SMEVO_NAMESPACE)
    ]


@functools.cache
def _module_found(module: str) -> bool:
    """Whether `module` can be imported, judged by finding it (its own code is not run).
    Finding it imports its parent packages, which is where Gymnasium checks its optional
    dependencies (``gymnasium.envs.mujoco`` raises without MuJoCo)."""
    try:
        return importlib.util.find_spec(module) is not None
    except Exception:  # a parent package failing to import, with any error its code raises
        return False


def _makeable(spec: EnvSpec) -> bool:
    """Whether the env of `spec` can be made here, as far as a cheap look can tell: its
    entry point's module is found, and it is not one of Gymnasium's placeholder callables
    (``_raise_mujoco_py_error``, ``_raise_shimmy_error``) that only raise."""
    entry = spec.entry_point
    if isinstance(entry, str):
        return _module_found(entry.partition(":")[0])
    return not getattr(entry, "__name__", "").startswith("_raise_")


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
