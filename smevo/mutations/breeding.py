"""Breeding: a generation's children made by one operator, batched, bounded in memory.

`breed` groups the children by parent, draws each child's noise from its own generator,
hands the operator `Brood`s of at most `OFFSPRING_CHUNK_ELEMENTS` genome elements, clips the
steps, and measures every child's divergence on its parent's archive in batched forwards.
An operator called on one parent (`Mutation.__call__`) is a breeding of one child.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from smevo.experiences import Experiences
from smevo.mutations.brood import Brood, MutationStats
from smevo.mutations.sensitivity import (
    ParentOutputs,
    check_genome,
    check_inputs,
    padded_experiences,
)
from smevo.policies import Policy

if TYPE_CHECKING:
    from smevo.mutations.operators import Mutation

OFFSPRING_CHUNK_ELEMENTS = 1 << 26
"""Genome elements of the children in one brood (256 MB of float32 noise): a memory bound
for big networks; small ones take a generation in one brood."""


def breed(
    mutation: Mutation,
    policy: Policy,
    population: torch.Tensor,
    experiences: Sequence[Experiences | None],
    parents: Sequence[int],
    generators: Sequence[torch.Generator],
    *,
    measure: bool = True,
    later: list[Callable[[], None]] | None = None,
) -> tuple[torch.Tensor, list[MutationStats]]:
    """Children `[C, D]` and their statistics: child c mutates `population[parents[c]]`
    (whose archive is `experiences[parents[c]]`, None where it recorded none) with noise
    from `generators[c]`. Children are computed on the population's device. `measure`: the
    children's divergences on their parents' archives go into their stats.

    With a list `later`, a generation bred in one brood leaves its measurement there, for the
    caller to run before it reads the divergences: while other processes evaluate the
    children, say, where it costs no wall time (nothing the children are depends on it). A
    generation bred in several broods (a big net's) is measured at once, brood by brood,
    since keeping every brood for later would hold the generation twice."""
    members: dict[int, list[int]] = {}  # parent -> its children, parents in first-seen order
    for child, member in enumerate(parents):
        members.setdefault(int(member), []).append(child)
    order = list(members)
    for member in order:
        _check_parent(mutation, policy, population[member], experiences[member])
    children = []
    order_of_children = []
    stats: list[MutationStats | None] = [None] * len(parents)
    chunks = _parent_chunks([len(members[m]) for m in order], population.shape[1])
    deferred = measure and later is not None and len(chunks) == 1
    for part in chunks:
        chunk = order[part]
        rows = [c for m in chunk for c in members[m]]
        noises = torch.empty(len(rows), population.shape[1], dtype=torch.float32)
        for row, c in enumerate(rows):  # in place: no second copy of a big generation's noise
            torch.randn(population.shape[1], generator=generators[c], dtype=torch.float32,
                        out=noises[row])
        brood = Brood.of(
            policy,
            population[torch.as_tensor(chunk)].detach().to(torch.float32),
            [_on(experiences[m], population.device) for m in chunk],
            noises.to(population.device),
            [len(members[m]) for m in chunk],
        )
        children.append(_make(mutation, brood, measure and not deferred))
        if deferred:
            later.append(functools.partial(_measure, brood, children[-1]))
        order_of_children += rows
        for c, child_stats in zip(rows, brood.stats, strict=True):
            stats[c] = child_stats
    made = children[0] if len(children) == 1 else torch.cat(children)
    if order_of_children != sorted(order_of_children):  # back to the callers' order
        made = made[torch.as_tensor(order_of_children, device=made.device).argsort()]
    return made, stats  # type: ignore[return-value]


def _make(mutation: Mutation, brood: Brood, measure: bool) -> torch.Tensor:
    """The brood's children, with their step sizes and (if `measure`) divergences in its
    stats."""
    delta = mutation.perturbations(brood)  # ours to change in place from here on
    if mutation.weight_clip is not None:
        delta.clamp_(-mutation.weight_clip, mutation.weight_clip)
    for stats, norm in zip(brood.stats, delta.norm(dim=1).tolist(), strict=True):
        stats.delta_norm = norm
    children = delta
    for u, rows in enumerate(brood.children_of):  # θ + δ in place: no [C, D] copy of parents
        children[rows] += brood.params[u]
    if measure:
        _measure(brood, children)
    return children


def _measure(brood: Brood, children: torch.Tensor) -> None:
    """Each child's divergence on its parent's archive, for the parents that have one."""
    recorded = [u for u, e in enumerate(brood.experiences) if e is not None]
    if len(recorded) == len(brood.experiences):
        values = brood.divergences(children)
        rows = list(range(len(brood)))
    elif recorded:
        rows = [c for u in recorded for c in range(len(brood))[brood.children_of[u]]]
        reference = ParentOutputs(
            brood.policy, brood.params[recorded],
            padded_experiences([brood.experiences[u] for u in recorded], children.device))
        rank = {u: k for k, u in enumerate(recorded)}
        parent_of = torch.tensor([rank[int(brood.parent_of[c])] for c in rows],
                                 device=children.device)
        values = reference.divergences(children[rows], parent_of)
    else:
        return
    for c, value in zip(rows, values.tolist(), strict=True):
        brood.stats[c].divergence = value


def _check_parent(
    mutation: Mutation, policy: Policy, params: torch.Tensor, experiences: Experiences | None
) -> None:
    """Clear errors for a bad genome, or for missing or misshapen experiences where the
    operator needs them."""
    if mutation.needs_experiences or experiences is not None:
        check_inputs(policy, params, experiences)
    else:
        check_genome(policy, params)


def _on(experiences: Experiences | None, device: torch.device) -> Experiences | None:
    return None if experiences is None else experiences.to(device)


def _parent_chunks(children_per_parent: list[int], genome_size: int) -> list[slice]:
    """Consecutive runs of parents whose children together stay within
    `OFFSPRING_CHUNK_ELEMENTS` (at least one parent per run)."""
    budget = max(1, OFFSPRING_CHUNK_ELEMENTS // genome_size)
    chunks, start, count = [], 0, 0
    for u, children in enumerate(children_per_parent):
        if count and count + children > budget:
            chunks.append(slice(start, u))
            start, count = u, 0
        count += children
    chunks.append(slice(start, len(children_per_parent)))
    return chunks
