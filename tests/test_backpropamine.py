"""The A2C grid of Backpropamine's maze (`scripts/reproduce.py backpropamine`) on tiny budgets:
a run makes a record, the records alone rebuild BACKPROPAMINE.md, an unfinished run makes none
until it is resumed, `status` counts the runs; and the verdict on the paper's ordering on
synthetic records."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from smevo.experiments.backpropamine import RECORD_FORMAT, a2c_status
from smevo.experiments.backpropamine_report import evolution_text, ordering, overall
from smevo.experiments.grid import ROOT
from smevo.experiments.runner import FRESH_SEED
from smevo.experiments.staleness import VALIDATED_RANKING_SINCE, current

TINY = ("--set", "budget.episodes=120", "--set", "a2c.burn_in=1",
        "--set", "logging.checkpoint_every=2")
"""4 updates of 30 episodes, checkpoints after updates 2 and 4."""


def tiny(tmp_path: Path) -> tuple[list, Path, Path, Path]:
    """argv of a one-seed rnn grid at TINY budgets in `tmp_path`, and its folders."""
    runs, data, out = tmp_path / "runs", tmp_path / "data", tmp_path / "out"
    argv = ["backpropamine", "--seeds", "1", "--networks", "rnn", *TINY, "--runs-dir", runs,
            "--data-dir", data, "--out", out]
    return argv, runs, data, out


def git_commit(revision: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", revision], capture_output=True,
                          text=True, check=True).stdout.strip()


def without_stamp(text: str) -> str:
    return re.sub(r"on \d{4}-\d\d-\d\d \d\d:\d\d UTC", "", text)


def test_a_run_leaves_a_record_and_the_records_alone_rebuild_the_report(run, tmp_path):
    argv, runs, data, out = tiny(tmp_path)
    assert "ran 1" in run(*argv, "--run")
    record = json.loads((data / "backpropamine" / "rnn" / "seed0.json").read_text())
    assert (record["format"], record["version"]) == RECORD_FORMAT
    assert (record["net"], record["seed"], record["episodes"], record["updates"]) == (
        "rnn", 0, 120, 4)
    assert record["config"]["budget"]["episodes"] == 120 and "logging" not in record["config"]
    assert record["parameters"] == 22_662  # matched: configs/gridmaze-rnn-a2c.yaml
    assert record["steps_per_episode"] == 200 and record["env_steps"] == 24_000
    assert record["curve"] == {"block": 1000, "episodes": [120],
                               "reward": [pytest.approx(record["last"]["mean"], abs=1e-3)]}
    assert len(record["last"]["update_rewards"]) == 4
    for how in ("sampled", "greedy"):
        assert record["fresh_episodes"][how]["first_seed"] == FRESH_SEED
        assert record["fresh_episodes"][how]["episodes"] == 100
    assert record["core_seconds"] > 0 and record["seconds"] > 0 and record["code"]["commit"]
    assert len(json.dumps(record)) < 20_000

    assert "skipped 1" in run(*argv)  # recorded at these settings: nothing to do
    report = (out / "BACKPROPAMINE.md").read_text()
    assert "| rnn | 1 | 120 |" in report and "not run yet" in report
    shutil.rmtree(runs)
    shutil.rmtree(out)
    run("backpropamine", "--report-only", "--data-dir", data, "--out", out)
    assert without_stamp((out / "BACKPROPAMINE.md").read_text()) == without_stamp(report)
    assert (out / "backpropamine_reward.png").stat().st_size > 0
    # The grid's report reads the same data folder and leaves the A2C records to this one.
    assert "RESULTS.md" in run("--report-only", "--data-dir", data, "--out", out)


def test_an_unfinished_run_makes_no_record_until_resumed(run, tmp_path):
    argv, runs, data, _ = tiny(tmp_path)
    run(*argv, "--run")
    folder = runs / "gridmaze-rnn-a2c-seed0"
    (data / "backpropamine" / "rnn" / "seed0.json").unlink()
    (folder / "checkpoints" / "gen_000004.pt").unlink()  # as if killed after update 2
    assert "recorded 0" in run(*argv) and "pending 1" in run(*argv)
    assert not (data / "backpropamine" / "rnn" / "seed0.json").exists()
    [(name, done, remaining, other, seconds)] = a2c_status(
        runs, data, TINY[1::2], seeds=1, nets=["rnn"])
    assert (name, done, remaining, other) == ("gridmaze-rnn-a2c", 0, 1, 0)
    assert seconds == pytest.approx(60 * 0.006)  # 60 episodes left at the pilot rate
    assert "resumed 1" in run(*argv, "--run")
    record = json.loads((data / "backpropamine" / "rnn" / "seed0.json").read_text())
    assert record["episodes"] == 120 and record["core_seconds"] is None  # part ran before
    status = run("status", *argv)
    assert re.search(r"^backpropamine\s+gridmaze-rnn-a2c\s+1\s+0\s+0\s+0.00$", status,
                     re.MULTILINE)
    # A longer budget continues the same run from its last checkpoint.
    assert "resumed 1" in run(*argv, "--set", "budget.episodes=180", "--run")
    record = json.loads((data / "backpropamine" / "rnn" / "seed0.json").read_text())
    assert (record["episodes"], record["resumed"]) == (180, True)


def synthetic(means: dict[str, float], seeds: int = 3, spread: float = 1.0) -> list[dict]:
    """Records whose last-10k update means scatter around `means` per net."""
    rng = np.random.default_rng(0)
    records = []
    for net, mean in means.items():
        for seed in range(seeds):
            rewards = (mean + spread * rng.standard_normal(333)).tolist()
            records.append({"net": net, "seed": seed,
                            "last": {"update_rewards": rewards, "mean": float(np.mean(rewards))}})
    return records


def test_the_ordering_verdict_on_synthetic_records():
    verdicts = lambda records: [c.verdict for c in ordering(records)]  # noqa: E731
    reproduced = synthetic({"rnn": 20, "plastic": 40, "neuromod": 40.05})
    assert verdicts(reproduced) == ["reproduced", "reproduced"]  # ≥: no difference holds
    assert overall(ordering(reproduced)) == "reproduced"
    # With 3 seeds per net the per-seed test cannot reach 0.05: its floor is 0.1.
    assert ordering(reproduced)[0].per_seed.p_value == pytest.approx(0.1)
    assert ordering(reproduced)[0].pooled.p_value < 1e-6

    reversed_ = synthetic({"rnn": 40, "plastic": 20, "neuromod": 10})
    assert verdicts(reversed_) == ["reversed", "reversed"]
    assert overall(ordering(reversed_)) == "not reproduced"
    tie = synthetic({"rnn": 30, "plastic": 30, "neuromod": 60})
    assert verdicts(tie)[0] == "not reproduced"  # plastic > rnn needs a difference
    missing = synthetic({"rnn": 20, "plastic": 40})
    assert verdicts(missing) == ["reproduced", "not run yet"]
    assert overall(ordering(missing)) == "not run yet"
    early = synthetic({"rnn": 20, "plastic": 40, "neuromod": 40.05}, seeds=1)
    assert verdicts(early)[0] == "reproduced (preliminary: 1 of 3 seeds)"
    assert overall(ordering(early)) == "reproduced (preliminary: 1 of 3 seeds)"


def test_the_evolution_table_leaves_stale_grid_maze_records_out(tmp_path):
    """A grid-maze record made before the validated-ranking fix is stale: the A2C report's
    evolution table leaves it out as GRIDMAZE.md does; the same record made now counts."""
    committed = ROOT / "docs/results/data/gridmaze/gridmaze-rnn-control/seed0.json"
    record = json.loads(committed.read_text())
    record["code"]["commit"] = git_commit(f"{VALIDATED_RANKING_SINCE}^")  # just before the fix
    assert not current(record)
    folder = tmp_path / "gridmaze" / "gridmaze-rnn-control"
    folder.mkdir(parents=True)
    (folder / "seed0.json").write_text(json.dumps(record))
    assert evolution_text([], tmp_path).startswith("Not run yet")

    record["code"]["commit"] = git_commit("HEAD")
    (folder / "seed0.json").write_text(json.dumps(record))
    assert current(record)
    assert "| rnn | control, 1,278 parameters | 1 |" in evolution_text([], tmp_path)
