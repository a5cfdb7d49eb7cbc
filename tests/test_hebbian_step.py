"""The fused Hebbian step (`hebbian_step`, `PlasticPolicy.bptt_forward`): the values and
gradients of autograd through `PlasticPolicy.forward`, on the CPU and (where there is one) CUDA."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_a2c import tiny

from smevo.a2c import Learner, a2c_loss, play
from smevo.policies import make_policy, plastic
from smevo.policies.hebbian_step import hebbian_step

OBS = gym.spaces.Box(-1.0, 1.0, (5,), np.float32)
ACT = gym.spaces.Discrete(3)
DIRECT_ACT = gym.spaces.Box(-1.0, 1.0, (5,), np.float32)  # io=direct: 5 in, 5 units, 5 out
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
"""The CPU everywhere, and the GPU where there is one."""
OPTIONS = [
    pytest.param({}, id="per-connection"),
    pytest.param({"alpha": "per_neuron"}, id="per-neuron"),
    pytest.param({"alpha": "scalar", "learn_eta": False}, id="scalar-fixed-eta"),
    pytest.param({"io": "direct", "hidden": 5}, id="direct"),
]
# of the largest gradient entry: float64 differs by ~1e-15 (rounding), float32 by ~3e-7
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}


def policy_and_episode(options, dtype, device, steps=30, batch=4, seed=0):
    """A plastic policy with a value head, parameters scaled up (so alpha, eta and the trace
    matter), and random observations `[T, B, obs]` and loss weights."""
    torch.manual_seed(seed)
    options = {"hidden": 7, "value_head": True, **options}
    action_space = DIRECT_ACT if options.get("io") == "direct" else ACT
    policy = make_policy("plastic", OBS, action_space, **options).to(device=device, dtype=dtype)
    with torch.no_grad():
        for name, parameter in policy.named_parameters():
            if name == "eta":
                parameter.fill_(0.3)
            else:
                parameter.mul_(30.0 if name in ("w", "alpha") else 1.0)
    obs = torch.randn(steps, batch, 5, dtype=dtype, device=device)
    weights = torch.randn(steps, batch, policy.output_size + 1, dtype=dtype, device=device)
    return policy, obs, weights


def unroll(policy, obs, weights, step):
    """A loss through every step's outputs and value (and the last trace), and the gradient
    of every parameter."""
    state = policy.initial_state(obs.shape[1])
    loss = 0.0
    for t in range(len(obs)):
        out, state = step(obs[t], state)
        value = policy.value(policy.features(state))
        loss = loss + (torch.cat([out, value[:, None]], 1) * weights[t]).sum()
    loss = loss + state[1].square().sum()
    policy.zero_grad()
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in policy.named_parameters()}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("options", OPTIONS)
def test_fused_step_has_autograds_values_and_gradients(options, dtype, device):
    policy, obs, weights = policy_and_episode(options, dtype, device)
    loss, gradients = unroll(policy, obs, weights, policy)
    fused_loss, fused = unroll(policy, obs, weights, policy.bptt_forward)
    tolerance = TOLERANCE[dtype]
    assert torch.allclose(fused_loss, loss, rtol=tolerance, atol=0)
    assert fused.keys() == gradients.keys()
    for name, gradient in gradients.items():
        scale = gradient.abs().max()
        assert scale > 0, name
        assert (fused[name] - gradient).abs().max() <= tolerance * scale, name


def test_fused_step_gradient_passes_gradcheck():
    policy, obs, _ = policy_and_episode({}, torch.float64, "cpu", steps=3, batch=2)
    drive = policy.inputs(obs[0]).detach().requires_grad_()
    h = torch.randn(2, 7, dtype=torch.float64, requires_grad=True)
    trace = torch.randn(2, 7, 7, dtype=torch.float64, requires_grad=True)
    w, alpha = (p.detach().clone().requires_grad_() for p in (policy.w, policy.alpha))
    eta = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(hebbian_step, (drive, h, trace, w, alpha, eta))


@pytest.mark.bitexact  # the fallback is `forward` itself
def test_oja_rule_falls_back_to_forward():
    torch.manual_seed(0)
    policy = make_policy("plastic", OBS, ACT, hidden=4, rule="oja")
    obs, state = torch.randn(2, 5), policy.initial_state(2)
    assert torch.equal(policy.bptt_forward(obs, state)[0], policy(obs, state)[0])


def test_a2c_trains_the_plastic_net_through_the_fused_step(tmp_path, monkeypatch):
    """`play` steps a plastic net by `bptt_forward`; the update's gradient is autograd's
    through `forward` (float32, to 1e-5 of the largest entry)."""
    learner = Learner(tiny(tmp_path, "policy.name=plastic", "policy.options={hidden: 6}"))
    calls = []

    def counted(*args):
        calls.append(1)
        return hebbian_step(*args)

    def gradients():
        episodes = play(learner.net, learner.pool, [5, 6, 7, 8], np.random.default_rng(0))
        terms = a2c_loss(episodes.logits, episodes.values, episodes.actions, episodes.rewards,
                         episodes.mask, gamma=0.9, value_weight=0.1, concentration_weight=0.03)
        learner.net.zero_grad()
        terms.loss.backward()
        return {name: p.grad.clone() for name, p in learner.net.named_parameters()}

    try:
        with monkeypatch.context() as patch:
            patch.setattr(plastic, "hebbian_step", counted)
            fused = gradients()
        assert len(calls) == 12  # one per step of the 12-step episodes
        monkeypatch.delattr(plastic.PlasticPolicy, "bptt_forward")
        plain = gradients()
    finally:
        learner.close()
    for name, gradient in plain.items():
        assert (fused[name] - gradient).abs().max() <= 1e-5 * gradient.abs().max(), name
