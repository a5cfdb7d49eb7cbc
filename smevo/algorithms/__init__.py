"""Search algorithms: truncation GA (default), steady-state tournament GA, (1+1) hill climber.

An algorithm is one class (`Algorithm`; its constructor's keyword-only parameters are its
``algorithm.options``) and one `ALGORITHMS.add` line; plugins register theirs under the
entry-point group ``smevo.algorithms``.
"""

from collections.abc import Mapping
from typing import Any

from smevo._registry import Registry, check_options, keyword_options
from smevo.algorithms.base import Algorithm, Champion, GenerationLog, Population, SearchContext
from smevo.algorithms.hillclimb import HillClimber
from smevo.algorithms.steady_state import SteadyStateGA
from smevo.algorithms.truncation import TruncationGA

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "Champion",
    "GenerationLog",
    "Population",
    "SearchContext",
    "algorithm_options",
]

ALGORITHMS: Registry[type[Algorithm]] = Registry("algorithm", entry_points="smevo.algorithms")
ALGORITHMS.add("truncation", TruncationGA)
ALGORITHMS.add("steady_state", SteadyStateGA, "steady-state")
ALGORITHMS.add("hillclimb", HillClimber, "hill-climb")


def algorithm_options(name: str, population: int, options: Mapping[str, Any]) -> dict[str, Any]:
    """Algorithm `name`'s options for a run of `population`, as it uses them
    (`Algorithm.resolve_options`). An option its class does not take is a `ValueError`
    naming the valid ones, as for policies and mutations; a value out of range a
    `ConfigError` naming ``algorithm.options.<key>``."""
    canonical = ALGORITHMS.canonical(name)
    algorithm = ALGORITHMS.get(canonical)
    check_options("algorithm", canonical, options, list(keyword_options(algorithm)))
    return algorithm.resolve_options(population, **options)
