"""The finished runs of one experiment, grouped for comparison, and the score they are ranked on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from smevo.experiments.grid import Experiment
from smevo.experiments.stats import Proportion, RankTest, rank_test, solve_rate


def score(record: dict[str, Any], experiment: Experiment) -> float:
    """What runs are ranked on, higher is better: final fitness; the champion's mean reward on
    fresh episodes (where episodes vary so much that the validated fitness, the best of noisy
    elites, overstates it); or minus the evaluations to solve, with unsolved runs below every
    solved one and ranked among themselves by their final fitness (so that a budget in which
    few runs solve still ranks how close they got).

    An unsolved run scores in (-(budget + 2), -(budget + 1)): its fitness squashed into (0, 1)
    by a monotone map, which keeps the order that the rank test uses. The budget is the run's
    evaluation budget, or, where a generation budget bounds it, the evaluations it made
    (every solved run of that budget made at most as many).
    """
    fitness = float(record["best_fitness"])
    if experiment.score == "fitness":
        return fitness
    if experiment.score == "fresh":
        return fresh(record)
    if record["solved"]:
        return -float(record["evaluations"])
    budget = record["budget_evaluations"] or record["evaluations"]
    return -float(budget + 2) + 0.5 + np.arctan(fitness) / np.pi


def ordered(values: Iterable[Any], preferred: Sequence[Any]) -> list[Any]:
    """The distinct `values`, those in `preferred` first in its order, the rest sorted."""
    distinct = set(values)
    return [v for v in preferred if v in distinct] + sorted(distinct - set(preferred), key=str)


class Results:
    """The finished runs of one experiment, grouped by network (within domain) and operator."""

    def __init__(self, experiment: Experiment, records: list[dict[str, Any]]) -> None:
        self.experiment = experiment
        self.records = records
        self.groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(list))
        for record in records:
            self.groups[(record["domain"], record["network"])][record["operator"]].append(record)
        self.domains: list[tuple[str, str]] = ordered(
            self.groups, [(d.name, d.network) for d in experiment.domains])
        self.operators = ordered((r["operator"] for r in records), experiment.operators)

    def runs(self, domain: tuple[str, str], operator: str) -> list[dict[str, Any]]:
        """The records of `operator` on `domain` (none: an empty list)."""
        return self.groups.get(domain, {}).get(operator, [])

    def cells(self) -> Iterator[tuple[tuple[str, str], str, list[dict[str, Any]]]]:
        """(domain, operator, runs) for every cell with runs, in the tables' order."""
        for domain in self.domains:
            for operator in self.operators:
                runs = self.runs(domain, operator)
                if runs:
                    yield domain, operator, runs

    def scores(self, domain: tuple[str, str], operator: str) -> list[float]:
        """The scores (`score`) of `operator`'s runs on `domain`."""
        return [score(r, self.experiment) for r in self.runs(domain, operator)]

    def solve_rate(self, domain: tuple[str, str], operator: str) -> Proportion | None:
        """The solve rate of `operator` on `domain`, None without runs."""
        runs = self.runs(domain, operator)
        return solve_rate([r["solved"] for r in runs]) if runs else None

    def compare(self, domain: tuple[str, str], operator: str, baseline: str) -> RankTest | None:
        """Mann-Whitney U of `operator` against `baseline` on the score (effect > 0.5:
        `operator` did better)."""
        return rank_test(self.scores(domain, operator), self.scores(domain, baseline))

    def label(self, domain: tuple[str, str]) -> str:
        """The domain's name in tables and figures: "depth N" for the maze, the network for
        parity and the grid maze, the name and the network where the experiment runs several
        networks on it (MinAtar's games), else the domain's name."""
        name, network = domain
        if name == "maze":
            return f"depth {depth_of(domain)}"
        if name in ("parity", "gridmaze"):
            return network
        networks = {d.network for d in self.experiment.domains if d.name == name}
        return f"{name} {network}" if len(networks) > 1 else name


def typical_divergence(runs: Iterable[dict[str, Any]]) -> float | None:
    """The median over `runs` of each run's median divergence per mutation (None: no run
    measured one): how far the operator's children moved from their parents."""
    values = [r["divergence"] for r in runs if r.get("divergence") is not None]
    return float(np.median(values)) if values else None


def fresh(record: dict[str, Any]) -> float:
    """The mean reward of the record's champion on its fresh episodes (`fresh_episodes`)."""
    return float(record["fresh_episodes"]["mean"])


def dotted(data: dict[str, Any], key: str) -> Any:
    """The value at a dotted `key` (e.g. "budget.evaluations") of a nested dict."""
    for part in key.split("."):
        data = data[part]
    return data


def depth_of(domain: tuple[str, str]) -> int:
    """The hidden layers of a maze domain ("d32" -> 32)."""
    return int(domain[1].lstrip("d"))
