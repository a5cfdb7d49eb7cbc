"""The six operators: exact sensitivities, the washout finding, targets met, safety, errors."""

import copy
import itertools
import math
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_hebbian_step import DEVICES

from smevo import functional as F
from smevo.experiences import Experiences
from smevo.mutations import (
    MUTATIONS,
    Mutation,
    breed,
    divergence,
    divergences,
    make_mutation,
    postprocess,
    sensitivity,
)
from smevo.mutations.jacobians import absolute_jacobian_sums
from smevo.mutations.line_search import scales_to_divergence
from smevo.mutations.sensitivity import (
    directional_sensitivities,
    norm_over_outputs,
    padded_experiences,
    parents_sensitivity,
)
from smevo.policies import make_policy

TOY_ROWS = {
    "easy": [[0.0, 1.0], [0.0, 1.0]],
    "medium": [[1.0, 0.0], [0.0, 1.0]],
    "washout": [[1.0, 1.0], [-1.0, -1.0]],
}
BOX2 = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)


def toy(task, repeats=1):
    policy = make_policy("toy2w", BOX2, BOX2)
    states = torch.tensor(TOY_ROWS[task] * repeats)
    return policy, F.get_flat(policy), Experiences.from_states(states)


@pytest.mark.parametrize(
    "task, mean_sum, mean_abs, sum_8rows, hessian_diag",
    [
        ("easy", (0, 0.1), (0, 0.1), (0, 0.8), (0, 0.02)),
        ("medium", (50, 0.05), (50, 0.05), (400, 0.4), (10000, 0.01)),
        ("washout", (0.0, 0.0), (100, 0.1), (0.0, 0.0), (20000, 0.02)),
    ],
)
def test_illustrative_sensitivities_match_hand_derivation(
    task, mean_sum, mean_abs, sum_8rows, hessian_diag
):
    policy, params, rows = toy(task)
    close = dict(rtol=1e-5, atol=1e-6)
    assert torch.allclose(sensitivity(policy, params, rows, "SUM"), torch.tensor(mean_sum), **close)
    assert torch.allclose(sensitivity(policy, params, rows, "ABS"), torch.tensor(mean_abs), **close)
    _, _, reference_rows = toy(task, repeats=4)
    summed = sensitivity(policy, params, reference_rows, "SUM", sum_reduction="sum")
    assert torch.allclose(summed, torch.tensor(sum_8rows), **close)
    d = torch.tensor([0.6, -0.8])
    so = sensitivity(policy, params, rows, "SO", direction=d)
    assert torch.allclose(so, (torch.tensor(hessian_diag) * d).abs().sqrt(), **close)


@pytest.mark.bitexact  # the washout's SUM sensitivity is exactly 0 (x + (-x)) in any order
def test_washout_sum_perturbs_w0_like_an_average_weight_while_abs_and_so_shield_it():
    policy, params, rows = toy("washout")
    d = torch.tensor([0.6, 0.8])
    divisor = {kind: postprocess(sensitivity(policy, params, rows, kind, direction=d))
               for kind in ("SUM", "ABS", "SO")}
    assert torch.equal(divisor["SUM"], torch.ones(2))  # w0 gets an unscaled, average step
    for kind in ("ABS", "SO"):
        step_w0, step_w1 = 1 / divisor[kind]
        assert step_w0 < 1 and step_w0 <= step_w1 / 100  # w0 shielded, w1 (insensitive) free


def naive_jacobian_rows(policy, params, experiences):
    """Per-sample, per-output gradients by plain autograd, one backward call each."""
    theta = params.clone().requires_grad_(True)
    outputs = F.forward(policy, theta, experiences)
    rows = []  # one [K, D] per valid sample
    mask = experiences.mask
    for n in range(len(experiences)):
        for t in range(outputs.shape[1] if mask is not None else 1):
            if mask is not None and not mask[n, t]:
                continue
            y = outputs[n, t] if mask is not None else outputs[n]
            grads = [torch.autograd.grad(y[k], theta, retain_graph=True)[0] for k in range(len(y))]
            rows.append(torch.stack(grads))
    return torch.stack(rows), theta, outputs


def naive_sensitivities(policy, params, experiences, direction):
    jac, theta, outputs = naive_jacobian_rows(policy, params, experiences)
    m = jac.shape[0]
    s_sum = (jac.sum(0) / m).norm(dim=0)
    s_abs = (jac.abs().sum(0) / m).norm(dim=0)
    # SO as the reference computed it: double backprop of L = mean Σ (y - y_c)².
    y_const = outputs.detach()
    sq = (outputs - y_const).square().sum(-1)
    loss = (sq * experiences.sample_weights()).sum() / m
    (grad,) = torch.autograd.grad(loss, theta, create_graph=True)
    (hd,) = torch.autograd.grad(grad @ direction, theta)
    return s_sum, s_abs, hd.abs().sqrt()


def deep_mlp():
    torch.manual_seed(0)
    policy = make_policy("mlp", gym.spaces.Box(-1, 1, (3,)), BOX2, hidden=8, depth=6,
                         activation="tanh")
    return policy, Experiences.from_states(torch.randn(10, 3))


def gru_stack():
    torch.manual_seed(1)
    policy = make_policy("gru", gym.spaces.Box(-1, 1, (3,)), BOX2, hidden=5)
    seqs = [torch.randn(n, 3) for n in (3, 5, 1, 4)]
    return policy, Experiences.from_sequences(seqs)


def toy_washout():
    policy, _, rows = toy("washout")
    return policy, rows


@pytest.mark.parametrize("build", [deep_mlp, gru_stack, toy_washout])
def test_vectorised_sensitivities_agree_with_naive_autograd_loop(build):
    policy, experiences = build()
    params = F.get_flat(policy)
    direction = torch.randn(params.shape, generator=torch.Generator().manual_seed(2))
    direction = direction / direction.norm()
    expected = naive_sensitivities(policy, params, experiences, direction)
    for kind, naive in zip(("SUM", "ABS", "SO"), expected, strict=True):
        ours = sensitivity(policy, params, experiences, kind, direction=direction)
        scale = naive.abs().max()
        assert torch.allclose(ours, naive, rtol=1e-5, atol=1e-5 * float(scale)), kind


def test_abs_chunking_gives_the_same_result():
    policy, experiences = gru_stack()
    params = F.get_flat(policy)
    whole = sensitivity(policy, params, experiences, "ABS")
    chunked = sensitivity(policy, params, experiences, "ABS", chunk_elements=1)
    assert torch.allclose(whole, chunked, rtol=1e-6)


def test_so_product_equals_finite_difference_of_divergence_gradient():
    policy, experiences = deep_mlp()
    params = F.get_flat(policy).double()
    policy = policy.double()
    experiences = Experiences.from_states(experiences.observations.double())
    d = torch.randn(params.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    d = d / d.norm()
    parent = F.forward(policy, params, experiences).detach()

    def grad_divergence(theta):
        theta = theta.clone().requires_grad_(True)
        value = (F.forward(policy, theta, experiences) - parent).square().sum(-1).mean()
        return torch.autograd.grad(value, theta)[0]

    h = 1e-5
    forward_grad, backward_grad = grad_divergence(params + h * d), grad_divergence(params - h * d)
    finite_difference = (forward_grad - backward_grad) / (2 * h)
    ours = sensitivity(policy, params, experiences, "SO", direction=d).square()
    assert torch.allclose(ours, finite_difference.abs(), rtol=1e-4, atol=1e-8)


def maze_net():
    torch.manual_seed(3)
    policy = make_policy("mlp", gym.spaces.Box(0, 1, (11,)), gym.spaces.Box(0, 1, (2,)),
                         hidden=15, depth=7, activation="relu", init="xavier",
                         output_activation="sigmoid")
    return policy, F.get_flat(policy), Experiences.from_states(torch.rand(100, 11))


def maze_parents(sizes, seed, net="mlp"):
    """A net (the maze MLP, or a 2-layer recurrent stack of `net` cells on 3 inputs) and
    len(sizes) parents near its genome, each with its own archive of `sizes[i]` random states
    (recurrent: sequences of 1 to 6 steps)."""
    generator = torch.Generator().manual_seed(seed)
    if net == "mlp":
        policy, params, _ = maze_net()
    else:
        torch.manual_seed(seed)
        policy = make_policy(net, gym.spaces.Box(-1, 1, (3,)), BOX2, hidden=5, layers=2)
        params = F.get_flat(policy)
    parents = params + 0.2 * torch.randn(len(sizes), params.numel(), generator=generator)
    if net == "mlp":
        batches = [Experiences.from_states(torch.rand(n, 11, generator=generator))
                   for n in sizes]
    else:
        lengths = torch.randint(1, 7, (sum(sizes),), generator=generator).tolist()
        sequences = [torch.randn(t, 3, generator=generator) for t in lengths]
        batches = [Experiences.from_sequences(sequences[a:b])
                   for a, b in itertools.pairwise(np.cumsum([0, *sizes]))]
    return policy, params, parents, batches


NETS = ["mlp", "rnn", "gru", "lstm"]


@pytest.mark.parametrize("target", [1e-4, 1e-3, 1e-2])
def test_sm_r_hits_the_target_divergence(target):
    policy, params, experiences = maze_net()
    for seed in range(3):
        child, stats = make_mutation("SM-R", target)(
            params, policy, experiences, torch.Generator().manual_seed(seed))
        assert stats.reachable
        assert divergence(policy, params, child, experiences) == pytest.approx(target, rel=0.02)


def test_sm_r_reports_an_unreachable_target():
    policy, params, experiences = maze_net()  # sigmoid outputs: D is at most 2
    _, stats = make_mutation("SM-R", 10.0)(params, policy, experiences,
                                           torch.Generator().manual_seed(0))
    assert not stats.reachable and stats.divergence < 10.0


def test_sm_g_fo_matches_its_first_order_prediction_for_small_targets():
    torch.manual_seed(0)  # a smooth net: ReLU kinks would make even tiny steps non-linear
    policy = make_policy("mlp", gym.spaces.Box(0, 1, (11,)), gym.spaces.Box(0, 1, (2,)),
                         hidden=15, depth=7, activation="tanh", output_activation="sigmoid")
    params, experiences = F.get_flat(policy), Experiences.from_states(torch.rand(100, 11))
    for seed in range(3):
        _, stats = make_mutation("SM-G-FO", 1e-6)(params, policy, experiences,
                                                  torch.Generator().manual_seed(seed))
        assert stats.divergence == pytest.approx(1e-6, rel=0.02)


@pytest.mark.parametrize("name", ["SM-G-SUM", "SM-G-ABS", "SM-G-SO"])
def test_target_divergence_rescales_sm_g(name):
    policy, params, experiences = maze_net()
    _, stats = make_mutation(name, 0.05, target_divergence=1e-3)(
        params, policy, experiences, torch.Generator().manual_seed(0))
    assert stats.divergence == pytest.approx(1e-3, rel=0.02) and stats.line_search_evals > 0


@pytest.mark.parametrize("name", MUTATIONS.names())
def test_weight_clip_bounds_every_change(name):
    """Every operator takes weight_clip, so a config that sets it runs with any operator."""
    policy, params, experiences = maze_net()
    child, stats = make_mutation(name, 5.0, weight_clip=0.2)(
        params, policy, experiences, torch.Generator().manual_seed(0))
    change = (child - params).abs().max()
    assert float(change) == pytest.approx(0.2) and stats.delta_norm > 0  # the clip acted


@pytest.mark.parametrize("init", ["default", "xavier"])
def test_safe_mutations_are_safer_than_control_on_a_32_layer_net(init):
    """The paper's point: at equal step size ‖δ‖, SM-G children diverge far less."""
    torch.manual_seed(0)
    policy = make_policy("mlp", gym.spaces.Box(-1, 1, (8,)), BOX2, hidden=64, depth=32,
                         activation="tanh", init=init)
    params = F.get_flat(policy)
    experiences = Experiences.from_states(torch.randn(100, 8))
    ratios = {}
    for name in ("SM-G-SUM", "SM-G-ABS", "SM-G-SO"):
        generator = torch.Generator().manual_seed(0)
        operator = make_mutation(name, 0.3)
        ours, control = [], []
        for _ in range(15):
            _, stats = operator(params, policy, experiences, generator)
            noise = torch.randn(params.shape, generator=generator)
            same_size = params + noise * (stats.delta_norm / noise.norm())
            ours.append(stats.divergence)
            control.append(divergence(policy, params, same_size, experiences))
        ratios[name] = float(np.median(control) / np.median(ours))
    print(f"\n{init} init: median control/SM divergence ratio at equal |delta|: {ratios}")
    assert ratios["SM-G-ABS"] >= 10 and ratios["SM-G-SO"] >= 10


@pytest.mark.bitexact  # an operator is a pure function of its generator
@pytest.mark.parametrize("name", MUTATIONS.names())
def test_same_generator_seed_gives_identical_child(name):
    policy, params, experiences = maze_net()
    operator = make_mutation(name, 0.01)
    a, _ = operator(params, policy, experiences, torch.Generator().manual_seed(7))
    b, _ = operator(params, policy, experiences, torch.Generator().manual_seed(7))
    c, _ = operator(params, policy, experiences, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, params)


def test_names_are_case_insensitive_and_regular_means_control():
    assert type(make_mutation("regular", 0.1)).__name__ == "Control"
    assert make_mutation("sm-g-abs", 0.1).name == "SM-G-ABS"


def test_bad_input_raises_clear_errors():
    policy, params, experiences = maze_net()
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="valid: control, SM-R, SM-G-SUM, SM-G-ABS, SM-G-SO"):
        make_mutation("SM-G-ABZ", 0.1)
    with pytest.raises(ValueError, match="unknown option.*floor"):
        make_mutation("control", 0.1, floor=0.1)
    with pytest.raises(ValueError, match="magnitude"):
        make_mutation("SM-G-SUM", -1)
    with pytest.raises(ValueError, match="empty"):
        Experiences.from_states(torch.zeros(0, 11))
    with pytest.raises(ValueError, match="needs experiences"):
        make_mutation("SM-G-SUM", 0.1)(params, policy, None, g)
    with pytest.raises(ValueError, match="non-finite"):
        make_mutation("SM-G-ABS", 0.1)(params * np.nan, policy, experiences, g)
    with pytest.raises(ValueError, match="non-finite"):
        make_mutation("control", 0.1)(params * np.inf, policy, None, g)
    with pytest.raises(ValueError, match=r"shape \(1651,\), expected \(1652,\)"):
        make_mutation("SM-R", 0.1)(params[:-1], policy, experiences, g)
    with pytest.raises(ValueError, match=r"observation shape \(10,\).*expects \(11,\)"):
        make_mutation("SM-G-SO", 0.1)(params, policy, Experiences.from_states(torch.rand(5, 10)), g)
    with pytest.raises(ValueError, match="from_sequences"):
        gru, _ = gru_stack()
        make_mutation("SM-G-SUM", 0.1)(F.get_flat(gru), gru,
                                       Experiences.from_states(torch.rand(4, 3)), g)


def test_abs_fast_path_for_linear_nets_equals_per_sample_jacobians():
    from smevo.functional import linear_layers_only

    policy, params, experiences = maze_net()
    assert linear_layers_only(policy) and not linear_layers_only(gru_stack()[0])
    archive = padded_experiences([experiences], params.device)
    sums = absolute_jacobian_sums(policy, params[None], archive.observations,
                                  archive.sample_weights(mean=True), False, 2**25)
    fast = sensitivity(policy, params, experiences, "ABS")
    assert torch.allclose(fast, norm_over_outputs(sums)[0], rtol=1e-5, atol=1e-7)


def plastic_net(name):
    torch.manual_seed(4)
    policy = make_policy(name, gym.spaces.Box(-1, 1, (3,)), BOX2, hidden=4)
    sequences = [torch.randn(n, 3) for n in (9, 2, 17)]
    return policy, Experiences.from_sequences(sequences)


def direct_plastic_net():
    """A plastic net whose hidden units are its inputs and outputs (io=direct)."""
    torch.manual_seed(4)
    box = gym.spaces.Box(-1, 1, (3,))
    policy = make_policy("plastic", box, box, hidden=3, io="direct")
    return policy, Experiences.from_sequences([torch.randn(n, 3) for n in (9, 2, 17)])


@pytest.mark.parametrize("build", [deep_mlp, gru_stack, lambda: plastic_net("plastic"),
                                   lambda: plastic_net("neuromod")])
def test_forward_and_reverse_mode_give_the_same_absolute_jacobian_sums(build):
    """The two ways of forming per-sample Jacobians (chosen by shape) agree, on states, on
    ragged sequences cut into blocks, and through plastic traces."""
    policy, experiences = build()
    params = F.get_flat(policy)
    parents = torch.stack([params, params + 0.1])
    archive = padded_experiences([experiences, experiences], params.device)
    weights = archive.sample_weights(mean=True)
    sums = {mode: absolute_jacobian_sums(policy, parents, archive.observations, weights,
                                         experiences.is_sequential, 2**25, mode=mode)
            for mode in ("forward", "reverse")}
    torch.testing.assert_close(sums["forward"], sums["reverse"], rtol=1e-5, atol=1e-7)
    one_at_a_time = absolute_jacobian_sums(policy, parents, archive.observations, weights,
                                           experiences.is_sequential, 1)
    torch.testing.assert_close(one_at_a_time, sums["reverse"], rtol=1e-5, atol=1e-7)
    assert not torch.allclose(sums["reverse"][0], sums["reverse"][1])


@pytest.mark.parametrize(("name", "options"), [
    ("plastic", {}), ("plastic", {"alpha": "per_neuron"}),
    ("plastic", {"alpha": "scalar", "learn_eta": False}),
    ("plastic", {"io": "direct", "hidden": 2}),
    ("neuromod", {}), ("neuromod", {"fanout": False, "alpha": "per_neuron"}),
    ("neuromod", {"clip": 0.05}), ("neuromod", {"alpha": "scalar", "io": "direct", "hidden": 2}),
    ("rnn", {"layers": 1}), ("rnn", {"layers": 3}), ("gru", {"layers": 2}),
    ("gru", {"layers": 1, "value_head": True}), ("lstm", {"layers": 2}),
])
def test_analytic_sweeps_equal_the_generic_transforms(name, options):
    """The hand-written backward sweeps (the default where they exist) give the generic reverse
    mode's Σ w|J| (up to float32 rounding: the two sum in different orders) for the Hebbian and
    neuromodulated plastic nets (every α shape, io, η, fanout, a clip that binds) and tanh-RNN,
    GRU and LSTM stacks, on ragged sequences, in one group or a parent at a time; a clamped η (1.5)
    gets no gradient, nor does a value head the outputs do not read."""
    from smevo.mutations import sweeps

    torch.manual_seed(4)
    observations = gym.spaces.Box(-1, 1, (2 if "io" in options else 3,))
    policy = make_policy(name, observations, BOX2, **{"hidden": 4, **options})
    experiences = Experiences.from_sequences(
        [torch.randn(n, policy.input_size) for n in (9, 2, 17)])
    assert sweeps.sweep_for(policy) is not None
    params = F.get_flat(policy)
    parents = torch.stack([params, 3 * params + 0.3 * torch.randn_like(params)])
    names = [name for name, _ in policy.named_parameters()]
    if "eta" in names:
        eta = sum(p.numel() for p in list(policy.parameters())[:names.index("eta")])
        parents[0, eta], parents[1, eta] = 0.5, 1.5
    archive = padded_experiences([experiences, experiences], params.device)
    weights = archive.sample_weights(mean=True)
    sums = {chunk: absolute_jacobian_sums(policy, parents, archive.observations, weights, True,
                                          chunk, mode="analytic") for chunk in (2**25, 1)}
    reverse = absolute_jacobian_sums(policy, parents, archive.observations, weights, True,
                                     2**25, mode="reverse")
    torch.testing.assert_close(sums[2**25], reverse, rtol=2e-5, atol=1e-7)
    torch.testing.assert_close(sums[1], reverse, rtol=2e-5, atol=1e-7)
    if "eta" in names:
        assert sums[2**25][0, :, eta].abs().sum() > 0 and (sums[2**25][1, :, eta] == 0).all()
    if options.get("value_head"):
        assert (sums[2**25][..., -(policy.value_head.weight.numel() + 1):] == 0).all()


@pytest.mark.parametrize(("name", "options"), [
    ("plastic", {"rule": "oja"}), ("neuromod", {"modulation": "retroactive"}),
    ("neuromod", {"modulator_activation": "relu"}), ("gru", {"output_activation": "tanh"}),
])
def test_variants_without_a_sweep_take_the_generic_path(name, options):
    from smevo.mutations import sweeps

    policy = make_policy(name, gym.spaces.Box(-1, 1, (3,)), BOX2, hidden=4, **options)
    assert sweeps.sweep_for(policy) is None


@pytest.mark.parametrize("name", MUTATIONS.names())
def test_children_of_one_parent_equal_children_made_one_at_a_time(name):
    """Children bred together share the parent's SUM/ABS sensitivities; each child is still
    the one a separate call with its generator makes, up to rounding."""
    policy, params, experiences = maze_net()
    operator = make_mutation(name, 0.01)
    seeds = [3, 4, 5]
    together, stats = breed(operator, policy, params[None], [experiences], [0, 0, 0],
                            [torch.Generator().manual_seed(s) for s in seeds])
    for child, child_stats, seed in zip(together, stats, seeds, strict=True):
        alone, alone_stats = operator(params, policy, experiences,
                                      torch.Generator().manual_seed(seed))
        # Up to rounding, not bit for bit: SM-G-SO, SM-R and SM-G-FO vmap several children's
        # work, which sums in another order than one child alone on some CPU kernels (AVX2,
        # AVX-512). No run depends on it: a generation is always bred in the same batches.
        torch.testing.assert_close(child, alone, rtol=1e-5, atol=1e-6)
        assert child_stats.divergence == pytest.approx(alone_stats.divergence, rel=1e-5)
    assert not torch.equal(together[0], together[1])


def test_batched_divergences_equal_pairwise_divergences():
    """Archives of different sizes are padded and masked: each pair's D is its own."""
    policy, params, _ = maze_net()
    generator = torch.Generator().manual_seed(0)
    parents = params + 0.1 * torch.randn(4, params.numel(), generator=generator)
    children = parents + 0.05 * torch.randn(4, params.numel(), generator=generator)
    batches = [Experiences.from_states(torch.randn(n, 11, generator=generator))
               for n in (1, 7, 30, 100)]
    batched = divergences(policy, parents, batches, children)
    for value, p, c, e in zip(batched, parents, children, batches, strict=True):
        assert value == pytest.approx(divergence(policy, p, c, e), rel=1e-5)
    assert len(set(batched)) == 4
    # Several children of one parent: each against its own parent's experiences.
    parent_of = [2, 0, 2, 3, 1]
    many = divergences(policy, parents, batches, children[[0, 1, 2, 3, 0]], parent_of)
    for value, c, p in zip(many, children[[0, 1, 2, 3, 0]], parent_of, strict=True):
        assert value == pytest.approx(divergence(policy, parents[p], c, batches[p]), rel=1e-5)


@pytest.mark.parametrize("net", NETS[1:])
def test_batched_divergences_of_recurrent_children_equal_pairwise_divergences(net):
    """Sequences of different counts and lengths: padding steps count for nothing."""
    policy, _, parents, batches = maze_parents((1, 7, 30), seed=5, net=net)
    children = parents + 0.05 * torch.randn(parents.shape,
                                            generator=torch.Generator().manual_seed(1))
    parent_of = [2, 0, 2, 1]
    kids = children[[0, 1, 2, 1]]
    batched = divergences(policy, parents, batches, kids, parent_of)
    for value, c, p in zip(batched, kids, parent_of, strict=True):
        assert value == pytest.approx(divergence(policy, parents[p], c, batches[p]), rel=1e-5)
    assert len(set(batched)) == 4


def test_huge_gradients_give_finite_children():
    """Gradients past ~1.8e19 overflow float32 squares; the norm is then taken in float64,
    and an infinite sensitivity freezes its weight instead of turning the child into NaN."""
    norms = norm_over_outputs(torch.tensor([[3e19, 1.0], [4e19, 0.0]]))
    assert torch.allclose(norms, torch.tensor([5e19, 1.0]))
    divisors = postprocess(torch.tensor([math.inf, 1.0, 3.0, 0.0]))
    assert divisors.tolist() == [math.inf, 0.5, 1.5, 1.0]
    torch.manual_seed(0)
    policy = make_policy("mlp", BOX2, BOX2, hidden=8, depth=2, activation="linear")
    params = F.get_flat(policy) * 1e10  # a linear net whose output gradients reach ~1e20
    states = Experiences.from_states(torch.ones(5, 2))
    for name in ("SM-G-SUM", "SM-G-ABS"):
        child, stats = make_mutation(name, 0.1)(params, policy, states,
                                                torch.Generator().manual_seed(1))
        assert torch.isfinite(child).all(), name
        assert not math.isnan(stats.sensitivity_max), name


def test_sensitivities_near_the_float32_limit_give_finite_divisors():
    """Finite sensitivities whose sum overflows float32 (the mean of 1e38s), infinite and NaN
    ones: every divisor is finite and positive or +inf (that weight frozen), never NaN, and
    the finite ones keep their ratios."""
    big = torch.finfo(torch.float32).max
    raw = torch.tensor([big, big / 2, big, 1e-30, 0.0, math.inf, math.nan])
    divisors = postprocess(raw)
    assert not torch.isnan(divisors).any() and (divisors > 0).all()
    assert divisors[5] == math.inf and divisors[6] == math.inf
    assert divisors[0] / divisors[1] == pytest.approx(2.0, rel=1e-6)
    assert divisors[4] == 1.0 and divisors[3] == pytest.approx(0.01)  # zero -> 1, floor
    noise = torch.randn(len(raw), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(noise / divisors).all()
    per_output = torch.tensor([[big, 1.0], [big, 2.0]])
    assert norm_over_outputs(per_output).tolist()[1] == pytest.approx(math.sqrt(5.0))
    assert norm_over_outputs(per_output)[0] == math.inf  # beyond float32: frozen, not NaN


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("kind", ["SUM", "ABS"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_sensitivities_batched_over_parents_equal_one_parent_at_a_time(net, kind, reduction):
    """Archives of different sizes (and sequences of different lengths) are padded with zero
    weight: each parent's sensitivity is its own."""
    policy, params, parents, batches = maze_parents((100, 3, 64, 1, 100), seed=1, net=net)
    # Chunks of about three parents (recurrent ABS: of their per-sample Jacobians).
    per_parent = 2 * (100 * 6 if net != "mlp" and kind == "ABS" else 1) * params.numel()
    batched = parents_sensitivity(policy, parents, padded_experiences(batches, params.device),
                                  kind, reduction, chunk_elements=3 * per_parent)
    for raw, p, e in zip(batched, parents, batches, strict=True):
        alone = sensitivity(policy, p, e, kind, sum_reduction=reduction)
        torch.testing.assert_close(raw, alone, rtol=1e-5, atol=1e-9)


def test_parents_too_big_to_batch_go_one_at_a_time_over_chunks_of_samples():
    policy, params, parents, batches = maze_parents((4, 2), seed=6, net="gru")
    batched = parents_sensitivity(policy, parents, padded_experiences(batches, params.device),
                                  "ABS", "mean", chunk_elements=params.numel())
    for raw, p, e in zip(batched, parents, batches, strict=True):
        torch.testing.assert_close(raw, sensitivity(policy, p, e, "ABS"), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("name", MUTATIONS.names())
def test_offspring_of_several_parents_match_their_children_alone(name, net):
    policy, _, parents, batches = maze_parents((40, 9, 100), seed=2, net=net)
    parent_of, seeds = [0, 1, 0, 2, 2, 2], [1, 3, 2, 4, 5, 6]
    operator = make_mutation(name, 0.01)
    together, stats = breed(operator, policy, parents, batches, parent_of,
                            [torch.Generator().manual_seed(s) for s in seeds])
    assert together.shape == (6, parents.shape[1])
    for child, child_stats, p, seed in zip(together, stats, parent_of, seeds, strict=True):
        alone, alone_stats = operator(parents[p], policy, batches[p],
                                      torch.Generator().manual_seed(seed))
        torch.testing.assert_close(child, alone, rtol=1e-4, atol=1e-6)
        assert child_stats.divergence == pytest.approx(alone_stats.divergence, rel=1e-3)


@pytest.mark.bitexact  # measuring later computes what measuring at once does
@pytest.mark.parametrize("name", ["control", "SM-R", "SM-G-SUM"])
def test_a_generations_measurement_left_for_later_gives_the_same_divergences(name, monkeypatch):
    """`breed(later=...)` makes the same children and leaves their measurement in `later`:
    run, it fills in the divergences that measuring at once gives. A generation of several
    broods is measured at once (and leaves nothing)."""
    from smevo.mutations import breeding

    policy, _, parents, batches = maze_parents((40, 9, 100), seed=2, net="mlp")
    parent_of = [0, 1, 0, 2, 2, 2]

    def bred(**later):
        generators = [torch.Generator().manual_seed(s) for s in range(6)]
        return breed(make_mutation(name, 0.01), policy, parents, batches, parent_of,
                     generators, **later)

    at_once, measured = bred()
    later = []
    children, stats = bred(later=later)
    assert torch.equal(children, at_once) and len(later) == 1
    assert all(math.isnan(s.divergence) for s in stats)
    later.pop()()
    assert [s.divergence for s in stats] == [s.divergence for s in measured]
    monkeypatch.setattr(breeding, "OFFSPRING_CHUNK_ELEMENTS", 2 * parents.shape[1])
    children, stats = bred(later=later)  # broods of their own sum in other orders
    assert not later
    torch.testing.assert_close(children, at_once, rtol=1e-4, atol=1e-6)
    assert [s.divergence for s in stats] == pytest.approx([s.divergence for s in measured],
                                                          rel=1e-4)


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("kind", ["SO", "FO"])
def test_directional_sensitivities_of_many_children_equal_one_child_at_a_time(kind, net):
    policy, params, parents, batches = maze_parents((100, 2, 31), seed=3, net=net)
    directions = torch.randn(5, params.numel(), generator=torch.Generator().manual_seed(4))
    directions /= directions.norm(dim=1, keepdim=True)
    parent_of = torch.tensor([0, 2, 2, 1, 0])
    batched = directional_sensitivities(policy, parents,
                                        padded_experiences(batches, params.device), directions,
                                        parent_of, kind, chunk_elements=3 * params.numel())
    for value, d, p in zip(batched, directions, parent_of.tolist(), strict=True):
        alone = directional_sensitivities(policy, parents[p][None],
                                          padded_experiences([batches[p]], params.device),
                                          d[None], torch.zeros(1, dtype=torch.long), kind)[0]
        torch.testing.assert_close(value, alone, rtol=1e-4, atol=1e-7)
    if kind == "FO":  # D₁ is the first-order prediction: D(θ + t·d) ≈ t²·D₁(d) for small t
        t = 1e-4
        measured = divergence(policy, parents[0], parents[0] + t * directions[0], batches[0])
        assert measured / t**2 == pytest.approx(float(batched[0]), rel=2e-2)


def test_lockstep_line_search_solves_every_child_and_flags_the_unreachable():
    """D_c(t) = a_c·t² for children with different curvatures; one saturates below the
    target, one overflows (inf) past t = 3. Each child's search stops on its own."""
    curvature = np.array([1e-6, 1.0, 50.0, 1e4, 1e-2, 2.0])
    rounds = []

    def divergences_at(children, scales):
        rounds.append(len(children))
        values = curvature[children] * scales**2
        values[children == 4] = np.minimum(values[children == 4], 0.5)  # saturates below 1
        values[(children == 5) & (scales > 3.0)] = np.inf
        return values

    results = scales_to_divergence(divergences_at, len(curvature), 1.0)
    for c in (0, 1, 2, 3, 5):
        assert results[c].reachable
        assert curvature[c] * results[c].scale ** 2 == pytest.approx(1.0, rel=1e-3)
    assert not results[4].reachable
    assert all(r.evaluations <= 60 for r in results)
    assert rounds[0] == len(curvature) and min(rounds) < len(curvature)  # finished ones drop out


class HalfControl(Mutation):
    """A plugin-style operator: one class (registered below by one line)."""

    name = "half-control"
    magnitude_means = "twice the sigma of the Gaussian"
    needs_experiences = False
    broods: ClassVar[list[int]] = []

    def perturbations(self, brood):
        self.broods.append(len(brood))
        return 0.5 * self.magnitude * brood.noises


def test_an_operator_is_one_class_and_one_registry_line(monkeypatch, tmp_path):
    from smevo import train
    from smevo.config import Config, apply_overrides

    monkeypatch.setattr(MUTATIONS, "_entries", dict(MUTATIONS._entries))
    monkeypatch.setattr(MUTATIONS, "_canonical", list(MUTATIONS._canonical))
    MUTATIONS.add("half-control", HalfControl)
    config = apply_overrides(Config(), [
        "env.id=CartPole-v1", "mutation.name=half-control", "mutation.magnitude=0.1",
        "algorithm.population=8", "algorithm.options.parents=2", "budget.generations=3",
        "budget.stop_when_solved=false", "logging.quiet=true", f"logging.logdir={tmp_path}"])
    result = train(config)
    assert result.generations == 3 and HalfControl.broods == [7, 7]  # one brood a generation
    policy = make_policy("mlp", gym.spaces.Box(-1, 1, (2,)), BOX2, hidden=2)
    params = F.get_flat(policy)
    child, stats = make_mutation("half-control", 0.2)(params, policy, None,
                                                      torch.Generator().manual_seed(0))
    noise = torch.randn(child.shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(child - params, 0.1 * noise)
    assert stats.delta_norm == pytest.approx(float((0.1 * noise).norm()), rel=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("net", [deep_mlp, gru_stack, lambda: plastic_net("plastic"),
                                 lambda: plastic_net("neuromod"), direct_plastic_net],
                         ids=["mlp", "gru", "plastic", "neuromod", "plastic-direct"])
@pytest.mark.parametrize("name", list(MUTATIONS))
def test_an_operator_on_a_device_makes_the_cpus_child_within_rounding(net, name, device):
    """Every operator run where its net and parent lie (`--device`: the CPU, and the GPU
    where there is one) makes the CPU's child, up to the device's rounding."""
    policy, experiences = net()
    params = F.get_flat(policy)
    mutation = make_mutation(name, 0.1)
    child, _ = mutation(params, policy, experiences, torch.Generator().manual_seed(3))
    on_device = copy.deepcopy(policy).to(device)
    device_child, device_stats = mutation(params.to(device), on_device, experiences,
                                          torch.Generator().manual_seed(3))
    assert device_child.device.type == device
    torch.testing.assert_close(device_child.cpu(), child, rtol=1e-4, atol=1e-6)
    # The divergence measured on the device against the CPU's measure of the same child: the
    # two children differ by rounding, which a chaotic net (a neuromodulated one after an SM-G
    # step of |δ| ~ 20) amplifies past any tight tolerance on their divergences.
    on_cpu = divergence(policy, params, device_child.cpu(), experiences)
    assert device_stats.divergence == pytest.approx(on_cpu, rel=1e-3, abs=1e-9)
