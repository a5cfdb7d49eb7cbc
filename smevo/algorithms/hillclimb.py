"""The (1+1) hill climber of the paper's illustrative experiments."""

from __future__ import annotations

import numpy as np

from smevo.algorithms.base import Algorithm, GenerationLog, Population


class HillClimber(Algorithm):
    """One individual; each generation mutates it once and keeps the child only if it is
    strictly fitter."""

    name = "hillclimb"
    hyperparameters = ("elite_episodes",)

    def next_population(self, log: GenerationLog) -> Population:
        context = self.context
        if self.population is None:
            return context.initial_population(1, log)
        current = self.population
        params = context.breed(current, np.zeros(1, dtype=np.int64), self.generation, log)
        candidate = Population.from_results(params, context.evaluate(params, self.generation, log))
        return candidate if candidate.fitness[0] > current.fitness[0] else current
