"""`smevo a2c`: the loss against its formula, the baseline, value heads, config, resume and
learning."""

import io
import json
import math
import os
import signal
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from smevo.a2c import A2CConfig, Learner, a2c, a2c_loss, discounted_returns, resume_a2c
from smevo.a2c.progress import Progress
from smevo.a2c.settings import A2CBudget, load_a2c_config
from smevo.agent import load_agent
from smevo.checkpoint import list_checkpoints
from smevo.cli import main
from smevo.commands.parser import build_parser
from smevo.config import ConfigError, apply_overrides, load_config, save_config
from smevo.policies import POLICIES, make_policy, policy_options

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*-a2c.yaml"))
GRID_OBS = gym.spaces.Box(0.0, 10.0, (17,), np.float32)
GRID_ACT = gym.spaces.Discrete(4)


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see conftest


def tiny(tmp_path: Path, *sets: str) -> A2CConfig:
    """A run of 4-unit nets on 5x5 mazes of 12 steps, 4 episodes per update, in seconds."""
    return apply_overrides(A2CConfig(), [
        "env.kwargs={size: 5, episode_length: 12}", "policy.options={hidden: 4}",
        "a2c.batch=4", "a2c.burn_in=1", "a2c.eval_episodes=4", "budget.episodes=24",
        "logging.checkpoint_every=2", "logging.quiet=true", f"logging.logdir={tmp_path}",
        *sets])


# --------------------------------------------------------------------------- the loss


def test_returns_are_discounted_sums_without_bootstrap():
    rewards = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 0.0]])
    returns = discounted_returns(rewards, 0.5)
    assert returns[:, 0].tolist() == pytest.approx([1 + 0.25 * 4, 0.5 * 4, 4])
    assert returns[:, 1].tolist() == pytest.approx([0.5 * 2, 2, 0])


def test_loss_equals_the_formula_on_a_hand_computed_batch():
    """T = 2 steps, B = 2 episodes, 2 actions; gamma 0.5, value weight 0.1, squared
    probabilities 0.03. Logits (0, ln 3) give probabilities (1/4, 3/4)."""
    third = math.log(3.0)
    logits = torch.tensor([[[0.0, third], [0.0, 0.0]], [[0.0, 0.0], [third, 0.0]]])
    values = torch.tensor([[1.0, 2.0], [0.5, 0.0]], requires_grad=True)
    actions = torch.tensor([[1, 0], [0, 0]])
    rewards = torch.tensor([[2.0, 0.0], [4.0, 1.0]])
    mask = torch.ones(2, 2, dtype=torch.bool)
    terms = a2c_loss(logits, values, actions, rewards, mask, gamma=0.5, value_weight=0.1,
                     concentration_weight=0.03)
    # returns: episode 0: R1 = 4, R0 = 2 + 0.5*4 = 4; episode 1: R1 = 1, R0 = 0.5
    # advantages R - V: episode 0: (3, 3.5); episode 1: (-1.5, 1)
    # log pi(a): episode 0: ln(3/4) at step 0, ln(1/2) at step 1; episode 1: ln(1/2), ln(3/4)
    policy = -(math.log(0.75) * 3 + math.log(0.5) * 3.5 + math.log(0.5) * -1.5
               + math.log(0.75) * 1) / 2
    value = (3**2 + 3.5**2 + 1.5**2 + 1**2) / 2
    concentration = (2 * (1 / 16 + 9 / 16) + 2 * (1 / 4 + 1 / 4)) / 2
    assert terms.policy == pytest.approx(policy)
    assert terms.value == pytest.approx(value)
    assert terms.concentration == pytest.approx(concentration)
    total = (policy + 0.1 * value + 0.03 * concentration) / 2
    assert float(terms.loss.detach()) == pytest.approx(total)
    entropy = (2 * -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)) + 2 * math.log(2)) / 4
    assert terms.entropy == pytest.approx(entropy)


def test_each_episode_is_its_own_baseline():
    """The reference used element 0's value as every element's baseline (and trained only
    element 0's value); here episode b's value is episode b's baseline: the policy term of
    episode 1 moves with V of episode 1 alone, and each V is pulled toward its own return."""
    logits = torch.zeros(1, 2, 2)
    actions = torch.zeros(1, 2, dtype=torch.long)
    rewards = torch.tensor([[1.0, 5.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)

    def terms(v0: float, v1: float, requires_grad: bool = False):
        values = torch.tensor([[v0, v1]], requires_grad=requires_grad)
        return values, a2c_loss(logits, values, actions, rewards, mask, gamma=0.9,
                                value_weight=0.1, concentration_weight=0.0)

    base = terms(0.0, 0.0)[1].policy
    # -log(1/2) * (R - V) / B per episode: raising V of episode 1 by 2 lowers its share by
    # log(2) * 2 / 2; raising V of episode 0 by 2 changes the term by the same amount only
    # through episode 0's own advantage.
    assert terms(0.0, 2.0)[1].policy == pytest.approx(base - math.log(2))
    assert terms(2.0, 0.0)[1].policy == pytest.approx(base - math.log(2))
    values, result = terms(0.0, 0.0, requires_grad=True)
    result.loss.backward()
    # d/dV_b of 0.1 * (R_b - V_b)^2 / B / T = -0.1 * (R_b - V_b)
    assert values.grad[0].tolist() == pytest.approx([-0.1 * 1.0, -0.1 * 5.0])


def test_steps_after_an_episode_ends_count_for_nothing():
    logits = torch.randn(3, 2, 4)
    values = torch.randn(3, 2)
    actions = torch.randint(4, (3, 2))
    rewards = torch.randn(3, 2)
    mask = torch.tensor([[True, True], [True, False], [False, False]])
    kwargs = {"gamma": 0.9, "value_weight": 0.1, "concentration_weight": 0.03}
    full = a2c_loss(logits, values, actions, rewards, mask, **kwargs)
    changed = a2c_loss(torch.where(mask[..., None], logits, 7.0), torch.where(mask, values, 3.0),
                       actions, torch.where(mask, rewards, 9.0), mask, **kwargs)
    assert changed.policy == pytest.approx(full.policy)
    assert changed.value == pytest.approx(full.value)
    assert changed.concentration == pytest.approx(full.concentration)


# --------------------------------------------------------------------------- value heads


@pytest.mark.bitexact  # the genome without the head is unchanged, weight for weight
@pytest.mark.parametrize(("name", "options"), [
    ("rnn", {"hidden": 5, "layers": 2}), ("gru", {"hidden": 5, "layers": 1}),
    ("lstm", {"hidden": 5, "layers": 1}), ("plastic", {"hidden": 5}),
    ("neuromod", {"hidden": 5}), ("neuromod", {"hidden": 5, "modulation": "retroactive"}),
])
def test_value_head_is_appended_and_changes_nothing_else(name, options):
    torch.manual_seed(0)
    plain = make_policy(name, GRID_OBS, GRID_ACT, **options)
    torch.manual_seed(0)
    valued = make_policy(name, GRID_OBS, GRID_ACT, value_head=True, **options)
    names = [n for n, _ in plain.named_parameters()]
    assert [n for n, _ in valued.named_parameters()] == [*names, "value_head.weight",
                                                         "value_head.bias"]
    for a, b in zip(plain.parameters(), valued.parameters(), strict=False):
        assert torch.equal(a, b)
    obs = torch.rand(3, 17)
    out_plain, _ = plain(obs, plain.initial_state(3))
    out_valued, state = valued(obs, valued.initial_state(3))
    assert torch.equal(out_plain, out_valued) and out_valued.shape == (3, 4)
    assert valued.value(valued.features(state)).shape == (3,)
    with pytest.raises(ValueError, match="without value_head=True"):
        plain.value(plain.features(state))


def test_every_recurrent_policy_offers_a_value_head():
    recurrent = [n for n in POLICIES.names() if n in ("rnn", "gru", "lstm", "plastic",
                                                       "neuromod")]
    assert all("value_head" in policy_options(name) for name in recurrent)


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_shipped_configs_load_and_build_matched_networks(path):
    config = load_a2c_config(path)
    env = gym.make(config.env.id, **config.env.kwargs)
    net = make_policy(config.policy.name, env.observation_space, env.action_space,
                      **config.policy.options, value_head=True)
    size = sum(p.numel() for p in net.parameters())
    if config.env.id == "smevo/GridMaze-v0":  # matched as the paper's figure: 22.4k-22.7k
        assert 22_400 <= size <= 22_750, size


def test_gridmaze_configs_cover_the_figure_networks():
    names = {path.stem for path in CONFIGS}
    assert {"gridmaze-rnn-a2c", "gridmaze-plastic-a2c", "gridmaze-neuromod-a2c",
            "gridmaze-retroactive-a2c", "cuereward-neuromod-a2c"} <= names


def test_config_round_trips_through_yaml_and_takes_overrides(tmp_path):
    config = apply_overrides(load_a2c_config(CONFIGS[0]), ["budget.episodes=600",
                                                           "a2c.lr=3e-4"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml", A2CConfig) == config
    assert config.budget.episodes == 600 and config.a2c.lr == 3e-4


@pytest.mark.parametrize(("sets", "message"), [
    (["a2c.lrr=1e-3"], "unknown key 'a2c.lrr'.*Did you mean 'lr'"),
    (["budget.generations=3"], "unknown key 'budget.generations'"),
    (["a2c.gamma=1.5"], "a2c.gamma must be a finite number in"),
    (["a2c.batch=0"], "a2c.batch must be >= 1"),
    (["policy.options.value_head=false"], "A2C needs the value head"),
])
def test_bad_config_is_a_one_line_error(sets, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(A2CConfig(), sets)


def test_bad_key_in_a_file_names_file_and_key(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("a2c:\n  gama: 0.9\n")
    assert main(["a2c", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "unknown key 'a2c.gama'" in err and "Did you mean 'gamma'" in err


# --------------------------------------------------------------------------- runs


@pytest.mark.bitexact  # a resumed run equals the uninterrupted one, bit for bit
@pytest.mark.parametrize("policy", ["neuromod", "plastic"])  # plastic: the fused step
def test_resume_after_a_kill_equals_the_uninterrupted_run(tmp_path, policy):
    whole = a2c(tiny(tmp_path, "logging.name=whole", f"policy.name={policy}"))
    cut = a2c(tiny(tmp_path, "logging.name=cut", "budget.episodes=12",  # 3 updates
                   f"policy.name={policy}"))
    # the kill: update 3 was logged, its checkpoint never written
    (tmp_path / "cut" / "checkpoints" / "gen_000003.pt").unlink()
    resumed = resume_a2c(cut.run_dir, ["budget.episodes=24"])
    assert resumed.updates == whole.updates == 6
    assert resumed.final_reward == whole.final_reward
    agents = [load_agent(run / "best.pt") for run in (whole.run_dir, cut.run_dir)]
    try:
        assert all(torch.equal(a, b) for a, b in zip(agents[0].policy.parameters(),
                                                     agents[1].policy.parameters(), strict=True))
    finally:
        for agent in agents:
            agent.close()

    def records(run):
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if not k.startswith("perf/")}
                for line in lines]

    assert records(cut.run_dir) == records(whole.run_dir)
    assert [g for g, _ in list_checkpoints(cut.run_dir)] == [2, 4, 6]


@pytest.mark.bitexact  # as above, after a real Ctrl-C
@pytest.mark.usefixtures("python_sigint")
def test_ctrl_c_checkpoints_the_last_update_and_resume_continues_it(tmp_path):
    whole = a2c(tiny(tmp_path, "logging.name=whole", "budget.episodes=20"))

    def interrupt_at_update_3(update: int, metrics: dict) -> None:
        if update == 3:
            os.kill(os.getpid(), signal.SIGINT)  # recorded; the run stops after the update

    with pytest.raises(KeyboardInterrupt):
        a2c(tiny(tmp_path, "logging.name=cut", "budget.episodes=20"),
            on_log=interrupt_at_update_3)
    cut = tmp_path / "cut"
    assert [g for g, _ in list_checkpoints(cut)] == [2, 3]
    resumed = resume_a2c(cut)
    assert resumed.updates == 5 and resumed.final_reward == whole.final_reward
    assert torch.equal(torch.load(cut / "best.pt")["params"],
                       torch.load(whole.run_dir / "best.pt")["params"])


def test_resume_refuses_changes_beyond_budget_and_logging(tmp_path):
    run = a2c(tiny(tmp_path, "budget.episodes=8"))
    with pytest.raises(ValueError, match="a2c.lr"):
        resume_a2c(run.run_dir, ["a2c.lr=1e-2"])


def test_cli_run_writes_curves_checkpoints_and_an_agent_eval_plays(tmp_path, capsys):
    assert main(["a2c", "--config", str(CONFIGS[-1]), "--set", "env.id=smevo/GridMaze-v0",
                 "--set", "policy.name=neuromod", "--set", "policy.options={hidden: 4}",
                 "--set", "env.kwargs={size: 5, episode_length: 12}", "--set", "a2c.batch=4",
                 "--set", "a2c.burn_in=1", "--set", "budget.episodes=12", "--set",
                 f"logging.logdir={tmp_path}", "--set", "logging.name=run"]) == 0
    captured = capsys.readouterr()
    assert "done: 3 updates (12 episodes" in captured.out
    assert "update 1 | episodes 4/12" in captured.err  # the progress line
    run = tmp_path / "run"
    events = EventAccumulator(str(run))
    events.Reload()
    assert {"a2c/reward", "a2c/loss", "a2c/entropy", "a2c/value_loss",
            "a2c/modulator_abs"} <= set(events.Tags()["scalars"])
    assert load_config(run / "config.yaml", A2CConfig).budget.episodes == 12
    assert main(["eval", str(run), "--episodes", "2"]) == 0
    assert "trained by smevo a2c" in capsys.readouterr().out
    assert main(["a2c", "--resume", str(run), "--set", "budget.episodes=16"]) == 0
    assert "done: 4 updates (16 episodes" in capsys.readouterr().out
    assert main(["resume", str(run)]) == 0  # `smevo resume` knows an A2C run too
    assert "done: 4 updates (16 episodes" in capsys.readouterr().out
    assert main(["resume", str(run), "--generations", "9"]) == 2
    assert "budget.episodes" in capsys.readouterr().err


def test_progress_line_shows_budget_reward_speed_and_eta_at_the_recent_speed():
    stream = io.StringIO()
    progress = Progress(A2CBudget(episodes=1000), stream, interval=0.0)
    progress(1, {"a2c/reward": 4.0, "perf/episodes_per_s": 1000.0, "progress/episodes": 10,
                 "perf/wall_time": 0.01})  # a fast burn-in update
    for update in range(2, 12):  # then ten at 10 episodes/s: the burn-in's speed is forgotten
        progress(update, {"a2c/reward": 6.0, "perf/episodes_per_s": 10.0,
                          "progress/episodes": 10 * update, "perf/wall_time": float(update)})
    first, *_, last = stream.getvalue().splitlines()
    assert first == "update 1 | episodes 10/1,000 | reward 4 (last 1: 4) | 1000 ep/s | ETA 0:01"
    assert last == "update 11 | episodes 110/1,000 | reward 6 (last 10: 6) | 10 ep/s | ETA 1:29"


def test_help_names_a2c():
    assert "A2C" in build_parser().format_help()


def test_a2c_rejects_feedforward_policies_and_continuous_actions(tmp_path):
    with pytest.raises(ValueError, match="needs a recurrent policy with a value head"):
        Learner(tiny(tmp_path, "policy.name=mlp"))
    with pytest.raises(ValueError, match="discrete actions"):
        Learner(tiny(tmp_path, "env.id=smevo/Easy-v0", "env.kwargs={}", "policy.name=rnn"))


def test_neuromod_net_beats_the_random_level_on_a_size_9_maze():
    """A short run on the 9x9 maze, where a uniform random policy collects 13.9 per 200-step
    episode: the trained policy, scored on fresh mazes, collects clearly more. Test-sized:
    a 16-unit net and 25 updates, with large batches (an update costs about the same for 30
    or 128 episodes: the per-step overhead dominates) and a larger learning rate than the
    paper's, without the squared-probability penalty and burn-in."""
    learner = Learner(apply_overrides(A2CConfig(), [
        "env.kwargs={size: 9}", "policy.options={hidden: 16}", "a2c.batch=128",
        "a2c.lr=2e-2", "a2c.concentration_weight=0", "a2c.burn_in=0"]))
    before = learner.evaluate(60)
    for _ in range(25):
        learner.update()
    after = learner.evaluate(60)
    assert before < 18 and after > 22, (before, after)
