"""The mutation operators: control and the safe-mutation family (DESIGN.md's table).

An operator is one class with one batched path: `perturbations(brood)` returns the steps δ
`[C, D]` of a batch of children (`Brood`: the parents, their archives, each child's noise ε
and parent), whether the batch is one child of one parent or a generation's children of many
parents. The class also owns its options (keyword arguments of `__init__`, validated there)
and what its `magnitude` means (`magnitude_means`, which `smevo list mutations` shows).

Adding an operator is one class and one registry line (`MUTATIONS.add` in `__init__.py`,
or an entry point of group `smevo.mutations` in another package):

    class HalfControl(Mutation):
        name = "half-control"
        magnitude_means = "twice the sigma of the Gaussian"
        needs_experiences = False

        def perturbations(self, brood):
            return 0.5 * self.magnitude * brood.noises

Calling an operator, `operator(params, policy, experiences, generator) -> (child, stats)`,
is pure: all randomness comes from `generator`, and the parent is not modified. Breeding a
generation (`breeding.breed`) draws every child's noise from its own generator, so a child
is the same whoever else is bred beside it, up to rounding of the batched arithmetic.
"""

from __future__ import annotations

import abc
import math
import numbers
from typing import Any

import torch

from smevo.experiences import Experiences
from smevo.mutations.brood import Brood, MutationStats
from smevo.mutations.sensitivity import (
    DEFAULT_CHUNK_ELEMENTS,
    REDUCTIONS,
    directional_sensitivities,
    parents_sensitivity,
    postprocess,
)
from smevo.policies import Policy


def positive_number(operator: str, option: str, value: Any) -> float:
    """`value` as a float if it is a finite real number > 0; otherwise a `ValueError` naming
    the operator and the option (a YAML string or bool must not slip through as a number)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not (math.isfinite(value) and value > 0)):
        raise ValueError(f"{operator}: {option} must be a finite number > 0, got {value!r}")
    return float(value)


class Mutation(abc.ABC):
    """Base class: an operator's configuration and its one batched step (`perturbations`).

    Every operator takes `weight_clip=c`: each weight's change is clipped to [-c, c] after the
    operator has made it (the reference's maze used 0.2, its toy tasks 10), so one config can
    run with any operator.
    """

    name: str = "mutation"
    magnitude_means: str = "the step size"
    """What `magnitude` is for this operator (shown by `smevo list mutations` and reports)."""
    needs_experiences: bool = True

    def __init__(self, magnitude: float, *, weight_clip: float | None = None) -> None:
        self.magnitude = positive_number(self.name, "magnitude", magnitude)
        self.weight_clip = (None if weight_clip is None
                            else positive_number(self.name, "weight_clip", weight_clip))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(magnitude={self.magnitude})"

    def __call__(
        self,
        params: torch.Tensor,
        policy: Policy,
        experiences: Experiences | None,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, MutationStats]:
        """A child of `params` and the statistics of the step (its divergence measured)."""
        from smevo.mutations.breeding import breed

        children, stats = breed(self, policy, params[None], [experiences], [0], [generator])
        return children[0], stats[0]

    @abc.abstractmethod
    def perturbations(self, brood: Brood) -> torch.Tensor:
        """The steps δ `[C, D]` of the brood's children (before `weight_clip`): a new tensor
        or `brood.noises` itself, which the operator may overwrite, and which the breeder then
        changes in place into the children. What the operator measured goes into
        `brood.stats`."""


class Control(Mutation):
    """θ + m·ε: plain Gaussian mutation (the reference's "regular"); m is σ."""

    name = "control"
    magnitude_means = "sigma of the Gaussian"
    needs_experiences = False

    def perturbations(self, brood):
        return self.magnitude * brood.noises


class SafeMutationRescale(Mutation):
    """SM-R: a random unit direction scaled by line search so that D(t) = m."""

    name = "SM-R"
    magnitude_means = "target divergence, reached by line search"

    def perturbations(self, brood):
        directions = brood.directions()
        return brood.scales_to_divergence(directions, self.magnitude)[:, None] * directions


class SafeMutationGradient(Mutation):
    """The SM-G family: θ + m·ε / s with s the post-processed sensitivity (`sensitivities`).

    Options: `normalize` (divide s by its mean over non-zero entries, default True),
    `sum_reduction` ("mean" or the reference's "sum"), `floor` (default 0.01, relative when
    normalised), `weight_clip`, `target_divergence` (rescale δ by line search afterwards:
    "SM-G-…+R"), `chunk_elements` (memory bound for per-sample Jacobians).
    """

    magnitude_means = "sigma for a weight of average sensitivity"

    def __init__(
        self,
        magnitude: float,
        *,
        normalize: bool = True,
        sum_reduction: str = "mean",
        floor: float = 0.01,
        weight_clip: float | None = None,
        target_divergence: float | None = None,
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    ) -> None:
        super().__init__(magnitude, weight_clip=weight_clip)
        if sum_reduction not in REDUCTIONS:
            raise ValueError(
                f"{self.name}: sum_reduction must be one of {', '.join(REDUCTIONS)}, "
                f"got {sum_reduction!r}"
            )
        if chunk_elements < 1:
            raise ValueError(f"{self.name}: chunk_elements must be >= 1, got {chunk_elements}")
        self.normalize = bool(normalize)
        self.sum_reduction = sum_reduction
        self.floor = positive_number(self.name, "floor", floor)
        self.target_divergence = (None if target_divergence is None
                                  else positive_number(self.name, "target_divergence",
                                                       target_divergence))
        self.chunk_elements = int(chunk_elements)

    shared_by_siblings: bool = True
    """Whether the sensitivity depends on the parent alone (SUM, ABS), so that its children
    share it, or also on the child's own noise (SO)."""

    @abc.abstractmethod
    def sensitivities(self, brood: Brood) -> torch.Tensor:
        """Raw sensitivities: `[U, D]`, one per parent if `shared_by_siblings`, else `[C, D]`,
        one per child."""

    def perturbations(self, brood):
        raw = self.sensitivities(brood)
        divisors = postprocess(raw, normalize=self.normalize, floor=self.floor)
        lows, highs = raw.amin(dim=1).tolist(), raw.amax(dim=1).tolist()
        for u, rows in enumerate(brood.children_of):
            for c in range(rows.start, rows.stop):
                row = u if self.shared_by_siblings else c
                stats = brood.stats[c]
                stats.sensitivity, stats.sensitivity_min, stats.sensitivity_max = (
                    raw[row], lows[row], highs[row])
            if self.shared_by_siblings:  # the noise is ours to overwrite: no [C, D] copy
                brood.noises[rows].div_(divisors[u])
        if not self.shared_by_siblings:
            brood.noises.div_(divisors)
        delta = brood.noises.mul_(self.magnitude)
        if self.target_divergence is None:
            return delta
        if self.weight_clip is not None:
            delta = delta.clamp(-self.weight_clip, self.weight_clip)
        return delta * brood.scales_to_divergence(delta, self.target_divergence)[:, None]


class SafeMutationSum(SafeMutationGradient):
    """SM-G-SUM: sensitivity from the experience-averaged signed output gradient."""

    name = "SM-G-SUM"

    def sensitivities(self, brood):
        return parents_sensitivity(brood.policy, brood.params, brood.archives, "SUM",
                                   self.sum_reduction, self.chunk_elements)


class SafeMutationAbs(SafeMutationGradient):
    """SM-G-ABS: sensitivity from the experience-averaged absolute per-sample gradients."""

    name = "SM-G-ABS"

    def sensitivities(self, brood):
        return parents_sensitivity(brood.policy, brood.params, brood.archives, "ABS",
                                   self.sum_reduction, self.chunk_elements)


class SafeMutationSecondOrder(SafeMutationGradient):
    """SM-G-SO: sensitivity sqrt(|H d|) along the direction d of the very noise it rescales."""

    name = "SM-G-SO"
    shared_by_siblings = False

    def sensitivities(self, brood):
        return directional_sensitivities(brood.policy, brood.params, brood.archives,
                                         brood.directions(), brood.parent_of, "SO",
                                         self.sum_reduction, self.chunk_elements)


class SafeMutationFirstOrder(Mutation):
    """SM-G-FO: θ + t·ε with t = sqrt(m / D₁(ε)), D₁ the first-order (J·ε) prediction of the
    divergence: SM-R's target in closed form, one Jacobian-vector product instead of a search."""

    name = "SM-G-FO"
    magnitude_means = "target divergence, in closed form (first order)"

    def perturbations(self, brood):
        predicted = directional_sensitivities(brood.policy, brood.params, brood.archives,
                                              brood.noises, brood.parent_of, "FO")
        reachable = predicted > 0
        for stats, value in zip(brood.stats, reachable.tolist(), strict=True):
            stats.reachable = value
        scales = torch.where(reachable, (self.magnitude / predicted).sqrt(), 1.0)
        return scales[:, None] * brood.noises
