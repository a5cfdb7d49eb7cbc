"""Σ_m w_m |∂y_m/∂θ|: per-sample output Jacobians in absolute value, summed (SM-G-ABS's core).

A sample m is a state, or one step of a recorded sequence, whose Jacobian covers every
earlier step of its sequence (through the recurrence, the plastic traces, the modulation).
The sum needs each sample's Jacobian before the absolute value, so it cannot be folded into
one backward pass; what is left to choose is how to form them, by the shape of the work:

- **reverse mode** (`vmap` over samples of `jacrev`): one backward pass per row of a
  sample, a row being one output at one step, all rows of all samples batched.
- **forward mode** (`jacfwd` over the whole batch): one forward pass per parameter, carrying
  that parameter's tangent through every step of every sample at once.

Per sample, reverse mode costs about (outputs x steps) backward passes, forward mode
(parameters) forward passes; `prefers_forward` compares them. Both differentiate per parameter
tensor (the genome's pieces) and take the absolute value piece by piece, so the per-sample
Jacobian of the whole flat genome is never concatenated: that copy cost more than the
derivatives themselves on small recurrent nets (2.5x on a generation of parity-GRU parents).
(Cutting long sequences into blocks of steps, each block's rows differentiated through its
prefix only, halves the arithmetic of reverse mode but was measured slower: on a plastic RNN
over 200 steps a backward step under `vmap` has a fixed cost of ~2 ms, which the prefixes
repeat.)

Parents whose Jacobians are small are batched with `vmap`; bigger ones run a parent at a
time, over chunks of samples that bound memory (`SMALL_JACOBIAN`). Recurrent nets whose
step is simple enough to differentiate by hand (tanh-RNN, GRU and LSTM stacks, the plastic and
neuromodulated nets) have a third way, the "analytic" sweeps (`sweeps`), the default for
them: several times faster than either transform on sequences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch.func import jacfwd, jacrev, vmap

from smevo import functional
from smevo.mutations import sweeps
from smevo.policies import Policy

Mode = Literal["forward", "reverse", "analytic"]

SMALL_JACOBIAN = 1 << 20
"""Per-parent Jacobian elements up to which parents are vmapped together (as many as
`chunk_elements` allows). Small Jacobians are bound by dispatch, and batching pays: 5.3
against 14.9 ms a parent for 40 parity-GRU parents (292k elements each). Big ones are bound
by memory, and batching cost more: 5.4 against 2.7 s a parent for a plastic RNN's 2M."""


def map_over_batch(fn: Callable[..., Any], *batches: Any) -> Any:
    """`vmap(fn)(*batches)` over the leading axis; a batch of one is a plain call with the
    axis put back (vmap's set-up costs more than a small net's whole pass: one child bred
    alone took twice as long through vmap). `batches` may hold tuples of tensors."""
    if _leading(batches[0]) > 1:
        return vmap(fn)(*batches)
    result = fn(*[_map(lambda t: t[0], b) for b in batches])
    return _map(lambda t: t[None], result)


def _leading(batch: Any) -> int:
    return _leading(batch[0]) if isinstance(batch, tuple) else batch.shape[0]


def _map(fn: Callable[[torch.Tensor], torch.Tensor], value: Any) -> Any:
    return tuple(_map(fn, v) for v in value) if isinstance(value, tuple) else fn(value)


def prefers_forward(parameters: int, outputs: int, steps: int) -> bool:
    """Whether forward mode is cheaper: fewer parameters (forward passes) than rows of a
    sample (`outputs` x `steps` backward passes)."""
    return parameters < outputs * steps


def absolute_jacobian_sums(
    policy: Policy,
    parents: torch.Tensor,
    obs: torch.Tensor,
    weights: torch.Tensor,
    sequential: bool,
    chunk_elements: int,
    mode: Mode | None = None,
) -> torch.Tensor:
    """Σ_m w_m |J_m| `[U, K, D]` for parents `[U, D]`, each on its own samples: states
    `obs [U, N, *obs]` with `weights [U, N]`, or sequences `[U, N, T, *obs]` with `[U, N, T]`
    (zero weight on padding). `chunk_elements` bounds the Jacobian elements held at once;
    `mode` forces a way of forming them (default: the analytic sweep where it exists, else
    `prefers_forward`)."""
    samples, steps = obs.shape[1], (obs.shape[2] if sequential else 1)
    outputs, parameters = policy.output_size, parents.shape[1]
    if mode is None and sequential and sweeps.sweep_for(policy) is not None:
        mode = "analytic"
    if mode == "analytic":
        return sweeps.absolute_jacobian_sums(policy, parents, obs, weights, chunk_elements)
    if mode is None:
        mode = "forward" if prefers_forward(parameters, outputs, steps) else "reverse"
    per_parent = samples * steps * outputs * parameters
    group = max(1, chunk_elements // per_parent) if per_parent <= SMALL_JACOBIAN else 1
    sums = _forward_mode_sums if mode == "forward" else _reverse_mode_sums
    if group > 1:
        parts = [map_over_batch(lambda p, o, w: sums(policy, p, o, w, sequential),
                                parents[start:start + group], obs[start:start + group],
                                weights[start:start + group])
                 for start in range(0, len(parents), group)]
        return torch.cat(parts)
    chunk = max(1, chunk_elements // (steps * outputs * parameters))
    return torch.stack([
        sum(sums(policy, params, obs[u, start:start + chunk], weights[u, start:start + chunk],
                 sequential)
            for start in range(0, samples, chunk))
        for u, params in enumerate(parents)
    ])


def _weighted_absolute_sum(
    jacobians: tuple[torch.Tensor, ...], weights: torch.Tensor
) -> torch.Tensor:
    """Σ_m w_m |J_m| `[K, D]` from per-piece Jacobians `[*sample axes, K, *piece]` whose
    leading axes match `weights`."""
    axes = tuple(range(weights.ndim))
    return torch.cat([
        (jacobian.flatten(weights.ndim + 1).abs() * weights[..., None, None]).sum(dim=axes)
        for jacobian in jacobians
    ], dim=-1)


def _reverse_mode_sums(
    policy: Policy, params: torch.Tensor, obs: torch.Tensor, weights: torch.Tensor,
    sequential: bool,
) -> torch.Tensor:
    def sample_outputs(pieces: tuple[torch.Tensor, ...], sample: torch.Tensor) -> torch.Tensor:
        return functional.forward_pieces(policy, pieces, sample[None], sequential)[0]

    jacobians = vmap(jacrev(sample_outputs), in_dims=(None, 0))(
        functional.split_genome(policy, params), obs)
    return _weighted_absolute_sum(jacobians, weights)


def _forward_mode_sums(
    policy: Policy, params: torch.Tensor, obs: torch.Tensor, weights: torch.Tensor,
    sequential: bool,
) -> torch.Tensor:
    def outputs(p: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return functional.forward_pieces(policy, p, obs, sequential)

    return _weighted_absolute_sum(jacfwd(outputs)(functional.split_genome(policy, params)),
                                  weights)
