"""An algorithm's own options (``algorithm.options``) are its class's keyword-only
parameters, checked against its signature and by its class, as a policy's and a mutation's
are; the flat keys of older smevo (``algorithm.parents``) still load."""

import pytest
import yaml
from backend_helpers import metrics, run_configs

from smevo import cli, resume, train
from smevo.algorithms import ALGORITHMS, algorithm_options
from smevo.checkpoint import atomic_torch_save, list_checkpoints, load_torch_file
from smevo.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
)
from smevo.experiments.records import result_settings, settled_algorithm
from smevo.trainer import run_hparams

OLD_RESOLVED = {"population": 20, "parents": 4, "elites": 2, "elite_episodes": 0,
                "tournament": 3, "batch": 7}
"""An ``algorithm`` section as older smevo wrote it to a run's config.yaml: every key,
whichever algorithm ran."""

config = run_configs(["env.id=smevo/RecurrentParity-v0", "env.episodes=16",
                      "env.index_episodes=true", "policy.name=rnn", "policy.options={hidden: 4}",
                      "mutation.name=SM-G-ABS", "algorithm.population=6",
                      "algorithm.elite_episodes=0", "evaluation.backend=serial",
                      "budget.stop_when_solved=false", "logging.checkpoint_every=1"])


def make_old(run_dir, name):
    """Rewrite a run's config.yaml and checkpoints as older smevo wrote them: the
    algorithm's options flat, and every algorithm's there."""
    old = {"name": name, "population": 6, "parents": 2, "elites": 1, "elite_episodes": 0,
           "tournament": 3, "batch": 4}
    data = yaml.safe_load((run_dir / "config.yaml").read_text())
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**data, "algorithm": old}))
    for _, path in list_checkpoints(run_dir):
        payload = load_torch_file(path)
        payload["state"]["config"]["algorithm"] = old
        atomic_torch_save(payload, path)


def test_unknown_options_are_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown option\(s\) batch for algorithm "
                                         r"'truncation'; valid: parents, elites$"):
        algorithm_options("truncation", 10, {"batch": 3})
    with pytest.raises(ValueError, match="for algorithm 'hillclimb'; valid: none$"):
        algorithm_options("hill-climb", 1, {"parents": 1})


def test_options_come_from_the_class_signature_with_their_defaults():
    assert algorithm_options("truncation", 20, {}) == {"parents": 4, "elites": 1}  # a fifth
    assert algorithm_options("steady-state", 20, {"batch": 3}) == {"tournament": 5, "batch": 3}
    assert algorithm_options("hillclimb", 1, {}) == {}


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("truncation", {"parents": 0}, "algorithm.options.parents must be >= 1, got 0"),
        ("truncation", {"elites": -1}, "algorithm.options.elites must be >= 0, got -1"),
        ("truncation", {"elites": 5}, "algorithm.options.elites (5) must be <= "
                                      "algorithm.options.parents (2)"),
        ("truncation", {"parents": 11}, "algorithm.options.parents (11) must be <= "
                                        "algorithm.population (10)"),
        ("truncation", {"parents": "3"}, "algorithm.options.parents: expected int, got '3'"),
        ("steady_state", {"tournament": 0}, "algorithm.options.tournament must be >= 1, got 0"),
        ("steady_state", {"batch": 0}, "algorithm.options.batch must be >= 1, got 0"),
        ("steady_state", {"batch": True}, "algorithm.options.batch: expected int, got True"),
    ],
)
def test_ranges_are_the_class_s_and_name_the_option(name, options, message):
    with pytest.raises(ConfigError) as error:
        algorithm_options(name, 10, options)
    assert str(error.value) == message


def test_legacy_keys_move_into_options_for_the_algorithm_that_read_them():
    config = config_from_dict({"algorithm": {"parents": 5, "elites": 2, "tournament": 9}})
    assert config.algorithm.options == {"parents": 5, "elites": 2}  # truncation never read it
    config = apply_overrides(Config(), ["algorithm.batch=4", "algorithm.name=steady-state",
                                        "algorithm.tournament=3", "algorithm.elites=0"])
    assert config.algorithm.options == {"batch": 4, "tournament": 3}
    config = apply_overrides(Config(), ["algorithm.options.parents=3", "algorithm.parents=4"])
    assert config.algorithm.options == {"parents": 4}  # the later --set wins
    assert apply_overrides(Config(), ["algorithm={parents: 2}"]).algorithm.options == {
        "parents": 2}


@pytest.mark.parametrize(
    ("name", "options"),
    [("truncation", {"parents": 4, "elites": 2}), ("steady_state", {"tournament": 3, "batch": 7}),
     ("hillclimb", {})],
)
def test_an_old_resolved_config_loads_with_the_options_its_algorithm_takes(
        tmp_path, name, options):
    data = config_to_dict(Config())
    data["algorithm"] = {"name": name, **OLD_RESOLVED}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    assert config.algorithm.options == options
    assert (config.algorithm.population, config.algorithm.elite_episodes) == (20, 0)
    algorithm_options(name, config.algorithm.population, config.algorithm.options)


@pytest.mark.bitexact  # the resumed run is the very run
@pytest.mark.parametrize(("name", "options"), [
    ("truncation", "{parents: 2, elites: 1}"), ("steady_state", "{tournament: 3, batch: 4}"),
    ("hillclimb", "{}"),
])
def test_a_run_of_older_smevo_resumes_as_it_would_have_run(tmp_path, name, options):
    settings = [f"algorithm.name={name}", f"algorithm.options={options}"]
    whole = train(config(tmp_path, *settings, "logging.name=whole", "budget.generations=3"))
    cut = train(config(tmp_path, *settings, "logging.name=cut", "budget.generations=2"))
    make_old(cut.run_dir, name)
    resumed = resume(cut.run_dir, overrides=["budget.generations=3"])
    assert resumed.generations == 3 and metrics(resumed.run_dir) == metrics(whole.run_dir)


def test_an_option_written_out_is_checked_even_where_a_legacy_key_would_be_dropped():
    config = config_from_dict({"algorithm": {"options": {"tournament": 3}}})
    with pytest.raises(ValueError, match=r"unknown option\(s\) tournament"):
        algorithm_options(config.algorithm.name, config.algorithm.population,
                          config.algorithm.options)


def test_records_of_older_smevo_keep_matching_the_same_settings():
    """A record's settings written with flat keys (and every option) equal today's config of
    the same run, where the options left at their defaults are not written."""
    config = apply_overrides(Config(), ["algorithm.name=steady_state",
                                        "algorithm.options.batch=7"])
    old = result_settings(config)
    old["algorithm"] = {"name": "steady_state", "population": 100, "parents": None,
                        "elites": 1, "elite_episodes": 5, "tournament": 5, "batch": 7}
    assert settled_algorithm(old["algorithm"]) == result_settings(config)["algorithm"]
    assert result_settings(config)["algorithm"]["options"] == {"tournament": 5, "batch": 7}


def test_hparams_show_the_options_as_used():
    config = apply_overrides(Config(), ["algorithm.population=30"])
    algorithm = run_hparams(config)["algorithm"]
    assert algorithm == {"name": "truncation", "population": 30, "elite_episodes": 5,
                         "parents": 6, "elites": 1}


def test_smevo_list_shows_each_algorithm_s_options_and_defaults(capsys):
    assert cli.main(["list", "algorithms"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(rows) == set(ALGORITHMS.names())
    assert rows["truncation"].endswith("Options: parents = null, elites = 1.")
    assert rows["steady_state"].endswith("Options: tournament = 5, batch = 50.")
    assert rows["hillclimb"].endswith("Options: none.")
