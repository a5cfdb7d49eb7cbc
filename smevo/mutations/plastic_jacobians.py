"""Σ_m w_m |J_m| for the Hebbian plastic RNN by a hand-written backward through time.

SM-G-ABS on a plastic network needs, for every step m of every recorded sequence, the
Jacobian of that step's outputs through all earlier steps and the Hebbian trace. The generic
transforms (`jacobians.py`) form it with `vmap(jacrev)`, which pays autograd's per-row
bookkeeping on a graph of hundreds of steps; a plastic net's step is simple enough to
differentiate by hand. This module runs the forward once, keeping h and the trace, then
one backward sweep in which every output row (a step's output k) carries its own adjoint of
h and of the trace: rows join the sweep at their own step, so a row is only ever carried
through its prefix. The per-row adjoints of the pre-activations are kept, and each
parameter's per-row gradient is then one batched matrix product with the forward's
activities (the per-example-gradient trick: a weight's gradient is a sum of outer products).

With h_t = tanh(a_t + h_{t-1} (w + α ⊙ E_{t-1})), E_t = (1 - η) E_{t-1} + η h_{t-1} ⊗ h_t
and y_t = W_out h_t + b_out (a_t = W_in x_t + b_in), the sweep is, for a row's adjoints ḡ
(of h_t) and Ē (of E_t), from t = T down to 1:

    ḡ += η h_{t-1} Ē              (E_t depends on h_t)
    δ_t = ḡ ⊙ (1 - h_t²)          (adjoint of the pre-activation)
    ḡ ← δ_t (w + α ⊙ E_{t-1})ᵀ + η Ē h_t
    η̄ += ⟨Ē, h_{t-1} ⊗ h_t - E_{t-1}⟩
    Ē ← (1 - η) Ē + α ⊙ (h_{t-1} ⊗ δ_t)

after which W̄ = Σ_t h_{t-1} ⊗ δ_t, ᾱ = Σ_t (h_{t-1} ⊗ δ_t) ⊙ E_{t-1} (reduced to α's
shape), W̄_in = Σ_t δ_t ⊗ x_t, b̄_in = Σ_t δ_t. It serves `PlasticPolicy` with the Hebbian
rule (any α, io, learned or fixed η); other plastic variants take the generic path, and the
tests hold both paths equal.
"""

from __future__ import annotations

import torch

from smevo.policies import Policy
from smevo.policies.plastic import PlasticPolicy


def supports(policy: Policy) -> bool:
    """Whether the hand-written sweep covers this policy (the Hebbian `plastic` net)."""
    return isinstance(policy, PlasticPolicy) and policy.rule == "hebb"


def absolute_jacobian_sums(
    policy: PlasticPolicy,
    parents: torch.Tensor,
    obs: torch.Tensor,
    weights: torch.Tensor,
    chunk_elements: int,
) -> torch.Tensor:
    """Σ_m w_m |J_m| `[U, K, D]` for parents `[U, D]` on their sequences `obs [U, N, T, *obs]`
    with weights `[U, N, T]`, as `jacobians.absolute_jacobian_sums` defines it.
    `chunk_elements` bounds the per-row adjoints kept at once (parents are taken in groups)."""
    units, samples, steps = obs.shape[:3]
    rows = steps * policy.output_size
    per_parent = samples * rows * steps * policy.hidden
    group = max(1, chunk_elements // per_parent)
    sums = []
    for start in range(0, units, group):
        part = slice(start, start + group)
        count = len(parents[part])
        sequence_weights = weights[part].reshape(count * samples, steps)
        per_sequence = _PerSequenceParameters(policy, parents[part], samples)
        inputs = obs[part].reshape(count * samples, steps, -1).to(parents.dtype)
        sums.append(_sequence_sums(policy, per_sequence, inputs, sequence_weights)
                    .reshape(count, samples, policy.output_size, -1).sum(dim=1))
    return torch.cat(sums)


class _PerSequenceParameters:
    """The parents' parameters by name, repeated for each of their sequences: `[S, *shape]`."""

    def __init__(self, policy: PlasticPolicy, parents: torch.Tensor, samples: int) -> None:
        self.names = [name for name, _ in policy.named_parameters()]
        shapes = [p.shape for _, p in policy.named_parameters()]
        pieces = torch.split(parents, [p.numel() for p in policy.parameters()], dim=1)
        self.values = {
            name: piece.reshape(len(parents), *shape).repeat_interleave(samples, dim=0)
            for name, piece, shape in zip(self.names, pieces, shapes, strict=True)
        }
        sequences = len(parents) * samples
        if isinstance(policy.eta, float):
            self.eta = parents.new_full((sequences, 1, 1), policy.eta)
            self.eta_passes = None
        else:
            raw = self.values["eta"].reshape(sequences, 1, 1)
            self.eta = raw.clamp(0.0, 1.0)
            self.eta_passes = ((raw >= 0.0) & (raw <= 1.0)).to(parents.dtype).reshape(-1, 1)
        alpha = self.values["alpha"]
        # α as it broadcasts against a [S, H, H] trace (see PlasticLayer).
        self.alpha = alpha if alpha.ndim == 3 else alpha.reshape(sequences, 1, -1)


def _sequence_sums(
    policy: PlasticPolicy,
    params: _PerSequenceParameters,
    inputs: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Σ_t w_t |J_t| `[S, K, D]` for each of S sequences `inputs [S, T, obs]`."""
    values = params.values
    sequences, steps = inputs.shape[:2]
    outputs = policy.output_size
    w, alpha, eta = values["w"], params.alpha, params.eta
    drive = inputs if policy.direct else (
        torch.einsum("sto,sho->sth", inputs, values["i2h.weight"])
        + values["i2h.bias"][:, None, :])

    # Forward: h_0..h_T `[S, T+1, H]` and the traces E_0..E_{T-1} each step starts from.
    hidden = [inputs.new_zeros(sequences, policy.hidden)]
    traces = [inputs.new_zeros(sequences, policy.hidden, policy.hidden)]
    for t in range(steps):
        previous, trace = hidden[-1], traces[-1]
        current = torch.tanh(drive[:, t] + torch.einsum(
            "si,sij->sj", previous, w + alpha * trace))
        hidden.append(current)
        if t + 1 < steps:
            traces.append((1 - eta) * trace + eta * previous[:, :, None] * current[:, None, :])
    h = torch.stack(hidden, dim=1)
    e = torch.stack(traces, dim=1)

    # Backward: rows ordered by step, latest first, so that the rows alive at step t are a
    # prefix, and rows lead the adjoints' axes, so that prefix is contiguous.
    readout = (torch.eye(outputs, dtype=inputs.dtype)[:, None].expand(-1, sequences, -1)
               if policy.direct else values["head.weight"].transpose(0, 1))  # [K, S, H]
    rows = steps * outputs
    h_adjoint = inputs.new_zeros(rows, sequences, policy.hidden)
    trace_adjoint = inputs.new_zeros(rows, sequences, policy.hidden, policy.hidden)
    eta_adjoint = inputs.new_zeros(rows, sequences)
    # α ⊙ E's per-row gradient is summed in the sweep (as a product after it, E varying with
    # t would need a strided copy of every δ).
    alpha_gradient = inputs.new_zeros(rows, sequences, *alpha.shape[1:])
    deltas = inputs.new_zeros(sequences, steps, rows, policy.hidden)
    keep = 1 - eta
    for t in reversed(range(steps)):
        alive = (steps - t) * outputs
        h_adjoint[alive - outputs:alive] += readout
        previous, current, trace = h[:, t], h[:, t + 1], e[:, t]
        grad, trace_grad = h_adjoint[:alive], trace_adjoint[:alive]
        # Contractions as row vector @ matrix: batched matrix @ column vector is ~5x slower.
        grad = grad + eta[:, 0] * (previous[:, None, :] @ trace_grad).squeeze(-2)
        delta = grad * (1 - current * current)
        deltas[:, t, :alive] = delta.transpose(0, 1)
        trace_current = (current[:, None, :] @ trace_grad.transpose(-1, -2)).squeeze(-2)
        if params.eta_passes is not None:  # ⟨Ē, h_{t-1} ⊗ h_t⟩ is h_{t-1} · (Ē h_t)
            eta_adjoint[:alive] += (torch.linalg.vecdot(trace_current, previous) - torch.linalg
                                    .vecdot(trace_grad.flatten(-2), trace.flatten(-2)))
        recurrent = (w + alpha * trace).transpose(1, 2)
        h_adjoint[:alive] = (torch.bmm(delta.transpose(0, 1), recurrent).transpose(0, 1)
                             + eta[:, 0] * trace_current)
        trace_grad.mul_(keep).addcmul_(alpha * previous[:, :, None], delta[:, :, None, :])
        _accumulate_alpha(alpha_gradient[:alive], previous, trace, delta)

    gradients = _per_row_gradients(policy, params, inputs, h, deltas, eta_adjoint)
    gradients["alpha"] = alpha_gradient.transpose(0, 1)
    return _weighted_absolute(policy, gradients, h, weights)


def _per_row_gradients(
    policy: PlasticPolicy,
    params: _PerSequenceParameters,
    inputs: torch.Tensor,
    h: torch.Tensor,
    deltas: torch.Tensor,
    eta_adjoint: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """The per-row gradients `[S, R, *shape]` of w, the input layer and η, from the per-row
    pre-activation adjoints `deltas [S, T, R, H]` (α's is summed in the sweep, the
    readout's formed directly by `_weighted_absolute`)."""
    previous = h[:, :-1]
    sequences, steps, rows, hidden = deltas.shape
    by_step = deltas.reshape(sequences, steps, rows * hidden)

    def per_row(activity: torch.Tensor) -> torch.Tensor:
        """Σ_t activity_t ⊗ δ_t for every row, `[S, R, A, H]` from `activity [S, T, A]`."""
        product = torch.bmm(activity.transpose(1, 2), by_step)  # [S, A, R * H]
        return product.reshape(sequences, -1, rows, hidden).transpose(1, 2)

    gradients = {"w": per_row(previous)}
    if not policy.direct:
        gradients["i2h.weight"] = per_row(inputs).transpose(2, 3)
        gradients["i2h.bias"] = deltas.sum(dim=1)
    if params.eta_passes is not None:
        gradients["eta"] = (eta_adjoint.transpose(0, 1) * params.eta_passes)[..., None]
    return gradients


def _accumulate_alpha(
    gradient: torch.Tensor, previous: torch.Tensor, trace: torch.Tensor, delta: torch.Tensor
) -> None:
    """Add one step's (h_{t-1} ⊗ δ_t) ⊙ E_{t-1}, reduced to α's shape, to each alive row's
    `gradient [A, S, *alpha]`, in place."""
    if gradient.shape[-2] > 1:  # per connection
        gradient.addcmul_(previous[:, :, None] * trace, delta[:, :, None, :])
        return
    per_post = delta * (previous[:, None, :] @ trace).squeeze(-2)  # [A, S, H]
    gradient += per_post[..., None, :] if gradient.shape[-1] > 1 else per_post.sum(
        -1, keepdim=True)[..., None, :]


def _weighted_absolute(
    policy: PlasticPolicy,
    gradients: dict[str, torch.Tensor],
    h: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Σ_t w_t |∂y_t/∂θ| `[S, K, D]` in genome order, from the trunk's per-row gradients
    (rows latest step first) and, for the readout, h itself: ∂y_tk/∂W_out[k] = h_t."""
    sequences, steps = weights.shape
    outputs = policy.output_size
    latest_first = weights.flip(1)
    pieces = []
    for name in (name for name, _ in policy.named_parameters()):
        if name == "head.weight":
            per_output = torch.einsum("st,sth->sh", weights, h[:, 1:].abs())
            eye = torch.eye(outputs, dtype=h.dtype)
            pieces.append((eye[None, :, :, None] * per_output[:, None, None, :])
                          .reshape(sequences, outputs, -1))
        elif name == "head.bias":
            eye = torch.eye(outputs, dtype=h.dtype)
            pieces.append(eye[None] * weights.sum(dim=1)[:, None, None])
        else:
            gradient = gradients[name].reshape(sequences, steps, outputs, -1)
            pieces.append(torch.einsum("st,stkd->skd", latest_first, gradient.abs()))
    return torch.cat(pieces, dim=-1)
