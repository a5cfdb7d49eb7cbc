"""Every shipped experiment config loads, names only registered components, and runs with
every registered operator (the README's promise)."""

import json
from pathlib import Path

import pytest

from smevo import train
from smevo.algorithms import ALGORITHMS, algorithm_options
from smevo.config import apply_overrides, load_config
from smevo.envs import check_env_trust, env_names
from smevo.mutations import MUTATIONS, mutation_options
from smevo.policies import POLICIES, policy_options

CONFIGS = sorted(path for path in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")
                 if not path.stem.endswith("-a2c"))  # `smevo a2c` configs: tests/test_a2c.py


def test_the_experiments_are_all_there():
    names = {path.stem for path in CONFIGS}
    assert {"cartpole", "parity-rnn", "washout", "maze-deep-smg-abs"} <= names
    assert len(CONFIGS) == 17


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_config_loads_with_registered_names(path):
    config = load_config(path)
    assert config.policy.name in POLICIES
    assert set(config.policy.options) <= set(policy_options(config.policy.name))
    assert config.mutation.name in MUTATIONS
    assert set(config.mutation.options) <= set(mutation_options(config.mutation.name))
    assert config.algorithm.name in ALGORITHMS
    algorithm_options(config.algorithm.name, config.algorithm.population,
                      config.algorithm.options)  # known options, in range
    check_env_trust(config.env.id, trust_env_code=False)  # registers an Atari/ id on demand
    assert config.env.id in env_names()


def tiny(path: Path, tmp_path: Path) -> list[str]:
    """Overrides that shrink `path`'s run to two generations (the second breeds children) of
    a few short episodes, keeping its env, policy, algorithm and mutation options."""
    config = load_config(path)
    sets = ["budget.generations=2", "budget.evaluations=null", "budget.env_steps=null",
            "budget.wall_time=null", "budget.stop_when_solved=false", "env.episodes=1",
            "mutation.archive_size=1", "algorithm.elite_episodes=0", "logging.quiet=true",
            "logging.histogram_every=0", f"logging.logdir={tmp_path}"]
    if config.algorithm.name != "hillclimb":  # hillclimb fixes its own sizes
        small = {"parents": 1, "elites": 1, "tournament": 2, "batch": 2}
        takes = algorithm_options(config.algorithm.name, 3, {})
        sets += ["algorithm.population=3",
                 *(f"algorithm.options.{key}={small[key]}" for key in takes)]
    if not config.env.id.startswith("smevo/"):  # Gymnasium's envs: a few steps suffice
        sets.append("env.max_steps=5")
    if config.env.id == "smevo/GridMaze-v0":  # its own horizon, shortened the env's way
        sets.append("env.kwargs.episode_length=20")
    if config.evaluation.backend in ("process", "ray"):  # the same run (test_process_backend.py)
        sets.append("evaluation.backend=serial")
    return sets


@pytest.mark.parametrize("operator", MUTATIONS.names())
@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_every_config_runs_with_every_operator(path, operator, tmp_path):
    """`smevo train --config configs/X.yaml --mutation OP` works for every pair, the config's
    mutation options (e.g. weight_clip) included."""
    result = train(apply_overrides(load_config(path),
                                   [*tiny(path, tmp_path), f"mutation.name={operator}"]))
    assert (result.generations, result.stopped_by) == (2, "generations")
    last = json.loads((result.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["mutation/delta_norm"] > 0  # children were bred by `operator`
