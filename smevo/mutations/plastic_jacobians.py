"""Σ_m w_m |J_m| for plastic and neuromodulated RNNs by a hand-written backward through time.

SM-G-ABS on a plastic network needs, for every step m of every recorded sequence, the
Jacobian of that step's outputs through all earlier steps and the plastic trace. The generic
transforms (`jacobians.py`) form it with `vmap(jacrev)`, which pays autograd's per-row
bookkeeping on a graph of hundreds of steps; a plastic net's step is simple enough to
differentiate by hand. This module runs the forward once, keeping h and the trace, then
one backward sweep in which every output row (a step's output k) carries its own adjoint of
h and of the trace: rows join the sweep at their own step, so a row is only ever carried
through its prefix. The per-row adjoints of the pre-activations are kept, and each
parameter's per-row gradient is then one batched matrix product with the forward's
activities (the per-example-gradient trick: a weight's gradient is a sum of outer products).

With h_t = tanh(a_t + h_{t-1} (w + α ⊙ E_{t-1})), y_t = W_out h_t + b_out and
a_t = W_in x_t + b_in, a row's adjoints ḡ (of h_t) and Ē (of E_t) go from t = T down to 1:

    ḡ += ∂E_t/∂h_t · Ē                (the trace rule's part, `Trace.backward`)
    δ_t = ḡ ⊙ (1 - h_t²)              (adjoint of the pre-activation)
    ḡ ← δ_t (w + α ⊙ E_{t-1})ᵀ + ∂E_t/∂h_{t-1} · Ē
    Ē ← ∂E_t/∂E_{t-1} · Ē + α ⊙ (h_{t-1} ⊗ δ_t)

after which W̄ = Σ_t h_{t-1} ⊗ δ_t, W̄_in = Σ_t δ_t ⊗ x_t, b̄_in = Σ_t δ_t; ᾱ and the
rule's own parameters are summed during the sweep. Two trace rules are covered:
Hebbian, E_t = (1 - η) E_{t-1} + η h_{t-1} ⊗ h_t (`plastic`, rule "hebb"), and
neuromodulated, E_t = clip(E_{t-1} + m_t ⊙ (h_{t-1} ⊗ h_t)) with m_t = fanout(tanh(h2mod(h_t)))
(`neuromod`, simple modulation, tanh modulator). Other variants take the generic path; the
tests hold both paths equal.
"""

from __future__ import annotations

import torch
from torch import nn

from smevo.policies import Policy
from smevo.policies.plastic import NeuromodPolicy, PlasticLayer, PlasticPolicy


def supports(policy: Policy) -> bool:
    """Whether the hand-written sweep covers this policy: the Hebbian `plastic` net, and the
    `neuromod` net with simple modulation by a tanh modulator."""
    if isinstance(policy, PlasticPolicy):
        return policy.rule == "hebb"
    return (isinstance(policy, NeuromodPolicy) and not policy.retroactive
            and isinstance(policy.modulator_activation, nn.Tanh))


def elements_per_sequence(policy: PlasticLayer, steps: int) -> int:
    """The per-row adjoints a sequence of `steps` keeps during the sweep (its memory)."""
    return steps * policy.output_size * steps * policy.hidden


def _broadcast_alpha(alpha: torch.Tensor) -> torch.Tensor:
    """α `[S, *shape]` as it broadcasts against a `[S, H, H]` trace (see PlasticLayer)."""
    return alpha if alpha.ndim == 3 else alpha.reshape(len(alpha), 1, -1)


class _HebbianTrace:
    """E_t = (1 - η) E_{t-1} + η h_{t-1} ⊗ h_t, η = clamp(eta, 0, 1) learned or fixed."""

    def __init__(self, policy: PlasticPolicy, values: dict[str, torch.Tensor], rows: int) -> None:
        sequences = len(values["w"])
        if isinstance(policy.eta, float):
            self.eta = values["w"].new_full((sequences, 1, 1), policy.eta)
            self.eta_passes = None
        else:  # torch.clamp passes the gradient inside [0, 1], bounds included
            raw = values["eta"].reshape(sequences, 1, 1)
            self.eta = raw.clamp(0.0, 1.0)
            self.eta_passes = ((raw >= 0.0) & (raw <= 1.0)).to(raw.dtype).reshape(-1)
            self.eta_adjoint = raw.new_zeros(rows, sequences)

    def forward(self, trace: torch.Tensor, previous: torch.Tensor,
                current: torch.Tensor) -> torch.Tensor:
        return (1 - self.eta) * trace + self.eta * previous[:, :, None] * current[:, None, :]

    def backward(self, trace_grad: torch.Tensor, previous: torch.Tensor,
                 current: torch.Tensor, trace: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The rule's parts of the adjoints of h_t and h_{t-1} for the alive rows; turns
        `trace_grad` (Ē_t) into the rule's part of Ē_{t-1}, in place."""
        eta = self.eta[:, 0]
        # Contractions as row vector @ matrix: batched matrix @ column vector is ~5x slower.
        to_current = eta * (previous[:, None, :] @ trace_grad).squeeze(-2)
        trace_current = (current[:, None, :] @ trace_grad.transpose(-1, -2)).squeeze(-2)
        if self.eta_passes is not None:  # ⟨Ē, h_{t-1} ⊗ h_t⟩ is h_{t-1} · (Ē h_t)
            alive = len(trace_grad)
            self.eta_adjoint[:alive] += (torch.linalg.vecdot(trace_current, previous)
                                         - torch.linalg.vecdot(trace_grad.flatten(-2),
                                                               trace.flatten(-2)))
        trace_grad.mul_(1 - self.eta)
        return to_current, eta * trace_current

    def gradients(self) -> dict[str, torch.Tensor]:
        """Per-row gradients `[S, R, *shape]` of the rule's parameters."""
        if self.eta_passes is None:
            return {}
        return {"eta": (self.eta_adjoint * self.eta_passes).transpose(0, 1)[..., None]}


class _ModulatedTrace:
    """E_t = clip(E_{t-1} + m_t ⊙ (h_{t-1} ⊗ h_t), ±clip), the modulation m_t[j] = a_j M_t + b_j
    (one shared M_t without fanout) of the modulator M_t = tanh(h2mod(h_t))."""

    def __init__(self, policy: NeuromodPolicy, values: dict[str, torch.Tensor],
                 rows: int) -> None:
        self.clip = policy.clip
        self.mod_weight, self.mod_bias = values["h2mod.weight"][:, 0], values["h2mod.bias"]
        self.fanout = policy.fanout is not None
        if self.fanout:
            self.fan_weight, self.fan_bias = values["fanout.weight"][..., 0], values["fanout.bias"]
        sequences, hidden = self.mod_weight.shape
        self.adjoints = {name: self.mod_weight.new_zeros(rows, sequences, *shape) for name, shape
                         in (("h2mod.weight", (hidden,)), ("h2mod.bias", (1,)))}
        if self.fanout:
            self.adjoints.update({name: self.mod_weight.new_zeros(rows, sequences, hidden)
                                  for name in ("fanout.weight", "fanout.bias")})

    def modulation(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """M_t `[S, 1]` and m_t `[S, H]` (or `[S, 1]` without fanout) for h_t `[S, H]`."""
        modulator = torch.tanh(torch.linalg.vecdot(current, self.mod_weight)[:, None]
                               + self.mod_bias)
        change = modulator * self.fan_weight + self.fan_bias if self.fanout else modulator
        return modulator, change

    def forward(self, trace: torch.Tensor, previous: torch.Tensor,
                current: torch.Tensor) -> torch.Tensor:
        _, change = self.modulation(current)
        hebb = previous[:, :, None] * current[:, None, :]
        return torch.clamp(trace + change[:, None, :] * hebb, -self.clip, self.clip)

    def backward(self, trace_grad: torch.Tensor, previous: torch.Tensor,
                 current: torch.Tensor, trace: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """As `_HebbianTrace.backward`."""
        modulator, change = self.modulation(current)
        unclipped = trace + change[:, None, :] * (previous[:, :, None] * current[:, None, :])
        trace_grad.mul_(unclipped.abs() < self.clip)  # now Ē_{t-1}'s part: hardtanh's gradient
        pre_trace = (previous[:, None, :] @ trace_grad).squeeze(-2)  # Σ_i h_{t-1,i} Ē_ij
        change_grad = current * pre_trace  # adjoint of m_t
        to_previous = ((change * current)[:, None, :] @ trace_grad.transpose(-1, -2)).squeeze(-2)
        alive = len(trace_grad)
        if self.fanout:
            self.adjoints["fanout.weight"][:alive] += change_grad * modulator
            self.adjoints["fanout.bias"][:alive] += change_grad
            modulator_grad = torch.linalg.vecdot(change_grad, self.fan_weight)
        else:
            modulator_grad = change_grad.sum(-1)
        pre_grad = modulator_grad * (1 - modulator[:, 0] ** 2)  # [A, S]
        self.adjoints["h2mod.weight"][:alive] += pre_grad[..., None] * current
        self.adjoints["h2mod.bias"][:alive] += pre_grad[..., None]
        to_current = change * pre_trace + pre_grad[..., None] * self.mod_weight
        return to_current, to_previous

    def gradients(self) -> dict[str, torch.Tensor]:
        """Per-row gradients `[S, R, *shape]` of the rule's parameters."""
        return {name: adjoint.transpose(0, 1) for name, adjoint in self.adjoints.items()}


def sequence_gradients(
    policy: PlasticLayer, values: dict[str, torch.Tensor], inputs: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-row gradients `[S, R, *shape]` of every parameter but the readout's, rows latest
    step first, and the readout's input h_1..h_T `[S, T, H]`, for S sequences
    `inputs [S, T, obs]` with parameters `values` (see `sweeps`)."""
    sequences, steps = inputs.shape[:2]
    outputs, rows = policy.output_size, steps * policy.output_size
    rule = (_HebbianTrace if isinstance(policy, PlasticPolicy) else _ModulatedTrace)(
        policy, values, rows)
    w, alpha = values["w"], _broadcast_alpha(values["alpha"])
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
            traces.append(rule.forward(trace, previous, current))
    h = torch.stack(hidden, dim=1)
    e = torch.stack(traces, dim=1)

    # Backward: rows ordered by step, latest first, so that the rows alive at step t are a
    # prefix, and rows lead the adjoints' axes, so that prefix is contiguous.
    eye = torch.eye(outputs, dtype=inputs.dtype, device=inputs.device)
    readout = (eye[:, None].expand(-1, sequences, -1)
               if policy.direct else values["head.weight"].transpose(0, 1))  # [K, S, H]
    h_adjoint = inputs.new_zeros(rows, sequences, policy.hidden)
    trace_adjoint = inputs.new_zeros(rows, sequences, policy.hidden, policy.hidden)
    # α ⊙ E's per-row gradient is summed in the sweep (as a product after it, E varying with
    # t would need a strided copy of every δ).
    alpha_gradient = inputs.new_zeros(rows, sequences, *alpha.shape[1:])
    deltas = inputs.new_zeros(sequences, steps, rows, policy.hidden)
    for t in reversed(range(steps)):
        alive = (steps - t) * outputs
        h_adjoint[alive - outputs:alive] += readout
        previous, current, trace = h[:, t], h[:, t + 1], e[:, t]
        trace_grad = trace_adjoint[:alive]
        to_current, to_previous = rule.backward(trace_grad, previous, current, trace)
        delta = (h_adjoint[:alive] + to_current) * (1 - current * current)
        deltas[:, t, :alive] = delta.transpose(0, 1)
        recurrent = (w + alpha * trace).transpose(1, 2)
        h_adjoint[:alive] = (torch.bmm(delta.transpose(0, 1), recurrent).transpose(0, 1)
                             + to_previous)
        trace_grad.addcmul_(alpha * previous[:, :, None], delta[:, :, None, :])
        _accumulate_alpha(alpha_gradient[:alive], previous, trace, delta)

    gradients = {**_per_row_gradients(policy, inputs, h, deltas), **rule.gradients(),
                 "alpha": alpha_gradient.transpose(0, 1)}
    return gradients, h[:, 1:]


def _per_row_gradients(
    policy: PlasticLayer, inputs: torch.Tensor, h: torch.Tensor, deltas: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The per-row gradients `[S, R, *shape]` of w and the input layer, from the per-row
    pre-activation adjoints `deltas [S, T, R, H]`."""
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
