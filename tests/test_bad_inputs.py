"""Bad inputs through the real `smevo` command line: each is one line ``smevo: error: ...`` and
exit status 2 (issue 16 §4), never a traceback, a hang, or a wrong answer.

Each case would train, act or write if its check were missing, so a test that passes shows the
check ran; the sizes are tiny so that a missing check fails fast instead of training long.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from test_agent import save_cartpole_agent
from test_cli import assert_user_error, fake_run, run

from smevo import cli, trainer
from smevo.agent import solve_threshold
from smevo.checkpoint import atomic_torch_save
from smevo.commands import listing
from smevo.envs import make_env

TRAIN = ["train", "--env", "CartPole-v1", "--pop", "4", "--generations", "1", "--quiet"]


@pytest.fixture
def train(tmp_path):
    """`smevo train` of a tiny CartPole run in tmp_path/runs, with extra arguments."""

    def command(*extra):
        return [*TRAIN, "--logdir", tmp_path / "runs", *extra]

    return command


@pytest.fixture
def a_file(tmp_path):
    """A regular file: a folder under it cannot be made, even by root."""
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    return path


# --------------------------------------------------------------------------- train


@pytest.mark.parametrize(
    "device, fragment",
    [("meta", "holds no data"), ("xpu", "not available on this machine")],
)
def test_unusable_devices_are_refused(capsys, train, device, fragment):
    assert_user_error(capsys, train("--device", device), repr(device), fragment)


@pytest.mark.parametrize("logdir", ["a_file", "a_file/below", "/dev/null"])
def test_logdir_that_cannot_hold_runs_is_refused(capsys, tmp_path, a_file, logdir):
    logdir = logdir if logdir.startswith("/") else tmp_path / logdir
    assert_user_error(capsys, [*TRAIN, "--logdir", logdir], "is not a directory")


@pytest.mark.parametrize("name", ["../escape", "/tmp/smevo-absolute", ".", "..", "", "a/b"])
def test_run_name_is_one_folder_name(capsys, tmp_path, train, name):
    assert_user_error(capsys, train("--name", name), "logging.name", "one folder name")
    assert not (tmp_path / "escape").exists() and not Path("/tmp/smevo-absolute").exists()


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--pop", "100000000000"], "algorithm.population"),
        (["--set", "mutation.archive_size=1000000000000"], "mutation.archive_size"),
        (["--set", "env.episodes=1000000000000"], "env.episodes"),
        (["--backend", "process", "--workers", "1000000"], "evaluation.workers"),
        (["--set", "policy.options.hidden=10000000"], "the policy's size"),
    ],
)
def test_sizes_beyond_memory_are_refused_up_front(capsys, monkeypatch, train, extra, fragment):
    def no_backend(*args, **kwargs):  # where the run would start allocating (or spawning)
        raise AssertionError("the run started before its memory was checked")

    monkeypatch.setattr(trainer, "make_backend", no_backend)
    err = assert_user_error(capsys, train(*extra), "more than this machine's", fragment)
    assert "needs at least" in err


def test_policy_sizes_beyond_torch_are_refused(capsys, train):
    assert_user_error(
        capsys, train("--set", "policy.options.hidden=1000000000000"), "cannot be built"
    )


def test_maze_file_that_is_a_directory(capsys, tmp_path, train):
    (tmp_path / "maze_dir").mkdir()
    assert_user_error(
        capsys,
        train("--env", "smevo/BreadcrumbHardMaze-v0",
              "--set", f"env.kwargs.maze_file={tmp_path / 'maze_dir'}"),
        "maze_dir",
    )  # fmt: skip


@pytest.mark.parametrize("env_id", ["smevo/BreadcrumbHardMaze-v0", "smevo/RecurrentParity-v0"])
def test_max_steps_cannot_cut_away_an_end_of_episode_reward(capsys, tmp_path, train, env_id):
    # Cut at 20 steps the maze scored every individual 0, above its threshold -9: "solved".
    assert_user_error(
        capsys, train("--env", env_id, "--set", "env.max_steps=20"), "env.max_steps", env_id
    )
    assert not (tmp_path / "runs").exists()


def test_cut_episodes_are_not_held_to_the_envs_threshold():
    env = make_env("smevo/Easy-v0")
    env.close()
    assert solve_threshold(None, None, env.spec) == env.spec.reward_threshold
    assert solve_threshold(None, 1, env.spec) is None  # a one-step return is not the task's
    assert solve_threshold(-0.5, 1, env.spec) == -0.5  # the user's own threshold stands


# --------------------------------------------------------------------------- eval / watch / plot


@pytest.fixture
def best(tmp_path):
    path = tmp_path / "best.pt"
    save_cartpole_agent(path)
    return path


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--seed", "-5"], "--seed: must be >= 0"),
        (["--episodes", "0"], "--episodes: must be >= 1"),
        (["--episodes", str(10**23)], "lower --episodes"),  # played on for ever, then OOM
    ],
)
def test_eval_seed_and_episodes_ranges(capsys, best, argv, fragment):
    assert_user_error(capsys, ["eval", best, *argv], fragment)


def _tampered(best: Path, **fields) -> Path:
    payload = torch.load(best, weights_only=False)
    policy = {**payload["policy"], **fields.pop("policy", {})}
    atomic_torch_save({**payload, "policy": policy, **fields}, best)
    return best


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ({"policy": {"options": [8, 1]}}, "policy.options must be a mapping"),
        ({"policy": {"options": {"hidden": "eight"}}}, "cannot rebuild the policy"),
        ({"config": "a config"}, "config must be a mapping"),
        ({"config": {"env": {"max_steps": "20"}}}, "config.env.max_steps"),
        ({"obs_norm": [0.0, 1.0]}, "obs_norm must be"),
        ({"obs_norm": {"mean": np.zeros(3), "std": np.ones(3)}}, "shape (3,)"),
        ({"params": torch.zeros(58, dtype=torch.int64)}, "params must be a float tensor"),
    ],
)
def test_agent_fields_of_the_wrong_type(capsys, best, fields, fragment):
    assert_user_error(capsys, ["eval", _tampered(best, **fields)], fragment)


def test_eval_refuses_non_finite_parameters(capsys, best):
    params = torch.load(best, weights_only=False)["params"]
    _tampered(best, params=torch.full_like(params, float("nan")))
    assert_user_error(capsys, ["eval", best], "NaN or infinite")


def test_corrupt_files_never_pass_on_torchs_weights_only_advice(capsys, tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"garbage")  # torch's error on it quotes the advice
    err = assert_user_error(capsys, ["eval", tmp_path / "junk.pt"], "not written by smevo")
    assert "weights_only" not in err


def test_watch_record_into_an_unwritable_place(capsys, best, a_file):
    assert_user_error(
        capsys, ["watch", best, "--record", a_file / "agent.gif"], "is not a directory"
    )


def test_plot_out_into_an_unwritable_place(capsys, tmp_path, a_file):
    runs = fake_run(tmp_path, "a0", "SM-G-SUM", 0, [1, 2, 3])
    assert_user_error(capsys, ["plot", runs, "--out", a_file / "curves.png"], "is not a directory")


def test_plot_names_the_file_it_wrote(capsys, tmp_path):
    runs = fake_run(tmp_path, "a0", "SM-G-SUM", 0, [1, 2, 3])
    (tmp_path / "plots").mkdir()
    status, out, err = run(capsys, "plot", runs, "--out", tmp_path / "plots")
    assert status == 0, err
    assert out.strip() == f"wrote {tmp_path / 'plots.png'}"
    assert (tmp_path / "plots.png").is_file()


# --------------------------------------------------------------------------- last resort


def test_a_bug_is_one_line_pointing_to_debug(capsys, monkeypatch):
    def broken(args):
        raise KeyError("the bug")

    monkeypatch.setattr(listing, "cmd_list", broken)
    status, out, err = run(capsys, "list")
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("smevo: error: internal error: KeyError") and "--debug" in err
    for argv in (["--debug", "list"], ["list", "--debug"]):
        with pytest.raises(KeyError, match="the bug"):
            cli.main(argv)


def test_running_out_of_memory_is_one_line(capsys, monkeypatch):
    def greedy(args):
        raise MemoryError("Unable to allocate 7.28 TiB")

    monkeypatch.setattr(listing, "cmd_list", greedy)
    assert_user_error(capsys, ["list"], "out of memory", "7.28 TiB")


@pytest.mark.parametrize("argv", [["--name", "../escape"], ["--logdir", "a_file/below"]])
def test_fit_run_folder_stays_where_asked(capsys, monkeypatch, tmp_path, a_file, argv):
    monkeypatch.chdir(tmp_path)
    assert_user_error(capsys, ["fit", "--task", "parity", "--updates", "1", *argv], argv[0])
    assert not (tmp_path.parent / "escape").exists()
