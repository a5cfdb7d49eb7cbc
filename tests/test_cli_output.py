"""What a user reads: one vocabulary for "best" (run summary, `eval`, a real run's champion
generation), `watch` where nothing can be shown, `--version`, `list config SECTION`,
unknown-env errors, `list envs`, and a real run's HParams in its own event file."""

import json
import re
import sys
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import EnvSpec
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from test_cli import assert_user_error, run

import smevo
from smevo.agent import load_agent, save_agent
from smevo.config import Config, apply_overrides, config_to_dict
from smevo.functional import get_flat
from smevo.policies import make_policy

BLIND = "smevo_test/Blind-v0"


class Blind(gym.Env):
    """An env with no render mode at all (as some third-party envs are)."""

    metadata = {"render_modes": []}  # noqa: RUF012 - Gymnasium's convention
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 1.0, True, False, {}


@pytest.fixture
def blind(monkeypatch):
    """`BLIND` registered for the test only."""
    monkeypatch.setitem(gym.registry, BLIND, EnvSpec(BLIND, entry_point=Blind))
    return BLIND


@pytest.fixture
def display(monkeypatch):
    """Set the display: `display(None)` is a Linux machine without one."""

    def set_display(value):
        monkeypatch.setattr(sys, "platform", "linux")
        monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        if value is None:
            monkeypatch.delenv("DISPLAY", raising=False)
        else:
            monkeypatch.setenv("DISPLAY", value)

    return set_display


@pytest.fixture
def blind_run(tmp_path, blind):
    run = tmp_path / "runs" / "blind"
    run.mkdir(parents=True)
    env = gym.make(blind)
    policy = make_policy("mlp", env.observation_space, env.action_space, hidden=4)
    env.close()
    config = config_to_dict(apply_overrides(Config(), [f"env.id={blind}"]))
    save_agent(run / "best.pt", env_id=blind, env_kwargs={}, policy_name="mlp",
               policy_options={"hidden": 4}, params=get_flat(policy), obs_norm=None,
               fitness=1.0, generation=1, config=config)  # fmt: skip
    return run


# --------------------------------------------------------------------------- "best"


@pytest.fixture
def fake_train(monkeypatch, tmp_path):
    """`smevo.train` replaced by a fake that ends like a real run would."""

    def train(config):
        return SimpleNamespace(
            run_dir=tmp_path / "runs" / "demo", env_id=config.env.id, best_fitness=195.6,
            best_generation=12, generations=30, evaluations=3000, env_steps=45000,
            solved=False, stopped_by="generations",
        )  # fmt: skip

    monkeypatch.setattr(smevo, "train", train, raising=False)
    return tmp_path / "runs" / "demo"


@pytest.mark.parametrize(
    ("env", "screen", "hint"),
    [
        ("CartPole-v1", ":0", "smevo watch {run}"),
        ("CartPole-v1", None, "smevo watch {run} --record agent.gif"),
        (BLIND, ":0", "smevo eval {run}"),
    ],
)
def test_train_summary_names_the_champion_and_suggests_watch_only_where_it_can_show(
    capsys, fake_train, display, blind, env, screen, hint
):
    display(screen)
    status, out, err = run(capsys, "train", "--env", env)
    assert status == 0, err
    assert out.startswith(
        "stopped (generations budget reached): champion 195.60 (validated, generation 12) "
        "after 30 generations, 3,000 evaluations, 45,000 env steps; "
    )
    assert out.endswith(f"agent: {hint.format(run=fake_train)})\n")


def test_eval_names_the_champion_as_every_output_does(capsys, run_dir):
    status, out, err = run(capsys, "eval", run_dir, "--episodes", 2)
    assert status == 0, err
    assert out.splitlines()[0] == (
        f"{run_dir / 'best.pt'}: champion 12.50 (validated, generation 3); "
        "2 episodes of CartPole-v1, seeds 0..1"
    )


def read_events(run_dir):
    accumulator = event_accumulator.EventAccumulator(str(run_dir))
    accumulator.Reload()
    return accumulator


def test_a_run_numbers_its_champion_as_logged_and_writes_hparams_in_its_own_file(tmp_path):
    config = apply_overrides(Config(), [
        f"logging.logdir={tmp_path}", "algorithm.population=6", "algorithm.elite_episodes=2",
        "budget.generations=2", "budget.stop_when_solved=false", "evaluation.backend=serial",
        "policy.options.hidden=4", "logging.quiet=true",
    ])  # fmt: skip
    result = smevo.train(config)

    lines = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    found = next(r["generation"] for r in lines if r["fitness/champion"] == result.best_fitness)
    assert result.best_generation == found, "the generation whose line shows the champion"
    agent = load_agent(result.run_dir / "best.pt")
    agent.close()
    assert agent.generation == found

    (event_file,) = result.run_dir.rglob("events.out.tfevents*")  # one run, no HParams sub-run
    assert event_file.parent == result.run_dir
    events = read_events(result.run_dir)
    assert not [tag for tag in events.Tags()["scalars"] if tag.startswith("hparams")]
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["env.id"].string_value == "CartPole-v1"
    assert hparams["mutation.name"].string_value == "SM-G-SUM"
    assert hparams["algorithm.parents"].number_value == 1  # a fifth of 6, as used
    assert "algorithm.batch" not in hparams and "budget.generations" not in hparams
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    metrics = {info.name.tag for info in experiment.experiment.metric_infos}
    assert {"fitness/champion", "fitness/best"} <= metrics <= set(events.Tags()["scalars"])


# --------------------------------------------------------------------------- watch


def test_watch_without_a_display_says_so_and_suggests_record(capsys, display, run_dir):
    display(None)
    assert_user_error(
        capsys, ["watch", run_dir], "cannot open a window: no display here",
        f"record a video instead: smevo watch {run_dir} --record agent.gif",
    )  # fmt: skip


def test_watch_with_a_headless_sdl_driver_says_so(capsys, monkeypatch, display, run_dir):
    display(":0")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    assert_user_error(capsys, ["watch", run_dir], "SDL_VIDEODRIVER=dummy opens no window")


def test_watch_says_plainly_which_env_cannot_be_shown(capsys, tmp_path, display, blind_run):
    display(":0")
    assert_user_error(
        capsys, ["watch", blind_run], f"{BLIND} cannot be shown: it has no human or rgb_array "
        "render (its render modes: none)", f"smevo eval {blind_run}",
    )  # fmt: skip
    video = tmp_path / "blind.gif"
    assert_user_error(
        capsys, ["watch", blind_run, "--record", video],
        f"{BLIND} cannot be recorded: it has no rgb_array render",
    )  # fmt: skip
    assert not video.exists()


# --------------------------------------------------------------------------- version, list


def test_version(capsys):
    status, out, _ = run(capsys, "--version")
    assert status == 0
    assert re.fullmatch(
        rf"smevo {re.escape(smevo.__version__)} \(Python [\d.]+, torch \S+, gymnasium \S+\)\n", out
    )


def test_list_config_shows_one_section_or_key(capsys):
    status, out, _ = run(capsys, "list", "config", "mutation")
    keys = [line.split()[0] for line in out.splitlines()[1:]]
    assert status == 0 and "mutation.magnitude" in keys
    assert all(key.startswith("mutation.") for key in keys)
    status, out, _ = run(capsys, "list", "config", "algorithm.options")
    assert status == 0 and [line.split()[0] for line in out.splitlines()[1:]] == [
        "algorithm.options"
    ]
    assert_user_error(
        capsys, ["list", "config", "mutaton"], "unknown config section 'mutaton'",
        "Did you mean 'mutation'",
    )  # fmt: skip
    assert_user_error(capsys, ["list", "envs", "mutation"], "only 'list config' takes a section")


def test_an_unknown_env_names_the_closest_few_ids(capsys, fake_train):
    err = assert_user_error(
        capsys, ["train", "--env", "CartPol-v1"], "unknown env 'CartPol-v1'; closest: ",
        "in all: smevo list envs)",
        "Did you mean 'CartPole-v1'?",
    )  # fmt: skip
    closest = err.split("closest: ")[1].split(" (")[0].split(", ")
    assert closest[0] == "CartPole-v1" and len(closest) == 5, closest


def test_list_envs_hides_ids_that_cannot_be_made_here(capsys, monkeypatch):
    missing = "smevo_test/Missing-v0"
    monkeypatch.setitem(
        gym.registry, missing, EnvSpec(missing, entry_point="smevo_no_such_module:Env")
    )
    status, out, _ = run(capsys, "list", "envs")
    ids = [line.split()[0] for line in out.splitlines()[1:]]
    assert status == 0 and "CartPole-v1" in ids and "smevo/BreadcrumbHardMaze-v0" in ids
    assert missing not in ids, "its module is missing"
    assert "Ant-v2" not in ids, "Gymnasium's placeholder that only raises"
