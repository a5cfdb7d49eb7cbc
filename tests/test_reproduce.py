"""scripts/reproduce.py end to end on tiny grids, its claim verdicts, and smevo.stats.

The pipeline runs in process (`reproduce.main`) with --quick, two operators and budgets cut
further by --set, so that every step — runs, resume, skip, records, figures, RESULTS.md — is
exercised in seconds.
"""

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from smevo.agent import load_agent
from smevo.functional import get_flat
from smevo.stats import median_iqr, rank_test, solve_rate, wilson_interval

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reproduce():
    """scripts/reproduce.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "scripts" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["reproduce"] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    yield module
    del sys.modules["reproduce"]


@pytest.fixture
def run(reproduce, capsys):
    """Call the script's main with argv; return its stdout. Torch's thread count, which the
    script sets, is restored afterwards."""
    threads = torch.get_num_threads()

    def call(*argv):
        assert reproduce.main([str(a) for a in argv]) == 0
        return capsys.readouterr().out

    yield call
    torch.set_num_threads(threads)


def finished(runs_dir: Path) -> dict[Path, int]:
    """result.json of every finished run -> its modification time in ns."""
    return {p: p.stat().st_mtime_ns for p in runs_dir.rglob("result.json")}


def test_quick_illustrative_writes_the_report_and_skips_finished_runs_after(run, tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    argv = ["illustrative", "--quick", "--operators", "control,SM-G-ABS",
            "--set", "budget.generations=20", "--runs-dir", runs, "--out", out]
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
    record = json.loads((run_dir / "result.json").read_text())
    assert len(record["trajectory"]) == record["generations"] == 20
    agent = load_agent(run_dir / "best.pt")
    np.testing.assert_allclose(record["trajectory"][-1], get_flat(agent.policy).numpy(),
                               rtol=1e-6)
    agent.close()

    before = finished(runs)
    second = run(*argv)
    assert "ran 0, resumed 0, skipped 6" in second
    assert finished(runs) == before


def test_quick_maze_resumes_a_cut_run_and_draws_the_maze_figures(run, tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    argv = ["maze", "--quick", "--operators", "control,SM-G-ABS",
            "--set", "algorithm.population=8", "--set", "algorithm.batch=8",
            "--set", "budget.evaluations=16", "--runs-dir", runs, "--out", out]
    assert "ran 4, resumed 0, skipped 0" in run(*argv)
    for name in ("maze_solve_rate.png", "maze_endpoints.png"):
        assert (out / name).stat().st_size > 0
    record_path = runs / "maze" / "maze-d32-SM-G-ABS" / "seed0" / "result.json"
    record = json.loads(record_path.read_text())
    assert len(record["end_position"]) == 2 and record["evaluations"] == 16

    # A run cut short after a checkpoint resumes; one with no checkpoint starts again.
    record_path.unlink()
    cut = runs / "maze" / "maze-d7-control" / "seed0"
    (cut / "result.json").unlink()
    for checkpoint in (cut / "checkpoints").iterdir():
        checkpoint.unlink()
    assert "ran 1, resumed 1, skipped 2" in run(*argv)
    assert json.loads(record_path.read_text())["end_position"] == record["end_position"]
    report = (out / "RESULTS.md").read_text()
    assert "| depth 32 | SM-G-ABS | 1 |" in report


def fake(operator, domain="washout", network="toy2w", fitness=0.0, solved=False, evals=100):
    """A record as run_cell writes it, for the fields the claims read."""
    return {"experiment": "illustrative", "domain": domain, "network": network,
            "operator": operator, "best_fitness": fitness, "solved": solved,
            "evaluations": evals, "budget_evaluations": 1000}


def test_washout_claim_verdicts(reproduce):
    experiment = reproduce.EXPERIMENTS["illustrative"]
    sums = [fake("SM-G-SUM", fitness=-8.0 - s) for s in range(6)]
    good = [fake(op, fitness=-0.001 * s, solved=True) for op in ("SM-G-ABS", "SM-G-SO")
            for s in range(6)]
    claim = reproduce.claim_washout({"illustrative": reproduce.Results(experiment, sums + good)})
    assert claim.status == "reproduced"
    assert "washout SM-G-ABS 6/6 vs SM-G-SUM 0/6 solved" in claim.evidence

    abs_only = [r for r in good if r["operator"] == "SM-G-ABS"]
    so_as_sum = [fake("SM-G-SO", fitness=r["best_fitness"]) for r in sums]
    claim = reproduce.claim_washout({"illustrative": reproduce.Results(
        experiment, sums + abs_only + so_as_sum)})
    assert claim.status == "partly"
    so_worse = [fake("SM-G-SO", fitness=r["best_fitness"] - 10) for r in sums]
    claim = reproduce.claim_washout({"illustrative": reproduce.Results(
        experiment, sums + abs_only + so_worse)})
    assert claim.status == "not reproduced"  # one for, one against
    assert reproduce.claim_washout({}).status == "not tested"


def test_unsolved_runs_rank_after_every_solved_run_then_by_fitness(reproduce):
    experiment = reproduce.EXPERIMENTS["parity"]
    slow = reproduce.score(fake("control", solved=True, evals=1000), experiment)
    close, far = (reproduce.score(fake("control", fitness=f, evals=1000), experiment)
                  for f in (-0.05, -3.0))
    huge = reproduce.score(fake("control", fitness=1e6, evals=1000), experiment)
    assert -1002 < far < close < huge < -1001 < slow


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


def test_a_claim_no_run_solved_is_ranked_on_fitness_and_says_so(reproduce):
    experiment = reproduce.EXPERIMENTS["parity"]
    chance = [fake("control", "parity", "rnn", fitness=-0.6931 - 1e-4 * s) for s in range(5)]
    moved = [fake(op, "parity", "rnn", fitness=-0.6 - 1e-3 * s)
             for op in reproduce.PAPER_SM_G for s in range(5)]
    found = {"parity": reproduce.Results(experiment, chance + moved)}
    claim = reproduce.claims(found)[1]
    assert claim.status == "reproduced" + reproduce.ON_FITNESS_ONLY
    assert "rnn SM-G-SUM 0/5 vs control 0/5 solved, so ranked on final fitness: " \
           "median -0.602 vs -0.6933" in claim.evidence
    solved = [fake("SM-G-SUM", "parity", "rnn", solved=True, evals=500 + s) for s in range(5)]
    claim = reproduce.claims({"parity": reproduce.Results(experiment, chance + solved)})[1]
    assert claim.status == "reproduced" and "ranked on final fitness" not in claim.evidence
