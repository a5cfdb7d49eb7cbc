"""Plastic and neuromodulated policies: torch.func through the traces, resets, clips, options."""

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_mutations import naive_sensitivities

from smevo import functional as F
from smevo.config import load_config
from smevo.envs import make_env
from smevo.evaluation.obs_norm import ObsNormalizer
from smevo.evaluation.rollout import EvalSpec, EvalTask, RolloutWorker
from smevo.experiences import Experiences
from smevo.mutations import make_mutation, sensitivity
from smevo.policies import make_policy

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = gym.spaces.Discrete(2)
CONFIGS = Path(__file__).resolve().parents[1] / "configs"

VARIANTS = [
    pytest.param("plastic", {"rule": "hebb"}, id="plastic-hebb"),
    pytest.param("plastic", {"rule": "oja", "alpha": "per_neuron"}, id="plastic-oja-per-neuron"),
    pytest.param("plastic", {"alpha": "scalar", "learn_eta": False}, id="plastic-scalar-fixed"),
    pytest.param("neuromod", {"modulation": "simple"}, id="neuromod-simple"),
    pytest.param("neuromod", {"modulation": "simple", "fanout": False,
                              "modulator_activation": "sigmoid"}, id="neuromod-nofanout"),
    pytest.param("neuromod", {"modulation": "retroactive", "clip": 1.0}, id="neuromod-retro"),
]


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see conftest


def build(name, options, hidden=4, seed=0, obs=OBS, act=ACT):
    torch.manual_seed(seed)
    policy = make_policy(name, obs, act, hidden=hidden, **options)
    # Larger plastic coefficients than the 0.01 init, so the traces matter in a few steps.
    with torch.no_grad():
        policy.alpha.mul_(50.0)
    return policy


@pytest.mark.parametrize("name, options", VARIANTS)
def test_population_step_under_vmap_equals_a_loop_over_genomes(name, options):
    policy = build(name, options)
    genomes = torch.stack([F.get_flat(build(name, options, seed=s)) for s in range(3)])
    obs = torch.randn(6, 3, 2, 3, generator=torch.Generator().manual_seed(1))  # [T, P, B, obs]
    state = F.population_initial_state(policy, population=3, batch=2)
    loop_states = [policy.initial_state(2) for _ in range(3)]
    for t in range(obs.shape[0]):
        outputs, state = F.population_step(policy, genomes, obs[t], state)
        for p in range(3):
            expected, loop_states[p] = F.step(policy, genomes[p], obs[t, p], loop_states[p])
            assert torch.allclose(outputs[p], expected, atol=1e-6)
            for batched, single in zip(state, loop_states[p], strict=True):
                assert torch.allclose(batched[p], single, atol=1e-6)
    assert state[1].shape == (3, 2, 4, 4)  # batched [P, B, H, H] traces


@pytest.mark.parametrize("name, options", VARIANTS)
def test_sm_g_sensitivities_through_time_equal_a_naive_autograd_loop(name, options):
    policy = build(name, options)
    params = F.get_flat(policy)
    generator = torch.Generator().manual_seed(2)
    experiences = Experiences.from_sequences(
        [torch.randn(n, 3, generator=generator) for n in (4, 2, 5)]
    )
    direction = torch.randn(params.shape, generator=generator)
    direction = direction / direction.norm()
    expected = naive_sensitivities(policy, params, experiences, direction)
    for kind, naive in zip(("SUM", "ABS", "SO"), expected, strict=True):
        ours = sensitivity(policy, params, experiences, kind, direction=direction)
        assert torch.allclose(ours, naive, rtol=1e-4, atol=1e-6), kind
    # The plastic coefficients' sensitivity comes only through the replayed trace.
    alpha = F.unflatten(policy, expected[1])["alpha"]
    assert float(alpha.abs().sum()) > 0


@pytest.mark.parametrize("name, options", VARIANTS)
def test_safe_mutation_of_a_plastic_genome_is_finite_and_changes_it(name, options):
    policy = build(name, options)
    params = F.get_flat(policy)
    experiences = Experiences.from_sequences([torch.randn(5, 3), torch.randn(3, 3)])
    child, stats = make_mutation("SM-G-ABS", 0.1)(
        params, policy, experiences, generator=torch.Generator().manual_seed(0))
    assert bool(torch.isfinite(child).all()) and not torch.equal(child, params)
    assert stats.divergence > 0


@pytest.mark.parametrize("name, options", VARIANTS)
@pytest.mark.bitexact  # same episode from a fresh state, same outputs
def test_trace_starts_clean_every_episode(name, options):
    policy = build(name, options)
    episode = torch.randn(8, 2, 3)

    def play(state):
        outputs = []
        for obs in episode:
            output, state = policy(obs, state)
            outputs.append(output)
        return torch.stack(outputs), state

    first, carried = play(policy.initial_state(2))
    second, _ = play(policy.initial_state(2))
    assert torch.equal(first, second)
    assert all(float(t.abs().sum()) == 0 for t in policy.initial_state(2))
    # Carrying the trace over would change the outputs: the reset is what makes them equal.
    continued, _ = play(carried)
    assert not torch.allclose(first, continued)


@pytest.mark.bitexact  # same episode, same score
def test_identical_episodes_in_the_trainers_rollouts_score_identically():
    spec = EvalSpec("smevo/GridMaze-v0", {}, "neuromod", {"hidden": 6})
    worker = RolloutWorker(spec)
    genome = F.get_flat(worker.policy)[None].numpy() * 3
    result, = worker.evaluate(genome, [EvalTask(0, (5, 5, 6), 0)], ObsNormalizer(enabled=False))
    worker.close()
    assert result.returns[0] == result.returns[1]
    assert np.array_equal(result.experiences[0], result.experiences[1])


def test_rollout_state_follows_the_float64_parameters():
    policy = make_policy("neuromod", OBS, ACT, hidden=3, modulation="retroactive").double()
    assert all(t.dtype == torch.float64 for t in policy.initial_state(2))


@pytest.mark.parametrize(
    "name, options, trace_indices, bound",
    [
        ("plastic", {"rule": "hebb", "eta": 0.5}, (1,), 1.0),
        ("neuromod", {"modulation": "simple", "clip": 0.7}, (1,), 0.7),
        ("neuromod", {"modulation": "retroactive", "clip": 1.5, "eta": 0.5}, (1,), 1.0),
        ("neuromod", {"modulation": "retroactive", "clip": 1.5, "eta": 0.5}, (2,), 1.5),
    ],
)
def test_traces_stay_within_their_bounds(name, options, trace_indices, bound):
    policy = build(name, options, hidden=8)
    with torch.no_grad():
        for parameter in policy.parameters():  # large weights: saturated, strongly modulated
            parameter.mul_(20.0)
    state = policy.initial_state(16)
    generator = torch.Generator().manual_seed(0)
    largest = 0.0
    for _ in range(60):
        _, state = policy(torch.randn(16, 3, generator=generator), state)
        for index in trace_indices:
            largest = max(largest, float(state[index].detach().abs().max()))
    assert largest <= bound + 1e-6
    assert largest > 0.9 * bound  # the bound is reached, so the test tests it


@pytest.mark.bitexact  # the output is the state itself
def test_direct_io_is_the_reference_pattern_network():
    box = gym.spaces.Box(-20.0, 20.0, (5,), np.float32)
    policy = make_policy("plastic", box, gym.spaces.Box(-1.0, 1.0, (5,), np.float32),
                         hidden=5, io="direct", learn_eta=False)
    assert [n for n, _ in policy.named_parameters()] == ["w", "alpha"]
    pattern = torch.tensor([[1.0, -1.0, 1.0, 1.0, -1.0]])
    output, (h, hebb) = policy(20 * pattern, None)
    assert torch.allclose(output, pattern, atol=1e-6) and torch.equal(output, h)
    assert torch.allclose(hebb, torch.zeros(1, 5, 5))  # h_{-1} = 0: nothing to associate yet
    _, (_, hebb) = policy(20 * pattern, (h, hebb))
    assert torch.allclose(hebb[0], 0.01 * torch.outer(pattern[0], pattern[0]), atol=1e-6)


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("plastic", {"rule": "bcm"}, "unknown rule 'bcm'"),
        ("plastic", {"alpha": "per_row"}, "unknown alpha 'per_row'"),
        ("plastic", {"io": "sideways"}, "unknown io"),
        ("plastic", {"eta": 0.0}, "eta in"),
        ("plastic", {"hidden": 0}, "hidden >= 1"),
        ("plastic", {"io": "direct"}, "observation size == hidden == output size"),
        ("neuromod", {"modulation": "dopamine"}, "unknown modulation"),
        ("neuromod", {"clip": 0.0}, "clip > 0"),
        ("neuromod", {"modulator_activation": "relu6"}, "unknown modulator activation"),
    ],
)
def test_bad_options_are_value_errors(name, options, message):
    with pytest.raises(ValueError, match=message):
        make_policy(name, OBS, ACT, **options)


def test_gridmaze_configs_have_matched_parameter_counts():
    env = make_env("smevo/GridMaze-v0")
    counts = {}
    for variant in ("rnn", "plastic", "neuromod"):
        config = load_config(CONFIGS / f"gridmaze-{variant}.yaml")
        policy = make_policy(config.policy.name, env.observation_space, env.action_space,
                             **config.policy.options)
        counts[variant] = F.num_params(policy)
        assert config.mutation.name == "SM-G-ABS"
    assert max(counts.values()) <= 1.05 * min(counts.values()), counts


@pytest.mark.parametrize("variant", ["plastic", "neuromod"])
def test_counting_a_plastic_nets_parameters_imports_no_compiler(variant):
    """The run's memory check counts parameters on the meta device; a plastic net's init
    there must not import `torch._dynamo` (a second of every run's start) and counts what
    the real net has."""
    code = (
        "import sys, gymnasium as gym\n"
        "from smevo.config import load_config\n"
        "from smevo.resources import parameter_count\n"
        f"config = load_config('configs/gridmaze-{variant}.yaml')\n"
        "space = gym.spaces.Box(-1, 1, (17,))\n"
        "print(parameter_count(config, space, gym.spaces.Discrete(4)),"
        " 'torch._dynamo' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=root, timeout=120, check=False)
    config = load_config(CONFIGS / f"gridmaze-{variant}.yaml")
    real = make_policy(config.policy.name, gym.spaces.Box(-1, 1, (17,)), gym.spaces.Discrete(4),
                       **config.policy.options)
    assert result.stdout.split() == [str(F.num_params(real)), "False"], result.stderr
