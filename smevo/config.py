"""One typed config tree for a run; YAML files and ``--set key=value`` overrides fill it.

The tree is a handful of nested dataclasses (CleanRL's typed ``Args`` grown into sections).
Each field carries its help text in ``metadata["help"]``: the CLI turns it into
``smevo train --help`` and ``smevo list`` (see `config_fields`).

Every way in — a dict, a YAML file, ``--set`` strings — goes through one checker, so a
typo or a wrong type is always a `ConfigError` (a `ValueError`) with a one-line message that
names the dotted key, the expected type and the value received, and a CLI can print it without
a traceback. Only what can be checked without other modules is checked here: types and value
ranges. Whether ``env.id``, ``policy.name``, ``mutation.name`` or ``algorithm.name`` exist is
the registries' business.

The saved config (``config.yaml`` of a run) is exactly what the user asked for: derived values
are computed where they are used, never written back (STYLE.md §2).

The tree itself (sections, defaults, help texts, value ranges) is `smevo.config_schema`; this
module is how dicts, YAML files and ``--set`` strings fill it and how it is written.

Older smevo kept the algorithms' options flat (``algorithm.parents``); every way in still
takes them, moved into ``algorithm.options`` silently by `migrate_algorithm`
(`LEGACY_ALGORITHM_KEYS`), so old files, run folders and ``--set`` lines keep working.

(Near 500 lines: dicts, YAML and ``--set`` share one coercion and one error format, kept in
one module so that every way in reports a bad value alike.)
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import numbers
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from smevo.config_schema import (
    AlgorithmConfig,
    BudgetConfig,
    Config,
    ConfigError,
    EnvConfig,
    EvaluationConfig,
    LoggingConfig,
    MutationConfig,
    PolicyConfig,
    _show,
    check_minimums,
    check_positive,
    check_ranges,
    check_run_name,
)
from smevo.evaluation.registry import BACKENDS

__all__ = [
    "BACKENDS",
    "AlgorithmConfig",
    "BudgetConfig",
    "Config",
    "ConfigError",
    "ConfigField",
    "EnvConfig",
    "EvaluationConfig",
    "LoggingConfig",
    "MutationConfig",
    "PolicyConfig",
    "apply_overrides",
    "check_minimums",
    "check_positive",
    "check_run_name",
    "config_fields",
    "config_from_dict",
    "config_to_dict",
    "config_to_yaml",
    "load_config",
    "save_config",
    "validate_config",
]


class _BadType(Exception):
    """Internal: a value does not fit a field's type; `expected` names the type."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """Field name -> resolved type annotation of a config dataclass (resolved once per class:
    resolving costs more than the rest of checking a config)."""
    return typing.get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _type_name(tp: Any) -> str:
    """'int', 'float or null', 'mapping', ... as error messages and `smevo list` show it."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join([*names, "null"])
    if typing.get_origin(tp) is dict or tp is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _plain(value: Any, key: str) -> Any:
    """A deep copy of free-form data, checked to be YAML-representable plain data.

    Free-form fields (``env.kwargs``, the ``options`` of a policy, mutation or algorithm) accept
    anything YAML can hold, so that ``config.yaml`` always reloads; tuples become lists.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{key}: keys must be strings, got {_show(k)}")
            out[k] = _plain(v, f"{key}.{k}")
        return out
    if isinstance(value, list | tuple):
        return [_plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    raise ConfigError(
        f"{key}: expected plain data (null, bool, number, string, list, mapping), "
        f"got {type(value).__name__} {_show(value)}"
    )


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """`value` checked against the leaf type `tp`; ints are widened to float for float fields.

    Raises `_BadType` on a mismatch (the caller formats the message, which differs between
    a file and a ``--set``); a bool never passes for a number, a float never for an int.
    """
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in typing.get_args(tp):
                return None
            raise _BadType(_type_name(tp))
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        try:
            return _coerce(value, inner, key)
        except _BadType:
            raise _BadType(_type_name(tp)) from None
    if typing.get_origin(tp) is dict:
        if not isinstance(value, Mapping):
            raise _BadType("mapping")
        return _plain(value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:  # numbers.Integral also admits numpy integers from code-built configs
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
    elif tp is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a field type this module does not know is a programming error
        raise TypeError(f"unsupported config field type {tp!r} for {key}")
    raise _BadType(_type_name(tp))


def _unknown_key(key: str, section: str, valid: list[str]) -> ConfigError:
    """The error for an unknown key: the valid keys at that level and the closest one."""
    where = f"in {section!r}" if section else "at top level"
    name = key.rsplit(".", 1)[-1]
    message = f"unknown key {key!r}; valid keys {where}: {', '.join(valid)}"
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.45)
    if close:
        message += f". Did you mean {close[0]!r}?"
    return ConfigError(message)


LEGACY_ALGORITHM_KEYS = {
    "parents": "truncation",
    "elites": "truncation",
    "tournament": "steady_state",
    "batch": "steady_state",
}
"""The ``algorithm.*`` keys of older smevo that are now ``algorithm.options.*``, with the
algorithm that read each (the others ignored it; a resolved config.yaml held all four)."""


def migrate_algorithm(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """An ``algorithm`` section with its legacy keys (`LEGACY_ALGORITHM_KEYS`) moved into
    ``options``, where the chosen algorithm (``data["name"]``, else `name`) is the one that
    read them, and dropped elsewhere, as older smevo ignored them; a legacy key wins over the
    same option (it is the later ``--set``). No warning: old files stay valid as they are."""
    legacy = [key for key in LEGACY_ALGORITHM_KEYS if key in data]
    options = data.get("options") or {}
    if not legacy or not isinstance(options, Mapping):
        return data  # (options that are not a mapping: `_build` says so)
    chosen = str(data.get("name", name)).lower().replace("-", "_")  # steady-state: an alias
    moved = {key: data[key] for key in legacy if LEGACY_ALGORITHM_KEYS[key] == chosen}
    kept = {key: value for key, value in data.items() if key not in LEGACY_ALGORITHM_KEYS}
    return {**kept, "options": {**options, **moved}}


def _build(cls: type, data: Any, prefix: str, base: Any = None) -> Any:
    """An instance of the section `cls` from a partial mapping, missing keys from `base`.

    `base` is an instance of `cls` supplying the values `data` leaves out (the defaults
    when None). A section given as null counts as empty (YAML ``algorithm:`` with every key
    commented out).
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {_show(data)}"
        )
    base = cls() if base is None else base
    if cls is AlgorithmConfig:
        data = migrate_algorithm(data, base.name)
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if not isinstance(key, str) or key not in hints:
            raise _unknown_key(f"{prefix}{key}", prefix.rstrip("."), names)
    values = {}
    for name in names:
        key, tp = f"{prefix}{name}", hints[name]
        current = getattr(base, name)
        if _is_section(tp):
            values[name] = _build(tp, data.get(name), f"{key}.", current)
        elif name in data:
            try:
                values[name] = _coerce(data[name], tp, key)
            except _BadType as error:
                raise ConfigError(
                    f"{key}: expected {error.expected}, got {_show(data[name])}"
                ) from None
        else:
            values[name] = copy.deepcopy(current)
    return cls(**values)


def config_from_dict(data: Mapping[str, Any], schema: type = Config) -> Any:
    """Build and validate a `Config` (or another root `schema`, e.g. the A2C run's) from a
    (partial) nested mapping; defaults fill the rest.

    Raises `ConfigError` for an unknown key (naming the dotted key, the valid keys at that
    level and the closest one), a value of the wrong type, or a value out of range.
    """
    config = _build(schema, data, "")
    if isinstance(config, Config):
        check_ranges(config)
    else:  # another root schema checks its own ranges
        config.check_ranges()
    return config


def validate_config(config: Any) -> None:
    """Check a `Config` (or another root schema's tree) built or edited in code exactly as
    `config_from_dict` checks a dict."""
    config_from_dict(config_to_dict(config), type(config))


def config_to_dict(config: Config) -> dict[str, Any]:
    """The config as plain builtins (dicts, lists, scalars) that YAML writes and reloads."""
    return dataclasses.asdict(config)


def config_to_yaml(config: Config) -> str:
    """The full resolved config as YAML text, sections in declaration order."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, default_flow_style=False)


def save_config(config: Config, path: str | Path) -> None:
    """Write the full resolved config to `path` as YAML."""
    Path(path).write_text(config_to_yaml(config), encoding="utf-8")


class _StrictMappings:
    """A loader part that rejects duplicate keys: PyYAML silently keeps the last value; here
    it is an error naming its line."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Loader(_StrictMappings, yaml.SafeLoader):
    """SafeLoader that reads ``1e-3`` as a float and rejects duplicate keys. PyYAML follows
    YAML 1.1, where a float needs a dot (``1.0e-3``); users write ``1e-3`` and would get the
    string '1e-3'."""


class _FastLoader(_StrictMappings, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """`_Loader` on libyaml's parser where PyYAML has it (grids build hundreds of configs);
    its error positions differ from PyYAML's, so errors are reported by `_Loader`."""


for _loader in (_Loader, _FastLoader):
    _loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )


def _parse_yaml(text: str) -> Any:
    """The YAML document in `text` (safe loading: plain data only); a `yaml.YAMLError` with
    PyYAML's own positions if it is not valid."""
    try:
        return yaml.load(text, Loader=_FastLoader)  # a SafeLoader
    except yaml.YAMLError:
        return yaml.load(text, Loader=_Loader)  # raises it again, where PyYAML points


def _yaml_problem(error: yaml.YAMLError) -> str:
    """'line L, column C: problem' for a YAML error (1-based, as editors count)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def load_config(path: str | Path, schema: type = Config) -> Any:
    """Read a YAML config file of `schema`; its keys are partial, defaults fill the rest.

    Raises `ConfigError` (message prefixed with the file name) for a missing or unreadable
    file, a YAML syntax error (with its 1-based line), a top level that is not a mapping,
    and anything `config_from_dict` rejects. An empty file gives the defaults.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read config file: {error}") from None
    try:
        data = _parse_yaml(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML at {_yaml_problem(error)}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys to values, got {_show(data)}"
        )
    try:
        return config_from_dict(data, schema)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _parse_override(item: str) -> tuple[list[str], str, Any]:
    """'a.b=value' -> (['a', 'b'], 'value', parsed value)."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected key=value, e.g. algorithm.population=64")
    key, raw = item.split("=", 1)
    key, raw = key.strip(), raw.strip()
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"--set {item}: malformed key {key!r}")
    try:
        value = _parse_yaml(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {item}: invalid value: {_yaml_problem(error)}") from None
    return parts, raw, value


def _set_override(data: dict[str, Any], item: str, schema: type = Config) -> None:
    """Apply one ``--set`` string to the nested dict `data` of a whole config.

    The key is walked through the config tree: a leaf field gets the value checked against
    its type, a section gets a partial mapping merged in, and inside a free-form dict field
    the remaining key parts address (and create) nested keys. A string field takes the raw
    text when YAML would read it as something else (``logging.name=2024``), except ``null``.
    """
    parts, raw, value = _parse_override(item)
    cls: type = schema
    node = data
    for depth, name in enumerate(parts):
        hints = _hints(cls)
        prefix = ".".join(parts[:depth])
        key = ".".join(parts[: depth + 1])
        if cls is AlgorithmConfig and name in LEGACY_ALGORITHM_KEYS and depth == len(parts) - 1:
            node[name] = value  # moved into options at the end, when the name is known
            return
        if name not in hints:
            names = [f.name for f in dataclasses.fields(cls)]
            raise ConfigError(f"--set {item}: {_unknown_key(key, prefix, names)}")
        tp, last = hints[name], depth == len(parts) - 1
        if _is_section(tp):
            if last:
                try:
                    current = _build(tp, node[name], "")
                    node[name] = dataclasses.asdict(_build(tp, value, f"{key}.", current))
                except ConfigError as error:
                    raise ConfigError(f"--set {item}: {error}") from None
                return
            cls, node = tp, node[name]
            continue
        if not last and typing.get_origin(tp) is not dict:
            raise ConfigError(
                f"--set {item}: {key} is of type {_type_name(tp)}, it has no sub-keys"
            )
        if not last:
            _set_free_form(node[name], key, parts[depth + 1 :], value, item)
            return
        if (
            value is not None
            and not isinstance(value, str | list | dict)
            and str in _leaf_types(tp)
        ):
            value = raw  # e.g. logging.name=2024 or =2024-01-01: the user meant the text
        try:
            node[name] = _coerce(value, tp, key)
        except _BadType as error:
            raise ConfigError(
                f"--set {item}: expected {error.expected}, got {_show(value)}"
            ) from None
        except ConfigError as error:
            raise ConfigError(f"--set {item}: {error}") from None
        return


def _leaf_types(tp: Any) -> tuple[Any, ...]:
    """The member types of an optional type, or the type itself."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def _set_free_form(
    target: dict[str, Any], key: str, path: list[str], value: Any, item: str
) -> None:
    """Set ``target[path[0]]...[path[-1]] = value`` in the free-form dict field `key`."""
    for depth, part in enumerate(path[:-1]):
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join([key, *path[: depth + 1]])
            raise ConfigError(f"--set {item}: {where} holds {_show(child)}, not a mapping")
        target = child
    try:
        target[path[-1]] = _plain(value, ".".join([key, *path]))
    except ConfigError as error:
        raise ConfigError(f"--set {item}: {error}") from None


def apply_overrides(config: Any, overrides: list[str]) -> Any:
    """A new config with ``--set key=value`` strings applied in order; `config` is untouched.

    Keys are dotted (``algorithm.population=64``, ``policy.options.hidden=[32,32]``,
    ``env.kwargs.frame_skip=1``); values are YAML scalars or flow collections (``true``,
    ``null``, ``1e-3``, ``[16,16]``, ``{hidden: 32}``). Types are checked per override;
    value ranges once at the end, so ``population=10`` then ``population=20`` is fine
    (an algorithm's options are checked with its class: `smevo.runnable`).
    """
    data = config_to_dict(config)
    for item in overrides:
        _set_override(data, item, type(config))
    return config_from_dict(data, type(config))


class ConfigField(NamedTuple):
    """One leaf of the config tree, as ``--help`` and ``smevo list`` show it."""

    key: str
    type: str
    value: Any
    help: str


def config_fields(config: Any = None) -> list[ConfigField]:
    """Every leaf field as (dotted key, type name, value, help), in declaration order.

    `value` is taken from `config` (a `Config`, or another root schema's tree such as
    `smevo.fit_config.FitConfig`), or is the `Config` default when `config` is None.
    """
    out: list[ConfigField] = []

    def walk(section: Any, prefix: str) -> None:
        hints = _hints(type(section))
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if _is_section(hints[f.name]):
                walk(value, f"{prefix}{f.name}.")
            else:
                out.append(
                    ConfigField(
                        f"{prefix}{f.name}", _type_name(hints[f.name]), value, f.metadata["help"]
                    )
                )

    walk(config if config is not None else Config(), "")
    return out
