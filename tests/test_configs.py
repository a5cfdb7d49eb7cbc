"""Every shipped experiment config loads and names only registered components."""

from pathlib import Path

import pytest

from smevo.algorithms import ALGORITHMS
from smevo.config import load_config
from smevo.envs import env_names
from smevo.mutations import MUTATIONS, mutation_options
from smevo.policies import POLICIES, policy_options

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_the_experiments_are_all_there():
    names = {path.stem for path in CONFIGS}
    assert {"cartpole", "parity-rnn", "washout", "maze-deep-smg-abs"} <= names
    assert len(CONFIGS) == 16


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_config_loads_with_registered_names(path):
    config = load_config(path)
    assert config.policy.name in POLICIES
    assert set(config.policy.options) <= set(policy_options(config.policy.name))
    assert config.mutation.name in MUTATIONS
    assert set(config.mutation.options) <= set(mutation_options(config.mutation.name))
    assert config.algorithm.name in ALGORITHMS
    assert config.env.id in env_names()
