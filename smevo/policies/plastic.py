"""Plastic and neuromodulated recurrent networks: differentiable plasticity and Backpropamine.

Miconi, Stanley & Clune, *Differentiable plasticity* (ICML 2018) and Miconi, Rawal, Clune &
Stanley, *Backpropamine* (ICLR 2019); the equations are in reference/plasticity.md. One tanh
recurrent layer of H units whose recurrent weights are a fixed part w plus a plastic part
alpha * trace, where the trace is rewritten every step from the pre- and post-synaptic
activity:

    h_t = tanh( i2h(x_t) + h_{t-1} @ (w + alpha * trace_{t-1}) )     output_t = head(h_t)

Everything that changes within an episode (h and the traces, all batched: `[B, H]` and
`[B, H, H]`, `trace[b, pre, post]`) is the policy's `state`, zero at `initial_state`, so each
episode starts from a clean trace and `torch.func` transforms (vmap over a population, SM-G
through time) see through the dynamics. The step is plain tensor algebra: no in-place writes,
no `.item()`, no branching on values. Backpropagation through time by autograd (A2C) steps
the Hebbian net by `bptt_forward` instead: the same step as one autograd node with a
hand-written backward (`hebbian_step`), which `torch.func` never meets.

Init follows the DP code (`simple/`, `images/`): w and alpha ~ 0.01 N(0, 1) (a scalar alpha
starts at 0.01), so the plastic and recurrent paths start small; i2h and head keep PyTorch's
Linear init.
"""

from __future__ import annotations

import math
from typing import ClassVar

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from smevo.policies.base import (
    ACTIVATIONS,
    VALUE_HEAD_HELP,
    Policy,
    State,
    build_value_head,
    flat_box_size,
    pick,
    read_value,
)
from smevo.policies.decoders import output_size
from smevo.policies.hebbian_step import hebbian_step

RULES = ("hebb", "oja")
ALPHAS = ("per_connection", "per_neuron", "scalar")
IOS = ("linear", "direct")
MODULATIONS = ("simple", "retroactive")
INIT_SCALE = 0.01


def _small_normal(*shape: int) -> torch.Tensor:
    """`INIT_SCALE * N(0, 1)` of `shape`. On the meta device (a parameter count before a run,
    `smevo.resources`) the draw is left unscaled: any arithmetic on meta tensors imports
    `torch._dynamo`, about a second of every plastic run's start, for values no one reads."""
    normal = torch.randn(shape)
    return normal if normal.is_meta else INIT_SCALE * normal


def outer(pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
    """Batched outer product `[..., H] x [..., H] -> [..., H, H]`, indexed [..., pre, post]."""
    return pre[..., :, None] * post[..., None, :]


def checked_eta(eta: float, name: str) -> None:
    """A `ValueError` unless `eta`, a trace's rate, lies in (0, 1]."""
    if not 0.0 < eta <= 1.0:
        raise ValueError(f"{name} needs eta in (0, 1], got {eta}")


class PlasticLayer(Policy):
    """The part every plastic network shares: input path, w, alpha, readout, recurrent drive.

    `io="linear"`: inputs enter through a non-plastic `Linear(obs -> H)` added to the
    recurrent drive, and a `Linear(H -> outputs)` reads the hidden state out. `io="direct"`
    is the DP pattern-completion network (one neuron per bit): the observation is added to
    the drive unchanged and the output is the hidden state itself, so observation size,
    `hidden` and output size must agree.
    """

    is_recurrent = True
    option_help: ClassVar[dict[str, str]] = {
        "hidden": "recurrent tanh units (io=direct: equal to the observation and output sizes)",
        "alpha": f"plasticity coefficients on the trace: {', '.join(ALPHAS)}",
        "io": "linear (an input layer and a readout) or direct (one neuron per input and "
              "output: the pattern-completion network)",
        "value_head": VALUE_HEAD_HELP,
    }

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        name: str,
        hidden: int,
        alpha: str,
        io: str,
    ) -> None:
        super().__init__(output_size(action_space))
        if hidden < 1:
            raise ValueError(f"{name} needs hidden >= 1, got {hidden}")
        pick(dict.fromkeys(ALPHAS), "alpha", alpha)
        pick(dict.fromkeys(IOS), "io", io)
        self.input_size = flat_box_size(observation_space, name)
        self.observation_rank = len(observation_space.shape)
        self.hidden = hidden
        self.direct = io == "direct"
        if self.direct and not self.input_size == hidden == self.output_size:
            raise ValueError(
                f"{name} with io='direct' needs observation size == hidden == output size, got "
                f"{self.input_size}, {hidden}, {self.output_size}"
            )
        self.i2h = None if self.direct else nn.Linear(self.input_size, hidden)
        self.w = nn.Parameter(_small_normal(hidden, hidden))
        # alpha broadcasts against a [B, H, H] trace: per connection [H, H], per post-synaptic
        # neuron [H] (the plastic LSTM's "perneuron"), or one scalar [1].
        if alpha == "scalar":
            self.alpha = nn.Parameter(torch.full((1,), INIT_SCALE))
        else:
            shape = (hidden, hidden) if alpha == "per_connection" else (hidden,)
            self.alpha = nn.Parameter(_small_normal(*shape))
        self.head = None if self.direct else nn.Linear(hidden, self.output_size)

    def zeros(self, *shape: int) -> torch.Tensor:
        """A zero state tensor with the parameters' dtype and device (rollouts run in float64)."""
        return self.w.new_zeros(shape)

    def inputs(self, obs: torch.Tensor) -> torch.Tensor:
        """The input drive `[..., H]` for observations `[..., *obs]`: i2h(x), or x itself
        with `io="direct"`."""
        x = obs.reshape(*obs.shape[: obs.dim() - self.observation_rank], self.input_size)
        x = x.to(self.w.dtype)
        return x if self.i2h is None else self.i2h(x)

    def drive(self, obs: torch.Tensor, h: torch.Tensor, trace: torch.Tensor) -> torch.Tensor:
        """The new hidden state tanh(i2h(x) + h @ (w + alpha * trace)) for a batch (`[B,
        ...]`, or `[G, B, ...]` for G genomes' stacked parameters)."""
        inputs = self.inputs(obs)
        plastic = torch.einsum("...i,...ij->...j", h, self.alpha * trace)
        return torch.tanh(inputs + h @ self.w + plastic)

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        return h if self.head is None else self.head(h)

    def features(self, state: State) -> torch.Tensor:
        """The hidden units `[B, H]` in `state`: what the value head reads."""
        return state[0]

    def value(self, features: torch.Tensor) -> torch.Tensor:
        """The value head's estimates `[...]` for hidden units `[..., H]` (`features` of the
        states a step returned, one or stacked; needs ``value_head=True``)."""
        return read_value(self.value_head, features, type(self).__name__)


def rate(eta: nn.Parameter | float) -> torch.Tensor | float:
    """A learned trace rate as used: clamped to [0, 1], so a decaying trace stays within
    [-1, 1] for any genome a mutation produces (inside the range the gradient is exact)."""
    return eta if isinstance(eta, float) else torch.clamp(eta, 0.0, 1.0)


class PlasticPolicy(PlasticLayer):
    """Differentiable plasticity: a tanh RNN with a Hebbian trace on its recurrent weights.

    `rule="hebb"`: trace <- (1 - eta) trace + eta * outer(h_{t-1}, h_t), bounded in [-1, 1]
    and forgetting at rate eta (a learned eta is used clamped to [0, 1], see `rate`).
    `rule="oja"`: trace_ij <- trace_ij + eta * h_j (h_i - h_j trace_ij), non-decaying but
    stable. eta (init `eta`, 0.01 in the papers) is one scalar, a parameter when `learn_eta`
    (DP's later code) or a constant (`simple/simplest.py`).
    `alpha`: per_connection, per_neuron or scalar plasticity coefficients. State: (h, trace).
    With a linear io, a plastic net has 2H² + H(obs + 1) + (H + 1)·outputs (+1 for eta)
    parameters, about twice an RNN of the same width.
    """

    option_help: ClassVar[dict[str, str]] = {
        **PlasticLayer.option_help,
        "rule": "hebb (a Hebbian trace decaying at rate eta) or oja (Oja's rule, non-decaying)",
        "eta": "the trace's rate in (0, 1] (0.01 in the papers); its initial value if learned",
        "learn_eta": "whether eta is a parameter that evolves (else a constant)",
    }

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        hidden: int = 50,
        rule: str = "hebb",
        alpha: str = "per_connection",
        eta: float = 0.01,
        learn_eta: bool = True,
        io: str = "linear",
        value_head: bool = False,
    ) -> None:
        super().__init__(observation_space, action_space, name="plastic", hidden=hidden,
                         alpha=alpha, io=io)
        pick(dict.fromkeys(RULES), "rule", rule)
        self.rule = rule
        checked_eta(eta, "plastic")
        self.eta: nn.Parameter | float = (
            nn.Parameter(torch.tensor([float(eta)])) if learn_eta else float(eta)
        )
        self.value_head = build_value_head(hidden, value_head)

    def initial_state(self, batch: int) -> State:
        return self.zeros(batch, self.hidden), self.zeros(batch, self.hidden, self.hidden)

    def forward(self, obs: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        h, hebb = self.initial_state(obs.shape[0]) if state is None else state
        new_h = self.drive(obs, h, hebb)
        eta = rate(self.eta)
        if self.rule == "hebb":
            hebb = (1 - eta) * hebb + eta * outer(h, new_h)
        else:
            hebb = hebb + eta * new_h[..., None, :] * (h[..., :, None] - new_h[..., None, :] * hebb)
        return self.readout(new_h), (new_h, hebb)

    def bptt_forward(self, obs: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        """`forward` with the Hebbian step as one autograd node (`hebbian_step`), for A2C's
        backpropagation through time: the same outputs and state up to rounding, at a
        fraction of autograd's cost. Oja's rule has no fused step and runs `forward`."""
        if self.rule != "hebb":
            return self(obs, state)
        h, hebb = self.initial_state(obs.shape[0]) if state is None else state
        new_h, hebb = hebbian_step(self.inputs(obs), h, hebb, self.w, self.alpha, rate(self.eta))
        return self.readout(new_h), (new_h, hebb)


class NeuromodPolicy(PlasticLayer):
    """Backpropamine: the network itself sets its plasticity rate through a modulator M(t).

    M_t = act(h2mod(h_t)) is one neuron (`modulator_activation` tanh by default, so M may be
    negative and erase or reverse traces); with `fanout` a trainable Linear(1 -> H) gives
    each post-synaptic neuron its own rate a_j M_t + b_j, without it M_t is shared.

    `modulation="simple"`: trace <- clip(trace + M_t * outer(h_{t-1}, h_t), ±clip);
    state (h, trace). `modulation="retroactive"`: an eligibility trace
    E <- (1 - eta) E + eta * outer(h_{t-1}, h_t) (eta a learned scalar, init `eta`) and the
    plastic weights PW <- clip(PW + M_t * E_{t-1}, ±clip), updated with the *old* E as in
    the reference's step order; state (h, E, PW), and PW is what alpha multiplies. `eta` is
    used (and a parameter) only with retroactive modulation.
    `clip` bounds the trace (2 in `simplemaze/`, 1 in `maze/batch.py` and `sr/`).
    """

    option_help: ClassVar[dict[str, str]] = {
        **PlasticLayer.option_help,
        "modulation": "simple (M(t) scales each Hebbian update) or retroactive (M(t) writes an "
                      "eligibility trace into the plastic weights)",
        "fanout": "whether each neuron gets its own rate a_j M(t) + b_j (else one shared M(t))",
        "clip": "the plastic trace is clipped to [-clip, clip] (2 in Backpropamine's maze)",
        "modulator_activation": f"the modulator neuron's activation: {', '.join(ACTIVATIONS)}",
        "eta": "the eligibility trace's rate in (0, 1], learned (modulation=retroactive only)",
    }

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        hidden: int = 50,
        modulation: str = "simple",
        fanout: bool = True,
        clip: float = 2.0,
        modulator_activation: str = "tanh",
        alpha: str = "per_connection",
        eta: float = 0.01,
        io: str = "linear",
        value_head: bool = False,
    ) -> None:
        super().__init__(observation_space, action_space, name="neuromod", hidden=hidden,
                         alpha=alpha, io=io)
        pick(dict.fromkeys(MODULATIONS), "modulation", modulation)
        if not (math.isfinite(clip) and clip > 0):
            raise ValueError(f"neuromod needs a finite clip > 0, got {clip}")
        self.retroactive = modulation == "retroactive"
        self.clip = float(clip)
        self.h2mod = nn.Linear(hidden, 1)
        self.modulator_activation = pick(ACTIVATIONS, "modulator activation",
                                         modulator_activation)()
        self.fanout = nn.Linear(1, hidden) if fanout else None
        checked_eta(eta, "neuromod")
        if self.retroactive:
            self.eta = nn.Parameter(torch.tensor([float(eta)]))
        self.value_head = build_value_head(hidden, value_head)

    def initial_state(self, batch: int) -> State:
        traces = 2 if self.retroactive else 1
        return (
            self.zeros(batch, self.hidden),
            *(self.zeros(batch, self.hidden, self.hidden) for _ in range(traces)),
        )

    def clipped(self, trace: torch.Tensor) -> torch.Tensor:
        """`trace` clipped to [-clip, clip]: the values of `torch.clamp`, through `hardtanh`,
        whose backward is one fused kernel (clamp's builds two masks and a `where` on every
        [B, H, H] step, about a third of a plastic net's BPTT time). The gradient differs
        only for an entry exactly at ±clip, where clamp passes it and hardtanh does not (both
        are subgradients of the kink)."""
        return F.hardtanh(trace, -self.clip, self.clip)

    def modulator(self, h: torch.Tensor) -> torch.Tensor:
        """M(t) `[..., 1]` for hidden units `h` `[..., H]` (what A2C logs as the modulator's
        activity)."""
        return self.modulator_activation(self.h2mod(h))

    def forward(self, obs: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        if state is None:
            state = self.initial_state(obs.shape[0])
        h, *traces = state
        plastic = traces[-1]  # the simple trace, or PW
        new_h = self.drive(obs, h, plastic)
        modulator = self.modulator(new_h)
        change = modulator if self.fanout is None else self.fanout(modulator)  # [B, 1] or [B, H]
        change = change[..., None, :]  # broadcast over the pre-synaptic axis
        if self.retroactive:
            eligibility = traces[0]
            plastic = self.clipped(plastic + change * eligibility)
            eta = rate(self.eta)
            eligibility = (1 - eta) * eligibility + eta * outer(h, new_h)
            return self.readout(new_h), (new_h, eligibility, plastic)
        plastic = self.clipped(plastic + change * outer(h, new_h))
        return self.readout(new_h), (new_h, plastic)
