"""Mutation operators, sensitivities and divergence, behind one registry.

`make_mutation("SM-G-ABS", 0.1)` builds an operator; names match case-insensitively and
`regular` is accepted for `control`, the reference code's name. An operator is one class
(`operators`' docstring shows one) and one `MUTATIONS.add` line; `breed` makes a
generation's children with it.
"""

from __future__ import annotations

import inspect
from typing import Any

from smevo._registry import Registry, check_options
from smevo.mutations.breeding import breed
from smevo.mutations.brood import Brood, MutationStats
from smevo.mutations.operators import (
    Control,
    Mutation,
    SafeMutationAbs,
    SafeMutationFirstOrder,
    SafeMutationRescale,
    SafeMutationSecondOrder,
    SafeMutationSum,
)
from smevo.mutations.sensitivity import divergence, divergences, postprocess, sensitivity

__all__ = [
    "MUTATIONS",
    "Brood",
    "Mutation",
    "MutationStats",
    "breed",
    "divergence",
    "divergences",
    "make_mutation",
    "mutation_options",
    "postprocess",
    "sensitivity",
]

MUTATIONS: Registry[type[Mutation]] = Registry("mutation", entry_points="smevo.mutations")
MUTATIONS.add("control", Control, "regular")
MUTATIONS.add("SM-R", SafeMutationRescale)
MUTATIONS.add("SM-G-SUM", SafeMutationSum)
MUTATIONS.add("SM-G-ABS", SafeMutationAbs)
MUTATIONS.add("SM-G-SO", SafeMutationSecondOrder)
MUTATIONS.add("SM-G-FO", SafeMutationFirstOrder)


def mutation_options(name: str) -> list[str]:
    """The keyword options operator `name` accepts."""
    parameters = inspect.signature(MUTATIONS.get(name).__init__).parameters.values()
    return [p.name for p in parameters if p.kind is p.KEYWORD_ONLY]


def make_mutation(name: str, magnitude: float, **options: Any) -> Mutation:
    """Build operator `name` with step `magnitude` (its meaning per operator: DESIGN.md)."""
    canonical = MUTATIONS.canonical(name)
    check_options("mutation", canonical, options, mutation_options(canonical))
    operator = MUTATIONS.get(canonical)
    if inspect.isabstract(operator):  # a plugin's class that misses a method
        missing = ", ".join(sorted(operator.__abstractmethods__))
        raise ValueError(f"mutation {canonical!r} cannot be built: its class lacks {missing}")
    return operator(magnitude, **options)
