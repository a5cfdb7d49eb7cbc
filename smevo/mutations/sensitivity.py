"""Per-weight output sensitivities (the SM-G family) and the divergence they predict.

Notation (DESIGN.md): y_k(x_m; θ) are the raw outputs on the M samples of the experiences
(states, or valid steps of sequences), J_m = ∂y(x_m)/∂θ, and with `sum_reduction="mean"`

    SUM: s_i = sqrt(Σ_k (1/M Σ_m J_mki)²)      -- signed gradients, may wash out
    ABS: s_i = sqrt(Σ_k (1/M Σ_m |J_mki|)²)    -- per-sample magnitudes
    SO:  s   = sqrt(|H d|), H = 2/M Σ_m J_mᵀ J_m, the exact Hessian of the divergence at θ

`sum_reduction="sum"` drops the 1/M (the reference's SUM). Everything is computed with
`torch.func`, batched over parents (SUM, ABS) or children (SO, and SM-G-FO's D₁): one
vmapped vjp for SUM, per-sample Jacobians for ABS (`jacobians`), one jvp and one vjp for
SO — never a Python loop over outputs or experiences. A single parent is a batch of one.

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
from torch.func import jvp, vjp, vmap

from smevo import functional
from smevo.experiences import Experiences
from smevo.mutations.jacobians import absolute_jacobian_sums, map_over_batch
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
    padded = padded_experiences([experiences], params.device)
    if kind != "SO":
        return parents_sensitivity(policy, params[None], padded, kind, sum_reduction,
                                   chunk_elements)[0]
    if direction is None:
        raise ValueError("SO sensitivity needs a direction (the unit perturbation direction)")
    if direction.shape != params.shape:
        raise ValueError(
            f"direction has shape {tuple(direction.shape)}, expected {tuple(params.shape)}"
        )
    return directional_sensitivities(policy, params[None], padded, direction[None].to(params),
                                     torch.zeros(1, dtype=torch.long, device=params.device), "SO",
                                     sum_reduction, chunk_elements)[0]


def _second_order(
    outputs, params: torch.Tensor, weights: torch.Tensor, direction: torch.Tensor
) -> torch.Tensor:
    """SO's sqrt(|H d|) with H d = 2 Σ_m w_m J_mᵀ (J_m d): one jvp and one vjp."""
    _, pullback = vjp(outputs, params)
    _, jd = jvp(outputs, (params,), (direction.to(params.dtype),))
    (hd,) = pullback(2.0 * weights[..., None] * jd)
    return hd.abs().sqrt()


def _summed_gradients(outputs, params: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ_m w_m ∂y_mk/∂θ for every output k, `[K, D]`: one forward, one vjp vmapped over the K
    one-hot cotangents."""
    y, pullback = vjp(outputs, params)
    k = y.shape[-1]
    eye = torch.eye(k, dtype=y.dtype, device=y.device)
    cotangents = weights[None, ..., None] * eye.reshape(k, *([1] * weights.ndim), k)
    (gradients,) = vmap(pullback)(cotangents)
    return gradients


@dataclass(frozen=True)
class PaddedExperiences:
    """Several archives in one tensor, for work batched over parents or children.

    `observations [A, N, *obs]` (states) or `[A, N, T, *obs]` (sequences), zero-padded to
    the largest archive and the longest sequence; `weights [A, N]` / `[A, N, T]`: 1 on real
    samples, 0 on padding; `samples [A]`: each archive's number of samples M.
    """

    observations: torch.Tensor
    weights: torch.Tensor
    samples: torch.Tensor
    sequential: bool

    def sample_weights(self, mean: bool) -> torch.Tensor:
        """`weights`, divided by each archive's M where `mean` (the 1/M of the sums)."""
        if not mean:
            return self.weights
        return self.weights / self.samples.reshape(-1, *[1] * (self.weights.ndim - 1))


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
    return PaddedExperiences(obs, weights, samples, sequential)


def parents_sensitivity(
    policy: Policy,
    parents: torch.Tensor,
    experiences: PaddedExperiences,
    kind: str,
    sum_reduction: str,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Raw SUM or ABS sensitivities `[U, D]` of parents `[U, D]`, each on its own archive,
    vmapped over the parents (archives padded, padding weighted 0). ABS of a net with other
    parameters than once-applied `nn.Linear` layers goes through per-sample Jacobians
    (`jacobians`); the rest is one vmapped backward pass per output."""
    weights = experiences.sample_weights(sum_reduction == "mean")
    sequential, obs = experiences.sequential, experiences.observations
    linear = functional.linear_layers_only(policy)
    if kind == "ABS" and not linear:
        return norm_over_outputs(absolute_jacobian_sums(
            policy, parents, obs, weights, sequential, chunk_elements))

    def one_parent(flat: torch.Tensor, samples: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return _summed_gradients(
            lambda p: functional.forward_observations(policy, p, samples, sequential), flat, w)

    per_parent = policy.output_size * parents.shape[1] + policy.output_size * weights[0].numel()
    chunk = max(1, chunk_elements // per_parent)
    mode = AbsoluteLinearGradients() if kind == "ABS" else contextlib.nullcontext()
    with mode:
        return torch.cat([
            norm_over_outputs(map_over_batch(one_parent, parents[part], obs[part], weights[part]))
            for part in (slice(start, start + chunk) for start in range(0, len(parents), chunk))
        ])


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


def norm_over_outputs(per_output: torch.Tensor) -> torch.Tensor:
    """L2 norm over the output axis of `[..., K, D]`, as a vector-matrix product (`norm`
    over the strided axis is ~80x slower for large D, `sum` ~3x). Float32 squares overflow
    from about 1.8e19: those norms are taken again in float64 (a norm past float32's range
    stays infinite, and `postprocess` freezes its weight)."""
    ones = per_output.new_ones(per_output.shape[-2])
    norms = (ones @ per_output.square()).sqrt_()
    if not bool(torch.isfinite(norms).all()):
        wide = per_output.double()
        norms = (ones.double() @ wide.square()).sqrt_().to(per_output.dtype)
    return norms


def directional_sensitivities(
    policy: Policy,
    parents: torch.Tensor,
    experiences: PaddedExperiences,
    directions: torch.Tensor,
    parent_of: torch.Tensor,
    kind: str,
    sum_reduction: str = "mean",
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """What SM-G-SO and SM-G-FO compute per child, for many children at once: child c has
    direction `directions[c]` and parent `parents[parent_of[c]]` with its archive.
    `kind="SO"`: the raw sensitivity sqrt(|H d|) `[C, D]`; `kind="FO"`: D₁(d) =
    1/M Σ_m ‖J_m d‖², the first-order prediction of the divergence of θ + d, `[C]`.
    Vmapped over the children in chunks (archives padded with zero weight)."""
    weights = experiences.sample_weights(kind == "FO" or sum_reduction == "mean")
    obs, sequential = experiences.observations, experiences.sequential

    def one_child(flat, samples, w, direction):
        def outputs(p: torch.Tensor) -> torch.Tensor:
            return functional.forward_observations(policy, p, samples, sequential)

        if kind == "SO":
            return _second_order(outputs, flat, w, direction)
        _, jd = jvp(outputs, (flat,), (direction,))
        return (w[..., None] * jd.square()).sum()

    chunk = max(1, chunk_elements // (2 * parents.shape[1] + obs[0].numel()))
    return torch.cat([
        map_over_batch(one_child, parents[part], obs[part], weights[part],
                       directions[start:start + chunk])
        for start in range(0, len(parent_of), chunk)
        for part in (parent_of[start:start + chunk],)
    ])


def postprocess(s: torch.Tensor, *, normalize: bool = True, floor: float = 0.01) -> torch.Tensor:
    """Turn raw sensitivities `[..., D]` into divisors: optionally divide by the mean of the
    non-zero entries (so 1 is an average weight), map exact zeros to 1, then floor at
    `floor`.

    An infinite or NaN sensitivity (a weight whose effect overflowed) becomes an infinite
    divisor, so that weight does not move, and is left out of the mean, so the other weights
    keep their scale. The mean is taken relative to the largest finite entry, so it cannot
    overflow however close the entries come to float32's limit."""
    s = torch.where(torch.isnan(s), math.inf, s)
    nonzero = s > 0
    if normalize:
        finite = nonzero & torch.isfinite(s)
        largest = torch.where(finite, s, 0.0).amax(dim=-1, keepdim=True).clamp(min=1e-38)
        count = finite.sum(dim=-1, keepdim=True)
        relative_mean = torch.where(finite, s / largest, 0.0).sum(dim=-1, keepdim=True) / count
        mean = torch.where(count > 0, relative_mean * largest, 1.0)
        s = s / mean
    return torch.where(nonzero, s, 1.0).clamp_(min=floor)


def divergence(
    policy: Policy, params: torch.Tensor, child: torch.Tensor, experiences: Experiences
) -> float:
    """The paper's divergence D between parent and child genomes on the experiences."""
    check_inputs(policy, params, experiences)
    functional.check_genome(policy, child)
    return divergences(policy, params[None], [experiences], child[None])[0]


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
    padded = padded_experiences(experiences, parents.device)
    return ParentOutputs(policy, parents, padded).divergences(
        children, torch.as_tensor(parent_of, device=parents.device)).tolist()


class ParentOutputs:
    """Parents' outputs on their own experiences (padded to the largest archive and masked),
    computed once, against which children's divergences are measured in batched forwards:
    for a generation's children, or for the rounds of their lockstep line searches."""

    def __init__(
        self, policy: Policy, parents: torch.Tensor, experiences: PaddedExperiences
    ) -> None:
        self.policy = policy
        self.padded = experiences
        per_genome = max(1, experiences.observations[0].numel())
        self.chunk = max(1, PAIR_CHUNK_ELEMENTS // per_genome)
        self.outputs = self._forward(parents, torch.arange(len(parents),
                                                           device=parents.device))

    def _forward(self, genomes: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        chunk, padded = self.chunk, self.padded
        with torch.no_grad():
            return torch.cat([
                functional.population_outputs(
                    self.policy, genomes[start:start + chunk],
                    padded.observations[rows[start:start + chunk]], padded.sequential)
                for start in range(0, len(rows), chunk)
            ])

    def divergences(self, children: torch.Tensor, parent_of: torch.Tensor) -> torch.Tensor:
        """D `[C]` (float64) of each child against parent `parent_of[c]` on that parent's
        experiences; a non-finite D is inf."""
        child_outputs = self._forward(children, parent_of)
        squared = (child_outputs - self.outputs[parent_of]).double().square().sum(dim=-1)
        weighted = squared * self.padded.weights[parent_of]
        values = weighted.flatten(1).sum(dim=1) / self.padded.samples[parent_of]
        return torch.nan_to_num(values, nan=math.inf, posinf=math.inf)


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
