"""The `smevo` command line: listings, config precedence, one-line errors, eval/watch/plot.

Training itself is the trainer's business (its end-to-end tests); here `smevo.train` and
`smevo.resume` are replaced by fakes that record what the CLI hands them.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import smevo
from smevo import cli
from smevo.algorithms import ALGORITHMS
from smevo.config import Config
from smevo.mutations import MUTATIONS
from smevo.policies import POLICIES

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    """(exit status, stdout, stderr) of `smevo *argv` run in-process."""
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_user_error(capsys, argv, *fragments):
    """`smevo argv` fails with status 2 and one stderr line holding every fragment."""
    status, out, err = run(capsys, *argv)
    assert status == 2, (out, err)
    assert err.startswith("smevo: error: ") and err.endswith("\n")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err + out
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


@pytest.fixture
def fake_train(monkeypatch, tmp_path):
    """Replace `smevo.train` with a fake that records its config and returns a result."""
    calls = []

    def train(config):
        calls.append(config)
        return SimpleNamespace(
            run_dir=tmp_path / "runs" / "demo",
            env_id=config.env.id,
            best_fitness=500.0,
            best_generation=7,
            generations=7,
            evaluations=448,
            env_steps=123456,
            solved=True,
            stopped_by="solved",
        )

    monkeypatch.setattr(smevo, "train", train, raising=False)
    return calls


# --------------------------------------------------------------------------- list


def test_list_shows_every_mutation_policy_algorithm_and_config_key(capsys):
    status, out, err = run(capsys, "list")
    assert status == 0 and err == ""
    for name in [*MUTATIONS.names(), *POLICIES.names(), *ALGORITHMS.names()]:
        assert f"  {name} " in out, name
    for key in ("algorithm.population", "mutation.magnitude", "env.id"):
        assert f"  {key} " in out
    assert "smevo/BreadcrumbHardMaze-v0" in out and "CartPole-v1" in out
    assert "target divergence" in out  # what magnitude means per operator


def test_list_one_section(capsys):
    status, out, _ = run(capsys, "list", "mutations")
    assert status == 0
    assert out.startswith("mutations:") and "policies:" not in out


def test_entry_point_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "smevo", "list", "policies"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert all(f"  {name} " in result.stdout for name in POLICIES.names())


# --------------------------------------------------------------------------- train


def test_config_precedence_defaults_file_flags_set(capsys, tmp_path, fake_train):
    config_file = tmp_path / "exp.yaml"
    config_file.write_text(
        "env: {id: smevo/Easy-v0}\npolicy: {name: toy2w}\n"
        "algorithm: {population: 30, parents: 5}\nseed: 3\n"
    )
    status, out, err = run(
        capsys,
        "train", "--config", config_file, "--env", "CartPole-v1", "--policy", "mlp",
        "--pop", 40, "--mutation", "sm-g-abs", "--quiet",
        "--set", "algorithm.population=50", "--set", "policy.options.hidden=8",
    )  # fmt: skip
    assert status == 0, err
    (config,) = fake_train
    assert isinstance(config, Config)
    assert config.env.id == "CartPole-v1"  # flag over file
    assert config.algorithm.population == 50  # --set over flag
    assert config.algorithm.options == {"parents": 5}  # file over default (a legacy key)
    assert config.seed == 3
    assert config.policy.options == {"hidden": 8}
    assert config.logging.quiet is True
    assert config.budget.generations == Config().budget.generations  # untouched default
    assert "solved" in out and "500" in out
    assert f"tensorboard --logdir {tmp_path / 'runs'}" in out
    assert f"smevo watch {tmp_path / 'runs' / 'demo'}" in out


@pytest.mark.parametrize(
    ("flag", "key", "value", "expected"),
    [
        ("--mutation-mag", "mutation.magnitude", "0.3", 0.3),
        ("--algo", "algorithm.name", "hillclimb", "hillclimb"),
        ("--generations", "budget.generations", "9", 9),
        ("--max-evals", "budget.evaluations", "1000", 1000),
        ("--seed", "seed", "5", 5),
        ("--backend", "evaluation.backend", "process", "process"),
        ("--workers", "evaluation.workers", "2", 2),
        ("--device", "device", "cpu", "cpu"),
        ("--logdir", "logging.logdir", "elsewhere", "elsewhere"),
        ("--name", "logging.name", "2024", "2024"),
    ],
)
def test_each_flag_sets_its_config_key(capsys, fake_train, flag, key, value, expected):
    status, _, err = run(capsys, "train", flag, value)
    assert status == 0, err
    section = fake_train[0]
    for part in key.split("."):
        section = getattr(section, part)
    assert section == expected


def test_keyboard_interrupt_exits_130_quietly(capsys, monkeypatch):
    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(smevo, "train", interrupted, raising=False)
    status, _, err = run(capsys, "train")
    assert status == 130 and err == ""


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--env", "CartPol-v1"], ["unknown env 'CartPol-v1'", "Did you mean 'CartPole-v1'"]),
        (["--mutation", "SM-G-SUN"], ["unknown mutation", "SM-G-ABS", "Did you mean 'SM-G-SUM'"]),
        (["--policy", "mpl"], ["unknown policy 'mpl'", "gru", "Did you mean 'mlp'"]),
        (["--algo", "tournament"], ["unknown algorithm", "truncation, steady_state, hillclimb"]),
        (["--set", "algorithm.populaton=3"], ["populaton", "Did you mean 'population'"]),
        (["--set", "algorithm.population=abc"], ["algorithm.population", "expected int"]),
        (["--pop", "abc"], ["--pop", "invalid int value"]),
        (["--mutation-mag", "-1"], ["mutation.magnitude must be"]),
        (["--set", "mutation.options.no_such=1"], ["unknown option(s) no_such"]),
        (["--policy", "cnn"], ["policy 'cnn' needs an image Box observation"]),
        (["--policy", "toy2w"], ["policy 'toy2w' needs a Box(2) observation space"]),
        (["--env", "smevo/Easy-v0", "--set", "env.kwargs.bogus=1"], ["smevo/Easy-v0", "bogus"]),
        (["--device", "nonsense"], ["device 'nonsense'"]),
        (["--config", "no/such/file.yaml"], ["no/such/file.yaml", "no such config file"]),
    ],
)
def test_bad_train_input_is_one_line_before_training(capsys, fake_train, argv, fragments):
    assert_user_error(capsys, ["train", *argv], *fragments)
    assert fake_train == []  # caught before a run starts


def test_yaml_syntax_error_names_file_and_line(capsys, tmp_path, fake_train):
    config_file = tmp_path / "broken.yaml"
    config_file.write_text("env:\n  id: CartPole-v1\nalgorithm: {population: 10\n")
    assert_user_error(capsys, ["train", "--config", config_file], str(config_file), "line ")


def test_usage_errors_are_one_line(capsys):
    assert_user_error(capsys, [], "required")
    assert_user_error(capsys, ["list", "everything"], "invalid choice")
    assert_user_error(capsys, ["plot", "somewhere"], "--out")


def test_help_exits_zero(capsys):
    status, out, _ = run(capsys, "train", "--help")
    assert status == 0
    assert "[algorithm.population]" in out and "--set KEY=VALUE" in out


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["--version"]])
def test_help_imports_nothing_heavy(argv):
    """`smevo --help` stays fast because building the parser and answering help or version
    import neither torch, Gymnasium nor the backends: each command imports what it needs."""
    heavy = ["torch", "gymnasium", "matplotlib", "ray", "smevo.trainer"]
    code = (
        "import contextlib, io, sys, smevo.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    status = smevo.cli.main({argv!r})\n"
        f"print(status, [m for m in {heavy!r} if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120, check=False,
    )
    assert result.stdout.split() == ["0", "[]"], result.stdout + result.stderr


def test_resume_passes_run_dir_and_generation_budget(capsys, monkeypatch, tmp_path):
    calls = []

    def resume(run_dir, overrides=None, trust_env_code=False):
        calls.append((run_dir, overrides, trust_env_code))
        return SimpleNamespace(
            run_dir=run_dir, env_id="CartPole-v1", best_fitness=1.0, best_generation=2,
            generations=4, evaluations=8, env_steps=9, solved=False, stopped_by="generations",
        )  # fmt: skip

    monkeypatch.setattr(smevo, "resume", resume, raising=False)
    status, out, _ = run(capsys, "resume", tmp_path, "--generations", 12)
    assert status == 0 and out.startswith("stopped (generations budget reached):")
    assert calls == [(tmp_path, ["budget.generations=12"], False)]
    assert_user_error(capsys, ["resume", tmp_path / "absent"], "no such run directory")


# --------------------------------------------------------------------------- eval / watch


def test_eval_reports_return_spread_and_solved_fraction(capsys, run_dir):
    status, out, err = run(capsys, "eval", run_dir, "--episodes", 3, "--seed", 4)
    assert status == 0, err
    assert "generation 3" in out and "seeds 4..6" in out
    assert "±" in out and "min " in out and "solved " in out and "/3" in out
    status, again, _ = run(capsys, "eval", run_dir / "best.pt", "--episodes", 3, "--seed", 4)
    assert status == 0 and again.splitlines()[1] == out.splitlines()[1]  # same seeds, same


def test_eval_errors_are_one_line(capsys, tmp_path, run_dir):
    assert_user_error(capsys, ["eval", tmp_path / "nowhere"], "no such run directory")
    assert_user_error(capsys, ["eval", tmp_path], "no best.pt yet")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert_user_error(capsys, ["eval", tmp_path / "junk.pt"], "junk.pt", "corrupt")


def test_watch_records_a_gif(capsys, monkeypatch, tmp_path, run_dir):
    import imageio.v3 as iio

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    gif = tmp_path / "videos" / "agent.gif"
    status, out, err = run(capsys, "watch", run_dir, "--record", gif, "--episodes", 2)
    assert status == 0, err
    lengths = [int(line.split("length ")[1].split(",")[0]) for line in out.splitlines()[:2]]
    frames = iio.imread(gif, index=None)
    # one frame per reset and per step; the GIF writer merges frames that look identical
    assert max(lengths) < frames.shape[0] <= sum(lengths) + 2
    assert frames.shape[-1] == 3


def test_watch_rejects_bad_record_paths_before_acting(capsys, monkeypatch, tmp_path, run_dir):
    assert_user_error(capsys, ["watch", run_dir, "--record", tmp_path / "a.avi"], ".gif or .mp4")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert_user_error(
        capsys, ["watch", run_dir, "--record", tmp_path / "a.mp4"], "pip install imageio-ffmpeg"
    )
    assert not (tmp_path / "a.mp4").exists()


# --------------------------------------------------------------------------- plot


def fake_run(root, name, mutation, seed, best):
    """A run directory with config.yaml and metrics.jsonl (one NaN written as null)."""
    run = root / name
    run.mkdir()
    config = {"seed": seed, "env": {"id": "CartPole-v1"}, "mutation": {"name": mutation}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    lines = [
        {"generation": g, "fitness/best": value, "progress/evaluations": 64 * (g + 1)}
        for g, value in enumerate(best)
    ]
    lines[1]["fitness/mean"] = None
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run


def test_plot_writes_a_png_grouping_seeds(capsys, tmp_path):
    runs = [
        fake_run(tmp_path, "a0", "SM-G-SUM", 0, [10, 50, 200, 500]),
        fake_run(tmp_path, "a1", "SM-G-SUM", 1, [20, 80, 90]),
        fake_run(tmp_path, "b0", "control", 0, [10, None, 30, 40, 60]),
    ]
    out = tmp_path / "plots" / "curves.png"
    status, stdout, err = run(capsys, "plot", *runs, "--out", out)
    assert status == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in stdout
    assert cli.main(["plot", str(runs[0]), "--out", str(out), "--metric", "fitness/mean"]) == 2


def test_plot_errors_are_one_line(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert_user_error(capsys, ["plot", tmp_path / "empty", "--out", tmp_path / "x.png"],
                      "no metrics.jsonl")  # fmt: skip
    good = fake_run(tmp_path, "a0", "SM-G-SUM", 0, [1, 2])
    assert_user_error(
        capsys,
        ["plot", good, "--out", tmp_path / "x.png", "--metric", "fitness/bestt"],
        "fitness/bestt", "fitness/best",
    )  # fmt: skip
