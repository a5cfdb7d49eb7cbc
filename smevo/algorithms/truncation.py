"""Truncation selection GA in the style of the Deep GA (Such et al. 2017)."""

from __future__ import annotations

import numpy as np

from smevo.algorithms.base import Algorithm, GenerationLog, Population
from smevo.config import truncation_parents
from smevo.seeding import SELECTION, numpy_rng


class TruncationGA(Algorithm):
    """Each generation: the top `parents` breed, the top `elites` survive unchanged, and every
    other slot is a mutation of a uniformly drawn parent. The best `elites` are validated on
    `elite_episodes` extra episodes and the best of them becomes the champion."""

    name = "truncation"
    hyperparameters = ("population", "parents", "elites", "elite_episodes")

    def next_population(self, log: GenerationLog) -> Population:
        context, config = self.context, self.context.config.algorithm
        if self.population is None:
            return context.initial_population(config.population, log)
        ranking = self.population.ranking()
        elites = self.population.take(ranking[: config.elites])
        parents = ranking[: truncation_parents(config)]
        count = config.population - config.elites
        rng = numpy_rng(context.seed, SELECTION, self.generation)
        chosen = parents[rng.integers(0, len(parents), size=count)]
        params = context.breed(self.population, chosen, self.generation, log)
        results = context.evaluate(params, self.generation, log, offset=config.elites)
        return Population.concat([elites, Population.from_results(params, results)])

    def validation_candidates(self, population: Population) -> np.ndarray:
        return population.ranking()[: max(1, self.context.config.algorithm.elites)]
