"""Σ_m w_m |J_m| of recurrent nets by hand-written backward sweeps: SM-G-ABS's fast path.

The generic transforms (`jacobians.py`) form a recorded sequence's per-step Jacobians with
`vmap(jacrev)`, paying autograd's bookkeeping for every row (one output at one step) on a
graph as long as the sequence. For the policy families whose step is simple enough to
differentiate by hand, a sweep module does it in one pass backwards in time in which every
row carries its own adjoints of the state; rows join the sweep at their own step, so a row is
only carried through its prefix, and each weight's per-row gradient is formed at the end as
one batched matrix product of the kept pre-activation adjoints with the forward's activities
(a weight's gradient is a sum of outer products, as in per-example-gradient methods).

A sweep module offers `supports(policy)`, `elements_per_sequence(policy, steps)` (the
adjoints it keeps, for memory) and `sequence_gradients(policy, values, inputs)`: the
per-row gradients of every parameter except the linear readout's (rows ordered latest step
first) and the readout's input at every step. This module batches parents and sequences,
and assembles Σ_t w_t |∂y_t/∂θ| in genome order. The tests hold every sweep equal to the
generic transforms.
"""

from __future__ import annotations

from types import ModuleType

import torch

from smevo.mutations import plastic_jacobians, recurrent_jacobians
from smevo.policies import Policy

SWEEPS: tuple[ModuleType, ...] = (plastic_jacobians, recurrent_jacobians)


def sweep_for(policy: Policy) -> ModuleType | None:
    """The sweep module that covers `policy`, or None (the generic transforms serve it)."""
    return next((sweep for sweep in SWEEPS if sweep.supports(policy)), None)


def absolute_jacobian_sums(
    policy: Policy,
    parents: torch.Tensor,
    obs: torch.Tensor,
    weights: torch.Tensor,
    chunk_elements: int,
) -> torch.Tensor:
    """Σ_m w_m |J_m| `[U, K, D]` for parents `[U, D]` on their sequences `obs [U, N, T, *obs]`
    with weights `[U, N, T]`, as `jacobians.absolute_jacobian_sums` defines it, for a policy
    that a sweep covers. `chunk_elements` bounds the adjoints kept at once (parents are taken
    in groups)."""
    sweep = sweep_for(policy)
    if sweep is None:
        raise ValueError(f"no hand-written sweep covers {type(policy).__name__}")
    units, samples, steps = obs.shape[:3]
    per_parent = samples * sweep.elements_per_sequence(policy, steps)
    group = max(1, chunk_elements // per_parent)
    sums = []
    for start in range(0, units, group):
        part = slice(start, start + group)
        count = len(parents[part])
        values = _per_sequence_values(policy, parents[part], samples)
        inputs = obs[part].reshape(count * samples, steps, -1).to(parents.dtype)
        gradients, readout_input = sweep.sequence_gradients(policy, values, inputs)
        sums.append(_weighted_absolute(policy, gradients, readout_input,
                                       weights[part].reshape(count * samples, steps))
                    .reshape(count, samples, policy.output_size, -1).sum(dim=1))
    return torch.cat(sums)


def _per_sequence_values(
    policy: Policy, parents: torch.Tensor, samples: int
) -> dict[str, torch.Tensor]:
    """The parents' parameters by name, repeated for each of their sequences: `[S, *shape]`."""
    named = list(policy.named_parameters())
    pieces = torch.split(parents, [p.numel() for _, p in named], dim=1)
    return {name: piece.reshape(len(parents), *p.shape).repeat_interleave(samples, dim=0)
            for (name, p), piece in zip(named, pieces, strict=True)}


def _weighted_absolute(
    policy: Policy,
    gradients: dict[str, torch.Tensor],
    readout_input: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Σ_t w_t |∂y_t/∂θ| `[S, K, D]` in genome order, from the per-row gradients (rows latest
    step first) and, for the linear readout `head`, its input x_t `[S, T, H]` itself:
    ∂y_tk/∂W[k] = x_t, ∂y_tk/∂b[k] = 1."""
    sequences, steps = weights.shape
    outputs = policy.output_size
    eye = torch.eye(outputs, dtype=readout_input.dtype, device=readout_input.device)
    latest_first = weights.flip(1)
    pieces = []
    for name, parameter in policy.named_parameters():
        if name == "head.weight":
            per_output = torch.einsum("st,sth->sh", weights, readout_input.abs())
            pieces.append((eye[None, :, :, None] * per_output[:, None, None, :])
                          .reshape(sequences, outputs, -1))
        elif name == "head.bias":
            pieces.append(eye[None] * weights.sum(dim=1)[:, None, None])
        elif name in gradients:
            gradient = gradients[name].reshape(sequences, steps, outputs, -1)
            pieces.append((gradient * latest_first[..., None, None]).abs_().sum(dim=1))
        else:  # a parameter the outputs do not read (an A2C value head)
            pieces.append(readout_input.new_zeros(sequences, outputs, parameter.numel()))
    return torch.cat(pieces, dim=-1)
