"""The report's tables and text: per-run outcomes, the settings used, the mutation magnitudes,
and the number formats they share."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

from smevo.experiments.results import Results, dotted, ordered, typical_divergence
from smevo.experiments.stats import RankTest, median_iqr
from smevo.mutations import MUTATIONS


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table of `header` and `rows`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def number(value: float) -> str:
    """A number for a table: big ones rounded, with thousands separators; 4 significant
    digits else."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def spread(values: Sequence[float]) -> str:
    """"median [q25, q75]" of `values`, "—" for none."""
    summary = median_iqr(values)
    if summary is None:
        return "—"
    return f"{number(summary.median)} [{number(summary.q25)}, {number(summary.q75)}]"


def rank_text(test: RankTest | None) -> str:
    """"p=…, A=…" of a rank test, "—" for none."""
    if test is None:
        return "—"
    return f"p={test.p_value:.3g}, A={test.effect:.2f}"


WHERE_OPTIONS = {"--out": 1, "--data-dir": 1, "--runs-dir": 1, "--jobs": 1,
                 "--commit-records": 0}
"""Options of the reproduce command that say where it writes and how many runs it takes at
once, with how many values each takes: nothing a run computes depends on them."""


def runs_command(command: str) -> str:
    """`command` without its `WHERE_OPTIONS`: what a reader runs to make the same runs (a
    record keeps the command as it ran, paths of the machine it ran on included)."""
    words, kept = shlex.split(command), []
    while words:
        word = words.pop(0)
        name = word.split("=", 1)[0]
        if name in WHERE_OPTIONS:
            if "=" not in word:
                del words[:WHERE_OPTIONS[name]]
            continue
        kept.append(word)
    return shlex.join(kept)


def commands(records: Iterable[dict[str, Any]]) -> str:
    """The distinct commands that made `records` (as `runs_command` gives them), as inline
    code."""
    return "; ".join(f"`{c}`" for c in sorted({runs_command(r["command"]) for r in records}))


COMPARED_ON = {"fitness": "", "evaluations": "", "fresh": " (fresh episodes)"}
"""What the outcome table's rank test compares, where its other columns do not say it."""


def outcome_table(results: Results) -> str:
    """Per network and operator: runs, solve rate, the score's median [IQR] (and the final
    fitness where the score is evaluations to solve), the rank test, the commits run on."""
    by_evaluations = results.experiment.score == "evaluations"
    header = ["domain", "operator", "runs", "solved (95% CI)",
              *(["evaluations to solve: median [IQR] (solved runs)"] if by_evaluations else []),
              "final fitness: median [IQR]",
              f"vs control{COMPARED_ON[results.experiment.score]}: Mann-Whitney", "commit"]
    rows = []
    for domain, operator, runs in results.cells():
        values = [spread([r["best_fitness"] for r in runs])]
        if by_evaluations:
            solved = [r["evaluations"] for r in runs if r["solved"]]
            values.insert(0, f"{spread(solved)} ({len(solved)} solved)")
        versus = ("—" if operator == "control"
                  else rank_text(results.compare(domain, operator, "control")))
        rows.append([results.label(domain), operator, str(len(runs)),
                     str(results.solve_rate(domain, operator)), *values, versus,
                     commits(runs)])
    return table(header, rows)


def commits(records: Iterable[dict[str, Any]]) -> str:
    """The code the records ran on: short commits, `+dirty` where files differed from it."""
    found = sorted({(r["code"]["commit"] or "unknown")[:10]
                    + ("+dirty" if r["code"]["dirty"] else "") for r in records})
    return ", ".join(found)


def settings_text(results: Results) -> str:
    """The settings the runs used, per domain, and where they are smaller than the paper's."""
    lines, smaller = [], []
    for domain in results.domains:
        configs = [r["config"] for op in results.operators for r in results.runs(domain, op)]
        described = " / ".join(ordered((describe(c) for c in configs), []))
        lines.append(f"- {results.label(domain)}: {described}; seeds per operator: "
                     f"{min_max(len(results.runs(domain, op)) for op in results.operators)}.")
        for key, paper in results.experiment.paper.items():
            used = {dotted(c, key) for c in configs}
            if any(v is None or v < paper for v in used):
                smaller.append(f"{results.label(domain)}: `{key}` = "
                               f"{', '.join(map(_plain, sorted(used, key=str)))} "
                               f"(the paper's runner: {_plain(paper)})")
    text = "Settings of the runs found:\n\n" + "\n".join(lines)
    if smaller:
        text += ("\n\n**Smaller than the paper's runner** (its values are the reference code's "
                 "defaults; the paper's own are unverified):\n\n"
                 + "\n".join(f"- {s}" for s in smaller))
    elif results.experiment.paper:
        text += "\n\nBudgets and population match the paper's runner."
    return text


def _plain(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def min_max(values: Iterable[int]) -> str:
    """The range of the nonzero `values` ("3" or "3–5")."""
    values = [v for v in values if v]
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}–{high}"


def describe(config: dict[str, Any]) -> str:
    """A run's network, algorithm and budget in words."""
    alg, budget, policy = config["algorithm"], config["budget"], config["policy"]
    options = ", ".join(f"{k} {v}" for k, v in policy["options"].items())
    own = alg["options"].get  # settled (`records.settled_algorithm`); other algorithms': None
    algorithm = {
        "hillclimb": "(1+1) hill climber",
        "steady_state": (f"steady-state GA, population {alg['population']}, tournament "
                         f"{own('tournament')}, batches of {own('batch')}"),
        "truncation": (f"truncation GA, population {alg['population']}, parents "
                       f"{own('parents') or max(1, alg['population'] // 5)}, elites "
                       f"{own('elites')}, elite re-evaluated on {alg['elite_episodes']} "
                       f"episodes"),
    }[alg["name"]]
    limits = [f"{budget[k]:,} {k.replace('_', ' ')}"
              for k in ("generations", "evaluations", "env_steps") if budget.get(k)]
    episodes = config["env"]["episodes"]
    return (f"policy {policy['name']} ({options or 'defaults'}), {algorithm}, budget "
            f"{' / '.join(limits)}, {episodes} episode{'s' * (episodes > 1)} per evaluation")


def magnitude_table(all_results: list[Results]) -> str:
    """Per experiment and operator: the magnitude, its meaning, options, measured divergence
    (the median over runs of each run's median per generation)."""
    rows = []
    for results in all_results:
        for operator in results.operators:
            runs = [r for d in results.domains for r in results.runs(d, operator)]
            magnitudes = sorted({r["magnitude"] for r in runs})
            options = sorted({json.dumps(r["options"], sort_keys=True) for r in runs})
            divergence = typical_divergence(runs)
            rows.append([results.experiment.name, operator,
                         ", ".join(number(m) for m in magnitudes),
                         MUTATIONS.get(operator).magnitude_means,
                         ", ".join(o.strip("{}").replace('"', "") or "—" for o in options),
                         "—" if divergence is None else f"{divergence:.2g}"])
    return table(["experiment", "operator", "magnitude", "meaning", "options",
                  "median divergence per mutation"], rows)
