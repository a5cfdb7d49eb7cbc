"""The safe-mutation paper's runner: a steady-state GA with tournament selection."""

from __future__ import annotations

import numpy as np

from smevo.algorithms.base import Algorithm, GenerationLog, Population
from smevo.seeding import SELECTION, numpy_rng


class SteadyStateGA(Algorithm):
    """Population `population` (250 in the paper); each child's parent is the fittest of a
    tournament of `tournament` (5) distinct members, and each child then replaces the least fit
    of an independent reverse tournament (the reference reused the selection tournament here,
    a bug). Children come in batches of `batch` so that evaluation runs in parallel; parents of
    a batch are drawn from the population before the batch's replacements. A generation is one
    batch."""

    name = "steady_state"
    hyperparameters = ("population", "tournament", "batch", "elite_episodes")

    def next_population(self, log: GenerationLog) -> Population:
        context, config = self.context, self.context.config.algorithm
        if self.population is None:
            return context.initial_population(config.population, log)
        population = self.population
        rng = numpy_rng(context.seed, SELECTION, self.generation)
        size = len(population)
        parents = []
        for _ in range(config.batch):
            contestants = rng.choice(size, size=min(config.tournament, size), replace=False)
            parents.append(contestants[np.argmax(population.fitness[contestants])])
        params = context.breed(population, np.array(parents), self.generation, log)
        offspring = Population.from_results(params, context.evaluate(params, self.generation, log))
        survivors = population.take(np.arange(size))  # a copy to replace into
        for i in range(config.batch):
            # The child joins as member `size`; the least fit of a fresh tournament leaves
            # (ties: the later member). A child that loses is simply not inserted.
            fitness = np.append(survivors.fitness, offspring.fitness[i])
            contestants = rng.choice(size + 1, size=min(config.tournament, size + 1),
                                     replace=False)
            scores = fitness[contestants]
            loser = contestants[len(scores) - 1 - np.argmin(scores[::-1])]
            if loser < size:
                survivors.params[loser] = offspring.params[i]
                survivors.fitness[loser] = offspring.fitness[i]
                survivors.solved[loser] = offspring.solved[i]
                survivors.experiences[loser] = offspring.experiences[i]
        return survivors
