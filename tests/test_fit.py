"""`smevo fit`: BPTT + Adam on the differentiable tasks, the plastic net's curve, the run folder."""

import json

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from smevo.agent import load_agent
from smevo.cli import main
from smevo.config import ConfigError, apply_overrides, config_from_dict, load_config
from smevo.fit import TASKS, FitConfig, fit

# 50-bit patterns, two per episode, each shown 6 steps with 2 blank steps after, then one of
# them with exactly half its bits zeroed for 3 steps (19 steps): DP's 50-bit comparison setting
# with longer presentations, so that the recall of one pattern does not swamp the other.
PATTERNS_50 = {"pattern_size": 50, "n_patterns": 2, "cycles": 1, "presentation": 6, "gap": 2,
               "test_time": 3, "balanced": True, "exact_degrade": True}
DIRECT_50 = {"hidden": 50, "io": "direct"}  # DP's network: one plastic neuron per bit
TINY_PATTERNS = {"pattern_size": 8, "n_patterns": 1, "cycles": 1, "presentation": 1, "gap": 0,
                 "test_time": 1}


def fit_config(logdir, task, policy="plastic", policy_options=None, task_options=None,
               name=None, log_every=10, **settings):
    """A `FitConfig` whose run goes to `logdir`; `settings` are the ``fit:`` section's."""
    return config_from_dict({
        "task": {"name": task, "options": task_options or {}},
        "policy": {"name": policy, "options": policy_options or {}},
        "fit": settings,
        "logging": {"logdir": str(logdir), "name": name, "log_every": log_every},
    }, FitConfig)


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see conftest


def test_plastic_net_learns_50_bit_pattern_completion_and_an_equal_rnn_does_not(tmp_path):
    budget = {"task_options": PATTERNS_50, "updates": 350, "batch_size": 64, "lr": 3e-3,
              "eval_episodes": 500}
    plastic = fit(fit_config(tmp_path, "pattern-completion", "plastic",
                             policy_options=DIRECT_50, **budget))
    rnn = fit(fit_config(tmp_path, "pattern-completion", "rnn",
                         policy_options={"hidden": 50, "layers": 1}, **budget))
    assert plastic.errors[0] == pytest.approx(0.25, abs=0.05)  # starts at chance
    assert plastic.final_error < 0.01
    assert rnn.final_error > 0.15  # fixed weights cannot store this episode's patterns
    assert plastic.episodes == 350 * 64 and len(plastic.errors) == len(plastic.losses) == 350


@pytest.mark.bitexact  # a seeded fit is repeatable
def test_run_folder_holds_config_curves_and_an_agent_for_the_env(tmp_path):
    config = fit_config(tmp_path, "pattern-completion",
                        policy_options={"hidden": 8, "io": "direct"}, task_options=TINY_PATTERNS,
                        updates=6, batch_size=2, log_every=4, name="run")
    result = fit(config)
    assert result.run_dir == tmp_path / "run"
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    assert [r["generation"] for r in records] == [4, 6]
    assert records[1]["fit/error"] == pytest.approx(np.mean(result.errors[4:]))
    assert records[1]["progress/episodes"] == 12
    events = EventAccumulator(str(result.run_dir))
    events.Reload()
    assert {"fit/loss", "fit/error"} <= set(events.Tags()["scalars"])
    assert load_config(result.run_dir / "config.yaml", FitConfig) == config  # reloadable
    agent = load_agent(result.run_dir / "best.pt")  # what `smevo eval RUN` plays
    try:
        assert agent.fitness == -result.final_error
        assert agent.config["env"]["id"] == "smevo/PatternCompletion-v0"
        (episode,) = agent.run_episodes(1, seed=0)
        assert episode["length"] == 2
    finally:
        agent.close()
    again = fit(config)
    assert again.run_dir == tmp_path / "run-1" and again.losses == result.losses  # seeded


@pytest.mark.bitexact  # integer labels
def test_parity_task_draws_labelled_sequences_and_an_lstm_learns_it(tmp_path):
    task = TASKS.get("parity")(n_bits=3)
    inputs, labels = task.sample(np.random.default_rng(0), 64)
    assert inputs.shape == (64, 3, 1)
    assert torch.equal(labels, inputs[..., 0].sum(dim=1).long() % 2)
    result = fit(fit_config(tmp_path, "parity", "lstm", policy_options={"hidden": 16, "layers": 1},
                            task_options={"n_bits": 3}, updates=400, batch_size=32, lr=1e-2))
    assert np.mean(result.errors[:50]) > 0.4 and result.final_error == 0.0


def test_cosine_schedule_and_gradient_clipping_are_accepted(tmp_path):
    result = fit(fit_config(tmp_path, "parity", "rnn", updates=3, lr_schedule="cosine",
                            grad_clip=1.0))
    assert len(result.errors) == 3


@pytest.mark.parametrize(
    "sets, message",
    [
        (["task.name=parityy"], "Did you mean 'parity'"),
        (["policy.name=mlp"], "needs a recurrent policy"),
        (["policy.options.hidde=3"], "unknown option"),
        (["task.options.n_bitz=3"], "n_bitz"),
    ],
)
def test_bad_names_are_value_errors_before_any_run_folder(tmp_path, sets, message):
    config = apply_overrides(fit_config(tmp_path, "parity"), sets)
    with pytest.raises(ValueError, match=message):
        fit(config)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "sets, message",
    [
        (["fit.updates=0"], "fit.updates must be >= 1, got 0"),
        (["fit.lr=-1.0"], "fit.lr must be a finite number > 0"),
        (["fit.lr_schedule=step"], "fit.lr_schedule must be one of constant, cosine"),
        (["fit.grad_clip=0.0"], "fit.grad_clip must be a finite number > 0"),
        (["fit.lr=abc"], "fit.lr=abc: expected float"),
        (["fit.update=3"], "Did you mean 'updates'"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_key(tmp_path, sets, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(fit_config(tmp_path, "parity"), sets)


@pytest.mark.bitexact  # the same seeded run twice
def test_a_fit_run_repeats_from_its_config_yaml(tmp_path, capsys):
    """``smevo fit --config RUN/config.yaml`` is the same run again, in a new folder."""
    argv = ["fit", "--task", "parity", "--policy", "gru", "--policy-opt", "hidden=3",
            "--task-opt", "n_bits=2", "--updates", "2", "--eval-episodes", "4",
            "--logdir", str(tmp_path), "--name", "first", "--quiet"]
    assert main(argv) == 0
    first = load_config(tmp_path / "first" / "config.yaml", FitConfig)
    assert (first.task.options, first.policy.options, first.fit.updates) == (
        {"n_bits": 2}, {"hidden": 3}, 2)
    assert main(["fit", "--config", str(tmp_path / "first" / "config.yaml"), "--set",
                 "logging.name=again"]) == 0
    out = capsys.readouterr().out
    again = load_config(tmp_path / "again" / "config.yaml", FitConfig)
    assert again == apply_overrides(first, ["logging.name=again"])
    errors = [line.split("error on 4 fresh episodes ")[1].split(";")[0]
              for line in out.splitlines()]
    assert errors[0] == errors[1]  # seeded: the same final error


def test_cli_fit_prints_progress_and_a_summary(tmp_path, capsys):
    status = main(["fit", "--task", "parity", "--policy", "gru", "--policy-opt", "hidden=4",
                   "--policy-opt", "layers=1", "--task-opt", "n_bits=2", "--updates", "4",
                   "--batch", "8", "--lr", "1e-2", "--log-every", "2", "--logdir",
                   str(tmp_path), "--name", "cli"])
    out = capsys.readouterr().out
    assert status == 0
    assert "update 2/4: loss" in out and "update 4/4" in out
    assert f"run in {tmp_path / 'cli'}" in out and "smevo eval" in out
    # eval names what fit made as such, not as an evolution run's validated champion
    assert main(["eval", str(tmp_path / "cli"), "--episodes", "1"]) == 0
    out = capsys.readouterr().out
    assert "trained by smevo fit, error " in out and "after 4 updates" in out
    assert "champion" not in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--task", "nope"], "unknown fit task 'nope'"),
        (["--task", "parity", "--policy-opt", "hidden"], "expected KEY=VALUE"),
        (["--task", "parity", "--policy", "mlp"], "needs a recurrent policy"),
        (["--task", "parity", "--updates", "x"], "invalid int value"),
        (["--task", "parity", "--lr-schedule", "step"], "fit.lr_schedule must be one of"),
        (["--config", "no/such.yaml"], "no/such.yaml: no such config file"),
    ],
)
def test_cli_fit_errors_are_one_line_exit_2(tmp_path, capsys, argv, message):
    assert main(["fit", "--logdir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("smevo: error: ") and message in err and err.count("\n") == 1
