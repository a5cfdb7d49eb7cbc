"""Every registered smevo/ environment follows Gymnasium's API (the registry sweep).

Gymnasium's own env checks (check_env, same-seed rollouts, pickling, rendering, bounds) run
in test_gymnasium_conformance.py; here: registration, imports, docs and bad input."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import load_env_creator

import smevo_envs

SMEVO_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("smevo/"))

def test_every_env_of_the_package_is_registered_once():
    assert sorted(smevo_envs.ENV_IDS) == SMEVO_IDS
    for env_id in smevo_envs.ENV_IDS:
        assert gym.spec(env_id).reward_threshold is not None
        assert isinstance(gym.spec(env_id).entry_point, str)


def test_every_class_an_entry_point_names_is_exported():
    """`__all__` and the lazy class attributes are derived from the one table of specs."""
    for env_id in smevo_envs.ENV_IDS:
        spec = gym.spec(env_id)
        for entry_point in filter(None, (spec.entry_point, spec.vector_entry_point)):
            name = entry_point.partition(":")[2]
            assert name in smevo_envs.__all__
            assert getattr(smevo_envs, name) is load_env_creator(entry_point)


@pytest.mark.parametrize("env_id", smevo_envs.ENV_IDS)
def test_make_without_prior_import_in_a_fresh_interpreter(env_id):
    code = (
        "import sys, gymnasium as gym\n"
        f"env = gym.make('smevo_envs:{env_id}')\n"
        "env.reset(seed=0)\n"
        "env.step(env.action_space.sample())\n"
        "assert 'smevo' not in sys.modules, 'smevo_envs must not import smevo'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_reimport_does_not_register_twice():
    before = {env_id: gym.spec(env_id) for env_id in smevo_envs.ENV_IDS}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(smevo_envs)
    assert {env_id: gym.spec(env_id) for env_id in smevo_envs.ENV_IDS} == before


def test_env_classes_are_exported_lazily():
    from smevo_envs.maze import BreadcrumbHardMazeEnv

    assert smevo_envs.BreadcrumbHardMazeEnv is BreadcrumbHardMazeEnv
    assert "RecurrentParityEnv" in dir(smevo_envs)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = smevo_envs.Nope


@pytest.mark.parametrize("module", ["parity", "illustrative", "maze"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(f"smevo_envs.{module}"))
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("env_id", smevo_envs.ENV_IDS)
def test_docstring_has_the_spec_sheet_sections(env_id):
    doc = gym.make(env_id).unwrapped.__class__.__doc__
    for section in (
        "## Description",
        "## Action Space",
        "## Observation Space",
        "## Rewards",
        "## Starting State",
        "## Episode End",
        "## Arguments",
        "## Version History",
    ):
        assert section in doc


@pytest.mark.parametrize("env_id", smevo_envs.ENV_IDS)
@pytest.mark.parametrize(
    "bad_action",
    [
        pytest.param(np.zeros(3, dtype=np.float32), id="wrong-shape"),
        pytest.param(np.zeros((1, 2), dtype=np.float32), id="extra-axis"),
        pytest.param(np.array([np.nan, 0.5]), id="nan"),
        pytest.param(np.array([0.5, np.inf]), id="inf"),
        pytest.param(["a", "b"], id="strings"),
        pytest.param(np.array([True, False]), id="bool"),
        pytest.param(None, id="none"),
    ],
)
def test_bad_actions_raise_value_error(env_id, bad_action):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(bad_action)


@pytest.mark.parametrize("env_id", smevo_envs.ENV_IDS)
def test_step_before_reset_and_unknown_options(env_id):
    env = gym.make(env_id).unwrapped
    with pytest.raises(gym.error.ResetNeeded):
        env.step(env.action_space.sample())
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"nope": 1})


@pytest.mark.parametrize("env_id", smevo_envs.ENV_IDS)
def test_bad_render_mode(env_id):
    spec = gym.spec(env_id)
    env_class = load_env_creator(spec.entry_point)
    with pytest.raises(ValueError, match="render_mode"):
        env_class(render_mode="ascii", **spec.kwargs)
