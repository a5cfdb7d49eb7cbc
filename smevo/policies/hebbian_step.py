"""One step of the Hebbian plastic network as a single autograd node, for backpropagation
through time (A2C).

Autograd through `PlasticPolicy.forward` records every elementwise operation on the `[B, H, H]`
trace (α ⊙ E, the outer product, its scaling by η, the decay, the sum) and in the backward
pass walks back through each of them, allocating a fresh `[B, H, H]` tensor for almost every
one: on a CPU that costs as much as the arithmetic, and a plastic net trained by A2C spent
most of its time there. `hebbian_step` does the same step as one `torch.autograd.Function`
whose forward and backward each touch the trace a handful of times with two allocations.

With row vectors, a_t the input drive (`i2h(x_t)`, or x_t itself for `io="direct"`) and
M = α ⊙ E_{t-1}:

    h_t = tanh(a_t + h_{t-1} w + h_{t-1} M)         E_t = (1 - η) E_{t-1} + η h_{t-1} ⊗ h_t

and, from the adjoints ḡ of h_t and Ē of E_t (`[B, H]`, `[B, H, H]`, E indexed [b, pre, post]):

    δ       = (ḡ + η h_{t-1} Ē) ⊙ (1 - h_t²)         the drive's adjoint ā
    h̄_{t-1} = δ wᵀ + δ Mᵀ + η h_t Ēᵀ
    Ē_{t-1} = (1 - η) Ē + α ⊙ (h_{t-1} ⊗ δ)
    w̄ = Σ_b h_{t-1} ⊗ δ     ᾱ = Σ_b E_{t-1} ⊙ (h_{t-1} ⊗ δ), summed to α's shape
    η̄ = Σ_b h_{t-1} · (Ē h_t) - ⟨Ē, E_{t-1}⟩

(`mutations/plastic_jacobians.py` runs the same sweep for per-output-row Jacobians). The
forward's values equal `PlasticPolicy.forward`'s up to rounding (its operations are grouped
differently); it is used only where autograd, not `torch.func`, differentiates, so the
evolution path (`forward`, vmap, SM-G) is untouched. η is the rate as used (already
clamped, see `plastic.rate`): a tensor, whose clamp autograd differentiates, or a float.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["hebbian_step"]


class _HebbianStep(torch.autograd.Function):
    """(h_t, E_t) from (a_t, h_{t-1}, E_{t-1}, w, α, η); see the module docstring."""

    @staticmethod
    def forward(ctx: Any, drive: torch.Tensor, h: torch.Tensor, trace: torch.Tensor,
                w: torch.Tensor, alpha: torch.Tensor,
                eta: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        plastic = alpha * trace  # M, kept for h̄
        new_h = torch.tanh(torch.baddbmm((drive + h @ w)[:, None, :], h[:, None, :],
                                         plastic).squeeze(1))
        new_trace = (trace * (1 - eta)).addcmul_(h[:, :, None] * eta, new_h[:, None, :])
        ctx.save_for_backward(h, trace, new_h, w, alpha, plastic,
                              *([eta] if isinstance(eta, torch.Tensor) else []))
        ctx.eta = eta if not isinstance(eta, torch.Tensor) else None
        return new_h, new_trace

    @staticmethod
    def backward(ctx: Any, h_grad: torch.Tensor,
                 trace_grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, trace, new_h, w, alpha, plastic, *learned = ctx.saved_tensors
        eta = learned[0] if learned else ctx.eta
        # Contractions as row vector @ matrix (batched matrix @ column vector is slower).
        to_new = (h[:, None, :] @ trace_grad).squeeze(1)  # h_{t-1} Ē
        to_old = (new_h[:, None, :] @ trace_grad.transpose(1, 2)).squeeze(1)  # h_t Ēᵀ
        delta = (h_grad + eta * to_new) * (1 - new_h * new_h)
        hebb = h[:, :, None] * delta[:, None, :]  # h_{t-1} ⊗ δ
        needs = ctx.needs_input_grad
        h_in = trace_in = w_in = alpha_in = eta_in = None
        if needs[1]:
            h_in = torch.baddbmm((delta @ w.T + eta * to_old)[:, None, :], delta[:, None, :],
                                 plastic.transpose(1, 2)).squeeze(1)
        if needs[2]:
            trace_in = (trace_grad * (1 - eta)).addcmul_(alpha, hebb)
        if needs[3]:
            w_in = h.T @ delta
        if needs[5]:
            eta_in = (torch.linalg.vecdot(to_old, h).sum()
                      - torch.linalg.vecdot(trace_grad.flatten(), trace.flatten())).reshape(
                          eta.shape)
        if needs[4]:
            alpha_in = hebb.mul_(trace).sum(0).sum_to_size(alpha.shape)
        return delta, h_in, trace_in, w_in, alpha_in, eta_in


def hebbian_step(drive: torch.Tensor, h: torch.Tensor, trace: torch.Tensor, w: torch.Tensor,
                 alpha: torch.Tensor,
                 eta: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """The new hidden units `[B, H]` and Hebbian trace `[B, H, H]` from the input drive
    `[B, H]`, the previous ones, the fixed weights w `[H, H]`, α (`[H, H]`, `[H]` or `[1]`)
    and the rate η as used (`[1]` or a float), differentiable with respect to every tensor."""
    return _HebbianStep.apply(drive, h, trace, w, alpha, eta)
