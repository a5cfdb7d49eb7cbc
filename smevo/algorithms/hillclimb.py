"""The (1+1) hill climber of the paper's illustrative experiments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from smevo.algorithms.base import Algorithm, GenerationLog, Population


class HillClimber(Algorithm):
    """One individual; each generation mutates it once and keeps the child only if it is
    strictly fitter."""

    name = "hillclimb"
    shared = ("elite_episodes",)  # one individual, whatever algorithm.population says

    @classmethod
    def footprint(cls, population: int, options: Mapping[str, Any]) -> tuple[int, int, int]:
        return 1, 1, 1

    def next_population(self, log: GenerationLog) -> Population:
        context = self.context
        if self.population is None:
            return context.initial_population(1, log)
        current = self.population
        params = context.breed(current, np.zeros(1, dtype=np.int64), self.generation, log)
        candidate = Population.from_results(params, context.evaluate(params, self.generation, log))
        return candidate if candidate.fitness[0] > current.fitness[0] else current
