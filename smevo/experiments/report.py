"""RESULTS.md: the report written from every record under a data folder (and nothing else)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from smevo.experiments.figures import FIGURES
from smevo.experiments.grid import EXPERIMENTS, MAGNITUDE_CHOICE, current_magnitude
from smevo.experiments.records import load_records
from smevo.experiments.results import Results
from smevo.experiments.staleness import current_arithmetic
from smevo.experiments.tables import (
    commands,
    magnitude_table,
    outcome_table,
    settings_text,
    table,
)
from smevo.experiments.verdicts import CLAIM_RULES, claims


def write_report(data_dir: Path, out: Path) -> tuple[Path, list[str]]:
    """Write `out/RESULTS.md` and its figures from the records under `data_dir` alone.

    Returns the report's path and the figure files written.
    """
    records = [r for r in load_records(data_dir)
               if current_arithmetic(r) and current_magnitude(r)]
    by_experiment = defaultdict(list)
    for record in records:
        by_experiment[record["experiment"]].append(record)
    found = {name: Results(EXPERIMENTS[name], by_experiment[name])
             for name in EXPERIMENTS if by_experiment[name]}
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
        parts.append("> **Quick runs.** Some or all of these runs were made with `--quick` "
                     "(one seed, tiny budgets): they check the pipeline and say nothing about "
                     "the paper's claims.")
    parts += ["## The paper's claims",
              "The claims come from the paper's abstract and the reference code's purpose; the "
              "paper's own numbers could not be retrieved, so results are compared with the "
              "claims, not with its figures.",
              table(["claim", "verdict", "numbers"],
                    [[c.text, f"**{c.status}**", c.evidence] for c in claims(found)]),
              CLAIM_RULES,
              "## Mutation magnitudes",
              MAGNITUDE_CHOICE,
              magnitude_table(list(found.values())),
              "Statistics in the tables: solve rates with 95% Wilson intervals; medians with "
              "the interquartile range in brackets; Mann-Whitney U (two-sided) against control "
              "on the experiment's score, with A the probability that a run of the operator "
              "scores better than a control run (0.5: no difference)."]
    for name, experiment in EXPERIMENTS.items():
        parts.append(f"## {experiment.title} (`{name}`)")
        results = found.get(name)
        if results is None:
            parts.append(f"Not run. Run it with `python scripts/reproduce.py {name}`.")
            continue
        parts += [experiment.setup, settings_text(results), outcome_table(results)]
        for draw in FIGURES[name]:
            for file, caption, shown in draw(results, out):
                figures.append(file)
                parts.append(f"![{caption}]({file})\n\n*{caption} Command: {commands(shown)}.*")
    out.mkdir(parents=True, exist_ok=True)
    report = out / "RESULTS.md"
    report.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return report, figures
