"""Truncation selection GA in the style of the Deep GA (Such et al. 2017)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from smevo.algorithms.base import Algorithm, GenerationLog, Population, SearchContext, check_count
from smevo.config import ConfigError
from smevo.seeding import SELECTION, numpy_rng


def truncation_parents(population: int, parents: int | None) -> int:
    """The number of parents, a fifth of the population unless set."""
    return parents if parents is not None else max(1, population // 5)


class TruncationGA(Algorithm):
    """Each generation: the top `parents` breed, the top `elites` survive unchanged, and every
    other slot is a mutation of a uniformly drawn parent. The best `elites` are validated on
    `elite_episodes` extra episodes, the best of them becomes the champion, and each ranks by
    its validation score from then on (`Algorithm.step`).

    Options: `parents` (None: a fifth of the population), `elites`.
    """

    name = "truncation"

    def __init__(
        self, context: SearchContext, *, parents: int | None = None, elites: int = 1
    ) -> None:
        super().__init__(context)
        options = self.resolve_options(context.config.algorithm.population,
                                       parents=parents, elites=elites)
        self.parents, self.elites = options["parents"], options["elites"]

    @classmethod
    def resolve_options(cls, population: int, **options: Any) -> dict[str, Any]:
        """`parents` (>= 1, resolved to the number used) and `elites` (>= 0), with
        elites <= parents <= population."""
        given = super().resolve_options(population, **options)
        if given["parents"] is not None:
            check_count("parents", given["parents"], 1)
        check_count("elites", given["elites"], 0)
        parents, elites = truncation_parents(population, given["parents"]), given["elites"]
        if elites > parents:
            raise ConfigError(f"algorithm.options.elites ({elites}) must be <= "
                              f"algorithm.options.parents ({parents})")
        if parents > population:
            raise ConfigError(f"algorithm.options.parents ({parents}) must be <= "
                              f"algorithm.population ({population})")
        return {**given, "parents": parents}

    @classmethod
    def footprint(cls, population: int, options: Mapping[str, Any]) -> tuple[int, int, int]:
        return population, population, max(1, options["elites"])

    def next_population(self, log: GenerationLog) -> Population:
        context, population = self.context, self.context.config.algorithm.population
        if self.population is None:
            return context.initial_population(population, log)
        ranking = self.population.ranking()
        elites = self.population.take(ranking[: self.elites])
        parents = ranking[: self.parents]
        count = population - self.elites
        rng = numpy_rng(context.seed, SELECTION, self.generation)
        chosen = parents[rng.integers(0, len(parents), size=count)]
        params = context.breed(self.population, chosen, self.generation, log)
        results = context.evaluate(params, self.generation, log, offset=self.elites)
        return Population.concat([elites, Population.from_results(params, results)])

    def validation_candidates(self, population: Population) -> np.ndarray:
        return population.ranking()[: max(1, self.elites)]
