"""The mutation operators: control and the safe-mutation family (DESIGN.md's table).

Each is a small configured object (options validated at construction) whose
`__call__(params, policy, experiences, generator) -> (child, stats)` is pure: all randomness
comes from `generator`, and the parent is not modified.
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from smevo import functional
from smevo.experiences import Experiences
from smevo.mutations.line_search import (
    LineSearchResult,
    scale_to_divergence,
    scales_to_divergence,
)
from smevo.mutations.sensitivity import (
    DEFAULT_CHUNK_ELEMENTS,
    REDUCTIONS,
    ParentOutputs,
    check_genome,
    check_inputs,
    directional_sensitivities,
    divergence_of_outputs,
    first_order_divergence,
    parents_sensitivity,
    postprocess,
    raw_sensitivity,
)
from smevo.policies import Policy


@dataclass
class MutationStats:
    """How safe a mutation was: the child's measured divergence on the parent's experiences,
    the size of the step, the range of the raw sensitivities (SM-G only), and, for operators
    that aim at a target divergence, whether it was reached (else None) and how many
    divergence evaluations the line search spent (None: no search was made)."""

    divergence: float = math.nan
    delta_norm: float = math.nan
    sensitivity_min: float = math.nan
    sensitivity_max: float = math.nan
    line_search_evals: int | None = None
    reachable: bool | None = None
    sensitivity: torch.Tensor | None = field(default=None, repr=False)


class Parent:
    """What an operator knows of the parent: genome, policy, experiences, and (computed once,
    on first use, and shared by all its children) the parent's outputs on the experiences and
    whatever else depends on the parent alone."""

    def __init__(self, params: torch.Tensor, policy: Policy, experiences: Experiences | None):
        self.params = params
        self.policy = policy
        self.experiences = experiences
        self._outputs: torch.Tensor | None = None
        self._cache: dict[Hashable, Any] = {}

    @property
    def outputs(self) -> torch.Tensor:
        if self._outputs is None:
            with torch.no_grad():
                self._outputs = functional.forward(self.policy, self.params, self.experiences)
        return self._outputs

    @outputs.setter
    def outputs(self, value: torch.Tensor | None) -> None:
        self._outputs = value

    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """`compute()`, evaluated once per parent and key (a name, or a (name, id of a
        child's noise) pair for what depends on the child too)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def divergence_of(self, child: torch.Tensor) -> float:
        """D between the parent and `child` on the parent's experiences."""
        with torch.no_grad():
            child_outputs = functional.forward(self.policy, child, self.experiences)
        return divergence_of_outputs(child_outputs, self.outputs, self.experiences)

    def line_search(self, direction: torch.Tensor, target: float) -> LineSearchResult:
        """The search for the t at which θ + t·direction has divergence `target`."""
        return scale_to_divergence(
            lambda t: self.divergence_of(self.params + t * direction), target
        )

    def scale_to_divergence(
        self,
        direction: torch.Tensor,
        target: float,
        stats: MutationStats,
        result: LineSearchResult | None = None,
    ) -> float:
        """The t for which θ + t·direction has divergence `target` (recorded in stats);
        `result`: the search, if it was already made (batched with other children's)."""
        result = result or self.line_search(direction, target)
        stats.line_search_evals = (stats.line_search_evals or 0) + result.evaluations
        stats.reachable = result.reachable
        return result.scale


@dataclass
class Brood:
    """A generation's children flattened for batched work: child c has `noises[c]` and
    parent `parents[parent_of[c]]` (whose genomes are stacked in `params`)."""

    parents: list[Parent]
    params: torch.Tensor
    noises: list[torch.Tensor]
    parent_of: list[int]

    @classmethod
    def of(cls, parents: list[Parent], noises: list[list[torch.Tensor]]) -> Brood | None:
        """The brood, or None where batching cannot pay: fewer than two children."""
        flat = [(u, noise) for u, ns in enumerate(noises) for noise in ns]
        if len(flat) < 2:
            return None
        return cls(parents, torch.stack([parent.params for parent in parents]),
                   [noise for _, noise in flat], [u for u, _ in flat])

    @property
    def policy(self) -> Policy:
        return self.parents[0].policy

    @property
    def experiences(self) -> list[Experiences]:
        return [parent.experiences for parent in self.parents]

    def directions(self) -> torch.Tensor:
        """Each child's unit noise direction, `[C, D]`."""
        return torch.stack([noise / noise.norm() for noise in self.noises])

    def store(self, key: str, values: list[Any]) -> None:
        """Cache `values[c]` on child c's parent under (key, its noise), for `perturbation`."""
        for noise, u, value in zip(self.noises, self.parent_of, values, strict=True):
            self.parents[u].cached((key, id(noise)), lambda value=value: value)


def positive_number(operator: str, option: str, value: Any) -> float:
    """`value` as a float if it is a finite real number > 0; otherwise a `ValueError` naming
    the operator and the option (a YAML string or bool must not slip through as a number)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not (math.isfinite(value) and value > 0)):
        raise ValueError(f"{operator}: {option} must be a finite number > 0, got {value!r}")
    return float(value)


class Mutation(abc.ABC):
    """Base class: draws ε, asks the subclass for a perturbation δ, returns θ + δ and stats.

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
        """A child of `params` and the statistics of the step."""
        return self.children(params, policy, experiences, [generator])[0]

    def children(
        self,
        params: torch.Tensor,
        policy: Policy,
        experiences: Experiences | None,
        generators: list[torch.Generator],
        *,
        measure: bool = True,
    ) -> list[tuple[torch.Tensor, MutationStats]]:
        """One child of `params` per generator, each with the statistics of its step (see
        `offspring`)."""
        return self.offspring(params[None], policy, [experiences], [generators],
                              measure=measure)[0]

    def offspring(
        self,
        parents: torch.Tensor,
        policy: Policy,
        experiences: list[Experiences | None],
        generators: list[list[torch.Generator]],
        *,
        measure: bool = True,
    ) -> list[list[tuple[torch.Tensor, MutationStats]]]:
        """The children of several parents `[U, D]`: parent u (with `experiences[u]`) gets
        one child per generator of `generators[u]`, each with the statistics of its step.

        Every child's noise is drawn first; then `prepare` does, batched where the operator
        can, what the children need: work that depends on a parent alone (SM-G-SUM/ABS
        sensitivities) once per parent and vmapped over the parents, per-child work (SM-G-SO,
        SM-G-FO, SM-R's line search) vmapped or in lockstep over all children.
        `measure=False` leaves the children's divergence
        unmeasured, for callers that measure a whole generation in one batch
        (`sensitivity.divergences`).
        """
        prepared = [self.parent(params, policy, batch)
                    for params, batch in zip(parents, experiences, strict=True)]
        noises = [[torch.randn(parent.params.shape, generator=generator,
                               dtype=torch.float32).to(parent.params.device)
                   for generator in parent_generators]
                  for parent, parent_generators in zip(prepared, generators, strict=True)]
        self.prepare(prepared, noises)
        return [[self.child(parent, noise, measure) for noise in parent_noises]
                for parent, parent_noises in zip(prepared, noises, strict=True)]

    def parent(
        self, params: torch.Tensor, policy: Policy, experiences: Experiences | None
    ) -> Parent:
        """A checked `Parent` (clear errors for a bad genome or experiences)."""
        if self.needs_experiences or experiences is not None:
            check_inputs(policy, params, experiences)
            experiences = experiences.to(params.device)
        else:
            check_genome(policy, params)
        return Parent(params.detach().to(torch.float32), policy, experiences)

    def prepare(  # noqa: B027 - a hook, empty by default
        self, parents: list[Parent], noises: list[list[torch.Tensor]]
    ) -> None:
        """Compute, batched across `parents` and their children's `noises`, what the children
        need (nothing by default); results go into the parents' caches."""

    def child(
        self, parent: Parent, noise: torch.Tensor, measure: bool
    ) -> tuple[torch.Tensor, MutationStats]:
        """One child of `parent` from its noise ε (which the operator may overwrite)."""
        stats = MutationStats()
        delta = self.perturbation(parent, noise, stats)
        if self.weight_clip is not None:
            delta = delta.clamp(-self.weight_clip, self.weight_clip)
        child = parent.params + delta
        stats.delta_norm = float(delta.norm())
        if measure and parent.experiences is not None:
            stats.divergence = parent.divergence_of(child)
        return child, stats

    @abc.abstractmethod
    def perturbation(
        self, parent: Parent, noise: torch.Tensor, stats: MutationStats
    ) -> torch.Tensor:
        """δ for this operator."""


class Control(Mutation):
    """θ + m·ε: plain Gaussian mutation (the reference's "regular"); m is σ."""

    name = "control"
    magnitude_means = "sigma of the Gaussian"
    needs_experiences = False

    def perturbation(self, parent, noise, stats):
        return self.magnitude * noise


class SafeMutationRescale(Mutation):
    """SM-R: a random unit direction scaled by line search so that D(t) = m."""

    name = "SM-R"
    magnitude_means = "target divergence, reached by line search"

    def prepare(self, parents, noises):
        """Every child's line search at once, in lockstep: one batched divergence per round."""
        brood = Brood.of(parents, noises)
        if brood is None:
            return
        directions, parent_of = brood.directions(), np.array(brood.parent_of)
        reference = ParentOutputs(brood.policy, brood.params, brood.experiences)

        def divergences_at(rows: np.ndarray, scales: np.ndarray) -> np.ndarray:
            steps = torch.as_tensor(scales, dtype=directions.dtype, device=directions.device)
            candidates = brood.params[parent_of[rows]] + steps[:, None] * directions[rows]
            return np.array(reference.divergences(candidates, parent_of[rows].tolist()))

        brood.store("SM-R", scales_to_divergence(divergences_at, len(parent_of), self.magnitude))

    def perturbation(self, parent, noise, stats):
        direction = noise / noise.norm()
        result = parent.cached(("SM-R", id(noise)),
                               lambda: parent.line_search(direction, self.magnitude))
        return parent.scale_to_divergence(direction, self.magnitude, stats, result) * direction


class SafeMutationGradient(Mutation):
    """SM-G-SUM / SM-G-ABS / SM-G-SO: θ + m·ε / s with s the post-processed sensitivity.

    Options: `normalize` (divide s by its mean over non-zero entries, default True),
    `sum_reduction` ("mean" or the reference's "sum"), `floor` (default 0.01, relative when
    normalised), `weight_clip`, `target_divergence` (rescale δ by line search afterwards:
    "SM-G-…+R"), `chunk_elements` (memory bound for per-sample Jacobians).
    """

    kind = "SUM"
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

    def perturbation(self, parent, noise, stats):
        if self.kind == "SO":  # SO's sensitivity depends on the very noise it rescales
            raw, divisor = parent.cached(("SO", id(noise)),
                                         lambda: self.divisor(parent, noise / noise.norm()))
        else:  # SUM's and ABS's depend on the parent alone: its children share them
            raw, divisor = parent.cached("divisor", lambda: self.divisor(parent, None))
        stats.sensitivity = raw
        stats.sensitivity_min = float(raw.min())
        stats.sensitivity_max = float(raw.max())
        delta = noise.div_(divisor).mul_(self.magnitude)  # the noise is ours to overwrite
        if self.target_divergence is not None:
            if self.weight_clip is not None:
                delta = delta.clamp(-self.weight_clip, self.weight_clip)
            delta = delta * parent.scale_to_divergence(delta, self.target_divergence, stats)
        return delta

    def prepare(self, parents, noises):
        """The divisors of every child in a few batched passes: SUM's and ABS's per parent
        (`parents_sensitivity`), SO's per child (`directional_sensitivities`)."""
        if self.kind == "SO":
            brood = Brood.of(parents, noises)
            if brood is not None:
                raws = directional_sensitivities(
                    brood.policy, brood.params, brood.experiences, brood.directions(),
                    brood.parent_of, "SO", self.sum_reduction, self.chunk_elements)
                brood.store("SO", [(raw, self.postprocess(raw)) for raw in raws])
            return
        if len(parents) < 2:
            return
        raws = parents_sensitivity(parents[0].policy,
                                   torch.stack([parent.params for parent in parents]),
                                   [parent.experiences for parent in parents], self.kind,
                                   self.sum_reduction, self.chunk_elements)
        for parent, (raw, outputs) in zip(parents, raws, strict=True):
            if outputs is not None:
                parent.outputs = outputs
            parent.cached("divisor", lambda raw=raw: (raw, self.postprocess(raw)))

    def postprocess(self, raw: torch.Tensor) -> torch.Tensor:
        """The divisor of the noise for a raw sensitivity."""
        return postprocess(raw, normalize=self.normalize, floor=self.floor)

    def divisor(
        self, parent: Parent, direction: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The raw sensitivity of the parent (SO: along `direction`) and the post-processed
        divisor of the noise."""
        raw, outputs = raw_sensitivity(parent.policy, parent.params, parent.experiences,
                                       self.kind, direction, self.sum_reduction,
                                       self.chunk_elements)
        if outputs is not None:
            parent.outputs = outputs
        return raw, self.postprocess(raw)


class SafeMutationSum(SafeMutationGradient):
    """SM-G-SUM: sensitivity from the experience-averaged signed output gradient."""

    name = "SM-G-SUM"
    kind = "SUM"


class SafeMutationAbs(SafeMutationGradient):
    """SM-G-ABS: sensitivity from the experience-averaged absolute per-sample gradients."""

    name = "SM-G-ABS"
    kind = "ABS"


class SafeMutationSecondOrder(SafeMutationGradient):
    """SM-G-SO: sensitivity sqrt(|H d|) along the direction d of the very noise it rescales."""

    name = "SM-G-SO"
    kind = "SO"


class SafeMutationFirstOrder(Mutation):
    """SM-G-FO: θ + t·ε with t = sqrt(m / D₁(ε)), D₁ the first-order (J·ε) prediction of the
    divergence: SM-R's target in closed form, one Jacobian-vector product instead of a search."""

    name = "SM-G-FO"
    magnitude_means = "target divergence, in closed form (first order)"

    def prepare(self, parents, noises):
        """D₁ of every child in batched passes."""
        brood = Brood.of(parents, noises)
        if brood is not None:
            brood.store("FO", directional_sensitivities(
                brood.policy, brood.params, brood.experiences, torch.stack(brood.noises),
                brood.parent_of, "FO"))

    def perturbation(self, parent, noise, stats):
        predicted = parent.cached(("FO", id(noise)), lambda: first_order_divergence(
            parent.policy, parent.params, noise, parent.experiences))
        stats.reachable = predicted > 0
        if not stats.reachable:
            return noise
        return math.sqrt(self.magnitude / predicted) * noise
