"""smevo.experiments end to end on tiny grids, its claim verdicts, and its statistics.

The pipeline runs in process (`smevo.experiments.cli.main`, what scripts/reproduce.py calls)
with --quick, two operators and budgets cut further by --set, so that every step — runs,
resume, skip, records, figures, RESULTS.md, status — is exercised in seconds.
"""

import json
import math
import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from smevo.agent import load_agent
from smevo.checkpoint import latest_checkpoint
from smevo.cli import main as smevo_main
from smevo.experiments import runner
from smevo.experiments.cli import main as experiments_main
from smevo.experiments.cli import parse_args
from smevo.experiments.figures import fitness_curve_figures, recorded_curve
from smevo.experiments.grid import EXPERIMENTS, PAPER_SM_G, build_grid
from smevo.experiments.provenance import git
from smevo.experiments.records import RECORD_FORMAT, settled_budget
from smevo.experiments.report import verdict_text
from smevo.experiments.results import Results, score
from smevo.experiments.runner import FRESH_EPISODES, FRESH_SEED, commit_record
from smevo.experiments.staleness import (
    ARITHMETIC_SINCE,
    NETWORK_ARITHMETIC_SINCE,
    VALIDATED_RANKING_SINCE,
    current_arithmetic,
)
from smevo.experiments.stats import median_iqr, rank_test, solve_rate, wilson_interval
from smevo.experiments.status import FALLBACK_RATE, frame_rates, measured_rates
from smevo.experiments.verdicts import ON_FITNESS_ONLY, Claim, claim_washout, claims
from smevo.functional import get_flat
from smevo.run_lock import RunLock

ROOT = Path(__file__).resolve().parents[1]


def finished(data_dir: Path) -> dict[Path, int]:
    """The record of every finished run -> its modification time in ns."""
    return {p: p.stat().st_mtime_ns for p in data_dir.rglob("seed*.json")}


def test_quick_illustrative_writes_the_report_and_skips_finished_runs_after(run, tmp_path):
    runs, data, out = tmp_path / "runs", tmp_path / "data", tmp_path / "out"
    argv = ["illustrative", "--quick", "--operators", "control,SM-G-ABS",
            "--set", "budget.generations=20", "--runs-dir", runs, "--data-dir", data,
            "--out", out]
    first = run(*argv)
    assert "ran 6, resumed 0, skipped 0" in first
    assert "illustrative: budget.generations=200" in first  # --quick says what it reduces

    report = (out / "RESULTS.md").read_text()
    assert (out / "illustrative_trajectories.png").stat().st_size > 0
    assert "](illustrative_trajectories.png)" in report
    assert "Quick runs" in report
    assert "`budget.generations` = 20 (the paper's runner: 2,000)" in report
    assert "## Recurrent parity (`parity`)\n\nNot run." in report
    assert "**not tested**" in report  # washout needs SM-G-SUM and SM-G-SO too
    assert "Command: `python scripts/reproduce.py illustrative --quick" in report

    # Seed 0's recorded trajectory is the run itself: its last point is the saved champion.
    run_dir = runs / "illustrative" / "washout-toy2w-SM-G-ABS" / "seed0"
    record = json.loads((data / "illustrative" / "washout-toy2w-SM-G-ABS" / "seed0.json")
                        .read_text())
    assert len(record["trajectory"]) == record["generations"] == 20
    agent = load_agent(run_dir / "best.pt")
    np.testing.assert_allclose(record["trajectory"][-1], get_flat(agent.policy).numpy(),
                               rtol=1e-6)
    agent.close()

    before = finished(data)
    second = run(*argv)
    assert "ran 0, resumed 0, skipped 6" in second
    assert finished(data) == before


TINY_ILLUSTRATIVE = ("illustrative", "--quick", "--operators", "control,SM-G-ABS",
                     "--set", "budget.generations=20")
"""Six hill-climber runs of 20 steps (three tasks, control and SM-G-ABS)."""

TIMING = {"command", "seconds", "core_seconds", "wall_seconds"}
"""Record fields that say how and how fast a run went, not what it found."""


def test_jobs_run_cells_at_once_and_record_what_one_at_a_time_records(run, tmp_path):
    records = {}
    for jobs in (1, 2):
        data = tmp_path / f"jobs{jobs}" / "data"
        printed = run(*TINY_ILLUSTRATIVE, "--runs-dir", tmp_path / f"jobs{jobs}" / "runs",
                      "--data-dir", data, "--out", tmp_path / f"jobs{jobs}" / "out",
                      "--jobs", jobs)
        assert "ran 6, resumed 0, skipped 0" in printed
        records[jobs] = {path.relative_to(data): json.loads(path.read_text())
                         for path in data.rglob("seed*.json")}
    assert len(records[1]) == 6 and records[1].keys() == records[2].keys()
    for path, record in records[1].items():
        assert ({k: v for k, v in record.items() if k not in TIMING}
                == {k: v for k, v in records[2][path].items() if k not in TIMING})


def test_a_job_that_dies_stops_the_grid_naming_its_cell_and_the_command_goes_on(
        run, tmp_path, monkeypatch):
    argv = [*TINY_ILLUSTRATIVE, "--runs-dir", tmp_path / "runs", "--data-dir",
            tmp_path / "data", "--out", tmp_path / "out", "--jobs", "2"]
    run_cell = runner.run_cell

    def dies_on_one_cell(cell, settings, provenance):
        if cell.name == "medium-toy2w-SM-G-ABS":
            os._exit(7)  # as a segfaulting env would: no exception, no record
        return run_cell(cell, settings, provenance)

    monkeypatch.setattr(runner, "run_cell", dies_on_one_cell)
    with pytest.raises(RuntimeError, match=r"medium-toy2w-SM-G-ABS seed0 died \(exit code 7\)"):
        experiments_main([str(a) for a in argv])
    assert not (tmp_path / "data" / "illustrative" / "medium-toy2w-SM-G-ABS").exists()
    monkeypatch.undo()
    printed = run(*argv)
    assert re.search(r"ran \d, resumed \d, skipped \d", printed)
    assert len(list((tmp_path / "data").rglob("seed*.json"))) == 6


@pytest.mark.processes
def test_sigterm_to_a_grid_of_jobs_stops_each_run_with_a_checkpoint_that_resumes(tmp_path):
    """SIGTERM to the grid's own process (as a scheduler sends it): the runs in its jobs stop
    at their last finished generation with a checkpoint, and the grid exits with 130."""
    runs = tmp_path / "runs"
    argv = [sys.executable, str(ROOT / "scripts" / "reproduce.py"), *TINY_MAZE[:-1],
            "budget.evaluations=1000000", "--runs-dir", str(runs), "--data-dir",
            str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--jobs", "2"]
    grid = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    folders = [runs / "maze" / f"maze-d7-{operator}" / "seed0" for operator in
               ("control", "SM-G-ABS")]
    deadline = time.monotonic() + 120
    while not all(list(folder.glob("checkpoints/gen_*.pt")) for folder in folders):
        assert grid.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    grid.send_signal(signal.SIGTERM)
    printed, _ = grid.communicate(timeout=120)
    assert grid.returncode == 130 and "interrupted; each run in progress saved" in printed
    for folder in folders:
        last = json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])
        assert latest_checkpoint(folder).name == f"gen_{last['generation']:06d}.pt"
    assert not (tmp_path / "data").exists()


def test_jobs_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        parse_args(["maze", "--jobs", "0"])
    assert "--jobs must be >= 1, got 0" in capsys.readouterr().err


def test_smevo_reproduce_is_the_same_command_line(run, capsys, tmp_path):
    """`smevo reproduce ARGS` runs the grid as the script does; its records quote it."""
    data, out = tmp_path / "data", tmp_path / "out"
    tiny = ["illustrative", "--quick", "--operators", "control", "--set",
            "budget.generations=2", "--runs-dir", tmp_path / "runs", "--data-dir", data]
    assert smevo_main(["reproduce", *map(str, tiny), "--out", str(out / "verb")]) == 0
    assert "ran 3, resumed 0, skipped 0" in capsys.readouterr().out
    record = json.loads((data / "illustrative" / "easy-toy2w-control" / "seed0.json").read_text())
    assert record["command"].startswith("smevo reproduce illustrative --quick")
    assert "ran 0, resumed 0, skipped 3" in run(*tiny, "--out", out / "script")
    reports = [without_stamp((out / name / "RESULTS.md").read_text())
               for name in ("verb", "script")]
    assert reports[0] == reports[1]
    assert smevo_main(["reproduce", "--seeds", "0", "maze"]) == 2  # its own argument errors
    assert "--seeds must be >= 1" in capsys.readouterr().err


TINY_MAZE = ("maze", "--quick", "--operators", "control,SM-G-ABS",
             "--set", "algorithm.population=8", "--set", "algorithm.options.batch=8",
             "--set", "budget.evaluations=16")
"""Four maze runs (depth 7 and 32, control and SM-G-ABS) of 16 evaluations each."""


def tiny_maze(tmp_path: Path) -> tuple[list, Path, Path, Path]:
    """TINY_MAZE's argv with its folders under `tmp_path`, and the runs, data and out folders."""
    runs, data, out = tmp_path / "runs", tmp_path / "data", tmp_path / "out"
    return [*TINY_MAZE, "--runs-dir", runs, "--data-dir", data, "--out", out], runs, data, out


def test_quick_maze_resumes_a_cut_run_and_draws_the_maze_figures(run, tmp_path):
    argv, runs, data, out = tiny_maze(tmp_path)
    assert "ran 4, resumed 0, skipped 0" in run(*argv)
    for name in ("maze_solve_rate.png", "maze_endpoints.png"):
        assert (out / name).stat().st_size > 0
    record_path = data / "maze" / "maze-d32-SM-G-ABS" / "seed0.json"
    record = json.loads(record_path.read_text())
    assert len(record["end_position"]) == 2 and record["evaluations"] == 16

    # A run cut short after a checkpoint resumes; one with no checkpoint starts again.
    record_path.unlink()
    (data / "maze" / "maze-d7-control" / "seed0.json").unlink()
    for checkpoint in (runs / "maze" / "maze-d7-control" / "seed0" / "checkpoints").iterdir():
        checkpoint.unlink()
    assert "ran 1, resumed 1, skipped 2" in run(*argv)
    resumed = json.loads(record_path.read_text())
    assert resumed["end_position"] == record["end_position"]
    # Its training time is the trainer's clock, kept across the resume (here the whole run
    # had finished), not the resumed process's seconds.
    assert resumed["resumed"] and resumed["wall_seconds"] == record["wall_seconds"] > 0
    report = (out / "RESULTS.md").read_text()
    assert "| depth 32 | SM-G-ABS | 1 |" in report


def test_a_run_another_process_is_training_is_left_alone(run, tmp_path):
    # Two grids over the same runs folder (another terminal, another worktree): a cell whose
    # run the other process holds is skipped, checkpoint or not, and its folder kept.
    argv, runs, data, _ = tiny_maze(tmp_path)
    assert "ran 4, resumed 0, skipped 0" in run(*argv)
    cut = runs / "maze" / "maze-d7-control" / "seed0"  # no checkpoint: would start again
    for checkpoint in (cut / "checkpoints").iterdir():
        checkpoint.unlink()
    resumable = runs / "maze" / "maze-d32-SM-G-ABS" / "seed0"
    for run_dir in (cut, resumable):
        (data / "maze" / run_dir.parent.name / "seed0.json").unlink()
    held = [RunLock(cut), RunLock(resumable)]
    for lock in held:
        lock.acquire()
    try:
        for jobs in ("1", "2"):  # in this process, and in a job's process
            printed = run(*argv, "--jobs", jobs)
            assert "ran 0, resumed 0, skipped 2 (finished before), 2 left to the other" in printed
            assert printed.count("is in use by another smevo process") == 2
            assert (cut / "config.yaml").is_file() and (cut / "metrics.jsonl").is_file()
            assert not (data / "maze" / "maze-d7-control" / "seed0.json").exists()
    finally:
        for lock in held:
            lock.release()
    assert "ran 1, resumed 1, skipped 2" in run(*argv)


def test_a_cell_whose_run_another_experiment_recorded_copies_its_record(run, tmp_path):
    """The depth sweep's depth-32 cells are runs of the maze experiment's (same domain, GA,
    budget and magnitudes): the grid copies their records instead of running them again,
    and `status` counts them done before that."""
    argv, runs, data, _ = tiny_maze(tmp_path)
    depth = ["depth", *argv[1:], "--networks", "d32"]  # control and SM-G-ABS, as the maze's
    assert re.search(r"depth\s+maze-d32\s+0\s+2\s", run("status", *depth))
    run(*argv)
    assert re.search(r"depth\s+maze-d32\s+2\s+0\s", run("status", *depth))
    printed = run(*depth)
    assert ("depth/maze-d32-SM-G-ABS seed0: finished before, the same run as "
            "maze/maze-d32-SM-G-ABS seed0: its record copied") in printed
    assert "ran 0, resumed 0, skipped 2" in printed
    for operator in ("control", "SM-G-ABS"):
        origin, copy = (json.loads((data / experiment / f"maze-d32-{operator}" / "seed0.json")
                                   .read_text()) for experiment in ("maze", "depth"))
        assert copy == origin | {"experiment": "depth",
                                 "same_run_as": f"maze/maze-d32-{operator} seed0"}
    assert not (runs / "depth" / "maze-d32-control").exists()


def without_stamp(report: str) -> str:
    return re.sub(r"on \d{4}-\d\d-\d\d \d\d:\d\d UTC", "", report)


def test_quick_gridmaze_scores_champions_on_fresh_episodes_and_writes_gridmaze_md(run, tmp_path):
    """The grid maze's quick cells (3 networks, control and SM-G-ABS): records with the
    champion's fresh-episode reward, status says done, GRIDMAZE.md rebuilt from records."""
    runs, data, out = tmp_path / "runs", tmp_path / "data", tmp_path / "out"
    argv = ["gridmaze", "--quick", "--runs-dir", runs, "--data-dir", data, "--out", out]
    assert "ran 6, resumed 0, skipped 0" in run(*argv)
    cell = "gridmaze-neuromod-SM-G-ABS"
    record = json.loads((data / "gridmaze" / cell / "seed0.json").read_text())
    assert record["config"]["algorithm"]["population"] == 8 and record["evaluations"] == 17
    fresh = record["fresh_episodes"]
    assert (fresh["episodes"], fresh["first_seed"]) == (FRESH_EPISODES, FRESH_SEED)
    # The champion's reward on those episodes, as `smevo eval` plays them one by one.
    agent = load_agent(runs / "gridmaze" / cell / "seed0" / "best.pt")
    played = [e["return"] for e in agent.run_episodes(FRESH_EPISODES, FRESH_SEED)]
    agent.close()
    assert fresh["mean"] == pytest.approx(np.mean(played)) and np.mean(played) > 0

    status = run("status", *argv)
    for network in ("rnn", "plastic", "neuromod"):
        assert re.search(rf"^gridmaze\s+gridmaze-{network}\s+2\s+0\s+0\s", status,
                         re.MULTILINE)
    gridmaze = (out / "GRIDMAZE.md").read_text()
    assert gridmaze.startswith("# Grid maze:") and "Quick runs" in gridmaze
    assert "a uniform random policy 7.6, an oracle that knows the goal 325" in gridmaze
    row = re.search(r"^\| neuromod \| SM-G-ABS \| 1 \| .* \| p=1, A=[0-9.]+ \|$", gridmaze,
                    re.MULTILINE)  # fresh rewards ranked against the rnn's
    assert row
    results = (out / "RESULTS.md").read_text()
    assert "(`gridmaze`)" in results and "[GRIDMAZE.md](GRIDMAZE.md)" in results
    assert row.group(0) in results  # the same section in both
    for name in ("gridmaze_control.png", "gridmaze_SM-G-ABS.png"):
        assert (out / name).stat().st_size > 0 and f"]({name})" in gridmaze
    shutil.rmtree(out)
    run("--report-only", "--data-dir", data, "--out", out)
    assert without_stamp((out / "GRIDMAZE.md").read_text()) == without_stamp(gridmaze)


def test_records_alone_rebuild_the_report_and_carry_what_it_needs(run, tmp_path):
    argv, runs, data, out = tiny_maze(tmp_path)
    run(*argv)
    report = (out / "RESULTS.md").read_text()
    shutil.rmtree(runs)
    shutil.rmtree(out)
    assert "wrote" in run("--report-only", "--data-dir", data, "--out", out)
    assert without_stamp((out / "RESULTS.md").read_text()) == without_stamp(report)
    for name in ("maze_solve_rate.png", "maze_endpoints.png"):
        assert (out / name).stat().st_size > 0

    record = json.loads((data / "maze" / "maze-d7-SM-G-ABS" / "seed0.json").read_text())
    assert (record["format"], record["version"]) == RECORD_FORMAT
    assert record["config"]["budget"]["evaluations"] == 16 and record["seed"] == 0
    assert "logging" not in record["config"]  # paths of this machine: not the run's settings
    assert record["curve"]["evaluations"] == [8, 16] and len(record["curve"]["champion"]) == 2
    assert record["code"]["commit"] == git("log", "-1", "--format=%H", "--", ".",
                                       ":(exclude)docs/results")
    assert record["code"]["smevo"] and record["machine"]["cpu"]
    assert record["core_seconds"] > 0 and record["seconds"] > 0
    assert re.search(r"\| depth 7 \| control \| 1 \|.*\| [0-9a-f]{10}(\+dirty)? \|$", report,
                     re.MULTILINE)  # each cell says which commit its records come from


def test_quick_records_stay_out_of_the_committed_data():
    args = parse_args(["maze", "--quick"])
    assert args.data_dir == Path("runs/reproduce-quick/data")
    assert parse_args(["maze"]).data_dir == Path("docs/results/data")


def set_core_seconds(data: Path, seconds: float) -> None:
    """Give every record under `data` the core-seconds `seconds`."""
    for path in data.rglob("seed*.json"):
        record = json.loads(path.read_text())
        path.write_text(json.dumps(record | {"core_seconds": seconds}))


def test_status_counts_runs_and_costs_the_rest_at_the_recorded_rates(run, tmp_path):
    argv, runs, data, _ = tiny_maze(tmp_path)
    run(*argv)
    set_core_seconds(data, 3600.0)  # 225 core-seconds per evaluation: 16 evaluations = 1 h
    status = run("status", *argv[:-6], "--data-dir", data, "--runs-dir", runs, "--seeds", "3",
                 "--operators", "control,SM-G-ABS,SM-G-SUM")
    lines = {tuple(line.split()[:2]): line.split()[2:] for line in status.splitlines()}
    # 2 of 9 done per depth; 4 pending at the measured 1 h, 3 SM-G-SUM at a few ms each
    # (FALLBACK_RATE at depth 7, a pilot rate at depth 32: the same in two decimals).
    fallback = 3 * 16 * FALLBACK_RATE / 3600
    expected = f"{4 + fallback:.2f}"
    assert lines[("maze", "maze-d7")] == ["2", "7", "0", expected]
    assert lines[("maze", "maze-d32")] == ["2", "7", "0", expected]
    assert lines[("all", "4")] == ["14", "0", f"{2 * (4 + fallback):.2f}"]
    assert "measured for 4 of 6" in status


def test_status_costs_a_cut_run_for_the_work_after_its_checkpoint(run, tmp_path):
    argv, runs, data, _ = tiny_maze(tmp_path)
    run(*argv, "--seeds", "2")
    set_core_seconds(data, 3600.0)  # 225 core-seconds per evaluation: 16 evaluations = 1 h
    (data / "maze" / "maze-d7-control" / "seed1.json").unlink()

    def d7_hours(runs_dir: Path) -> str:
        status = run("status", *argv[:-6], "--seeds", "2", "--data-dir", data,
                     "--runs-dir", runs_dir)
        return next(line.split()[2:] for line in status.splitlines()
                    if line.split()[:2] == ["maze", "maze-d7"])

    # Its run folder here holds the whole run up to its last checkpoint: nothing left to do.
    assert d7_hours(runs) == ["3", "1", "0", "0.00"]
    # Its last checkpoint half way (generation 1 of 2, 8 of its 16 evaluations): half is left.
    checkpoint = latest_checkpoint(runs / "maze" / "maze-d7-control" / "seed1")
    assert checkpoint.name == "gen_000002.pt"
    checkpoint.rename(checkpoint.with_name("gen_000001.pt"))
    assert d7_hours(runs) == ["3", "1", "0", "0.50"]
    # Without its folder (another machine): all of it; with a damaged one, too.
    assert d7_hours(tmp_path / "elsewhere") == ["3", "1", "0", "1.00"]
    damaged = tmp_path / "damaged" / "maze" / "maze-d7-control" / "seed1"
    shutil.copytree(checkpoint.parents[1], damaged)
    (damaged / "config.yaml").write_text("algorithm: [unclosed\n")
    assert d7_hours(tmp_path / "damaged") == ["3", "1", "0", "1.00"]


def test_rates_pool_measured_runs_only():
    def record(seconds: float, evaluations: int, **more) -> dict:
        return {"domain": "maze", "network": "d32", "operator": "control", "core_seconds": seconds,
                "evaluations": evaluations, "config": {"budget": {"evaluations": 100}}} | more

    fast, slow = record(10.0, 100), record(90.0, 100)
    copy = fast | {"same_run_as": "maze/maze-d32-control seed0"}
    resumed = record(1.0, 100, resumed=True)  # its seconds cover only the part after the resume
    assert measured_rates([fast, slow, copy, resumed]) == {("maze", "d32", "control"): 0.5}


def test_a_game_without_records_is_costed_per_frame_from_the_other_games():
    def record(domain: str, seconds: float, budget: dict, **work) -> dict:
        return {"domain": domain, "network": "shallow", "operator": "control",
                "core_seconds": seconds, "config": {"budget": budget}} | work

    frames = {"env_steps": 1000, "evaluations": None}
    records = [record("Breakout-v1", 2.0, frames, env_steps=1000, evaluations=50),
               record("Asterix-v1", 4.0, frames, env_steps=1000, evaluations=20),
               record("maze", 90.0, {"evaluations": 100}, evaluations=100)]  # not per frame
    assert frame_rates(records) == {("shallow", "control"): 0.003}


def test_a_record_at_other_settings_leaves_its_cell_pending(run, tmp_path):
    argv, _, data, _ = tiny_maze(tmp_path)
    run(*argv)
    other = [*argv, "--set", "budget.evaluations=24"]
    status = run("status", *other)
    assert re.search(r"^maze\s+maze-d7\s+0\s+2\s+2\s", status, re.MULTILINE)
    assert "ran 1, resumed 0, skipped 0" in run(*other, "--networks", "d7",
                                                "--operators", "control")
    record = json.loads((data / "maze" / "maze-d7-control" / "seed0.json").read_text())
    assert record["evaluations"] == 24
    # Back at the first settings: that cell is pending again, and its run folder, made at
    # the other settings, is not resumed but started again.
    assert "ran 1, resumed 0, skipped 3" in run(*argv)


def test_a_record_of_a_run_that_validated_elites_before_the_ranking_fix_is_stale():
    """Runs that validate elites select otherwise since VALIDATED_RANKING_SINCE, whatever the
    operator: their earlier records are stale; runs that validate none are not."""
    before = subprocess.run(["git", "-C", str(ROOT), "rev-parse", f"{VALIDATED_RANKING_SINCE}~1"],
                            capture_output=True, text=True, check=True).stdout.strip()

    def made_at(commit, elite_episodes):
        return {"operator": "control", "code": {"commit": commit},
                "config": {"algorithm": {"elite_episodes": elite_episodes}}}

    assert not current_arithmetic(made_at(before, 8))
    assert current_arithmetic(made_at(VALIDATED_RANKING_SINCE, 8))
    assert current_arithmetic(made_at(before, 0))


def test_a_record_made_before_its_operators_arithmetic_changed_is_stale():
    """Cells of operators whose children changed (ARITHMETIC_SINCE) run again; control's
    records stay; the report leaves stale records out."""
    since = ARITHMETIC_SINCE["SM-G-ABS"]
    before = subprocess.run(["git", "-C", str(ROOT), "rev-parse", f"{since}~1"],
                            capture_output=True, text=True, check=True).stdout.strip()

    def made_at(operator, commit):
        return {"operator": operator, "code": {"commit": commit}}

    def descends(commit, ancestor):
        return subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", ancestor,
                               commit], check=False).returncode == 0

    assert not current_arithmetic(made_at("SM-G-ABS", before))
    assert current_arithmetic(made_at("SM-G-ABS", since))
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert current_arithmetic(made_at("SM-G-ABS", head))
    assert current_arithmetic(made_at("control", before))
    assert not current_arithmetic(made_at("SM-R", None))  # commit unknown
    assert "control" not in ARITHMETIC_SINCE
    # A later bump for some networks only: SM-G-ABS on GRUs, not on the maze's MLPs.
    sweep = NETWORK_ARITHMETIC_SINCE[("SM-G-ABS", "gru")]
    assert descends(sweep, since)
    between = {"operator": "SM-G-ABS", "code": {"commit": f"{sweep}~1"}}
    assert not current_arithmetic({**between, "network": "gru"})
    assert current_arithmetic({**between, "network": "d7"})
    assert current_arithmetic({"operator": "SM-G-ABS", "network": "gru",
                               "code": {"commit": sweep}})


def test_a_record_at_a_superseded_magnitude_leaves_the_report():
    """Parity's SM-G magnitude changed (MAGNITUDE_CHOICE): a record at the old one is not
    current, one at the grid's magnitude is."""
    from smevo.experiments.grid import MAGNITUDES, current_magnitude

    now = MAGNITUDES[EXPERIMENTS["parity"].magnitudes]["SM-G-SUM"]
    assert now == 0.01 and MAGNITUDES["net"]["SM-G-SUM"] == 0.1
    record = {"experiment": "parity", "domain": "parity", "network": "rnn",
              "operator": "SM-G-SUM"}
    assert current_magnitude({**record, "magnitude": now})
    assert not current_magnitude({**record, "magnitude": 0.1})
    assert current_magnitude({"experiment": "maze", "domain": "maze", "network": "d7",
                              "operator": "SM-G-SUM", "magnitude": 0.1})


def test_a_section_says_how_many_stale_records_it_left_out(tmp_path):
    from smevo.experiments.report import section

    parts = section("gridmaze", None, tmp_path, [], left_out=10)
    assert parts[0].startswith("10 earlier record(s)") and parts[1].startswith("Not run")
    assert section("gridmaze", None, tmp_path, [])[0].startswith("Not run")


MINATAR_MAGNITUDES = {"shallow": {"control": 0.04, "SM-G-SUM": 0.003, "SM-G-ABS": 0.003},
                      "deep": {"control": 0.04, "SM-G-SUM": 0.0037, "SM-G-ABS": 0.0037}}
"""The magnitudes calibrated in configs/minatar/shallow.yaml and deep.yaml."""


def test_minatar_cells_are_three_games_by_two_nets_at_each_nets_magnitudes(tmp_path):
    """90 cells (3 games x 2 nets x 3 operators x 5 seeds), each on its game, with its net's
    convolutions and its net's calibrated magnitude, for 1M frames; records count as current
    at their own net's magnitude only."""
    from smevo.experiments.grid import Settings, build_grid, cell_config, current_magnitude

    cells = build_grid(["minatar"], None, False)
    assert len(cells) == 90
    settings = Settings(tmp_path, False, None, (), "test")
    games = set()
    for cell in cells:
        config = cell_config(cell, settings)
        network, operator = cell.domain.network, cell.operator
        games.add(config.env.id)
        assert config.env.id == f"MinAtar/{cell.domain.name}"
        assert len(config.policy.options["convs"]) == {"shallow": 2, "deep": 8}[network]
        assert config.mutation.magnitude == MINATAR_MAGNITUDES[network][operator]
        assert (config.budget.env_steps, config.budget.generations) == (1_000_000, None)
        record = {"experiment": "minatar", "domain": cell.domain.name, "network": network,
                  "operator": operator, "magnitude": config.mutation.magnitude}
        assert current_magnitude(record)
        other = MINATAR_MAGNITUDES["deep" if network == "shallow" else "shallow"][operator]
        assert current_magnitude(record | {"magnitude": other}) == (operator == "control")
    assert games == {"MinAtar/Breakout-v1", "MinAtar/SpaceInvaders-v1", "MinAtar/Asterix-v1"}
    assert {c.seed for c in cells} == set(range(5))


def test_quick_minatar_records_fresh_episodes_and_writes_its_section(run, tmp_path):
    """MinAtar's quick cells of one net and operator (one per game): records with the
    champion's fresh-episode reward, a status line each, a section with a row and a curve
    per game and net, and a verdict of the pixel claim."""
    runs, data, out = tmp_path / "runs", tmp_path / "data", tmp_path / "out"
    argv = ["minatar", "--quick", "--networks", "shallow", "--operators", "control,SM-G-SUM",
            "--runs-dir", runs, "--data-dir", data, "--out", out]
    assert "ran 6, resumed 0, skipped 0" in run(*argv)
    record = json.loads((data / "minatar" / "Breakout-v1-shallow-SM-G-SUM" / "seed0.json")
                        .read_text())
    assert record["config"]["env"]["id"] == "MinAtar/Breakout-v1"
    assert record["magnitude"] == 0.003 and record["env_steps"] >= 100
    assert record["fresh_episodes"]["episodes"] == FRESH_EPISODES
    status = run("status", *argv)
    assert re.search(r"^minatar\s+Asterix-v1-shallow\s+2\s+0\s+0\s", status, re.MULTILINE)
    report = (out / "RESULTS.md").read_text()
    assert "(`minatar`)" in report
    assert re.search(r"^\| SpaceInvaders-v1 shallow \| SM-G-SUM \| 1 \|", report, re.MULTILINE)
    assert re.search(r"^\| Breakout-v1 shallow \| SM-G-SUM \| 1 \| .* \| p=1, A=[0-9.]+ \|$",
                     report, re.MULTILINE)  # fresh rewards ranked against control's
    assert (out / "minatar_Asterix-v1_shallow.png").stat().st_size > 0
    assert "| SM-G helps in domains that require processing raw pixels" in report
    assert "deep vs shallow: not both run" in report
    assert re.search(r"^\| Breakout-v1 \| 9\.3 / 10 \| 3\.8 / 4\.3 \| 9\.8 / 17\.5 \| 7\.5 / "
                     r"15\.3 \| [0-9.-]+ \(shallow, (control|SM-G-SUM)\) \|$", report, re.MULTILINE)
    assert "best cell's median fresh reward at 100 frames" in report  # the quick budget


def test_status_costs_minatar_runs_per_frame_at_the_pilot_rates(run, tmp_path):
    """MinAtar's budget is in frames: a pending run costs its env steps at the pilot's
    core-seconds per frame."""
    from smevo.experiments.status import MINATAR_FRAME_RATES

    status = run("status", "minatar", "--networks", "deep", "--operators", "control",
                 "--data-dir", tmp_path, "--runs-dir", tmp_path / "runs")
    hours = 5 * 1_000_000 * MINATAR_FRAME_RATES[("deep", "control")] / 3600
    assert re.search(rf"^minatar\s+Breakout-v1-deep\s+0\s+5\s+0\s+{hours:.2f}$", status,
                     re.MULTILINE)


def fake(operator, domain="washout", network="toy2w", fitness=0.0, solved=False, evals=100):
    """A record as run_cell writes it, for the fields the claims read."""
    return {"experiment": "illustrative", "domain": domain, "network": network,
            "operator": operator, "best_fitness": fitness, "solved": solved,
            "evaluations": evals, "budget_evaluations": 1000}


def test_washout_claim_verdicts():
    experiment = EXPERIMENTS["illustrative"]
    sums = [fake("SM-G-SUM", fitness=-8.0 - s) for s in range(6)]
    good = [fake(op, fitness=-0.001 * s, solved=True) for op in ("SM-G-ABS", "SM-G-SO")
            for s in range(6)]
    claim = claim_washout({"illustrative": Results(experiment, sums + good)})
    assert claim.status == "reproduced"
    assert "washout SM-G-ABS 6/6 vs SM-G-SUM 0/6 solved" in claim.evidence

    abs_only = [r for r in good if r["operator"] == "SM-G-ABS"]
    so_as_sum = [fake("SM-G-SO", fitness=r["best_fitness"]) for r in sums]
    claim = claim_washout({"illustrative": Results(
        experiment, sums + abs_only + so_as_sum)})
    assert claim.status == "partly"
    so_worse = [fake("SM-G-SO", fitness=r["best_fitness"] - 10) for r in sums]
    claim = claim_washout({"illustrative": Results(
        experiment, sums + abs_only + so_worse)})
    assert claim.status == "not reproduced"  # one for, one against
    assert claim_washout({}).status == "not tested"


def test_unsolved_runs_rank_after_every_solved_run_then_by_fitness():
    experiment = EXPERIMENTS["parity"]
    slow = score(fake("control", solved=True, evals=1000), experiment)
    close, far = (score(fake("control", fitness=f, evals=1000), experiment)
                  for f in (-0.05, -3.0))
    huge = score(fake("control", fitness=1e6, evals=1000), experiment)
    assert -1002 < far < close < huge < -1001 < slow
    # A generation budget (no evaluation budget): the evaluations an unsolved run made.
    gym = EXPERIMENTS["gym"]
    solved_late = score(fake("control", solved=True, evals=1960), gym)
    unsolved = score(fake("control", fitness=150.0, evals=1960) | {"budget_evaluations": None},
                     gym)
    assert -1962 < unsolved < -1961 < solved_late


def test_minatar_runs_rank_on_their_champions_fresh_reward_not_the_validated_fitness():
    """Sticky actions make the validated fitness the best of noisy elites: MinAtar ranks on
    the fresh episodes instead."""
    experiment = EXPERIMENTS["minatar"]
    lucky = fake("SM-G-SUM", fitness=30.0) | {"fresh_episodes": {"mean": 5.0}}
    steady = fake("control", fitness=12.0) | {"fresh_episodes": {"mean": 11.0}}
    assert score(lucky, experiment) == 5.0 < score(steady, experiment) == 11.0


def test_wilson_interval_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    rate = solve_rate([True, False, False, False])
    assert (rate.successes, rate.trials, rate.rate) == (1, 4, 0.25)
    assert str(rate) == "1/4 [0.05, 0.70]"
    with pytest.raises(ValueError, match="at least one trial"):
        wilson_interval(0, 0)


def test_median_iqr_and_rank_test():
    summary = median_iqr([1, 2, 3, 4, 5])
    assert (summary.median, summary.q25, summary.q75, summary.n) == (3, 2, 4, 5)
    assert median_iqr([]) is None
    test = rank_test([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
    assert test.effect == 1.0 and test.p_value == pytest.approx(2 / 252)
    assert test.significant()
    tied = rank_test([1, 1], [1, 1])
    assert tied.effect == 0.5 and not tied.significant()
    assert rank_test([], [1.0]) is None
    assert math.isclose(rank_test([1, 2], [2, 3]).effect, 0.125)


def test_a_claim_no_run_solved_is_ranked_on_fitness_and_says_so():
    experiment = EXPERIMENTS["parity"]
    chance = [fake("control", "parity", "rnn", fitness=-0.6931 - 1e-4 * s) for s in range(5)]
    moved = [fake(op, "parity", "rnn", fitness=-0.6 - 1e-3 * s)
             for op in PAPER_SM_G for s in range(5)]
    found = {"parity": Results(experiment, chance + moved)}
    claim = claims(found)[1]
    assert claim.status == "reproduced" + ON_FITNESS_ONLY
    assert "rnn SM-G-SUM 0/5 vs control 0/5 solved, so ranked on final fitness: " \
           "median -0.602 vs -0.6933" in claim.evidence
    solved = [fake("SM-G-SUM", "parity", "rnn", solved=True, evals=500 + s) for s in range(5)]
    claim = claims({"parity": Results(experiment, chance + solved)})[1]
    assert claim.status == "reproduced" and "ranked on final fitness" not in claim.evidence
    assert "divergence" not in claim.evidence  # none measured
    # How far each side's children moved, where the runs measured it.
    timid = [r | {"divergence": 0.004 + 0.001 * (r["evaluations"] - 500)} for r in solved]
    noisy = [r | {"divergence": 0.3} for r in chance]
    claim = claims({"parity": Results(experiment, noisy + timid)})[1]
    assert "rnn SM-G-SUM 5/5 vs control 0/5 solved, p=0.00794, A=1.00, divergence 0.006 vs 0.3" \
        in claim.evidence


def test_quick_gym_scores_champions_on_fresh_episodes_against_the_env_threshold(run, tmp_path):
    """The gym experiment's quick cells: every champion, BipedalWalker's with its saved
    observation statistics, is scored on fresh episodes as `smevo eval` plays them, and the
    report's table counts the champions that meet the env's threshold."""
    runs, data, out = tmp_path / "runs", tmp_path / "data", tmp_path / "out"
    argv = ["gym", "--quick", "--operators", "control", "--runs-dir", runs, "--data-dir", data,
            "--out", out]
    assert "ran 3, resumed 0, skipped 0" in run(*argv)
    cell = "BipedalWalker-v3-mlp-control"
    record = json.loads((data / "gym" / cell / "seed0.json").read_text())
    assert record["config"]["env"]["normalize_obs"] is True
    agent = load_agent(runs / "gym" / cell / "seed0" / "best.pt")
    assert agent.obs_norm is not None
    played = [e["return"] for e in agent.run_episodes(FRESH_EPISODES, FRESH_SEED)]
    agent.close()
    assert record["fresh_episodes"]["mean"] == pytest.approx(np.mean(played))
    report = (out / "RESULTS.md").read_text()
    assert "| env | operator | runs | threshold | fresh reward: median [IQR] |" in report
    assert re.search(r"^\| LunarLander-v3 \| control \| 1 \| 200 \| .* \| 0/1 \[", report,
                     re.MULTILINE)
    # 3 of the quick grid's gym runs: its section and the claim that rests on it say so.
    planned = len(build_grid(["gym"], None, quick=True))
    assert f"**In progress:** 3 of the grid's {planned} runs are recorded" in report
    assert f"**not tested** (provisional: 3 of the {planned} runs it rests on)" in report
    # Made into a record from before solved runs confirmed their crossing (no
    # budget.confirm_solved) of a run that stopped solved on a validated elite, it is another
    # setting's: its cell is pending; as it is (the run hit its cap), it still counts.
    path = data / "gym" / "CartPole-v1-mlp-control" / "seed0.json"
    record = json.loads(path.read_text())
    del record["config"]["budget"]["confirm_solved"]
    assert record["stopped_by"] == "generations"
    path.write_text(json.dumps(record))
    assert re.search(r"^gym\s+CartPole-v1-mlp\s+1\s+0\s+0\s", run("status", *argv), re.MULTILINE)
    path.write_text(json.dumps(record | {"stopped_by": "solved", "solved": True}))
    assert re.search(r"^gym\s+CartPole-v1-mlp\s+0\s+1\s+1\s", run("status", *argv), re.MULTILINE)


def test_a_verdict_is_provisional_until_every_run_it_rests_on_is_recorded():
    claim = Claim("SM-G beats control on the deep maze.", "partly", "", ("maze", "depth"))
    assert verdict_text(claim, {"maze": (90, 90), "depth": (75, 75), "parity": (0, 120)}) == (
        "**partly**")
    assert verdict_text(claim, {"maze": (90, 90), "depth": (60, 75)}) == (
        "**partly** (provisional: 150 of the 165 runs it rests on)")


def test_records_from_before_confirmation_count_where_it_could_not_have_changed_them():
    def record(stopped_by, elite_episodes, **budget):
        return {"stopped_by": stopped_by,
                "config": {"algorithm": {"elite_episodes": elite_episodes},
                           "budget": {"generations": 100, **budget}}}

    assert settled_budget(record("generations", 100))["confirm_solved"] is True
    assert settled_budget(record("solved", 0))["confirm_solved"] is True  # nothing validated
    assert settled_budget(record("solved", 100))["confirm_solved"] is False
    assert settled_budget(record("solved", 100, confirm_solved=True))["confirm_solved"] is True


def test_domains_pick_the_grids_domains_and_an_unknown_one_lists_the_valid(run, capsys, tmp_path):
    status = run("status", "gym", "--domains", "LunarLander-v3", "--data-dir", tmp_path)
    assert "LunarLander-v3-mlp" in status and "CartPole" not in status
    with pytest.raises(SystemExit):
        parse_args(["gym", "--domains", "Lunar"])
    assert "--domains: unknown Lunar; valid: Asterix-v1, BipedalWalker-v3" in \
        capsys.readouterr().err


def test_gym_curves_are_drawn_from_the_records(tmp_path):
    def gym_record(operator, seed):
        evaluations = [16 * (g + 1) for g in range(5)]
        champion = [10.0 * g + seed if g else None for g in range(5)]  # a NaN was logged null
        return fake(operator, "CartPole-v1", "mlp") | {
            "experiment": "gym", "curve": {"evaluations": evaluations, "champion": champion,
                                           "best": champion}}
    records = [gym_record(op, s) for op in ("control", "SM-G-SUM") for s in range(3)]
    results = Results(EXPERIMENTS["gym"], records)
    assert recorded_curve(records[0], "champion").shape == (2, 4)
    [(name, _, shown)] = fitness_curve_figures(results, tmp_path)
    assert (tmp_path / name).stat().st_size > 0 and len(shown) == 6


def git_in(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def test_commit_records_commits_the_record_and_nothing_else(tmp_path, monkeypatch):
    for key, value in (("NAME", "t"), ("EMAIL", "t@example.org")):
        monkeypatch.setenv(f"GIT_AUTHOR_{key}", value)
        monkeypatch.setenv(f"GIT_COMMITTER_{key}", value)
    repo = tmp_path / "repo"
    repo.mkdir()
    git_in(repo, "init", "-q")
    (repo / "code.py").write_text("a = 1\n")
    (repo / "staged.py").write_text("b = 1\n")
    git_in(repo, "add", ".")
    git_in(repo, "commit", "-q", "-m", "start")
    (repo / "code.py").write_text("a = 2\n")  # modified, not staged
    (repo / "staged.py").write_text("b = 2\n")
    git_in(repo, "add", "staged.py")  # staged by someone else
    record = repo / "docs" / "results" / "data" / "maze" / "maze-d7-control" / "seed0.json"
    record.parent.mkdir(parents=True)
    record.write_text("{}\n")
    commit_record(record, "record", root=repo)
    assert git_in(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        "docs/results/data/maze/maze-d7-control/seed0.json"]
    assert sorted(git_in(repo, "status", "--porcelain").splitlines()) == [" M code.py",
                                                                          "M  staged.py"]


def test_the_script_is_the_modules_command_line(capsys, monkeypatch):
    """scripts/reproduce.py forwards to smevo.experiments.cli: same usage and options (run
    in process as `python scripts/reproduce.py --help` would run it)."""
    monkeypatch.setattr(sys, "argv", ["reproduce.py", "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(ROOT / "scripts" / "reproduce.py"), run_name="__main__")
    assert done.value.code == 0
    script = capsys.readouterr().out
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    assert script == capsys.readouterr().out
    assert script.startswith("usage: reproduce.py [-h]")


def test_the_report_quotes_commands_without_where_they_wrote():
    """A record keeps its command as it ran; the report quotes what a reader runs to make the
    same runs: no output, data or runs folders of the machine that ran it, no job count."""
    from smevo.experiments.tables import commands

    records = [
        {"command": "python scripts/reproduce.py gridmaze --data-dir /work/main/docs/results/data"
                    " --out runs/reproduce/report-q1"},
        {"command": "python scripts/reproduce.py gridmaze --jobs=2 --commit-records"},
        {"command": "python scripts/reproduce.py parity --runs-dir /tmp/r --seeds 10 --set "
                    "'mutation.options={weight_clip: 0.2}'"},
    ]
    assert commands(records) == (
        "`python scripts/reproduce.py gridmaze`; `python scripts/reproduce.py parity --seeds 10 "
        "--set 'mutation.options={weight_clip: 0.2}'`")
