"""``smevo list``: the registered envs, policies, mutations, algorithms and backends (those
of installed plugins included) and the config keys, with a line each."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence

from smevo._registry import Registry
from smevo.commands.common import UsageError, first_paragraph, one_line, say
from smevo.config import config_fields


def _table(title: str, rows: Sequence[tuple[str, str]]) -> None:
    width = max((len(name) for name, _ in rows), default=0)
    say(f"{title}:")
    for name, text in rows:
        say(f"  {name:<{width}}  {text}")


def _list_envs() -> None:
    from smevo.envs import env_description, env_names

    _table("envs", [(name, env_description(name)) for name in env_names()])


def _list_registry(
    title: str, registry: Registry, describe: Callable[[str], list[tuple[str, str]]]
) -> None:
    """A table of `registry`'s names, each described by `describe` (its rows), a plugin's
    marked with its distribution. A plugin that cannot be loaded is a row saying why, and one
    left out (a clash with a built-in name) a line after the table: a broken plugin never
    hides the other names."""
    rows = []
    for name in registry.names():
        try:
            described = describe(name)
        except ValueError as error:  # the error names the plugin's distribution
            described = [(name, f"unavailable: {one_line(error)}")]
        else:
            origin = registry.plugin(name)
            if origin is not None:
                described[0] = (name, f"[plugin {origin}] {described[0][1]}")
        rows += described
    _table(title, rows)
    for problem in registry.plugin_problems():
        say(f"  note: {problem}")


def _describe_policy(name: str) -> list[tuple[str, str]]:
    """A policy's description, then one row per option: default and meaning (set with
    ``--set policy.options.NAME=VALUE``)."""
    from smevo.policies import POLICIES, policy_option_help

    factory = POLICIES.get(name)
    fixed = getattr(factory, "keywords", {})
    doc = first_paragraph(getattr(factory, "func", factory))
    preset = "".join(f"[{k}={v}] " for k, v in fixed.items())
    options = policy_option_help(name)
    return [(name, f"{preset}{doc} Options:{'' if options else ' none.'}")] + [
        ("", f"  {option.name} = {json.dumps(option.default)}"
             + (f": {option.meaning}" if option.meaning else ""))
        for option in options
    ]


def _signature_options(factory: Callable[..., object]) -> str:
    """A class's options with their defaults, from its signature: ``a = 1, b = null``."""
    from smevo._registry import keyword_options

    return ", ".join(f"{option} = {json.dumps(default, default=repr)}"
                     for option, default in keyword_options(factory).items()) or "none"


def _describe_mutation(name: str) -> list[tuple[str, str]]:
    """An operator's description, what its magnitude means, and its options with their
    defaults (its class's signature; set with ``--set mutation.options.NAME=VALUE``)."""
    from smevo.mutations import MUTATIONS

    operator = MUTATIONS.get(name)
    return [(name, f"{first_paragraph(operator).removeprefix(f'{name}: ')} "
                   f"Magnitude: {operator.magnitude_means}. "
                   f"Options: {_signature_options(operator)}.")]


def _describe_algorithm(name: str) -> list[tuple[str, str]]:
    """An algorithm's description and its options with their defaults (its class's
    signature; set with ``--set algorithm.options.NAME=VALUE``)."""
    from smevo.algorithms import ALGORITHMS

    algorithm = ALGORITHMS.get(name)
    return [(name, f"{first_paragraph(algorithm)} Options: {_signature_options(algorithm)}.")]


def _list_policies() -> None:
    from smevo.policies import POLICIES

    _list_registry("policies", POLICIES, _describe_policy)


def _list_mutations() -> None:
    from smevo.mutations import MUTATIONS

    _list_registry("mutations", MUTATIONS, _describe_mutation)


def _list_algorithms() -> None:
    from smevo.algorithms import ALGORITHMS

    _list_registry("algorithms", ALGORITHMS, _describe_algorithm)


def _list_backends() -> None:
    from smevo.evaluation import BACKENDS

    _list_registry("backends", BACKENDS,
                   lambda name: [(name, first_paragraph(BACKENDS.get(name)))])


def _list_config(section: str | None = None) -> None:
    """Every config key, or those of one `section` (``mutation``) or key (``mutation.name``)."""
    from smevo._registry import unknown_name_message

    fields = config_fields()
    if section is not None:
        chosen = [f for f in fields if f.key == section or f.key.startswith(f"{section}.")]
        if not chosen:
            sections = list(dict.fromkeys(f.key.split(".")[0] for f in fields))
            raise ValueError(unknown_name_message("config section", section, sections))
        fields = chosen
    rows = [(f.key, f"{f.type} = {json.dumps(f.value)}: {f.help}") for f in fields]
    _table("config keys (defaults; set with --set KEY=VALUE or in a --config file)", rows)


LISTINGS: dict[str, Callable[[], None]] = {
    "envs": _list_envs,
    "policies": _list_policies,
    "mutations": _list_mutations,
    "algorithms": _list_algorithms,
    "backends": _list_backends,
    "config": _list_config,
}


def cmd_list(args: argparse.Namespace) -> int:
    """`smevo list [WHAT]`: registered names with a line each (everything when WHAT is left
    out); `smevo list config SECTION`: the keys of one config section."""
    if args.section is not None:
        if args.what != "config":
            raise UsageError(
                f"only 'list config' takes a section (e.g. smevo list config {args.section})"
            )
        _list_config(args.section)
        return 0
    for index, name in enumerate([args.what] if args.what else LISTINGS):
        if index:
            say()
        LISTINGS[name]()
    return 0
