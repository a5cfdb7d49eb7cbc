"""RESULTS.md, and GRIDMAZE.md (its grid-maze section alone): the report written from every
record under a data folder (and nothing else)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smevo.experiments.figures import FIGURES
from smevo.experiments.grid import EXPERIMENTS, MAGNITUDE_CHOICE
from smevo.experiments.gridmaze import fresh_table
from smevo.experiments.gym import solved_table
from smevo.experiments.minatar import minatar_tables
from smevo.experiments.records import load_records
from smevo.experiments.results import Results
from smevo.experiments.staleness import current
from smevo.experiments.status import grid_progress
from smevo.experiments.tables import (
    commands,
    magnitude_table,
    outcome_table,
    settings_text,
    table,
)
from smevo.experiments.verdicts import CLAIM_RULES, Claim, claims

RESULT_TABLES = {"gridmaze": fresh_table, "gym": solved_table,
                 "minatar": minatar_tables}
"""The tables of an experiment's own result, beyond the outcome table every section has."""

QUICK_NOTE = ("> **Quick runs.** Some or all of these runs were made with `--quick` (one seed, "
              "tiny budgets): they check the pipeline and say nothing about the paper's claims.")


def write_report(data_dir: Path, out: Path) -> tuple[list[Path], list[str]]:
    """Write `out/RESULTS.md`, `out/GRIDMAZE.md` and their figures from the records under
    `data_dir` alone.

    Returns the documents' paths and the figure files written.
    """
    records, left_out = [], Counter()
    for record in load_records(data_dir):
        if current(record):
            records.append(record)
        else:
            left_out[record["experiment"]] += 1
    by_experiment = defaultdict(list)
    for record in records:
        by_experiment[record["experiment"]].append(record)
    found = {name: Results(EXPERIMENTS[name], by_experiment[name])
             for name in EXPERIMENTS if by_experiment[name]}
    progress = grid_progress(data_dir, quick=bool(records) and all(r["quick"] for r in records))
    figures: list[str] = []
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Reproducing *Safe Mutations for Deep and Recurrent Neural Networks through Output "
        "Gradients* (Lehman, Chen, Clune & Stanley, GECCO 2018)",
        f"Written by `scripts/reproduce.py` on {stamp} from the {len(records)} records of "
        f"finished runs in `{data_dir}`. Every figure's caption gives the command that made "
        "its runs; running it again skips them and redraws the figures. The last column of "
        "each results table names the commit(s) its runs ran on.",
    ]
    if any(r["quick"] for r in records):
        parts.append(QUICK_NOTE)
    parts += ["## The paper's claims",
              "The claims come from the paper's abstract and the reference code's purpose; the "
              "paper's own numbers could not be retrieved, so results are compared with the "
              "claims, not with its figures.",
              table(["claim", "verdict", "numbers"],
                    [[c.text, verdict_text(c, progress), c.evidence] for c in claims(found)]),
              CLAIM_RULES,
              "## Mutation magnitudes",
              MAGNITUDE_CHOICE,
              magnitude_table(list(found.values())),
              "Statistics in the tables: solve rates with 95% Wilson intervals; medians with "
              "the interquartile range in brackets; Mann-Whitney U (two-sided) against control "
              "on the experiment's score, with A the probability that a run of the operator "
              "scores better than a control run (0.5: no difference)."]
    sections: dict[str, list[str]] = {}
    for name, experiment in EXPERIMENTS.items():
        sections[name] = section(name, found.get(name), out, figures, left_out[name],
                                 progress.get(name, (0, 0)))
        parts += [f"## {experiment.title} (`{name}`)", *sections[name]]
        if name == "gridmaze":
            parts.append("This section is also written alone, as [GRIDMAZE.md](GRIDMAZE.md).")
    out.mkdir(parents=True, exist_ok=True)
    report = out / "RESULTS.md"
    report.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    gridmaze = write_gridmaze(sections["gridmaze"], by_experiment["gridmaze"], data_dir, out,
                              stamp)
    return [report, gridmaze], figures


def verdict_text(claim: Claim, progress: dict[str, tuple[int, int]]) -> str:
    """The claim's verdict, marked provisional (with the count) while the grids of the
    experiments it rests on are not complete."""
    done, planned = (sum(progress.get(name, (0, 0))[i] for name in claim.sources)
                     for i in (0, 1))
    if done >= planned:
        return f"**{claim.status}**"
    return f"**{claim.status}** (provisional: {done} of the {planned} runs it rests on)"


def section(name: str, results: Results | None, out: Path, figures: list[str],
            left_out: int = 0, progress: tuple[int, int] = (0, 0)) -> list[str]:
    """The parts of experiment `name`'s section: its setup, settings, tables and figures (the
    figures drawn into `out`, their files added to `figures`), or how to run it; first, how
    many of its records were `left_out` as stale, and how many of its grid's runs
    (`progress`: recorded, planned) are still to come."""
    notes = [f"{left_out} earlier record(s) of this experiment are left out: made by code that "
             "bred or selected otherwise, or at a magnitude the grid no longer uses "
             "(`smevo/experiments/staleness.py`, `MAGNITUDES`); their cells run again."
             ] if left_out else []
    if results is None:
        return [*notes, f"Not run. Run it with `python scripts/reproduce.py {name}`."]
    done, planned = progress
    if done < planned:
        notes.append(f"**In progress:** {done} of the grid's {planned} runs are recorded at "
                     "its settings. `python scripts/reproduce.py status` costs the rest and "
                     f"`python scripts/reproduce.py {name}` runs them.")
    parts = [*notes, results.experiment.setup, settings_text(results), outcome_table(results)]
    if name in RESULT_TABLES:
        parts.append(RESULT_TABLES[name](results))
    for draw in FIGURES[name]:
        for file, caption, shown in draw(results, out):
            figures.append(file)
            parts.append(f"![{caption}]({file})\n\n*{caption} Command: {commands(shown)}.*")
    return parts


def write_gridmaze(body: list[str], records: list[dict[str, Any]], data_dir: Path, out: Path,
                   stamp: str) -> Path:
    """Write `out/GRIDMAZE.md`: the grid-maze section `body` under its own title (the issue's
    document of the experiment, rebuilt from its records like RESULTS.md)."""
    parts = [
        "# Grid maze: non-plastic, plastic and neuromodulated RNNs, evolved",
        f"Written by `scripts/reproduce.py` on {stamp} from the {len(records)} records of the "
        f"`gridmaze` experiment in `{data_dir}`, the same section as in "
        "[RESULTS.md](RESULTS.md). `python scripts/reproduce.py gridmaze` runs the grid or "
        "continues it where its records end; `python scripts/reproduce.py --report-only` "
        "rewrites this file from the records.",
        *([QUICK_NOTE] if any(r["quick"] for r in records) else []),
        *body,
    ]
    path = out / "GRIDMAZE.md"
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path
