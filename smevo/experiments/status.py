"""`status`: the runs done and remaining per experiment and cell group, and the core-hours the
remaining ones need, costed from the core-seconds per evaluation (per env step for runs whose
budget is in env steps) measured in the records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smevo.checkpoint import list_checkpoints
from smevo.config import Config
from smevo.experiments.grid import (
    EXPERIMENTS,
    MINATAR_GAMES,
    Cell,
    Settings,
    build_grid,
    cell_config,
)
from smevo.experiments.records import (
    recorded,
    records_by_path,
    result_settings,
    twin_record,
)
from smevo.experiments.runner import resumable
from smevo.plotting import read_metrics

FALLBACK_RATE = 0.005
"""Core-seconds per evaluation that `status` assumes for a domain, network and operator with
no record and no pilot rate (`PILOT_RATES`); parity-GRU measured ~7 ms with SM-G-ABS."""


Triple = tuple[str, str, str]
"""(domain, network, operator): what a run's cost per evaluation depends on."""


MINATAR_FRAME_RATES: dict[tuple[str, str], float] = {
    ("shallow", "control"): 0.00047, ("shallow", "SM-G-SUM"): 0.00032,
    ("shallow", "SM-G-ABS"): 0.00048, ("deep", "control"): 0.00067,
    ("deep", "SM-G-SUM"): 0.00092, ("deep", "SM-G-ABS"): 0.0010,
}
"""MinAtar's core-seconds per env step (frame) per network and operator, pooled over its three
games by 10,000-frame pilots (`reproduce.py minatar --seeds 1 --set budget.env_steps=10000`,
on a busy 2-core machine). They include each run's start and its 100 fresh episodes, and
early episodes are short (Breakout ~12 frames), so SM-G's cost per child weighs more per frame
than later: rough, likely high; the shallow operators differ by the machine's load."""
MAZE_DEPTH_RATES: dict[tuple[str, str], float] = {
    ("d1", "control"): 0.0009, ("d1", "SM-G-SUM"): 0.0009, ("d1", "SM-G-ABS"): 0.0008,
    ("d4", "control"): 0.0010, ("d4", "SM-G-SUM"): 0.0013, ("d4", "SM-G-ABS"): 0.0014,
    ("d16", "control"): 0.0026, ("d16", "SM-G-SUM"): 0.0028, ("d16", "SM-G-ABS"): 0.0032,
    ("d32", "control"): 0.0043, ("d32", "SM-R"): 0.0058, ("d32", "SM-G-SUM"): 0.0049,
    ("d32", "SM-G-ABS"): 0.0058, ("d32", "SM-G-SO"): 0.0066, ("d32", "SM-G-FO"): 0.0049,
    ("d64", "control"): 0.0092, ("d64", "SM-G-SUM"): 0.0098, ("d64", "SM-G-ABS"): 0.0113,
}
"""The hard maze's core-seconds per evaluation at depths without a record, by 600-evaluation
pilots on a busy 2-core machine (`reproduce.py depth maze --networks d1,d4,d16,d32,d64 --seeds 1
--set budget.evaluations=600`, 2026-12-03; depth 32 pooled over both experiments). Each
includes its run's start, which weighs most on the cheap nets (the first run, depth 1
control, paid the imports too: 4.3 ms, entered at its neighbours' rate)."""
PILOT_RATES: dict[Triple, float] = {
    ("gridmaze", "rnn", "control"): 0.020, ("gridmaze", "rnn", "SM-G-ABS"): 0.043,
    ("gridmaze", "plastic", "control"): 0.032, ("gridmaze", "plastic", "SM-G-ABS"): 0.096,
    ("gridmaze", "neuromod", "control"): 0.026, ("gridmaze", "neuromod", "SM-G-ABS"): 0.086,
    **{("LunarLander-v3", "mlp", op): 0.1 for op in ("control", "SM-G-SUM", "SM-G-ABS")},
    **{("BipedalWalker-v3", "mlp", op): 0.40 for op in ("control", "SM-G-SUM", "SM-G-ABS")},
    **{(game, network, operator): rate for game in MINATAR_GAMES
       for (network, operator), rate in MINATAR_FRAME_RATES.items()},
    **{("maze", network, operator): rate
       for (network, operator), rate in MAZE_DEPTH_RATES.items()},
}
"""Core-seconds per evaluation measured by pilot runs for combinations that have no record
yet (records replace them): the grid maze at its grid settings, 551 evaluations per run, on a
busy 2-core machine (`reproduce.py gridmaze --seeds 1 --set budget.evaluations=510`); the
Gymnasium tasks by 2-generation pilots (`reproduce.py gym --seeds 1 --set
budget.generations=2`: LunarLander 0.022-0.024 at 3 episodes per evaluation; at the config's
5 since 119d277 a whole seed-0 run took 1,352 s on a 2-core machine shared by 3 runs, 0.07-0.11
per evaluation; BipedalWalker 0.38, its episodes near full length from the start); MinAtar's per env
step (`MINATAR_FRAME_RATES`); the maze at depths 1-64 (`MAZE_DEPTH_RATES`)."""


def triple(record: dict[str, Any]) -> Triple:
    """The record's (domain, network, operator)."""
    return record["domain"], record["network"], record["operator"]


def work_unit(settings: dict[str, Any]) -> str:
    """What a run of `settings` (`result_settings`) is costed in: "env_steps" where its budget
    is in env steps (MinAtar's frames: episodes lengthen as the agents learn, so the number
    of evaluations does not predict the cost), else "evaluations"."""
    return "env_steps" if settings["budget"].get("env_steps") is not None else "evaluations"


def measured_rates(records: Iterable[dict[str, Any]],
                   key: Callable[[dict[str, Any]], tuple[str, ...]] = triple,
                   ) -> dict[tuple[str, ...], float]:
    """Core-seconds per unit of work (`work_unit`) per `key` (domain, network, operator),
    pooled over its records (whatever their settings: the cost of an evaluation does not
    depend on the budget) but those of resumed runs, whose core-seconds cover only the part
    after the resume, and copies of another experiment's record (`same_run_as`), which
    measured nothing again."""
    seconds: dict[tuple[str, ...], float] = defaultdict(float)
    work: dict[tuple[str, ...], int] = defaultdict(int)
    for record in records:
        done = record[work_unit(record["config"])]
        if not record.get("resumed") and "same_run_as" not in record and done > 0:
            seconds[key(record)] += record["core_seconds"]
            work[key(record)] += done
    return {k: seconds[k] / work[k] for k in seconds}


def frame_rates(records: Iterable[dict[str, Any]]) -> dict[tuple[str, ...], float]:
    """Core-seconds per env step per (network, operator), pooled over the records of every
    domain whose budget is in env steps: a frame's cost is its network's and operator's, not
    its game's (MinAtar's frames are all 10x10), so a game without records of its own is
    costed from the other games' rather than from pilot runs."""
    return measured_rates((r for r in records if work_unit(r["config"]) == "env_steps"),
                          key=lambda r: (r["network"], r["operator"]))


def planned_work(config: Config) -> int:
    """The work (`work_unit`) a run of `config` does if it does not stop early: its env-step
    budget, else its evaluation budget, else its generations times the population (one per
    generation for hillclimb)."""
    budget = config.budget
    if budget.env_steps is not None:
        return budget.env_steps
    if budget.evaluations is not None:
        return budget.evaluations
    per_generation = 1 if config.algorithm.name == "hillclimb" else config.algorithm.population
    return (budget.generations or 0) * per_generation


def without_seed(settings: dict[str, Any]) -> dict[str, Any]:
    """Result settings less the seed: what the seeds of one cell group share."""
    return {k: v for k, v in settings.items() if k != "seed"}


def expected_work(config: Config, peers: list[dict[str, Any]]) -> float:
    """The work (`work_unit`) a pending run of `config` is expected to do: the mean of its
    finished peers (same experiment, network and operator) at the same settings, since runs
    that solve stop early; the planned budget where there are none."""
    wanted = without_seed(result_settings(config))
    unit = work_unit(wanted)
    same = [r[unit] for r in peers if without_seed(r["config"]) == wanted]
    return float(np.mean(same)) if same else float(planned_work(config))


def checkpointed_work(run_dir: Path, config: Config) -> float:
    """The work (`work_unit`) behind a cut run of `config` in `run_dir`, which a resume does not
    do again: its progress at its latest checkpoint; 0 where it has none at `config`'s
    settings (on another machine, say), or whose folder cannot be read (an estimate does not
    fail on a damaged run: running the grid says what is wrong with it)."""
    try:
        if not resumable(run_dir, config):
            return 0.0
        generation = list_checkpoints(run_dir)[-1][0]
        rows = read_metrics(run_dir)
    except (ValueError, OSError):
        return 0.0
    key = f"progress/{work_unit(result_settings(config))}"
    reached = [row[key] for row in rows
               if row.get("generation", generation + 1) <= generation and key in row]
    return float(reached[-1]) if reached else 0.0


@dataclass
class Tally:
    """Runs done and pending in a group of cells, and the core-seconds the pending ones need."""

    done: int = 0
    remaining: int = 0
    elsewhere: int = 0
    core_seconds: float = 0.0


def tally_status(cells: list[Cell], settings: Settings) -> tuple[dict[tuple[str, str], Tally],
                                                                 set[Triple]]:
    """Per (experiment, cell group) the runs done and remaining, and the core-seconds left.

    A cell is done when its record was made at its settings; a record at other settings
    counts as `elsewhere` and its cell as remaining. Returns the tallies and the (domain,
    network, operator) triples that had no record to measure a rate from (nor, costed per
    env step, another domain's record of the same network and operator: `frame_rates`), so
    were costed at `PILOT_RATES`, else `FALLBACK_RATE`.
    """
    by_path = records_by_path(settings.data_dir)
    records = list(by_path.values())
    rates, per_frame = measured_rates(records), frame_rates(records)
    peers: dict[tuple[str, Triple], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        peers[(record["experiment"], triple(record))].append(record)
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    unmeasured: set[Triple] = set()
    for cell in cells:
        config = cell_config(cell, settings)
        record = by_path.get(cell.record_path(settings.data_dir))
        group = tallies[(cell.experiment.name, f"{cell.domain.name}-{cell.domain.network}")]
        if recorded(record, config) or twin_record(cell, settings, config,
                                                   by_path.get) is not None:
            group.done += 1  # a twin's record is copied when the grid next runs
            continue
        key = (cell.domain.name, cell.domain.network, cell.operator)
        rate = rates.get(key)
        if rate is None and config.budget.env_steps is not None:
            rate = per_frame.get(key[1:])
        if rate is None:
            unmeasured.add(key)
            rate = PILOT_RATES.get(key, FALLBACK_RATE)
        group.remaining += 1
        group.elsewhere += record is not None
        work = expected_work(config, peers[(cell.experiment.name, key)])
        work -= checkpointed_work(cell.run_dir(settings.runs_dir), config)
        group.core_seconds += max(work, 0.0) * rate
    return tallies, unmeasured


def grid_progress(data_dir: Path, quick: bool = False) -> dict[str, tuple[int, int]]:
    """Per experiment: the runs of its whole grid (`--quick`'s with `quick`) recorded under
    `data_dir` at the grid's settings, and the runs in it (`status`'s done, and done plus
    remaining)."""
    cells = build_grid(EXPERIMENTS, None, quick)
    settings = Settings(runs_dir=Path("runs/reproduce"), quick=quick, backend=None, sets=(),
                        command="", data_dir=data_dir)
    progress: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for (experiment, _), counted in tally_status(cells, settings)[0].items():
        done, planned = progress[experiment]
        progress[experiment] = (done + counted.done, planned + counted.done + counted.remaining)
    return dict(progress)


def status_text(cells: list[Cell], settings: Settings) -> str:
    """The `status` command's table: done and remaining runs and core-hours left per
    experiment and cell group, then the totals and where the rates come from."""
    tallies, unmeasured = tally_status(cells, settings)
    rows = [[experiment, group, str(t.done), str(t.remaining), str(t.elsewhere),
             f"{t.core_seconds / 3600:.2f}"] for (experiment, group), t in tallies.items()]
    total = Tally(*(sum(getattr(t, f) for t in tallies.values())
                    for f in ("done", "remaining", "elsewhere", "core_seconds")))
    rows.append(["all", "", str(total.done), str(total.remaining), str(total.elsewhere),
                 f"{total.core_seconds / 3600:.2f}"])
    lines = aligned(rows)
    triples = {(c.domain.name, c.domain.network, c.operator) for c in cells}
    piloted = unmeasured & PILOT_RATES.keys()
    pilot = f", {len(piloted)} by pilot runs (PILOT_RATES)" if piloted else ""
    fallback = (f"; the others assume {FALLBACK_RATE * 1000:g} ms per evaluation"
                if unmeasured - piloted else "")
    lines += ["", f"Records in {settings.data_dir}. Rates (core-seconds per evaluation, per "
                  "env step where the budget is in env steps) "
                  f"measured for {len(triples - unmeasured)} of {len(triples)} domain/network/"
                  f"operator combinations by their records (per env step: by any domain's "
                  f"of the same network and operator){pilot}{fallback}. A pending run "
                  "is costed at the mean evaluations (env steps) of its finished peers at the "
                  "same settings (solved runs stop early), else at its full budget, less what "
                  f"its checkpoint in {settings.runs_dir} has done (a resume starts there). "
                  "'other "
                  "settings': records made at settings that are not the grid's now, or by "
                  "code that computed their operator's children otherwise "
                  "(ARITHMETIC_SINCE); their cells are pending."]
    return "\n".join(lines)


def aligned(rows: list[list[str]]) -> list[str]:
    """`rows` under `STATUS_HEADER` as aligned text lines (names left, numbers right)."""
    widths = [max(len(row[i]) for row in [STATUS_HEADER, *rows]) for i in range(6)]
    return ["  ".join(v.ljust(w) if i < 2 else v.rjust(w)
                      for i, (v, w) in enumerate(zip(row, widths, strict=True)))
            for row in [STATUS_HEADER, *rows]]


STATUS_HEADER = ["experiment", "cells", "done", "remaining", "other settings", "core-hours left"]
