"""The registries are the one list of their names: lazy entries, one-line errors, and every
registered backend and operator usable wherever names are listed or validated."""

from __future__ import annotations

import subprocess
import sys

import pytest

from smevo._registry import Registry
from smevo.cli import main
from smevo.config import config_from_dict
from smevo.evaluation import BACKENDS, Backend
from smevo.mutations import MUTATIONS
from smevo.mutations.operators import Control


def test_a_string_entry_is_imported_on_first_get():
    registry: Registry[type] = Registry("thing")
    registry.add("ordered", "collections:OrderedDict")
    from collections import OrderedDict

    assert "ordered" in registry and registry.get("ORDERED") is OrderedDict


def test_a_missing_dependency_is_a_one_line_error_naming_the_entry():
    registry: Registry[type] = Registry("backend")
    registry.add("gone", "smevo_no_such_module:Thing")
    with pytest.raises(ValueError, match="^backend 'gone' is unavailable: No module named"):
        registry.get("gone")


@pytest.mark.parametrize("name", BACKENDS.names())
def test_every_backend_is_a_backend_the_config_accepts(name):
    assert issubclass(BACKENDS.get(name), Backend) and BACKENDS.get(name).name == name
    assert config_from_dict({"evaluation": {"backend": name}}).evaluation.backend == name


def test_validating_a_backend_name_imports_no_backend():
    code = ("import sys; from smevo.config import config_from_dict; "
            "config_from_dict({'evaluation': {'backend': 'ray'}}); "
            "print(sorted(m for m in ('ray', 'torch', 'smevo.evaluation.backends') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ray_missing_is_a_one_line_error_naming_the_extra():
    code = ("import sys; sys.modules['ray'] = None\n"
            "from smevo.evaluation import make_backend\n"
            "try:\n    make_backend('ray', None)\nexcept ValueError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "backend 'ray' is unavailable" in out.stdout and "smevo[ray]" in out.stdout
    assert len(out.stdout.strip().splitlines()) == 1


def test_a_new_operator_is_listed_without_editing_the_cli(monkeypatch, capsys):
    """What `magnitude` means lives on the operator class, so `smevo list` shows an operator
    registered anywhere."""

    class Doubling(Control):
        """Doubling: control with twice the step."""

        name = "doubling"
        magnitude_means = "half the sigma of the Gaussian"

    monkeypatch.setattr(MUTATIONS, "_entries", dict(MUTATIONS._entries))
    monkeypatch.setattr(MUTATIONS, "_canonical", list(MUTATIONS._canonical))
    MUTATIONS.add("doubling", Doubling)
    assert main(["list", "mutations"]) == 0
    out = capsys.readouterr().out
    assert "Magnitude: half the sigma of the Gaussian." in out
    for name in MUTATIONS.names():
        assert f"  {name} " in out and MUTATIONS.get(name).magnitude_means in out


def test_each_backend_says_how_many_workers_it_starts_on_this_machine():
    """The memory check asks the backend class, not a table of names."""
    starts = {name: BACKENDS.get(name).local_workers(3, None) for name in BACKENDS}
    assert starts == {"serial": 0, "vectorized": 0, "process": 3, "ray": 3}
    assert BACKENDS.get("ray").local_workers(3, "auto") == 0


def test_options_and_defaults_are_read_from_the_signature(capsys):
    """A registered class's signature is the one source of its option names and defaults:
    `smevo list mutations` shows them as the class declares them, and a `functools.partial`
    entry hides the keywords it fixes."""
    import functools

    from smevo._registry import keyword_options
    from smevo.mutations import mutation_options

    class Clipped(Control):
        def __init__(self, magnitude: float, *, weight_clip: float | None = 0.5,
                     spread: str = "wide") -> None:
            super().__init__(magnitude, weight_clip=weight_clip)

    assert keyword_options(Clipped) == {"weight_clip": 0.5, "spread": "wide"}
    assert keyword_options(functools.partial(Clipped, spread="narrow")) == {"weight_clip": 0.5}
    assert main(["list", "mutations"]) == 0
    out = capsys.readouterr().out
    for name in MUTATIONS.names():
        assert list(keyword_options(MUTATIONS.get(name))) == mutation_options(name)
    assert "floor = 0.01" in out and "weight_clip = null" in out
