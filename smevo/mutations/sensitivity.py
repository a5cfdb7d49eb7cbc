"""Per-weight output sensitivities (the SM-G family) and the divergence they predict.

Notation (DESIGN.md): y_k(x_m; θ) are the raw outputs on the M samples of the experiences
(states, or valid steps of sequences), J_m = ∂y(x_m)/∂θ, and with `sum_reduction="mean"`

    SUM: s_i = sqrt(Σ_k (1/M Σ_m J_mki)²)      -- signed gradients, may wash out
    ABS: s_i = sqrt(Σ_k (1/M Σ_m |J_mki|)²)    -- per-sample magnitudes
    SO:  s   = sqrt(|H d|), H = 2/M Σ_m J_mᵀ J_m, the exact Hessian of the divergence at θ

`sum_reduction="sum"` drops the 1/M (the reference's SUM). Everything is computed with
`torch.func`: one vmapped vjp for SUM, chunked per-sample Jacobians for ABS, one jvp and one
vjp for SO — never a Python loop over outputs or experiences.

ABS for networks whose every parameter belongs to a `nn.Linear` applied once per sample (the
feedforward MLPs) costs no more than SUM: the per-sample gradient of a linear layer's weight
is the outer product δ_m ⊗ x_m, so Σ_m |δ_m ⊗ x_m| = |Δ|ᵀ|X| — one matrix product per output
in the same vmapped backward pass (Goodfellow's per-example-gradient trick, with |·|).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch.func import jacrev, jvp, vjp, vmap

from smevo import functional
from smevo.experiences import Experiences
from smevo.policies import Policy

SensitivityKind = Literal["SUM", "ABS", "SO"]
KINDS = ("SUM", "ABS", "SO")
REDUCTIONS = ("mean", "sum")

#: Per-sample Jacobians are materialised in chunks of at most this many float32 elements.
DEFAULT_CHUNK_ELEMENTS = 2**25


def sensitivity(
    policy: Policy,
    params: torch.Tensor,
    experiences: Experiences,
    kind: str = "SUM",
    direction: torch.Tensor | None = None,
    *,
    sum_reduction: str = "mean",
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Raw (not post-processed) per-weight sensitivity `s` of the policy's outputs, shape [D].

    `direction` is required for `kind="SO"` (the unit direction d of the Hessian product).
    """
    kind = kind.upper()
    if kind not in KINDS:
        raise ValueError(f"unknown sensitivity kind {kind!r}; valid: {', '.join(KINDS)}")
    if sum_reduction not in REDUCTIONS:
        raise ValueError(
            f"unknown sum_reduction {sum_reduction!r}; valid: {', '.join(REDUCTIONS)}"
        )
    check_inputs(policy, params, experiences)
    if kind == "SO":
        if direction is None:
            raise ValueError("SO sensitivity needs a direction (the unit perturbation direction)")
        if direction.shape != params.shape:
            raise ValueError(
                f"direction has shape {tuple(direction.shape)}, expected {tuple(params.shape)}"
            )
    experiences = experiences.to(params.device)
    return raw_sensitivity(
        policy, params, experiences, kind, direction, sum_reduction, chunk_elements
    )[0]


def raw_sensitivity(
    policy: Policy,
    params: torch.Tensor,
    experiences: Experiences,
    kind: str,
    direction: torch.Tensor | None,
    sum_reduction: str,
    chunk_elements: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`sensitivity` on validated inputs; also returns the parent's outputs on the experiences
    when the computation produced them anyway (SUM and SO), so callers need not recompute."""
    weights = experiences.sample_weights()
    if sum_reduction == "mean":
        weights = weights / experiences.num_samples

    def outputs(flat: torch.Tensor) -> torch.Tensor:
        return functional.forward(policy, flat, experiences)

    if kind == "ABS" and not functional.linear_layers_only(policy):
        return _abs_sensitivity(policy, params, experiences, weights, chunk_elements), None
    if kind == "ABS":
        with AbsoluteLinearGradients():
            return _summed_gradient_norm(outputs, params, weights)
    if kind == "SUM":
        return _summed_gradient_norm(outputs, params, weights)
    raw, y = _second_order(outputs, params, weights, direction)
    return raw, y.detach()


def _second_order(
    outputs, params: torch.Tensor, weights: torch.Tensor, direction: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """SO's sqrt(|H d|) with H d = 2 Σ_m w_m J_mᵀ (J_m d): one jvp and one vjp. Also returns
    the outputs y."""
    y, pullback = vjp(outputs, params)
    _, jd = jvp(outputs, (params,), (direction.to(params.dtype),))
    (hd,) = pullback(2.0 * weights[..., None] * jd)
    return hd.abs().sqrt(), y


def _summed_gradients(
    outputs, params: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_m w_m ∂y_mk/∂θ for every output k, `[K, D]`: one forward, one vjp vmapped over the K
    one-hot cotangents. Also returns the outputs y."""
    y, pullback = vjp(outputs, params)
    k = y.shape[-1]
    eye = torch.eye(k, dtype=y.dtype, device=y.device)
    cotangents = weights[None, ..., None] * eye.reshape(k, *([1] * weights.ndim), k)
    (gradients,) = vmap(pullback)(cotangents)
    return gradients, y


def _summed_gradient_norm(
    outputs, params: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Norm over outputs k of Σ_m w_m ∂y_mk/∂θ, and the outputs y."""
    gradients, y = _summed_gradients(outputs, params, weights)
    return norm_over_outputs(gradients), y.detach()


@dataclass(frozen=True)
class PaddedExperiences:
    """Several archives in one tensor, for work batched over parents or children.

    `observations [A, N, *obs]` (states) or `[A, N, T, *obs]` (sequences), zero-padded to
    the largest archive and the longest sequence; `weights [A, N]` / `[A, N, T]`: 1 on real
    samples, 0 on padding; `sizes` and `steps`: each archive's states or sequences and its
    sequence length (1 for states); `samples [A]`: its number of samples M.
    """

    observations: torch.Tensor
    weights: torch.Tensor
    sizes: list[int]
    steps: list[int]
    samples: torch.Tensor
    sequential: bool

    def sample_weights(self, mean: bool) -> torch.Tensor:
        """`weights`, divided by each archive's M where `mean` (the 1/M of the sums)."""
        if not mean:
            return self.weights
        return self.weights / self.samples.reshape(-1, *[1] * (self.weights.ndim - 1))

    def trimmed(self, outputs: torch.Tensor, archive: int) -> torch.Tensor:
        """One archive's rows of `[N, (T,) K]` outputs, without the padding."""
        if self.sequential:
            return outputs[: self.sizes[archive], : self.steps[archive]]
        return outputs[: self.sizes[archive]]


def padded_experiences(experiences: list[Experiences], device: torch.device) -> PaddedExperiences:
    """The archives of several parents as one `PaddedExperiences` on `device`."""
    sequential = experiences[0].is_sequential
    sizes = [len(e) for e in experiences]
    steps = [e.observations.shape[1] if sequential else 1 for e in experiences]
    lead = (max(sizes), max(steps)) if sequential else (max(sizes),)
    shape = experiences[0].observations.shape[len(lead):]
    obs = torch.zeros(len(experiences), *lead, *shape, device=device)
    weights = torch.zeros(len(experiences), *lead, device=device)
    for i, e in enumerate(experiences):
        rows = (i, slice(0, sizes[i]), *((slice(0, steps[i]),) if sequential else ()))
        obs[rows] = e.observations.to(device)
        weights[rows] = e.sample_weights().to(device)
    samples = torch.tensor([float(e.num_samples) for e in experiences], device=device)
    return PaddedExperiences(obs, weights, sizes, steps, samples, sequential)


def parents_sensitivity(
    policy: Policy,
    parents: torch.Tensor,
    experiences: list[Experiences],
    kind: str,
    sum_reduction: str,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """`raw_sensitivity` (SUM or ABS) of several parents `[P, D]`, each on its own
    experiences, vmapped over the parents (archives padded, padding weighted 0): the same
    values in a few batched passes instead of one pass per parent.
    Returns (raw sensitivity `[D]`, outputs on the parent's experiences, or None where the
    computation does not give them) per parent."""
    padded = padded_experiences(experiences, parents.device)
    weights = padded.sample_weights(sum_reduction == "mean")
    sequential, obs = padded.sequential, padded.observations
    outputs_per_parent = policy.output_size * int(padded.weights[0].numel())
    linear = functional.linear_layers_only(policy)
    if kind == "ABS" and not linear:
        per_parent = outputs_per_parent * parents.shape[1]  # the per-sample Jacobians
        if per_parent > chunk_elements:  # one parent alone needs chunking over its samples
            return [raw_sensitivity(policy, params, e, kind, None, sum_reduction,
                                    chunk_elements) for params, e in zip(parents, experiences,
                                                                         strict=True)]

        def one_parent(flat, samples, w):  # no outputs: the Jacobians do not keep them
            return (_abs_per_sample_total(policy, flat, samples, w, sequential),)
    else:
        per_parent = policy.output_size * parents.shape[1] + outputs_per_parent

        def one_parent(flat, samples, w):
            return _summed_gradients(
                lambda p: functional.forward_observations(policy, p, samples, sequential),
                flat, w)

    chunk = max(1, chunk_elements // per_parent)
    results = []
    for start in range(0, len(parents), chunk):
        part = slice(start, start + chunk)
        with AbsoluteLinearGradients() if kind == "ABS" and linear else contextlib.nullcontext():
            gradients, *outputs = vmap(one_parent)(parents[part], obs[part], weights[part])
        for offset, g in enumerate(gradients):
            y = [padded.trimmed(y[offset], start + offset).detach() for y in outputs]
            results.append((norm_over_outputs(g), y[0] if y else None))
    return results


class _AbsoluteGradientLinear(torch.autograd.Function):
    """`F.linear` whose weight and bias gradients are summed per-sample magnitudes,
    Σ_m |g_m ⊗ x_m| = |G|ᵀ|X| and Σ_m |g_m|; the input gradient is the ordinary one, so the
    signed per-sample δ still flows to the layers below."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return torch.nn.functional.linear(x, weight, bias)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, weight, bias = inputs
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        magnitude = grad.abs()
        grad_weight = magnitude.reshape(-1, magnitude.shape[-1]).T @ x.abs().reshape(
            -1, x.shape[-1])
        grad_bias = magnitude.reshape(-1, magnitude.shape[-1]).sum(0) if ctx.has_bias else None
        return grad @ weight, grad_weight, grad_bias


class AbsoluteLinearGradients(torch.overrides.TorchFunctionMode):
    """Within this mode, every `F.linear` backpropagates summed absolute per-sample
    gradients to its weight and bias (see `_AbsoluteGradientLinear`)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.linear:
            x, weight, *rest = args
            bias = rest[0] if rest else kwargs.get("bias")
            return _AbsoluteGradientLinear.apply(x, weight, bias)
        return func(*args, **kwargs)


def _abs_per_sample_total(
    policy: Policy, params: torch.Tensor, obs: torch.Tensor, weights: torch.Tensor,
    sequential: bool,
) -> torch.Tensor:
    """Σ_m w_m |J_m| `[K, D]` over the samples `obs` (states or sequences) from per-sample
    Jacobians (each sequence's Jacobian covers its steps)."""

    def one_sample(flat: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        return functional.forward_observations(policy, flat, sample[None], sequential)[0]

    jac = vmap(jacrev(one_sample), in_dims=(None, 0))(params, obs)  # [n, (T,) K, D]
    return (jac.abs() * weights[..., None, None]).sum(dim=tuple(range(weights.ndim)))


def _abs_sensitivity(
    policy: Policy,
    params: torch.Tensor,
    experiences: Experiences,
    weights: torch.Tensor,
    chunk_elements: int,
) -> torch.Tensor:
    """Norm over outputs of the weighted sum of per-sample |Jacobians|, in bounded memory."""
    sequential = experiences.is_sequential
    obs = experiences.observations
    steps = obs.shape[1] if sequential else 1
    per_sample_elements = steps * policy.output_size * params.numel()
    chunk = max(1, chunk_elements // per_sample_elements)
    total = params.new_zeros(policy.output_size, params.numel())
    for start in range(0, len(experiences), chunk):
        total += _abs_per_sample_total(policy, params, obs[start : start + chunk],
                                       weights[start : start + chunk], sequential)
    return norm_over_outputs(total)


def norm_over_outputs(per_output: torch.Tensor) -> torch.Tensor:
    """L2 norm over the leading (output) axis of a `[K, D]` tensor, as a vector-matrix product:
    `norm(dim=0)` over the strided axis is ~80x slower for large D, `sum(dim=0)` ~3x."""
    norms = (per_output.new_ones(per_output.shape[0]) @ per_output.square()).sqrt_()
    if not bool(torch.isfinite(norms).all()):  # float32 squares overflow from about 1.8e19
        wide = per_output.double()
        norms = (wide.new_ones(wide.shape[0]) @ wide.square()).sqrt_().to(per_output.dtype)
    return norms


def directional_sensitivities(
    policy: Policy,
    parents: torch.Tensor,
    experiences: list[Experiences],
    directions: torch.Tensor,
    parent_of: list[int],
    kind: str,
    sum_reduction: str = "mean",
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> list[torch.Tensor] | list[float]:
    """What SM-G-SO and SM-G-FO compute per child, for many children at once: child c has
    direction `directions[c]` and parent `parents[parent_of[c]]` with its `experiences`.
    `kind="SO"`: the raw sensitivity sqrt(|H d|) `[D]` per child (as `raw_sensitivity`);
    `kind="FO"`: D₁(d) per child (as `first_order_divergence`). Vmapped over the children in
    chunks (archives padded with zero weight)."""
    padded = padded_experiences(experiences, parents.device)
    weights = padded.sample_weights(kind == "FO" or sum_reduction == "mean")
    obs, sequential = padded.observations, padded.sequential

    def one_child(flat, samples, w, direction):
        def outputs(p: torch.Tensor) -> torch.Tensor:
            return functional.forward_observations(policy, p, samples, sequential)

        if kind == "SO":
            return _second_order(outputs, flat, w, direction)[0]
        _, jd = jvp(outputs, (flat,), (direction,))
        return (w[..., None] * jd.square()).sum()

    chunk = max(1, chunk_elements // (2 * parents.shape[1] + obs[0].numel()))
    rows = torch.as_tensor(parent_of, device=parents.device)
    values = []
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        values.append(vmap(one_child)(parents[part], obs[part], weights[part],
                                      directions[start:start + chunk]))
    stacked = torch.cat(values)
    return list(stacked) if kind == "SO" else stacked.tolist()


def first_order_divergence(
    policy: Policy, params: torch.Tensor, direction: torch.Tensor, experiences: Experiences
) -> float:
    """D₁(δ) = 1/M Σ_m ‖J_m δ‖², the first-order prediction of the divergence of θ + δ."""
    experiences = experiences.to(params.device)

    def outputs(flat: torch.Tensor) -> torch.Tensor:
        return functional.forward(policy, flat, experiences)

    _, jd = jvp(outputs, (params,), (direction.to(params.dtype),))
    weights = experiences.sample_weights() / experiences.num_samples
    return float((weights[..., None] * jd.square()).sum())


def postprocess(s: torch.Tensor, *, normalize: bool = True, floor: float = 0.01) -> torch.Tensor:
    """Turn raw sensitivities into divisors: optionally divide by the mean of the non-zero
    entries (so 1 is an average weight), map exact zeros to 1, then floor at `floor`.

    An infinite sensitivity (a weight whose effect overflowed) stays infinite, so that weight
    does not move, and is left out of the mean, so the other weights keep their scale."""
    nonzero = s > 0
    scale = 1.0
    if normalize:
        finite = nonzero & torch.isfinite(s)
        count = finite.sum()
        # The mean over non-zero entries is the plain sum over the count of non-zeros.
        total = torch.where(finite, s, 0.0).sum()
        scale = torch.where(count > 0, count / total.clamp(min=1e-38), 1.0)
    return torch.where(nonzero, s * scale, 1.0).clamp_(min=floor)


def divergence_of_outputs(
    child_outputs: torch.Tensor, parent_outputs: torch.Tensor, experiences: Experiences
) -> float:
    """D = 1/M Σ_m Σ_k (y_child − y_parent)² over the valid samples."""
    weights = experiences.sample_weights().to(child_outputs.device)
    squared = (child_outputs - parent_outputs).double().square().sum(dim=-1)
    value = float((weights.double() * squared).sum() / experiences.num_samples)
    return value if math.isfinite(value) else math.inf


def divergence(
    policy: Policy, params: torch.Tensor, child: torch.Tensor, experiences: Experiences
) -> float:
    """The paper's divergence D between parent and child genomes on the experiences."""
    check_inputs(policy, params, experiences)
    functional.check_genome(policy, child)
    experiences = experiences.to(params.device)
    with torch.no_grad():
        parent_outputs = functional.forward(policy, params, experiences)
        child_outputs = functional.forward(policy, child, experiences)
    return divergence_of_outputs(child_outputs, parent_outputs, experiences)


PAIR_CHUNK_ELEMENTS = 1 << 22
"""Observation elements per batched forward in `divergences` (a memory bound)."""


def divergences(
    policy: Policy,
    parents: torch.Tensor,
    experiences: list[Experiences],
    children: torch.Tensor,
    parent_of: list[int] | None = None,
) -> list[float]:
    """D of each child `children[c]` against its parent `parents[parent_of[c]]` (default: the
    parent of the same row) on that parent's `experiences`, in batched population forwards
    (`ParentOutputs`)."""
    parent_of = list(range(len(children))) if parent_of is None else list(parent_of)
    return ParentOutputs(policy, parents, experiences).divergences(children, parent_of)


class ParentOutputs:
    """Parents' outputs on their own experiences (padded to the largest archive and masked),
    computed once, against which children's divergences are measured in batched forwards:
    for a generation's children, or for the rounds of their lockstep line searches."""

    def __init__(
        self, policy: Policy, parents: torch.Tensor, experiences: list[Experiences]
    ) -> None:
        self.policy = policy
        self.padded = padded_experiences(experiences, parents.device)
        per_genome = max(1, self.padded.observations[0].numel())
        self.chunk = max(1, PAIR_CHUNK_ELEMENTS // per_genome)
        self.outputs = self._forward(parents, list(range(len(parents))))

    def _forward(self, genomes: torch.Tensor, rows: list[int]) -> torch.Tensor:
        chunk, padded = self.chunk, self.padded
        with torch.no_grad():
            return torch.cat([
                functional.population_outputs(
                    self.policy, genomes[start:start + chunk],
                    padded.observations[rows[start:start + chunk]], padded.sequential)
                for start in range(0, len(rows), chunk)
            ])

    def divergences(self, children: torch.Tensor, parent_of: list[int]) -> list[float]:
        """D of each child against parent `parent_of[c]` on that parent's experiences."""
        child_outputs = self._forward(children, parent_of)
        squared = (child_outputs - self.outputs[parent_of]).double().square().sum(dim=-1)
        weighted = squared * self.padded.weights[parent_of]
        values = weighted.flatten(1).sum(dim=1) / self.padded.samples[parent_of]
        return [v if math.isfinite(v) else math.inf for v in values.tolist()]


def check_genome(policy: Policy, params: torch.Tensor) -> None:
    """A `ValueError` for a genome of the wrong length or with NaN/inf entries."""
    functional.check_genome(policy, params)
    # One reduction instead of an elementwise test: a sum is finite iff every entry is
    # (barring overflow near 1e38, which is no usable genome either).
    if not bool(torch.isfinite(params.sum())):
        raise ValueError("parent genome has non-finite values (NaN or inf)")


def check_inputs(policy: Policy, params: torch.Tensor, experiences: Experiences | None) -> None:
    """Clear `ValueError`s for a wrong-length or non-finite genome and for experiences whose
    observations do not fit the policy."""
    check_genome(policy, params)
    if experiences is None:
        raise ValueError("this operator needs experiences (the parent's recorded observations)")
    spec = getattr(policy, "spec", None)
    if spec is not None and spec.observation_space.shape is not None:
        expected = tuple(spec.observation_space.shape)
        got = tuple(experiences.observations.shape[2 if experiences.is_sequential else 1 :])
        if got != expected:
            kind = "sequences" if experiences.is_sequential else "states"
            raise ValueError(
                f"experiences hold {kind} of observation shape {got}, "
                f"but the policy expects {expected}"
            )
    if experiences.is_sequential != policy.is_recurrent:
        need = "from_sequences" if policy.is_recurrent else "from_states"
        raise ValueError(
            f"this policy needs experiences built with Experiences.{need}"
        )
