"""Search algorithms: truncation GA (default), steady-state tournament GA, (1+1) hill climber."""

from smevo._registry import Registry
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
]

ALGORITHMS: Registry[type[Algorithm]] = Registry("algorithm", entry_points="smevo.algorithms")
ALGORITHMS.add("truncation", TruncationGA)
ALGORITHMS.add("steady_state", SteadyStateGA, "steady-state")
ALGORITHMS.add("hillclimb", HillClimber, "hill-climb")
