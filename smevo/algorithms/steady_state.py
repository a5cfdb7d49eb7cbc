"""The safe-mutation paper's runner: a steady-state GA with tournament selection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from smevo.algorithms.base import Algorithm, GenerationLog, Population, SearchContext, check_count
from smevo.seeding import SELECTION, numpy_rng


class SteadyStateGA(Algorithm):
    """Population `population` (250 in the paper); each child's parent is the fittest of a
    tournament of `tournament` (5) distinct members, and each child then replaces the least fit
    of an independent reverse tournament (the reference reused the selection tournament here,
    a bug). Children come in batches of `batch` so that evaluation runs in parallel; parents of
    a batch are drawn from the population before the batch's replacements. A generation is one
    batch.

    Options: `tournament`, `batch`.
    """

    name = "steady_state"

    def __init__(self, context: SearchContext, *, tournament: int = 5, batch: int = 50) -> None:
        super().__init__(context)
        options = self.resolve_options(context.config.algorithm.population,
                                       tournament=tournament, batch=batch)
        self.tournament, self.batch = options["tournament"], options["batch"]

    @classmethod
    def resolve_options(cls, population: int, **options: Any) -> dict[str, Any]:
        """`tournament` and `batch`, each >= 1."""
        given = super().resolve_options(population, **options)
        check_count("tournament", given["tournament"], 1)
        check_count("batch", given["batch"], 1)
        return given

    @classmethod
    def footprint(cls, population: int, options: Mapping[str, Any]) -> tuple[int, int, int]:
        return population, options["batch"], 1

    def next_population(self, log: GenerationLog) -> Population:
        context, tournament = self.context, self.tournament
        if self.population is None:
            return context.initial_population(context.config.algorithm.population, log)
        population = self.population
        rng = numpy_rng(context.seed, SELECTION, self.generation)
        size = len(population)
        parents = []
        for _ in range(self.batch):
            contestants = rng.choice(size, size=min(tournament, size), replace=False)
            parents.append(contestants[np.argmax(population.fitness[contestants])])
        params = context.breed(population, np.array(parents), self.generation, log)
        offspring = Population.from_results(params, context.evaluate(params, self.generation, log))
        survivors = population.take(np.arange(size))  # a copy to replace into
        for i in range(self.batch):
            # The child joins as member `size`; the least fit of a fresh tournament leaves
            # (ties: the later member). A child that loses is simply not inserted.
            fitness = np.append(survivors.fitness, offspring.fitness[i])
            contestants = rng.choice(size + 1, size=min(tournament, size + 1),
                                     replace=False)
            scores = fitness[contestants]
            loser = contestants[len(scores) - 1 - np.argmin(scores[::-1])]
            if loser < size:
                survivors.params[loser] = offspring.params[i]
                survivors.fitness[loser] = offspring.fitness[i]
                survivors.solved[loser] = offspring.solved[i]
                survivors.experiences[loser] = offspring.experiences[i]
        return survivors
