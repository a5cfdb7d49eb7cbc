"""Genomes as flat float32 vectors, and stateless forwards of a policy under given genomes.

A genome is the concatenation of `policy.parameters()` in registration order, each flattened
row-major. Everything here is a pure function of (policy structure, genome, inputs), so
`torch.func` transforms (vmap over a population, jvp/vjp for sensitivities) apply directly.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch.func import vmap

from smevo.policies.cnn import CNN
from smevo.policies.mlp import MLP
from smevo.policies.plastic import NeuromodPolicy, PlasticLayer, PlasticPolicy
from smevo.policies.recurrent import RecurrentPolicy

if TYPE_CHECKING:
    from smevo.experiences import Experiences
    from smevo.policies import Policy, State


def num_params(policy: Policy) -> int:
    """Length of the policy's genome."""
    return sum(p.numel() for p in policy.parameters())


def get_flat(policy: Policy) -> torch.Tensor:
    """The policy's current parameters as a flat float32 genome (a copy)."""
    return torch.cat([p.detach().reshape(-1) for p in policy.parameters()]).to(torch.float32)


def set_flat(policy: Policy, params: torch.Tensor) -> None:
    """Copy a flat genome into the policy's parameters."""
    check_genome(policy, params)
    with torch.no_grad():
        for parameter, value in zip(policy.parameters(), unflatten(policy, params).values(),
                                    strict=True):
            parameter.copy_(value)


def check_genome(policy: Policy, params: torch.Tensor) -> None:
    """A `ValueError` unless `params` is a flat vector of the policy's genome length."""
    expected = num_params(policy)
    if params.ndim != 1 or params.shape[0] != expected:
        raise ValueError(
            f"genome has shape {tuple(params.shape)}, expected ({expected},) for this policy"
        )


def unflatten(policy: Policy, params: torch.Tensor) -> dict[str, torch.Tensor]:
    """Views of a flat genome shaped as the policy's named parameters (gradients flow)."""
    named = list(policy.named_parameters())
    pieces = torch.split(params, [p.numel() for _, p in named])
    return {name: piece.view(p.shape) for (name, p), piece in zip(named, pieces, strict=True)}


class _ParameterSlots:
    """Where each of a policy's parameters lives (owning module, attribute), in genome order,
    with the pieces' sizes and shapes: found once per policy, so that a call with a genome
    only swaps tensors in and out (what `functional_call` does, without re-walking the
    module tree on every call, which costs more than a small net's forward)."""

    def __init__(self, policy: Policy) -> None:
        named = list(policy.named_parameters())
        self.owners = []
        for name, _ in named:
            path, _, attr = name.rpartition(".")
            self.owners.append((policy.get_submodule(path), attr))
        self.sizes = [p.numel() for _, p in named]
        self.shapes = [p.shape for _, p in named]
        owners = [m for m in policy.modules() if any(True for _ in m.parameters(recurse=False))]
        self.linear_only = not policy.is_recurrent and all(
            isinstance(m, torch.nn.Linear) for m in owners)


_SLOTS: weakref.WeakKeyDictionary[Policy, _ParameterSlots] = weakref.WeakKeyDictionary()


def _slots(policy: Policy) -> _ParameterSlots:
    slots = _SLOTS.get(policy)
    if slots is None:
        slots = _SLOTS[policy] = _ParameterSlots(policy)
    return slots


def split_genome(policy: Policy, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The genome's flat pieces, one per parameter in genome order (views; gradients flow):
    what `step_pieces` takes, so that transforms can differentiate per parameter."""
    return torch.split(params, _slots(policy).sizes)


def step(policy: Policy, params: torch.Tensor, obs: torch.Tensor, state: State) -> tuple[Any, Any]:
    """One call of the policy with parameters taken from `params` (a pure function of them:
    `torch.func` transforms apply, and the policy's own parameters are left as they were)."""
    return step_pieces(policy, split_genome(policy, params), obs, state)


def step_pieces(
    policy: Policy, pieces: tuple[torch.Tensor, ...], obs: torch.Tensor, state: State
) -> tuple[Any, Any]:
    """`step` with the genome given as its `split_genome` pieces."""
    shapes = _slots(policy).shapes
    with _parameters_replaced(policy, [piece.view(shape)
                                       for piece, shape in zip(pieces, shapes, strict=True)]):
        return policy(obs, state)


@contextlib.contextmanager
def _parameters_replaced(
    policy: Policy, tensors: list[torch.Tensor | None]
) -> Iterator[None]:
    """Within the block the policy's parameters, in genome order, are these tensors (None:
    the parameter stays); afterwards its own again."""
    slots = _slots(policy)
    saved = [module._parameters[attr] for module, attr in slots.owners]
    try:
        for (module, attr), tensor in zip(slots.owners, tensors, strict=True):
            if tensor is not None:
                module._parameters[attr] = tensor
        yield
    finally:
        for (module, attr), original in zip(slots.owners, saved, strict=True):
            module._parameters[attr] = original


def forward(policy: Policy, params: torch.Tensor, experiences: Experiences) -> torch.Tensor:
    """Raw outputs of the genome on every experience.

    States give `[N, K]`. Sequences run from the initial state through every step and give
    `[N, T, K]` (outputs at padded steps are computed but meaningless; use the mask).
    """
    return forward_observations(
        policy, params, experiences.observations.to(params.device), experiences.is_sequential
    )


def forward_observations(
    policy: Policy, params: torch.Tensor, obs: torch.Tensor, sequential: bool
) -> torch.Tensor:
    """`forward` on a raw batch: states `[N, *obs]`, or sequences `[N, T, *obs]`."""
    return forward_pieces(policy, split_genome(policy, params), obs, sequential)


def forward_pieces(
    policy: Policy, pieces: tuple[torch.Tensor, ...], obs: torch.Tensor, sequential: bool
) -> torch.Tensor:
    """`forward_observations` with the genome given as its `split_genome` pieces."""
    if not sequential:
        return step_pieces(policy, pieces, obs, None)[0]
    state = policy.initial_state(obs.shape[0])
    outputs = []
    for t in range(obs.shape[1]):
        output, state = step_pieces(policy, pieces, obs[:, t], state)
        outputs.append(output)
    return torch.stack(outputs, dim=1)


def population_step(
    policy: Policy, population: torch.Tensor, obs: torch.Tensor, state: State
) -> tuple[torch.Tensor, State]:
    """One step of P genomes at once: `population [P, D]`, `obs [P, B, *obs]` -> `[P, B, K]`.

    A single `vmap`-ed call, so a whole population acts with batched matrix products (a
    population of one skips the `vmap` machinery).
    """
    if population.shape[0] == 1:
        output, state = step(policy, population[0], obs[0], map_state(lambda t: t[0], state))
        return output[None], map_state(lambda t: t[None], state)
    if state is None:
        return vmap(lambda p, o: step(policy, p, o, None), out_dims=(0, None))(population, obs)
    return vmap(lambda p, o, s: step(policy, p, o, s))(population, obs, state)


def linear_layers_only(policy: Policy) -> bool:
    """True for feedforward policies whose parameters all belong to `nn.Linear` layers (each
    applied once per sample): the MLPs, for which fast paths exist."""
    return _slots(policy).linear_only


def _stacked_parameters(policy: Policy, population: torch.Tensor) -> dict[int, torch.Tensor]:
    """Each parameter of the policy (keyed by `id`) as a `[G, *shape]` view of `population
    [G, D]`: genome g's copy of that parameter is row g."""
    slots = _slots(policy)
    pieces = torch.split(population, slots.sizes, dim=1)
    return {
        id(module._parameters[attr]): piece.reshape(population.shape[0], *shape)
        for (module, attr), shape, piece in zip(slots.owners, slots.shapes, pieces, strict=True)
    }


class _PopulationLinear(torch.overrides.TorchFunctionMode):
    """Within this mode, each `F.linear` of the policy applies G genomes' weights to their own
    rows of the input (rows are genome-major): one batched matrix product per layer."""

    def __init__(self, policy: Policy, population: torch.Tensor) -> None:
        super().__init__()
        self.groups = population.shape[0]
        self.batched = _stacked_parameters(policy, population)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not torch.nn.functional.linear:
            return func(*args, **kwargs)
        x, weight, *rest = args
        bias = rest[0] if rest else kwargs.get("bias")
        w = self.batched[id(weight)]
        rows = x.reshape(self.groups, -1, x.shape[-1])
        out = _bound_linear(w, None if bias is None else self.batched[id(bias)])(rows)
        return out.reshape(*x.shape[:-1], w.shape[1])


class _StackedMLP:
    """An `MLP` for G genomes without module calls: its layers in order, each Linear one
    batched matrix product with the genomes' stacked weights (sliced once per population, not
    per step), each activation the torch function its module would call. The same arithmetic
    as the `_PopulationLinear` path at a fraction of its per-call cost, which for small nets
    (a lockstep rollout step) is larger than the products themselves."""

    def __init__(self, policy: MLP, population: torch.Tensor) -> None:
        batched = _stacked_parameters(policy, population)
        self.dtype = policy.body[0].weight.dtype
        self.input_size = policy.input_size
        self.layers: list[Callable[[torch.Tensor], torch.Tensor]] = [
            _bound_linear(batched[id(layer.weight)],
                          None if layer.bias is None else batched[id(layer.bias)])
            if isinstance(layer, torch.nn.Linear) else _ACTIVATION_FUNCTIONS.get(type(layer), layer)
            for layer in [*policy.body, policy.output_activation]
            if not isinstance(layer, torch.nn.Identity)
        ]

    def __call__(self, obs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        groups, batch = obs.shape[:2]
        x = obs.reshape(groups, batch, self.input_size).to(self.dtype)
        for layer in self.layers:
            x = layer(x)
        return x, None


_ACTIVATION_FUNCTIONS: dict[type[torch.nn.Module], Callable[[torch.Tensor], torch.Tensor]] = {
    torch.nn.Tanh: torch.tanh,
    torch.nn.ReLU: torch.relu,
    torch.nn.Sigmoid: torch.sigmoid,
}
"""The torch function each of these activation modules' forward calls (the same kernel,
without the module call); other modules are called as they are, `nn.Identity` skipped."""


def _bound_linear(
    weight: torch.Tensor, bias: torch.Tensor | None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """`rows [G, B, in]` -> `[G, B, out]` through G genomes' own Linear layer (`weight [G, out,
    in]`, `bias [G, out]`), bound once: one batched matrix product on views made here, not at
    every call. The one arithmetic of the MLP and cnn population forwards."""
    weight_t = weight.transpose(1, 2)
    if bias is None:
        return lambda rows: torch.bmm(rows, weight_t)
    bias_rows = bias.unsqueeze(1)
    return lambda rows: torch.baddbmm(bias_rows, rows, weight_t)


class _StackedRecurrent:
    """A `RecurrentPolicy` for G genomes without `vmap`: each cell's own arithmetic
    (`RecurrentCell.step`) on the genomes' stacked parameters, the head `_linear_as_vmapped`.
    Bit for bit what `population_step` computes (the same batched products), at a fraction of
    vmap's per-step dispatch, which dominates a small net's lockstep step."""

    def __init__(self, policy: RecurrentPolicy, population: torch.Tensor) -> None:
        batched = _stacked_parameters(policy, population)
        self.dtype = policy.head.weight.dtype
        self.input_size = policy.input_size
        self.cells = [
            (cell, batched[id(cell.weight_ih)], batched[id(cell.weight_hh)],
             batched[id(cell.bias_ih)].unsqueeze(1), batched[id(cell.bias_hh)].unsqueeze(1))
            for cell in policy.cells
        ]
        self.head = functools.partial(_linear_as_vmapped, weight=batched[id(policy.head.weight)],
                                      bias=batched[id(policy.head.bias)])
        self.output_activation = policy.output_activation

    def __call__(self, obs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        groups, batch = obs.shape[:2]
        x = obs.reshape(groups, batch, self.input_size).to(self.dtype)
        new_state = []
        for (cell, *parameters), layer_state in zip(self.cells, state, strict=True):
            layer_state = cell.step(x, layer_state, *parameters)
            new_state.append(layer_state)
            x = layer_state[..., : cell.hidden]
        return self.output_activation(self.head(x)), tuple(new_state)


class _StackedPlastic:
    """A plastic or neuromodulated net for G genomes without `vmap`: the policy's own forward
    on `[G, B, ...]` inputs and states with every parameter stacked: its `nn.Linear` layers'
    and the recurrent weights `w` as `[G, *shape]` (batched products, `_StackedLinear`),
    those that scale traces elementwise (alpha, eta) as `[G, 1, ..., *shape]`, broadcasting
    against `[G, B, H, H]`. Bit for bit
    what `population_step` computes, at a fraction of vmap's per-step dispatch."""

    def __init__(self, policy: PlasticLayer, population: torch.Tensor) -> None:
        self.policy = policy
        groups = population.shape[0]
        slots = _slots(policy)
        pieces = torch.split(population, slots.sizes, dim=1)
        self.stacked = [
            piece.reshape(groups, *shape)
            if isinstance(module, torch.nn.Linear) or (module is policy and attr == "w")
            else piece.reshape(groups, 1, *[1] * (2 - len(shape)), *shape)
            for (module, attr), shape, piece in zip(slots.owners, slots.shapes, pieces, strict=True)
        ]

    def __call__(self, obs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        with _parameters_replaced(self.policy, self.stacked), _StackedLinear():
            return self.policy(obs, state)


class _StackedLinear(torch.overrides.TorchFunctionMode):
    """Within this mode an `F.linear` whose weight is stacked (`[G, out, in]`) applies each
    genome's layer to its own rows (`_linear_as_vmapped`)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.linear and args[1].dim() == 3:
            x, weight, *rest = args
            return _linear_as_vmapped(x, weight, rest[0] if rest else kwargs.get("bias"))
        return func(*args, **kwargs)


def _linear_as_vmapped(
    rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """`F.linear` of G genomes' `weight [G, out, in]` and `bias [G, out]` on their `rows [G,
    B, in]` as `vmap` computes it: a batched product, then the bias added (a fused `baddbmm`
    rounds otherwise in float64), so that a net stepped this way matches `population_step`."""
    out = rows @ weight.mT
    return out if bias is None else out + bias.unsqueeze(-2)


class _StackedCNN:
    """A `CNN` for G genomes in one pass per layer: each convolution is one grouped
    convolution whose groups are the genomes (their stacked kernels, sliced once per
    population), the head's Linear layers batched matrix products as in `_StackedMLP`. The
    frames of B episodes of every genome go through at once: `[B, G * C, H, W]` from the
    first convolution to the last, so no layout changes between layers."""

    def __init__(self, policy: CNN, population: torch.Tensor) -> None:
        batched = _stacked_parameters(policy, population)
        self.groups = population.shape[0]
        self.policy = policy
        self.features: list[Callable[[torch.Tensor], torch.Tensor]] = [
            functools.partial(
                torch.nn.functional.conv2d,
                weight=batched[id(layer.weight)].flatten(0, 1),
                bias=batched[id(layer.bias)].flatten(), stride=layer.stride,
                padding=layer.padding, groups=self.groups)
            if isinstance(layer, torch.nn.Conv2d) else layer
            for layer in policy.features if not isinstance(layer, torch.nn.Flatten)
        ]
        self.head: list[Callable[[torch.Tensor], torch.Tensor]] = [
            _bound_linear(batched[id(layer.weight)], batched[id(layer.bias)])
            if isinstance(layer, torch.nn.Linear) else layer
            for layer in policy.head
        ]
        self.head.append(policy.output_activation)

    def __call__(self, obs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        groups, batch = obs.shape[:2]
        x = self.policy.frames(obs)  # [G, B, C, H, W]
        x = x.transpose(0, 1).reshape(batch, groups * x.shape[2], *x.shape[3:])
        for layer in self.features:
            x = layer(x)
        x = x.reshape(batch, groups, -1).transpose(0, 1)  # each genome's (C, H, W) flattened
        for layer in self.head:
            x = layer(x)
        return x, None


def population_forward(
    policy: Policy, population: torch.Tensor
) -> Callable[[torch.Tensor, State], tuple[torch.Tensor, State]]:
    """A step function for G genomes fixed for a whole rollout: `(obs [G, B, *obs], state) ->
    (outputs [G, B, K], state)`. Linear-only feedforward policies run as batched matrix
    products (an `MLP` as a plain list of them, any other through `_PopulationLinear`), a
    `CNN` as grouped convolutions (`_StackedCNN`), a `RecurrentPolicy` cell by cell on
    stacked parameters (`_StackedRecurrent`); others use `population_step`."""
    if type(policy) is MLP:  # a subclass may forward differently
        return _StackedMLP(policy, population)
    if type(policy) is CNN:
        return _StackedCNN(policy, population)
    # A population of one steps as `population_step` steps it (the policy's own 2-D
    # products, not batched ones, which may round otherwise).
    if type(policy) is RecurrentPolicy and population.shape[0] > 1:
        return _StackedRecurrent(policy, population)
    if type(policy) in (PlasticPolicy, NeuromodPolicy) and population.shape[0] > 1:
        return _StackedPlastic(policy, population)
    if not linear_layers_only(policy):
        return lambda obs, state: population_step(policy, population, obs, state)
    mode = _PopulationLinear(policy, population)

    def forward(obs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        groups, batch = obs.shape[:2]
        with mode:
            outputs, _ = policy(obs.reshape(groups * batch, *obs.shape[2:]), None)
        return outputs.reshape(groups, batch, -1), None

    return forward


def population_outputs(
    policy: Policy, population: torch.Tensor, obs: torch.Tensor, sequential: bool
) -> torch.Tensor:
    """Raw outputs of G genomes, each on its own batch: states `[G, B, *obs]` -> `[G, B, K]`,
    or sequences `[G, B, T, *obs]` run from the initial state -> `[G, B, T, K]`."""
    act = population_forward(policy, population)
    if not sequential:
        return act(obs, None)[0]
    state = population_initial_state(policy, population.shape[0], obs.shape[1])
    outputs = []
    for t in range(obs.shape[2]):
        output, state = act(obs[:, :, t], state)
        outputs.append(output)
    return torch.stack(outputs, dim=2)


def population_initial_state(policy: Policy, population: int, batch: int) -> State:
    """The initial state for `population` genomes, each with `batch` parallel episodes."""
    return map_state(
        lambda t: t.unsqueeze(0).expand(population, *t.shape).contiguous(),
        policy.initial_state(batch),
    )


def map_state(fn: Callable[[torch.Tensor], torch.Tensor], state: State) -> State:
    """Apply `fn` to every tensor of a policy state (None, a tensor, or nested tuples)."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return fn(state)
    return tuple(map_state(fn, part) for part in state)
