"""Flat genomes and stateless forwards, single and population-stacked."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from smevo import functional as F
from smevo.experiences import Experiences
from smevo.policies import make_policy

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


@pytest.mark.bitexact  # a genome round trip copies exactly
def test_flat_round_trip_preserves_registration_order():
    net = make_policy("mlp", OBS, ACT, hidden=4, depth=2)
    flat = F.get_flat(net)
    expected = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    assert flat.dtype == torch.float32 and torch.equal(flat, expected)
    F.set_flat(net, flat * 2)
    assert torch.equal(F.get_flat(net), flat * 2)
    with pytest.raises(ValueError, match="expected"):
        F.set_flat(net, flat[:-1])


def test_stateless_forward_equals_module_call():
    net = make_policy("mlp", OBS, ACT, hidden=4, depth=2)
    states = torch.randn(6, 3)
    out = F.forward(net, F.get_flat(net), Experiences.from_states(states))
    assert torch.allclose(out, net(states)[0])


@pytest.mark.parametrize("name", ["mlp", "gru", "cnn", "neuromod"])
@pytest.mark.bitexact  # the same arithmetic
def test_step_equals_functional_call_and_leaves_the_policy_alone(name):
    """`step` swaps the genome's pieces in and out itself; it must agree with torch's
    `functional_call`, restore the policy's own parameters (even when the call fails) and
    pass gradients to the genome."""
    obs_space = gym.spaces.Box(0, 255, (32, 32, 3), np.uint8) if name == "cnn" else OBS
    net = make_policy(name, obs_space, ACT)
    own = [p.detach().clone() for p in net.parameters()]
    genome = (F.get_flat(net) * 1.5).requires_grad_()
    obs = torch.rand(4, *obs_space.shape)
    state = net.initial_state(4)
    out, _ = F.step(net, genome, obs, state)
    expected, _ = torch.func.functional_call(net, F.unflatten(net, genome), (obs, state))
    torch.testing.assert_close(out, expected)
    (grad,) = torch.autograd.grad(out.sum(), genome)
    assert grad.abs().sum() > 0
    with pytest.raises(RuntimeError):
        F.step(net, genome.detach(), obs[:, :1], state)  # a wrong input shape fails inside
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), own, strict=True))
    assert all(isinstance(p, torch.nn.Parameter) for p in net.parameters())


def test_sequence_forward_masks_varying_lengths():
    net = make_policy("gru", OBS, ACT, hidden=5)
    params = F.get_flat(net)
    seqs = [torch.randn(n, 3) for n in (4, 1, 3)]
    exp = Experiences.from_sequences(seqs)
    out = F.forward(net, params, exp)
    assert out.shape == (3, 4, 2) and exp.num_samples == 8
    for i, seq in enumerate(seqs):  # each sequence alone gives the same valid outputs
        alone = F.forward(net, params, Experiences.from_sequences([seq]))
        assert torch.allclose(out[i, : len(seq)], alone[0], atol=1e-6)


@pytest.mark.parametrize("name", ["mlp", "gru", "lstm"])
def test_population_step_equals_loop_over_genomes(name):
    net = make_policy(name, OBS, ACT)
    population = torch.stack([F.get_flat(net) + 0.1 * torch.randn(F.num_params(net))
                              for _ in range(4)])
    obs = torch.randn(4, 5, 3)
    state = F.population_initial_state(net, 4, 5)
    out, state = F.population_step(net, population, obs, state)
    out, _ = F.population_step(net, population, obs, state)
    for i in range(4):
        single_state = net.initial_state(5)
        single, single_state = F.step(net, population[i], obs[i], single_state)
        single, _ = F.step(net, population[i], obs[i], single_state)
        assert torch.allclose(out[i], single, atol=1e-5)


@pytest.mark.bitexact  # a seeded subsample
def test_experiences_subsample_is_seeded_and_bounded():
    exp = Experiences.from_states(torch.arange(50.0)[:, None])
    a = exp.subsample(10, torch.Generator().manual_seed(3))
    b = exp.subsample(10, torch.Generator().manual_seed(3))
    assert len(a) == 10 and torch.equal(a.observations, b.observations)
    assert exp.subsample(100) is exp
    seqs = Experiences.from_sequences([torch.zeros(n, 1) for n in (5, 2, 2, 2)])
    small = seqs.subsample(2, torch.Generator().manual_seed(0))
    assert small.observations.shape[1] == int(small.mask.sum(1).max())


def test_empty_experiences_are_rejected():
    with pytest.raises(ValueError, match="empty"):
        Experiences.from_states(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="empty"):
        Experiences.from_sequences([])


def test_population_forward_fast_path_equals_vmap():
    net = make_policy("mlp", OBS, ACT, hidden=8, depth=3, output_activation="tanh").double()
    population = torch.randn(5, F.num_params(net), dtype=torch.float64)
    obs = torch.randn(5, 4, 3, dtype=torch.float64)
    assert F.linear_layers_only(net)
    fast, _ = F.population_forward(net, population)(obs, None)
    reference, _ = F.population_step(net, population, obs, None)
    assert torch.allclose(fast, reference, atol=1e-12)


@pytest.mark.bitexact  # the same batched products, without the module calls
@pytest.mark.parametrize("activation,output_activation",
                         [("tanh", "linear"), ("relu", "softmax"), ("selu", "log_softmax"),
                          ("sigmoid", "sigmoid"), ("linear", "tanh")])
def test_stacked_mlp_forward_equals_the_module_path(activation, output_activation):
    net = make_policy("mlp", OBS, ACT, hidden=8, depth=2, activation=activation,
                      output_activation=output_activation).double()
    population = torch.randn(5, F.num_params(net), dtype=torch.float64)
    obs = torch.randn(5, 4, 3, dtype=torch.float64)
    stacked, _ = F.population_forward(net, population)(obs, None)
    with F._PopulationLinear(net, population):
        modules, _ = net(obs.reshape(20, 3), None)
    assert torch.equal(stacked.reshape(20, -1), modules)


@pytest.mark.bitexact  # the same batched products as vmap's, without its dispatch
@pytest.mark.parametrize("name,options,stacked_class", [
    ("rnn", {"hidden": 26, "layers": 1}, "_StackedRecurrent"),
    ("gru", {"hidden": 15, "layers": 2}, "_StackedRecurrent"),
    ("lstm", {"hidden": 15, "layers": 2, "output_activation": "tanh"}, "_StackedRecurrent"),
    ("plastic", {"hidden": 12}, "_StackedPlastic"),
    ("plastic", {"hidden": 12, "alpha": "per_neuron", "rule": "oja"}, "_StackedPlastic"),
    ("plastic", {"hidden": 3, "alpha": "scalar", "learn_eta": False, "io": "direct"},
     "_StackedPlastic"),
    ("neuromod", {"hidden": 12}, "_StackedPlastic"),
    ("neuromod", {"hidden": 12, "modulation": "retroactive", "fanout": False},
     "_StackedPlastic"),
])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_stacked_recurrent_forwards_equal_the_vmapped_step(name, options, stacked_class, dtype):
    action = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    net = make_policy(name, OBS, action, **options).to(dtype)
    own = F.get_flat(net)
    population = 0.5 * torch.randn(7, F.num_params(net), dtype=dtype)
    forward = F.population_forward(net, population)
    assert type(forward).__name__ == stacked_class
    assert type(F.population_forward(net, population[:1])).__name__ != stacked_class
    stacked = reference = F.population_initial_state(net, 7, 4)
    for _ in range(4):  # a few steps, so the states (and traces) feed back
        obs = torch.randn(7, 4, 3, dtype=dtype)
        out, stacked = forward(obs, stacked)
        expected, reference = F.population_step(net, population, obs, reference)
        assert torch.equal(out, expected)
        assert all(torch.equal(a, b) for a, b in zip(stacked, reference, strict=True))
    assert torch.equal(F.get_flat(net), own)  # its own parameters are back
