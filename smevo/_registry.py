"""A case-insensitive name -> factory registry whose errors list the valid names, extended
by the entry points of installed plugins."""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

T = TypeVar("T")


LISTED = 12
"""An unknown-name error lists every valid name up to this many, else only the closest."""
CLOSEST = 5
"""How many of the closest names an unknown-name error lists when there are many."""


def _closest(name: str, valid: list[str], cutoff: float) -> list[str]:
    """Up to `CLOSEST` of `valid`, most similar to `name` first (case-insensitive)."""
    lowered = {v.lower(): v for v in valid}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=CLOSEST, cutoff=cutoff)
    return [lowered[match] for match in matches]


def unknown_name_message(
    kind: str, name: str, valid: list[str], listing: str | None = None
) -> str:
    """The one-line error for an unknown name: the valid names, or only the closest few
    when there are more than `LISTED` (with `listing`, the command that shows them all), and
    the closest match."""
    if len(valid) <= LISTED:
        message = f"unknown {kind} {name!r}; valid: {', '.join(valid)}"
    else:
        everything = f"{len(valid)} in all" + (f": {listing}" if listing else "")
        message = (
            f"unknown {kind} {name!r}; closest: {', '.join(_closest(name, valid, cutoff=0.0))} "
            f"({everything})"
        )
    close = _closest(name, valid, cutoff=0.5)
    if close:
        message += f". Did you mean {close[0]!r}?"
    return message


def check_options(kind: str, name: str, options: Iterable[str], valid: list[str]) -> None:
    """Raise `ValueError` naming any of `options` that `kind` `name` does not accept, with the
    valid ones."""
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for {kind} {name!r}; "
            f"valid: {', '.join(valid) or 'none'}"
        )


def keyword_options(factory: Callable[..., object]) -> dict[str, Any]:
    """The options `factory` (a class or a function, maybe a `functools.partial`) accepts and
    their defaults, read from its signature: its keyword-only parameters, less those the
    partial fixes. The one source of a registered name's option names and defaults."""
    fixed = factory.keywords if isinstance(factory, functools.partial) else {}
    parameters = inspect.signature(factory).parameters.values()
    return {p.name: p.default for p in parameters
            if p.kind is p.KEYWORD_ONLY and p.name not in fixed}


def load_entry_point(entry_point: str) -> object:
    """The object a ``"package.module:attribute"`` string names, imported now."""
    module, _, attribute = entry_point.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Plugin:
    """A name an installed distribution registers under an entry-point group; its object is
    imported on the first `Registry.get`, so listing names imports no plugin."""

    entry_point: metadata.EntryPoint

    @property
    def origin(self) -> str:
        """The distribution that provides it, as ``name version``, for error messages."""
        dist = self.entry_point.dist
        return "an unknown distribution" if dist is None else f"{dist.name} {dist.version}"

    def load(self, kind: str, name: str) -> object:
        """The plugin's object; any failure to import it (the plugin's code, or a dependency
        it lacks) is a one-line `ValueError` naming its distribution."""
        where = f"{kind} {name!r} of the plugin {self.origin} ({self.entry_point.value})"
        try:
            loaded = self.entry_point.load()
        except Exception as error:  # third-party import code may raise anything
            raise ValueError(
                f"{where} cannot be loaded: {type(error).__name__}: {error}"
            ) from error
        if not callable(loaded):
            raise ValueError(f"{where} is not callable: {type(loaded).__name__}")
        return loaded


@dataclass(frozen=True)
class Clash:
    """A name that several plugins register: unusable until all but one are uninstalled."""

    message: str


class Registry(Generic[T]):
    """Maps names (matched case-insensitively, with aliases) to factories.

    A factory may be registered as a ``"module:attribute"`` string, imported on its first
    `get`: listing and validating names then costs no import, and an optional dependency
    (Ray) is needed only by whoever chooses it. Lookups of unknown names raise `ValueError`
    naming every valid name and the closest one, so a typo on the command line is a one-line
    fix.

    With `entry_points`, the entry points of that group (installed plugins) join the built-in
    names on the first lookup or listing, each imported only when got. A plugin never replaces
    a built-in name: one that tries is left out and reported by `plugin_problems`, and a name
    that two plugins register is an error when used. A file (config, agent) can thus name only
    what smevo or an installed plugin registered, never a module to import.
    """

    def __init__(self, kind: str, entry_points: str | None = None) -> None:
        self.kind = kind
        self.group = entry_points
        self._entries: dict[str, tuple[str, T | str | Plugin | Clash]] = {}
        self._canonical: list[str] = []
        self._discovered = entry_points is None
        self._problems: list[str] = []

    def add(self, name: str, factory: T | str, *aliases: str) -> None:
        """Register `factory` (or the ``"module:attribute"`` naming it) under `name` and
        `aliases`."""
        for key in (name, *aliases):
            if key.lower() in self._entries:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key.lower()] = (name, factory)
        self._canonical.append(name)

    def canonical(self, name: str) -> str:
        """The registered spelling of `name` (which may be an alias or differ in case)."""
        return self._lookup(name)[0]

    def get(self, name: str) -> T:
        """The factory registered for `name`, imported if it was registered by string. A
        module that cannot be imported (a missing optional dependency) is a `ValueError`
        carrying its message, which names what to install."""
        canonical, factory = self._lookup(name)
        if isinstance(factory, Plugin):
            return factory.load(self.kind, canonical)  # type: ignore[return-value]
        if isinstance(factory, Clash):
            raise ValueError(factory.message)
        if isinstance(factory, str):
            try:
                return load_entry_point(factory)  # type: ignore[return-value]
            except ImportError as error:
                raise ValueError(f"{self.kind} {canonical!r} is unavailable: {error}") from error
        return factory

    def names(self) -> list[str]:
        """Canonical names: the built-in ones in registration order, then the plugins'
        (sorted)."""
        self._discover()
        return list(self._canonical)

    def plugin(self, name: str) -> str | None:
        """The distribution (``name version``) that provides `name`, or None for a built-in."""
        factory = self._lookup(name)[1]
        return factory.origin if isinstance(factory, Plugin) else None

    def plugin_problems(self) -> list[str]:
        """One line per installed plugin left out because it would replace a built-in name."""
        self._discover()
        return list(self._problems)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return isinstance(name, str) and name.lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _discover(self) -> None:
        """Register the entry points of `group`, once: reading the installed distributions'
        metadata imports none of them."""
        if self._discovered:
            return
        self._discovered = True
        plugins: dict[str, list[Plugin]] = {}  # sorted: the same order on every machine
        for plugin in sorted(map(Plugin, metadata.entry_points(group=self.group)),
                             key=lambda p: (p.entry_point.name.lower(), p.origin)):
            plugins.setdefault(plugin.entry_point.name.lower(), []).append(plugin)
        for key, providers in plugins.items():
            name = providers[0].entry_point.name
            if key in self._entries:  # a built-in name or alias
                self._problems += [
                    f"ignored the {self.kind} {name!r} of the plugin {plugin.origin} "
                    f"({self.group}): the name is smevo's own" for plugin in providers
                ]
                continue
            origins = ", ".join(plugin.origin for plugin in providers)
            self._entries[key] = (name, providers[0] if len(providers) == 1 else Clash(
                f"{self.kind} {name!r} is registered by several plugins ({origins}); "
                "uninstall all but one"))
            self._canonical.append(name)

    def _lookup(self, name: str) -> tuple[str, T | str | Plugin | Clash]:
        self._discover()
        if not isinstance(name, str) or name.lower() not in self._entries:
            raise ValueError(unknown_name_message(self.kind, str(name), self._canonical))
        return self._entries[name.lower()]
