"""The hand-written backward sweep (`sweeps`) for stacks of tanh-RNN, GRU and LSTM cells.

Each layer runs forward over the whole sequence, keeping its inputs, previous states and
gates. The sweep then goes from the last step to the first with every row's adjoint of each
layer's h; at each step it descends the stack, the top layer's adjoint seeded by the readout
for the rows of that step, each lower layer's adjoint receiving the input path of the layer
above. With gi = W_ih x + b_ih and gh = W_hh h_{t-1} + b_hh, a tanh cell h = tanh(gi + gh)
has δ = ḡ ⊙ (1 - h²) as the adjoint of both; a GRU (PyTorch's gate order r, z, n)
h = (1 - z) n + z h_{t-1}, n = tanh(gi_n + r ⊙ gh_n) has

    n̄ = ḡ (1 - z),  z̄ = ḡ (h_{t-1} - n),  p̄_n = n̄ (1 - n²),  p̄_z = z̄ z (1 - z),
    p̄_r = p̄_n gh_n r (1 - r),  ḡi = [p̄_r, p̄_z, p̄_n],  ḡh = [p̄_r, p̄_z, p̄_n ⊙ r],

and h_{t-1} receives ḡh W_hh + ḡ z. An LSTM (gates i, f, g, o of gi + gh) carries a row's
adjoint of its cell c too: c̄ += ḡ o (1 - tanh² c), then the gates' adjoints c̄ g, c̄ c_{t-1},
c̄ i, ḡ tanh c through their activations make ḡi = ḡh, and c_{t-1} receives c̄ f. The kept
ḡi and ḡh give W_ih's and W_hh's per-row gradients as Σ_t ḡi_t ⊗ x_t and
Σ_t ḡh_t ⊗ h_{t-1}. Non-linear output activations take the generic path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from smevo.policies import Policy
from smevo.policies.recurrent import RecurrentPolicy

CELLS = ("rnn", "gru", "lstm")


def supports(policy: Policy) -> bool:
    """Whether this sweep covers `policy`: recurrent stacks with a linear readout."""
    return (isinstance(policy, RecurrentPolicy) and policy.cells[0].kind in CELLS
            and isinstance(policy.output_activation, nn.Identity))


def elements_per_sequence(policy: RecurrentPolicy, steps: int) -> int:
    """The per-row adjoints a sequence of `steps` keeps during the sweep (its memory)."""
    rows = steps * policy.output_size
    return rows * steps * sum(2 * cell.weight_hh.shape[0] for cell in policy.cells)


@dataclass
class _Layer:
    """One layer's forward over a sequence: inputs `[S, T, I]`, the h before each step and
    after it `[S, T, H]`, and the gates `[S, T, H]` (a GRU's r, z, n and gh_n; an LSTM's i,
    f, g, o, c_{t-1} and tanh c)."""

    inputs: torch.Tensor
    previous: torch.Tensor
    hidden: torch.Tensor
    gates: tuple[torch.Tensor, ...]


def sequence_gradients(
    policy: RecurrentPolicy, values: dict[str, torch.Tensor], inputs: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-row gradients `[S, R, *shape]` of every cell parameter, rows latest step first,
    and the readout's input (the top layer's h) `[S, T, H]`, for S sequences
    `inputs [S, T, obs]` with parameters `values` (see `sweeps`)."""
    kind = policy.cells[0].kind
    gru = kind == "gru"
    names = [f"cells.{index}." for index in range(len(policy.cells))]
    layers = []
    x = inputs
    for prefix in names:
        layers.append(_forward(x, *(values[prefix + n] for n in
                                    ("weight_ih", "weight_hh", "bias_ih", "bias_hh")), kind))
        x = layers[-1].hidden

    sequences, steps = inputs.shape[:2]
    outputs = policy.output_size
    rows = steps * outputs
    hidden = [layer.hidden.shape[-1] for layer in layers]
    adjoints = [inputs.new_zeros(rows, sequences, size) for size in hidden]
    cell_adjoints = [inputs.new_zeros(rows, sequences, size) if kind == "lstm" else None
                     for size in hidden]
    kept_input = [inputs.new_zeros(sequences, steps, rows, values[p + "bias_ih"].shape[-1])
                  for p in names]
    kept_hidden = [inputs.new_zeros(sequences, steps, rows, values[p + "bias_hh"].shape[-1])
                   for p in names] if gru else kept_input
    readout = values["head.weight"].transpose(0, 1)  # [K, S, H]
    for t in reversed(range(steps)):
        alive = (steps - t) * outputs
        adjoints[-1][alive - outputs:alive] += readout
        from_above = None
        for index in reversed(range(len(layers))):
            layer, prefix = layers[index], names[index]
            grad = adjoints[index][:alive]
            if from_above is not None:
                grad = grad + from_above
            cells = cell_adjoints[index]
            input_grad, hidden_grad, direct, cell_grad = _step_backward(
                layer, t, grad, kind, None if cells is None else cells[:alive])
            if cells is not None:
                cells[:alive] = cell_grad
            kept_input[index][:, t, :alive] = input_grad.transpose(0, 1)
            if gru:
                kept_hidden[index][:, t, :alive] = hidden_grad.transpose(0, 1)
            recurrent = torch.bmm(hidden_grad.transpose(0, 1), values[prefix + "weight_hh"])
            adjoints[index][:alive] = recurrent.transpose(0, 1) + direct
            if index > 0:
                from_above = torch.bmm(input_grad.transpose(0, 1),
                                       values[prefix + "weight_ih"]).transpose(0, 1)

    gradients = {}
    for layer, prefix, by_input, by_hidden in zip(layers, names, kept_input, kept_hidden,
                                                  strict=True):
        gradients[prefix + "weight_ih"] = _per_row(layer.inputs, by_input)
        gradients[prefix + "weight_hh"] = _per_row(layer.previous, by_hidden)
        gradients[prefix + "bias_ih"] = by_input.sum(dim=1)
        gradients[prefix + "bias_hh"] = by_hidden.sum(dim=1)
    return gradients, layers[-1].hidden


def _forward(x: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
             bias_ih: torch.Tensor, bias_hh: torch.Tensor, kind: str) -> _Layer:
    """One layer over the sequence `x [S, T, I]`, as `RecurrentCell.forward` computes it."""
    sequences, steps = x.shape[:2]
    from_input = torch.bmm(x, weight_ih.transpose(1, 2)) + bias_ih[:, None, :]
    h = x.new_zeros(sequences, weight_hh.shape[-1])
    c = torch.zeros_like(h)
    previous, hidden, gates = [], [], []
    for t in range(steps):
        previous.append(h)
        from_hidden = torch.bmm(h[:, None, :], weight_hh.transpose(1, 2))[:, 0] + bias_hh
        if kind == "gru":
            i_r, i_z, i_n = from_input[:, t].chunk(3, dim=-1)
            h_r, h_z, h_n = from_hidden.chunk(3, dim=-1)
            r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            h = (1 - z) * n + z * h
            gates.append(torch.stack([r, z, n, h_n]))
        elif kind == "lstm":
            i, f, g, o = (from_input[:, t] + from_hidden).chunk(4, dim=-1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c_previous, c = c, f * c + i * g
            squashed = torch.tanh(c)
            h = o * squashed
            gates.append(torch.stack([i, f, g, o, c_previous, squashed]))
        else:
            h = torch.tanh(from_input[:, t] + from_hidden)
        hidden.append(h)
    stacked_gates = tuple(torch.stack(gates, dim=2)) if gates else ()  # each [S, T, H]
    return _Layer(x, torch.stack(previous, dim=1), torch.stack(hidden, dim=1), stacked_gates)


def _step_backward(
    layer: _Layer, t: int, grad: torch.Tensor, kind: str, cell_grad: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | float, torch.Tensor | None]:
    """For the alive rows' adjoint `grad [A, S, H]` of the layer's h at step t (and an LSTM's
    `cell_grad` of c_t): the adjoints of gi and gh `[A, S, G*H]`, h_{t-1}'s direct part (a
    GRU's ḡ z; 0 otherwise) and an LSTM's adjoint of c_{t-1} (None otherwise)."""
    if kind == "rnn":
        h = layer.hidden[:, t]
        delta = grad * (1 - h * h)
        return delta, delta, 0.0, None
    if kind == "lstm":
        i, f, g, o, c_previous, squashed = (gate[:, t] for gate in layer.gates)
        cell_grad = cell_grad + grad * o * (1 - squashed * squashed)
        delta = torch.cat([cell_grad * g * i * (1 - i), cell_grad * c_previous * f * (1 - f),
                           cell_grad * i * (1 - g * g), grad * squashed * o * (1 - o)], dim=-1)
        return delta, delta, 0.0, cell_grad * f
    r, z, n, h_n = (gate[:, t] for gate in layer.gates)
    pre_n = grad * (1 - z) * (1 - n * n)
    pre_z = grad * (layer.previous[:, t] - n) * z * (1 - z)
    pre_r = pre_n * h_n * r * (1 - r)
    return (torch.cat([pre_r, pre_z, pre_n], dim=-1), torch.cat([pre_r, pre_z, pre_n * r], dim=-1),
            grad * z, None)


def _per_row(activity: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Σ_t kept_t ⊗ activity_t for every row, `[S, R, G, A]` from `activity [S, T, A]` and the
    kept adjoints `[S, T, R, G]`: one batched matrix product, laid out as the rows need."""
    sequences, steps, rows, size = kept.shape
    by_step = kept.reshape(sequences, steps, rows * size)
    return torch.bmm(by_step.transpose(1, 2), activity).reshape(sequences, rows, size, -1)
