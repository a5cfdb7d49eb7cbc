"""smevo.config: dicts, YAML files and --set overrides fill one typed tree; one-line errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml

from smevo.config import (
    BACKENDS,
    Config,
    ConfigError,
    apply_overrides,
    config_fields,
    config_from_dict,
    config_to_dict,
    config_to_yaml,
    load_config,
    save_config,
    validate_config,
)


def error_of(call, *args) -> str:
    with pytest.raises(ConfigError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- defaults, help


def test_defaults_match_the_documented_tree():
    config = Config()
    assert (config.seed, config.device) == (0, "cpu")
    assert config.env.id == "CartPole-v1" and config.env.kwargs == {} and config.env.episodes == 1
    assert config.policy.name == "mlp" and config.mutation.name == "SM-G-SUM"
    assert config.mutation.magnitude == 0.1 and config.mutation.archive_size == 100
    assert (config.algorithm.population, config.algorithm.options) == (100, {})
    assert config.env.index_episodes is False
    assert config.budget.generations == 50 and config.budget.stop_when_solved is True
    assert config.evaluation.backend == "vectorized" and config.logging.logdir == "runs"
    validate_config(config)


def test_mutable_defaults_are_not_shared():
    a, b = Config(), Config()
    a.policy.options["hidden"] = 8
    assert b.policy.options == {}


def test_every_field_has_help_text_for_the_cli():
    fields = config_fields()
    keys = [f.key for f in fields]
    assert "algorithm.population" in keys and "env.kwargs" in keys and "seed" in keys
    assert all(f.help.strip() for f in fields)
    by_key = {f.key: f for f in fields}
    assert by_key["budget.generations"].type == "int or null"
    assert by_key["env.kwargs"].type == "mapping"
    assert by_key["mutation.magnitude"].value == 0.1
    custom = apply_overrides(Config(), ["algorithm.population=64"])
    assert {f.key: f.value for f in config_fields(custom)}["algorithm.population"] == 64


# --------------------------------------------------------------------------- config_from_dict


def test_partial_dict_fills_defaults_and_widens_ints_to_float():
    config = config_from_dict(
        {"seed": 3, "algorithm": {"population": 64}, "mutation": {"magnitude": 1}}
    )
    assert config.seed == 3 and config.algorithm.population == 64
    assert config.algorithm.options == {}
    assert config.mutation.magnitude == 1.0 and isinstance(config.mutation.magnitude, float)


def test_free_form_dicts_take_any_plain_mapping_and_are_copied():
    options = {"hidden": (16, 16), "act": "tanh", "nested": {"a": [1, None]}}
    config = config_from_dict({"policy": {"options": options}, "env": {"kwargs": {}}})
    assert config.policy.options == {"hidden": [16, 16], "act": "tanh", "nested": {"a": [1, None]}}
    options["act"] = "relu"
    assert config.policy.options["act"] == "tanh"


def test_numpy_numbers_are_accepted_from_code():
    config = config_from_dict({"seed": np.int64(4), "mutation": {"magnitude": np.float32(0.5)}})
    assert type(config.seed) is int and type(config.mutation.magnitude) is float


def test_null_section_means_defaults():
    assert config_from_dict({"algorithm": None}).algorithm.population == 100


def test_unknown_key_names_dotted_key_valid_keys_and_a_guess():
    message = error_of(config_from_dict, {"algorithm": {"popsize": 10}})
    assert "'algorithm.popsize'" in message
    assert "name, population, elite_episodes, options" in message
    assert "Did you mean 'population'?" in message
    message = error_of(config_from_dict, {"algoritm": {}})
    assert "at top level" in message and "Did you mean 'algorithm'?" in message
    message = error_of(config_from_dict, {"env": {"episodez": 2}})
    assert "'env.episodez'" in message and "Did you mean 'episodes'?" in message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"algorithm": {"population": "64"}}, "algorithm.population: expected int, got '64'"),
        ({"env": {"episodes": True}}, "env.episodes: expected int, got True"),
        ({"algorithm": {"population": 64.0}}, "algorithm.population: expected int, got 64.0"),
        ({"mutation": {"magnitude": False}}, "mutation.magnitude: expected float, got False"),
        ({"env": {"kwargs": [1, 2]}}, "env.kwargs: expected mapping, got [1, 2]"),
        ({"env": {"id": None}}, "env.id: expected str, got None"),
        ({"budget": {"generations": "x"}}, "budget.generations: expected int or null, got 'x'"),
        ({"logging": {"quiet": "yes"}}, "logging.quiet: expected bool, got 'yes'"),
        ({"env": 5}, "env: expected a mapping, got 5"),
    ],
)
def test_wrong_types_name_key_expected_type_and_value(data, expected):
    assert error_of(config_from_dict, data) == expected


def test_none_only_where_the_type_allows_it():
    config = config_from_dict({"budget": {"generations": None, "wall_time": None}})
    assert config.budget.generations is None
    assert "expected int, got None" in error_of(config_from_dict, {"seed": None})


def test_free_form_values_must_be_plain_data():
    message = error_of(config_from_dict, {"policy": {"options": {"f": object()}}})
    assert message.startswith("policy.options.f: expected plain data")
    message = error_of(config_from_dict, {"env": {"kwargs": {1: "a"}}})
    assert "env.kwargs: keys must be strings" in message


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"seed": -1}, "seed must be >= 0"),
        ({"algorithm": {"population": 0}}, "population must be >= 1"),
        ({"env": {"episodes": 0}}, "env.episodes must be >= 1"),
        ({"env": {"max_steps": 0}}, "env.max_steps must be >= 1"),
        ({"mutation": {"magnitude": 0}}, "mutation.magnitude must be a finite number > 0"),
        ({"mutation": {"magnitude": float("nan")}}, "mutation.magnitude must be a finite"),
        ({"mutation": {"archive_size": 0}}, "mutation.archive_size must be >= 1"),
        ({"budget": {"wall_time": 0}}, "budget.wall_time must be > 0"),
        ({"evaluation": {"workers": 0}}, "evaluation.workers must be >= 1"),
        ({"logging": {"checkpoint_every": 0}}, "logging.checkpoint_every must be >= 1"),
        ({"logging": {"keep_checkpoints": 0}}, "logging.keep_checkpoints must be >= 1"),
        *[
            ({"logging": {"name": name}}, "logging.name must be one folder name")
            for name in ("../escape", "/abs", "a/b", "a\\b", ".", "..", "", "a\0b")
        ],
    ],
)
def test_value_ranges(data, fragment):
    assert fragment in error_of(config_from_dict, data)


def test_run_names_that_stay_inside_the_logdir_are_fine():
    for name in ("run-1", "..run", "a.b", " spaced ", "2024-01-01"):
        assert config_from_dict({"logging": {"name": name}}).logging.name == name


def test_backend_error_lists_the_backends():
    message = error_of(config_from_dict, {"evaluation": {"backend": "gpu"}})
    assert all(name in message for name in BACKENDS) and "'gpu'" in message
    for name in BACKENDS:
        assert config_from_dict({"evaluation": {"backend": name}}).evaluation.backend == name


def test_validate_config_checks_a_tree_edited_in_code():
    config = Config()
    config.algorithm.population = "many"  # type: ignore[assignment]
    assert error_of(validate_config, config) == "algorithm.population: expected int, got 'many'"


# --------------------------------------------------------------------------- YAML


def test_yaml_round_trip_is_exact(tmp_path):
    config = apply_overrides(
        Config(),
        [
            "policy.options.hidden=[32,32]",
            "env.kwargs={render_mode: null, frame_skip: 2}",
            "budget.wall_time=3600",
            "mutation.magnitude=1e-3",
            "logging.name=my-run",
        ],
    )
    assert config_from_dict(yaml.safe_load(config_to_yaml(config))) == config
    assert config_from_dict(config_to_dict(config)) == config
    path = tmp_path / "config.yaml"
    save_config(config, path)
    assert load_config(path) == config
    assert list(yaml.safe_load(path.read_text())) == [f.name for f in dataclasses.fields(Config)]


def test_load_config_partial_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "seed: 7\nalgorithm:\n  population: 64  # comment\nmutation:\n  magnitude: 1e-3\n"
        "policy:\n  options: {hidden: [16, 16]}\n"
    )
    config = load_config(path)
    assert config.seed == 7 and config.algorithm.population == 64
    assert config.mutation.magnitude == pytest.approx(1e-3)
    assert config.policy.options == {"hidden": [16, 16]}
    assert config.env.id == "CartPole-v1"


def test_empty_file_gives_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    assert load_config(path) == Config()


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("seed: 1\nalgorithm:\n  population: [1, 2\n  parents: 3\n")
    message = error_of(load_config, path)
    assert message.startswith(f"{path}: invalid YAML at line ")
    assert "line 4" in message or "line 3" in message


def test_yaml_duplicate_key_is_an_error(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("algorithm:\n  population: 10\n  population: 20\n")
    message = error_of(load_config, path)
    assert "duplicate key 'population'" in message and "line 3" in message


def test_load_config_errors(tmp_path):
    assert "no such config file" in error_of(load_config, tmp_path / "missing.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    assert "top level must be a mapping" in error_of(load_config, path)
    path.write_text("algorithm:\n  popsize: 3\n")
    message = error_of(load_config, path)
    assert message.startswith(f"{path}: unknown key 'algorithm.popsize'")


# --------------------------------------------------------------------------- --set overrides


def test_overrides_set_leaves_sections_and_free_form_keys():
    base = Config()
    config = apply_overrides(
        base,
        [
            "algorithm.population=64",
            "policy.options.hidden=32",
            "policy.options.layers=[16,16]",
            "env.kwargs.frame_skip=1",
            "env.kwargs.render.mode=rgb_array",
            "budget.generations=null",
            "logging.quiet=true",
            "mutation.magnitude=1e-3",
            "evaluation={backend: process, workers: 4}",
            "seed = 5",
        ],
    )
    assert config.algorithm.population == 64
    assert config.policy.options == {"hidden": 32, "layers": [16, 16]}
    assert config.env.kwargs == {"frame_skip": 1, "render": {"mode": "rgb_array"}}
    assert config.budget.generations is None and config.logging.quiet is True
    assert config.mutation.magnitude == pytest.approx(1e-3)
    assert (config.evaluation.backend, config.evaluation.workers) == ("process", 4)
    assert config.seed == 5
    assert base == Config(), "the input config must not change"


def test_overrides_string_fields_keep_the_text():
    config = apply_overrides(Config(), ["logging.name=2024", "device=cuda:0", "env.id=Foo-v1"])
    assert (config.logging.name, config.device, config.env.id) == ("2024", "cuda:0", "Foo-v1")
    assert apply_overrides(config, ["logging.name=null"]).logging.name is None


def test_overrides_check_ranges_only_at_the_end():
    config = apply_overrides(Config(), ["algorithm.population=0", "algorithm.population=10"])
    assert config.algorithm.population == 10


def test_override_replaces_a_whole_free_form_dict():
    config = apply_overrides(Config(), ["policy.options.a=1", "policy.options={b: 2}"])
    assert config.policy.options == {"b": 2}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("algorithm.population=abc", "--set algorithm.population=abc: expected int, got 'abc'"),
        ("algorithm.population=1.5", "--set algorithm.population=1.5: expected int, got 1.5"),
        ("mutation.magnitude=big", "--set mutation.magnitude=big: expected float, got 'big'"),
        ("logging.quiet=maybe", "--set logging.quiet=maybe: expected bool, got 'maybe'"),
        ("seed", "--set seed: expected key=value, e.g. algorithm.population=64"),
        (
            "env.episodes.x=1",
            "--set env.episodes.x=1: env.episodes is of type int, it has no sub-keys",
        ),
        ("a..b=1", "--set a..b=1: malformed key 'a..b'"),
    ],
)
def test_override_errors(item, expected):
    assert error_of(apply_overrides, Config(), [item]) == expected


def test_override_unknown_keys():
    message = error_of(apply_overrides, Config(), ["algorithm.popsize=3"])
    assert message.startswith("--set algorithm.popsize=3: unknown key 'algorithm.popsize'")
    assert "Did you mean 'population'?" in message
    message = error_of(apply_overrides, Config(), ["algoritm.population=3"])
    assert "unknown key 'algoritm'" in message and "Did you mean 'algorithm'?" in message
    message = error_of(apply_overrides, Config(), ["algorithm={popsize: 3}"])
    assert "unknown key 'algorithm.popsize'" in message


def test_override_bad_yaml_and_bad_nesting():
    assert "invalid value: line 1" in error_of(apply_overrides, Config(), ["seed=[1"])
    message = error_of(apply_overrides, Config(), ["env.kwargs.a=[1]", "env.kwargs.a.b=2"])
    assert message == "--set env.kwargs.a.b=2: env.kwargs.a holds [1], not a mapping"


def test_override_range_error_after_all_overrides():
    message = error_of(apply_overrides, Config(), ["evaluation.backend=gpu"])
    assert message.startswith("evaluation.backend must be one of serial")
