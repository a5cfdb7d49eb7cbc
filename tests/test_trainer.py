"""End-to-end training: solving CartPole, TensorBoard contents, backend equivalence, resume."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from backend_helpers import metrics, run_configs
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from smevo import Trainer, resume, train
from smevo.agent import load_agent
from smevo.algorithms.base import GenerationLog
from smevo.checkpoint import latest_checkpoint, load_checkpoint

CARTPOLE = [
    "env.id=CartPole-v1",
    "policy.name=mlp",
    "policy.options={hidden: 16, depth: 1, activation: tanh}",
    "mutation.name=SM-G-SUM",
    "mutation.magnitude=0.1",
    "algorithm.population=32",
    "algorithm.options.parents=8",
    "algorithm.options.elites=1",
    "algorithm.elite_episodes=3",
    "logging.quiet=true",
]


config = run_configs(CARTPOLE)


def test_sm_g_sum_solves_cartpole_and_best_pt_acts(tmp_path):
    # "Solved": the validated best of the top two reached 475 over 10 fresh episodes.
    result = train(config(tmp_path, "budget.generations=30", "seed=1", "algorithm.population=64",
                          "algorithm.options.parents=10", "env.episodes=2",
                          "algorithm.options.elites=2", "algorithm.elite_episodes=10"))
    assert result.solved and result.stopped_by == "solved"
    agent = load_agent(result.run_dir / "best.pt")
    returns = [episode["return"] for episode in agent.run_episodes(20, seed=12345)]
    agent.close()
    assert np.mean(returns) >= 475, returns


def confirmation_run(tmp_path, confirm: bool) -> tuple[list[dict], list[torch.Tensor], Trainer]:
    """Six generations of a CartPole run whose validated elites cross a low threshold early,
    stepped by hand (metrics and population after each), confirming crossings or not. Control
    mutation: its children do not depend on the CPU's kernels, so neither do the crossings."""
    with Trainer(config(tmp_path, "seed=2", "budget.solve_threshold=100",
                        "mutation.name=control", "mutation.magnitude=0.1",
                        "algorithm.elite_episodes=5", "env.max_steps=200",
                        f"budget.confirm_solved={str(confirm).lower()}")) as trainer:
        steps = [(trainer.step(), trainer.algorithm.population.params.clone())
                 for _ in range(6)]
    return [m for m, _ in steps], [p for _, p in steps], trainer


@pytest.mark.bitexact  # the same populations with and without confirmation
def test_confirming_a_crossing_changes_when_a_run_is_solved_and_nothing_it_breeds(tmp_path):
    """budget.confirm_solved: a validated elite that meets the threshold is measured again on
    new episodes; only a second crossing makes the run solved, and the second score is what
    the candidate competes for champion with. Who breeds (every population) is the same run
    as without confirmation; the evaluations counted differ by one per confirmation."""
    plain, plain_populations, unconfirmed = confirmation_run(tmp_path / "plain", confirm=False)
    checked, checked_populations, confirmed = confirmation_run(tmp_path / "checked", confirm=True)
    assert all(torch.equal(a, b) for a, b in zip(plain_populations, checked_populations,
                                                 strict=True))
    measured = [m for m in checked if "fitness/confirmation" in m]
    assert len(measured) >= 2 and all(m["fitness/elite_validation"] >= 100 for m in measured)
    # Measured until one holds (this seed's first crossing does not), then never again.
    assert all(m["fitness/confirmation"] < 100 for m in measured[:-1])
    assert measured[-1]["fitness/confirmation"] >= 100 and confirmed.solved
    # This seed's checked candidates both took the champion, with their confirmation; the
    # first is a lower champion than the same genome on its validation alone.
    assert all(m["fitness/champion"] == m["fitness/confirmation"] for m in measured)
    first = next(i for i, m in enumerate(checked) if "fitness/confirmation" in m)
    assert checked[first]["fitness/champion"] < plain[first]["fitness/champion"]
    assert not any("fitness/confirmation" in m for m in plain) and unconfirmed.solved
    extra = [c["progress/evaluations"] - p["progress/evaluations"]
             for p, c in zip(plain, checked, strict=True)]
    assert extra[-1] == len(measured)


def test_a_crossing_new_episodes_do_not_confirm_leaves_the_run_unsolved(tmp_path):
    with Trainer(config(tmp_path, "algorithm.elite_episodes=5",
                        "budget.solve_threshold=100")) as trainer:
        assert not trainer.generation_solved(GenerationLog(validation=120.0, confirmation=80.0))
        assert trainer.generation_solved(GenerationLog(validation=120.0, confirmation=100.0))
        assert not trainer.generation_solved(GenerationLog(validation=99.0))
    with Trainer(config(tmp_path, "algorithm.elite_episodes=5", "budget.solve_threshold=100",
                        "budget.confirm_solved=false")) as trainer:
        assert trainer.generation_solved(GenerationLog(validation=120.0))
    # Without validation episodes fitness is taken as it is: there is nothing to confirm.
    with Trainer(config(tmp_path, "algorithm.elite_episodes=0",
                        "budget.solve_threshold=100")) as trainer:
        assert not trainer.confirming()
        assert trainer.generation_solved(GenerationLog(validation=120.0))


def test_tensorboard_events_hold_every_tag(tmp_path):
    result = train(config(tmp_path, "budget.generations=3", "budget.stop_when_solved=false",
                          "logging.histogram_every=1", "algorithm.population=12",
                          "algorithm.options.parents=4", "env.max_steps=50"))
    accumulator = EventAccumulator(str(result.run_dir), size_guidance={"scalars": 0,
                                                                         "histograms": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    expected = {
        "fitness/best", "fitness/mean", "fitness/median", "fitness/min",
        "fitness/elite_validation", "fitness/solved_fraction", "progress/evaluations",
        "progress/env_steps", "perf/evals_per_s", "perf/steps_per_s",
        "mutation/divergence_mean", "mutation/divergence_max", "mutation/delta_norm",
        "mutation/sensitivity_min", "mutation/sensitivity_max",
    }
    assert expected <= set(tags["scalars"])
    assert {"fitness/population", "mutation/log10_sensitivity"} <= set(tags["histograms"])
    assert any("config" in tag for tag in tags["tensors"])
    best = accumulator.Scalars("fitness/best")
    assert len(best) == 3 and best[-1].step == result.evaluations
    hparams_files = [p for p in result.run_dir.iterdir() if p.name.startswith("events")]
    assert hparams_files


@pytest.mark.parametrize(("mutation", "tags"), [
    ("SM-R", {"mutation/unreachable_fraction", "mutation/line_search_evals"}),
    ("SM-G-FO", {"mutation/unreachable_fraction"}),
    ("SM-G-SUM", set()),
])
def test_target_divergence_operators_log_reach_and_search_cost(tmp_path, mutation, tags):
    """Operators that aim at a target divergence log how often it was out of reach and, when
    they search for it, what the search cost; the others log neither."""
    result = train(config(tmp_path, f"mutation.name={mutation}", "mutation.magnitude=0.01",
                          "budget.generations=2", "budget.stop_when_solved=false",
                          "algorithm.population=8", "algorithm.options.parents=2",
                          "env.max_steps=30"))
    rows = metrics(result.run_dir)
    logged = {key for row in rows for key in row if key in {
        "mutation/unreachable_fraction", "mutation/line_search_evals"}}
    assert logged == tags
    if "mutation/line_search_evals" in tags:
        assert all(row["mutation/line_search_evals"] >= 1 for row in rows
                   if "mutation/divergence_mean" in row)


@pytest.mark.parametrize("native", [True, False], ids=["fused-cpp", "python-lockstep"])
@pytest.mark.bitexact  # same seed, same run on every backend
@pytest.mark.processes
def test_same_seed_same_metrics_on_every_backend(tmp_path, native):
    runs = {}
    for backend in ("serial", "vectorized", "process"):
        result = train(config(tmp_path / backend, f"evaluation.backend={backend}",
                              "evaluation.workers=2", "budget.generations=4",
                              "budget.stop_when_solved=false", "env.episodes=2", "seed=3",
                              f"evaluation.native={str(native).lower()}"))
        runs[backend] = (metrics(result.run_dir), result.best_params)
    serial_metrics, serial_best = runs["serial"]
    assert len(serial_metrics) == 4
    for backend in ("vectorized", "process"):
        assert runs[backend][0] == serial_metrics, backend
        assert torch.equal(runs[backend][1], serial_best), backend


@pytest.mark.bitexact  # resume equals the uninterrupted run
def test_resume_continues_exactly(tmp_path):
    base = ("budget.generations=6", "budget.stop_when_solved=false", "seed=5",
            "logging.checkpoint_every=1", "env.max_steps=100")
    whole = train(config(tmp_path / "whole", *base))
    part = train(config(tmp_path / "part", *base[1:], "budget.generations=3"))
    resumed = resume(part.run_dir, overrides=["budget.generations=6"])
    assert resumed.best_fitness == whole.best_fitness
    assert torch.equal(resumed.best_params, whole.best_params)
    assert metrics(resumed.run_dir) == metrics(whole.run_dir)


PARITY_GRU = ("env.id=smevo/RecurrentParity-v0", "env.episodes=16", "env.index_episodes=true",
              "policy.name=gru", "policy.options={hidden: 6, layers: 1}",
              "mutation.name=SM-G-ABS", "algorithm.name=steady_state",
              "algorithm.population=20", "algorithm.elite_episodes=0",
              "algorithm.options={tournament: 3}", "budget.generations=null",
              "budget.evaluations=300", "budget.stop_when_solved=false",
              "logging.checkpoint_every=1", "seed=4")
"""A recurrent run whose parents keep observation sequences (checkpointed packed)."""


@pytest.mark.bitexact  # resume equals the uninterrupted run
@pytest.mark.parametrize("layout", ["packed", "version 1"])
def test_a_recurrent_run_resumes_exactly_from_either_checkpoint_layout(tmp_path, layout):
    whole = train(config(tmp_path / "whole", *PARITY_GRU))
    part = train(config(tmp_path / "part", *PARITY_GRU, "budget.evaluations=140"))
    path = latest_checkpoint(part.run_dir)
    state = load_checkpoint(path)
    packed = state["algorithm"]["population"]["experiences"]
    assert all(set(e) == {"steps", "lengths"} and len(e["lengths"]) == 16 for e in packed)
    if layout == "version 1":  # one array per sequence, as smevo wrote before packing
        state["algorithm"]["population"]["experiences"] = [
            np.split(e["steps"], np.cumsum(e["lengths"])[:-1]) for e in packed]
        torch.save({"format": "smevo-checkpoint", "version": 1,
                    "generation": int(path.stem.split("_")[1]), "state": state}, path)
    resumed = resume(part.run_dir, overrides=["budget.evaluations=300"])
    assert metrics(resumed.run_dir) == metrics(whole.run_dir)
    assert torch.equal(resumed.best_params, whole.best_params)


DIE_AT = """
import os, signal, sys
from smevo.evaluation import rollout
what, count = os.environ["SMEVO_TEST_DIE_AT"].split(":")
calls = 0
def die_at_call(real, counts):
    def wrapper(*args, **kwargs):
        global calls
        if counts(*args):
            calls += 1
            if calls == int(count):
                os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return wrapper
if what == "checkpoint":  # the temporary file is written; die before it becomes the checkpoint
    os.replace = die_at_call(os.replace, lambda src, dst: "checkpoints" in str(dst)
                             and str(dst).endswith(".pt"))
else:  # die as a generation's evaluation starts (its children are already mutated)
    rollout.RolloutWorker.evaluate = die_at_call(rollout.RolloutWorker.evaluate,
                                                 lambda *args: True)
from smevo.cli import main
sys.exit(main(sys.argv[1:]))
"""


def dying_smevo(die_at: str, *args: str, **popen) -> subprocess.CompletedProcess:
    """`python -m smevo ARGS` that SIGKILLs itself at the Nth checkpoint write or the Nth
    rollout call (`die_at` "checkpoint:N" or "evaluate:N")."""
    env = {**os.environ, "SMEVO_TEST_DIE_AT": die_at}
    return subprocess.run([sys.executable, "-c", DIE_AT, *args], env=env, capture_output=True,
                          timeout=300, **popen)


@pytest.mark.bitexact  # resume equals the uninterrupted run
@pytest.mark.processes
def test_sigkill_mid_generation_and_mid_checkpoint_then_resume(tmp_path):
    overrides = [*CARTPOLE, "budget.generations=8", "budget.stop_when_solved=false", "seed=7",
                 "logging.checkpoint_every=1", "env.max_steps=200"]
    sets = [arg for item in overrides for arg in ("--set", item)]
    whole = train(config(tmp_path / "whole", *overrides[len(CARTPOLE):]))

    run_dir = tmp_path / "killed" / "run"
    common = ["train", "--logdir", str(run_dir.parent), "--name", "run", "--quiet", *sets]
    # 1. Killed by SIGKILL while writing its third checkpoint.
    first = dying_smevo("checkpoint:3", *common)
    assert first.returncode == -signal.SIGKILL
    assert latest_checkpoint(run_dir).name == "gen_000002.pt"
    assert any(p.name.endswith(".tmp") for p in (run_dir / "checkpoints").iterdir())
    # 2. Resumed after two generations, then killed by SIGKILL in the middle of its third:
    # each generation makes two rollout calls (the children, then the elite's validation), so
    # the fifth call evaluates generation 5's children, after generations 3 and 4 were
    # checkpointed.
    second = dying_smevo("evaluate:5", "resume", str(run_dir))
    assert second.returncode == -signal.SIGKILL
    assert load_checkpoint(latest_checkpoint(run_dir))["algorithm"]["generation"] == 4
    assert len(metrics(run_dir)) == 4
    # 3. Resumed to the end: the same result as the run that was never interrupted.
    third = subprocess.run([sys.executable, "-m", "smevo", "resume", str(run_dir)],
                           capture_output=True, timeout=300)
    assert third.returncode == 0, third.stderr.decode()
    best = torch.load(run_dir / "best.pt", weights_only=False)
    assert best["fitness"] == whole.best_fitness
    assert torch.equal(best["params"], whole.best_params)
    assert metrics(run_dir) == metrics(whole.run_dir)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_leave_a_checkpoint(tmp_path, signum):
    # A budget no run reaches (the fused rollout runs a CartPole generation in about a
    # millisecond), so only the signal ends it, and checkpoints only on the signal.
    sets = [arg for item in [*CARTPOLE, "budget.generations=1000000000",
                             "budget.stop_when_solved=false",
                             "logging.checkpoint_every=1000000000"]
            for arg in ("--set", item)]
    run_dir = tmp_path / "run"
    # A shell's background job inherits SIGINT ignored (and Python then keeps it ignored):
    # the child gets the default disposition back, as in a terminal.
    process = subprocess.Popen(
        [sys.executable, "-m", "smevo", "train", "--logdir", str(tmp_path), "--name", "run",
         "--quiet", *sets], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (run_dir / "metrics.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert b"Traceback" not in stderr
    generation = load_checkpoint(latest_checkpoint(run_dir))["algorithm"]["generation"]
    assert generation == len(metrics(run_dir)) >= 1


@pytest.mark.parametrize("slow", ["evaluation", "breeding"])
def test_the_evaluation_share_says_what_more_workers_could_speed_up(tmp_path, monkeypatch, slow):
    """`perf/evaluation_share` is the part of a generation's wall time spent in the backend's
    evaluations: near 1 when evaluating is the cost, near 0 when the driver's own work is."""
    from smevo.algorithms.base import SearchContext
    from smevo.evaluation.backends import VectorizedBackend

    cls, name = ((VectorizedBackend, "evaluate") if slow == "evaluation"
                 else (SearchContext, "breed"))
    original = getattr(cls, name)

    def slowed(*args, **kwargs):
        time.sleep(0.2)
        return original(*args, **kwargs)

    monkeypatch.setattr(cls, name, slowed)
    result = train(config(tmp_path, "budget.generations=3", "budget.stop_when_solved=false",
                          "evaluation.backend=vectorized", "algorithm.population=8",
                          "algorithm.options.parents=2", "mutation.name=control"))
    rows = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    shares = [json.loads(row)["perf/evaluation_share"] for row in rows][1:]
    assert len(shares) == 2 and all(0.0 < s <= 1.0 for s in shares), shares
    if slow == "evaluation":
        assert all(s > 0.8 for s in shares), shares
    else:
        assert all(s < 0.5 for s in shares), shares
