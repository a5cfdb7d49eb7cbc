"""A batch of children to make: what an operator's one batched path receives.

Every operator works on a `Brood`, whether it holds one child of one parent or a generation's
children of many parents: the parents' genomes and archives, each child's noise and parent,
and the statistics each child's step records. Whatever depends on the parents alone (their
padded archives, their outputs on them) is computed once, on first use, and shared.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from smevo.experiences import Experiences
from smevo.mutations.line_search import scales_to_divergence
from smevo.mutations.sensitivity import PaddedExperiences, ParentOutputs, padded_experiences
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


@dataclass
class Brood:
    """Children to make: child c perturbs parent `params[parent_of[c]]` (whose archive is
    `experiences[parent_of[c]]`, None if it recorded none) with the standard normal noise
    `noises[c]`, which the operator may overwrite in place. Children of one parent are
    consecutive: parent u's are rows `children_of[u]`."""

    policy: Policy
    params: torch.Tensor
    experiences: list[Experiences | None]
    noises: torch.Tensor
    parent_of: torch.Tensor
    stats: list[MutationStats]
    children_of: list[slice]

    @classmethod
    def of(
        cls,
        policy: Policy,
        params: torch.Tensor,
        experiences: list[Experiences | None],
        noises: torch.Tensor,
        children_per_parent: list[int],
    ) -> Brood:
        """The brood whose parent u has the next `children_per_parent[u]` rows of `noises`."""
        ends = np.cumsum([0, *children_per_parent]).tolist()
        parent_of = torch.repeat_interleave(
            torch.arange(len(params), device=params.device),
            torch.as_tensor(children_per_parent, device=params.device))
        return cls(policy, params, experiences, noises, parent_of,
                   [MutationStats() for _ in range(len(noises))],
                   [slice(a, b) for a, b in itertools.pairwise(ends)])

    def __len__(self) -> int:
        return len(self.noises)

    @cached_property
    def archives(self) -> PaddedExperiences:
        """Every parent's archive, padded into one batch (all parents must have one)."""
        return padded_experiences(self.experiences, self.params.device)  # type: ignore[arg-type]

    @cached_property
    def reference(self) -> ParentOutputs:
        """The parents' outputs on their archives, for the children's divergences."""
        return ParentOutputs(self.policy, self.params, self.archives)

    def directions(self) -> torch.Tensor:
        """Each child's unit noise direction, `[C, D]`."""
        return self.noises / self.noises.norm(dim=1, keepdim=True)

    def divergences(self, children: torch.Tensor, rows: torch.Tensor | None = None) -> np.ndarray:
        """D of `children` (those of brood rows `rows`, default all) on their parents'
        archives."""
        parent_of = self.parent_of if rows is None else self.parent_of[rows]
        return self.reference.divergences(children, parent_of).cpu().numpy()

    def scales_to_divergence(self, steps: torch.Tensor, target: float) -> torch.Tensor:
        """For every child, the t `[C]` at which θ + t·steps[c] has divergence `target`,
        all children searched in lockstep (one batched divergence per round); each child's
        stats record whether it was reachable and how many evaluations it took."""
        parents = self.params[self.parent_of]

        def divergences_at(rows: np.ndarray, scales: np.ndarray) -> np.ndarray:
            index = torch.as_tensor(rows, device=steps.device)
            t = torch.as_tensor(scales, dtype=steps.dtype, device=steps.device)
            return self.divergences(parents[index] + t[:, None] * steps[index], index)

        results = scales_to_divergence(divergences_at, len(self), target)
        for stats, result in zip(self.stats, results, strict=True):
            stats.line_search_evals = (stats.line_search_evals or 0) + result.evaluations
            stats.reachable = result.reachable
        return torch.tensor([r.scale for r in results], dtype=steps.dtype, device=steps.device)
