"""A case-insensitive name -> factory registry whose errors list the valid names."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

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


def load_entry_point(entry_point: str) -> object:
    """The object a ``"package.module:attribute"`` string names, imported now."""
    module, _, attribute = entry_point.partition(":")
    return getattr(importlib.import_module(module), attribute)


class Registry(Generic[T]):
    """Maps names (matched case-insensitively, with aliases) to factories.

    A factory may be registered as a ``"module:attribute"`` string, imported on its first
    `get`: listing and validating names then costs no import, and an optional dependency
    (Ray) is needed only by whoever chooses it. Lookups of unknown names raise `ValueError`
    naming every valid name and the closest one, so a typo on the command line is a one-line
    fix.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, tuple[str, T | str]] = {}
        self._canonical: list[str] = []

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
        if isinstance(factory, str):
            try:
                return load_entry_point(factory)  # type: ignore[return-value]
            except ImportError as error:
                raise ValueError(f"{self.kind} {canonical!r} is unavailable: {error}") from error
        return factory

    def names(self) -> list[str]:
        """Canonical names in registration order."""
        return list(self._canonical)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._canonical)

    def _lookup(self, name: str) -> tuple[str, T | str]:
        if not isinstance(name, str) or name.lower() not in self._entries:
            raise ValueError(unknown_name_message(self.kind, str(name), self._canonical))
        return self._entries[name.lower()]
