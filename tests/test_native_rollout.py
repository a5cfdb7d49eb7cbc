"""The fused C++ rollout computes exactly what the Python lockstep loop computes."""

from __future__ import annotations

import ast
import dataclasses
import re
from importlib import resources

import gymnasium as gym
import numpy as np
import pytest
import torch

from smevo.envs import make_env
from smevo.evaluation import EvalSpec, EvalTask, ObsNormalizer, RolloutWorker, _rollout
from smevo.evaluation.native import cnn_layout, compiled_forward, mlp_layout
from smevo.functional import get_flat, population_forward
from smevo.policies import make_policy

MAZE = "smevo/BreadcrumbHardMaze-v0"
REFERENCE_MAZE_NET = {"hidden": 15, "depth": 7, "activation": "relu", "init": "xavier",
                      "output_activation": "sigmoid"}


def genomes(env_id: str, options: dict, count: int, scale: float,
            policy_name: str = "mlp") -> np.ndarray:
    """`count` seeded genomes of the policy, weights scaled by `scale` (larger: bolder)."""
    env = make_env(env_id, {})
    params = []
    for i in range(count):
        torch.manual_seed(i)
        policy = make_policy(policy_name, env.observation_space, env.action_space, **options)
        params.append(get_flat(policy) * scale)
    return torch.stack(params).numpy()


def both_paths(spec: EvalSpec, params: np.ndarray, episodes: int,
               normalizer: ObsNormalizer | None = None) -> tuple[list, list]:
    fast = RolloutWorker(spec)
    slow = RolloutWorker(dataclasses.replace(spec, native=False))
    assert fast.native is not None and slow.native is None
    tasks = [EvalTask(i, tuple(range(1000 + i * episodes, 1000 + (i + 1) * episodes)), 77 + i)
             for i in range(len(params))]
    normalizer = normalizer or ObsNormalizer()
    return fast.evaluate(params, tasks, normalizer), slow.evaluate(params, tasks, normalizer)


def assert_same(native: list, python: list) -> None:
    for a, b in zip(native, python, strict=True):
        assert (a.index, a.fitness, a.returns, a.steps, a.solved, a.broken) == (
            b.index, b.fitness, b.returns, b.steps, b.solved, b.broken)
        for x, y in zip(a.experiences, b.experiences, strict=True):  # states, or sequences
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("scale", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("episodes", [1, 3])
@pytest.mark.bitexact  # the fused rollout computes what the loop does
def test_cartpole_matches_the_python_loop(scale, episodes):
    spec = EvalSpec("CartPole-v1", {}, "mlp", {"hidden": 16, "depth": 1}, archive_size=40)
    native, python = both_paths(spec, genomes("CartPole-v1", {"hidden": 16, "depth": 1}, 24,
                                              scale), episodes)
    assert_same(native, python)
    lengths = [r.steps // episodes for r in native]
    assert max(lengths) > 100 and min(lengths) < 60  # short and long episodes both covered


def test_cartpole_matches_single_gymnasium_envs():
    """Returns equal those of gym.make("CartPole-v1") stepped one env at a time."""
    options = {"hidden": 8, "depth": 2, "activation": "relu"}
    params = genomes("CartPole-v1", options, 6, 2.0)
    spec = EvalSpec("CartPole-v1", {}, "mlp", options)
    worker = RolloutWorker(spec)
    results = worker.evaluate(params, [EvalTask(i, (50 + i,), i) for i in range(6)],
                              ObsNormalizer())
    env = gym.make("CartPole-v1")
    policy = make_policy("mlp", env.observation_space, env.action_space, **options).double()
    for genome, result in zip(params, results, strict=True):
        torch.nn.utils.vector_to_parameters(torch.as_tensor(genome, dtype=torch.float64),
                                            policy.parameters())
        obs, _ = env.reset(seed=50 + result.index)
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                out = policy(torch.as_tensor(obs[None], dtype=torch.float64))[0]
            action = int(out.to(torch.float32).argmax())
            obs, reward, terminated, truncated, _ = env.step(action)
            total, done = total + reward, terminated or truncated
        assert total == result.fitness


@pytest.mark.bitexact  # the fused rollout computes what the loop does
def test_cartpole_max_steps_and_normalisation_match():
    options = {"hidden": 16, "depth": 1}
    normalizer = ObsNormalizer(enabled=True)
    normalizer.update(np.random.default_rng(0).normal(0, 0.5, size=(64, 4)).astype(np.float32))
    spec = EvalSpec("CartPole-v1", {}, "mlp", options, max_steps=37, archive_size=25)
    native, python = both_paths(spec, genomes("CartPole-v1", options, 16, 2.0), 2, normalizer)
    assert_same(native, python)
    assert max(r.steps for r in native) == 2 * 37


@pytest.mark.parametrize(("options", "kwargs", "scale"), [
    (REFERENCE_MAZE_NET, {}, 1.0),
    (REFERENCE_MAZE_NET, {"frame_skip": 1}, 3.0),
    ({"hidden": 12, "depth": 3, "activation": "tanh"}, {"frame_skip": 7, "reward": "euclidean"},
     2.0),
    ({"hidden": 6, "depth": 1, "activation": "selu", "output_activation": "tanh"}, {}, 1.0),
    ({"hidden": 4, "depth": 0}, {}, 1.0),
])
@pytest.mark.bitexact  # the fused rollout computes what the loop does
def test_maze_matches_the_python_loop(options, kwargs, scale):
    spec = EvalSpec(MAZE, kwargs, "mlp", options, archive_size=30)
    native, python = both_paths(spec, genomes(MAZE, options, 12, scale), 1)
    assert_same(native, python)
    assert len({r.fitness for r in native}) > 3  # the genomes really behave differently


@pytest.mark.bitexact  # the fused rollout computes what the loop does
def test_a_non_finite_output_breaks_the_individual_on_both_paths():
    options = {"hidden": 16, "depth": 1}
    params = genomes("CartPole-v1", options, 4, 1.0)
    params[1, 0] = np.nan
    params[2, :] = 3e38  # finite weights whose outputs overflow to inf
    native, python = both_paths(EvalSpec("CartPole-v1", {}, "mlp", options), params, 2)
    assert_same(native, python)
    assert [r.broken for r in native] == [False, True, True, False]
    assert native[1].fitness == -np.inf


@pytest.mark.bitexact  # same results however the population is split (backends, workers)
@pytest.mark.parametrize(("policy", "options", "native"), [
    ("mlp", {"hidden": 16, "depth": 1}, True),
    ("mlp", {"hidden": 16, "depth": 1}, False),  # batched matrix products, G = 8 vs G = 1
    ("gru", {"hidden": 8}, False),               # vmap over the group vs one genome alone
], ids=["fused-cpp", "python-lockstep", "python-lockstep-gru"])
def test_results_do_not_depend_on_the_group(policy, options, native):
    params = genomes("CartPole-v1", options, 8, 2.0, policy)
    worker = RolloutWorker(EvalSpec("CartPole-v1", {}, policy, options, native=native))
    assert (worker.native is not None) == native
    tasks = [EvalTask(i, (i, i + 100), 5 * i) for i in range(8)]
    together = worker.evaluate(params, tasks, ObsNormalizer())
    alone = [worker.evaluate(params[i:i + 1], [t], ObsNormalizer())[0]
             for i, t in enumerate(tasks)]
    assert_same(together, alone)


@pytest.mark.parametrize(("env_id", "kwargs", "policy", "options"), [
    ("CartPole-v1", {"sutton_barto_reward": True}, "mlp", {}),    # a changed CartPole
    ("CartPole-v1", {}, "mlp", {"output_activation": "softmax"}),  # no C++ softmax head
    ("CartPole-v1", {}, "gru", {}),                                # recurrent
    ("LunarLander-v3", {}, "mlp", {}),                              # no native env
    (MAZE, {"max_episode_steps": 50}, "mlp", {}),                   # a TimeLimit wrapper
])
def test_other_cases_take_the_python_loop(env_id, kwargs, policy, options):
    assert RolloutWorker(EvalSpec(env_id, kwargs, policy, options)).native is None


def test_the_config_can_turn_the_native_path_off():
    spec = EvalSpec("CartPole-v1", {}, "mlp", {}, native=False)
    assert RolloutWorker(spec).native is None


@pytest.mark.parametrize(("hidden", "output", "scale"), [
    ("tanh", "linear", 1.0), ("relu", "tanh", 3.0), ("sigmoid", "sigmoid", 1.0),
    ("selu", "linear", 0.3),
])
def test_the_lockstep_loops_cpp_forward_gives_torchs_outputs(hidden, output, scale):
    """The C++ forward of an `mlp` in the lockstep loop (`_rollout.MlpForward`) returns the
    float32 outputs of the torch population forward for every active row, zeros for the
    others: 16 genomes x 3 episodes x 200 steps of wide-ranging inputs. Both sum in float64,
    in different orders (torch's kernels depend on the CPU), so an output may round to the
    neighbouring float32 where the float64 value lies within its last bits of a rounding
    boundary: at most one float32 step apart, and all but a few in a million equal (none of
    2.56 million differed here under ATen's default and avx2 kernels)."""
    env = gym.make("BipedalWalker-v3")
    policy = make_policy("mlp", env.observation_space, env.action_space, hidden=32, depth=2,
                         activation=hidden, output_activation=output).double()
    compiled = _rollout.MlpForward(*mlp_layout(policy))
    rng = np.random.default_rng(3)
    population = rng.normal(0.0, scale, (16, get_flat(policy).numel())).astype(np.float32)
    torch_forward = population_forward(policy, torch.as_tensor(population, dtype=torch.float64))
    differing = compared = 0
    for _ in range(200):
        obs = rng.normal(0.0, 4.0, (16, 3, 24)).astype(np.float32).astype(np.float64)
        active = rng.random(48) < 0.8
        expected = torch_forward(torch.as_tensor(obs), None)[0].to(torch.float32).numpy()
        got = compiled(population.astype(np.float64), 3, obs.reshape(48, 24), active)
        np.testing.assert_array_max_ulp(got[active], expected.reshape(48, 4)[active], maxulp=1)
        differing += int((got[active] != expected.reshape(48, 4)[active]).sum())
        compared += got[active].size
        assert not got[~active].any()
    assert compared > 20_000 and differing <= 2


@pytest.mark.bitexact  # the C++ forward computes what torch's does, rounded to float32
@pytest.mark.parametrize("env_id", ["Pendulum-v1", "LunarLander-v3"])
def test_the_lockstep_loop_gives_the_same_results_with_either_forward(env_id):
    """An `mlp` outside the fused rollouts steps in the Python loop with the C++ forward,
    unless native code is turned off: both give the same results, continuous actions
    (Pendulum) and discrete ones (LunarLander) alike, with observation normalisation on."""
    spec = EvalSpec(env_id, {}, "mlp", {"hidden": 32, "depth": 2}, max_steps=150)
    fast = RolloutWorker(spec)
    slow = RolloutWorker(dataclasses.replace(spec, native=False))
    assert fast.native is None and fast.compiled_forward is not None
    assert slow.compiled_forward is None
    params = genomes(env_id, {"hidden": 32, "depth": 2}, 12, 2.0)
    observations = np.random.default_rng(0).normal(
        0.0, 2.0, (500, *fast.observation_space.shape))
    normalizer = ObsNormalizer(enabled=True)
    normalizer.update(observations)
    tasks = [EvalTask(i, (i, i + 50), 9 + i) for i in range(len(params))]
    assert_same(fast.evaluate(params, tasks, normalizer), slow.evaluate(params, tasks, normalizer))


CNN_CASES = {  # frame space, policy options: MinAtar's nets and a strided, padded uint8 one
    "minatar-shallow": (gym.spaces.Box(0, 1, (10, 10, 4), bool),
                        {"convs": [[16, 3, 1], [16, 3, 1]], "hidden": 48}),
    "minatar-deep": (gym.spaces.Box(0, 1, (10, 10, 6), bool),
                     {"convs": [[8, 3, 1, 1]] * 6 + [[16, 3, 1], [16, 3, 1]], "hidden": 40}),
    "uint8-channels-first-tanh": (gym.spaces.Box(0, 255, (3, 13, 11), np.uint8),
                                  {"convs": [[5, 3, 2, 1], [7, 2, 1]], "hidden": 10,
                                   "activation": "tanh", "output_activation": "sigmoid"}),
}


def cnn_frames(space: gym.spaces.Box, rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Frames of `space` (sparse for boolean ones, as MinAtar's are), as float64."""
    if space.dtype == np.bool_:
        return (rng.random((*shape, *space.shape)) < 0.1).astype(np.float64)
    return rng.integers(0, 256, (*shape, *space.shape)).astype(np.float64)


@pytest.mark.parametrize("case", list(CNN_CASES))
def test_the_cnn_cpp_forward_gives_torchs_outputs(case):
    """The C++ forward of a `cnn` (`_rollout.CnnForward`) returns the float32 outputs of the
    torch population forward (grouped convolutions) for every active row, zeros for the
    others: 12 genomes x 2 episodes x 60 steps. As for the mlp's, the float64 sums run in
    another order, so an output may round to the neighbouring float32: at most one step
    apart, and all but a few equal."""
    space, options = CNN_CASES[case]
    policy = make_policy("cnn", space, gym.spaces.Discrete(5), **options).double()
    compiled = compiled_forward(policy)
    assert isinstance(compiled, _rollout.CnnForward)
    rng = np.random.default_rng(5)
    population = (get_flat(policy).float().numpy()
                  + rng.normal(0.0, 0.2, (12, compiled.num_params)).astype(np.float32))
    prepared = compiled.prepare(population)
    torch_forward = population_forward(policy, torch.as_tensor(population, dtype=torch.float64))
    differing = compared = 0
    for _ in range(60):
        frames = cnn_frames(space, rng, (12, 2))
        active = rng.random(24) < 0.8
        expected = torch_forward(torch.as_tensor(frames), None)[0].to(torch.float32).numpy()
        expected = expected.reshape(24, 5)[active]
        got = compiled(prepared, 2, frames.reshape(24, -1), active)
        np.testing.assert_array_max_ulp(got[active], expected, maxulp=1)
        differing += int((got[active] != expected).sum())
        compared += expected.size
        assert not got[~active].any()
    assert compared > 4_000 and differing <= 2


def test_the_cnn_cpp_forward_propagates_non_finite_weights_as_torch():
    """A zero input is skipped only where it changes nothing: with an infinite or NaN weight
    (0 * inf is NaN), every output is non-finite exactly where torch's is."""
    space, options = CNN_CASES["minatar-shallow"]
    policy = make_policy("cnn", space, gym.spaces.Discrete(3), **options).double()
    compiled = compiled_forward(policy)
    population = np.repeat(get_flat(policy).float().numpy()[None], 4, axis=0)
    population[0, 5] = np.inf  # a kernel weight: its zero inputs make NaNs
    population[1, -60] = np.nan  # an output weight
    population[2, 3000] = -np.inf  # a hidden-layer weight
    frames = cnn_frames(space, np.random.default_rng(0), (4, 1))
    got = compiled(compiled.prepare(population), 1, frames.reshape(4, -1), np.ones(4, bool))
    expected = population_forward(policy, torch.as_tensor(population, dtype=torch.float64))(
        torch.as_tensor(frames), None)[0].to(torch.float32).numpy().reshape(4, 3)
    assert np.isfinite(got).tolist() == np.isfinite(expected).tolist()  # where, not values
    assert not np.isfinite(got[:3]).all() and np.isfinite(got[3]).all()
    np.testing.assert_array_max_ulp(got[3], expected[3], maxulp=1)


@pytest.mark.bitexact  # the C++ forward computes what torch's does, rounded to float32
@pytest.mark.parametrize("convs", [[[16, 3, 1], [16, 3, 1]], [[8, 3, 1, 1]] * 4 + [[8, 3, 1]]])
def test_a_minatar_rollout_gives_the_same_results_with_either_forward(convs):
    """A `cnn` in MinAtar steps with the C++ forward unless native code is turned off: both
    give the same returns, steps and archived frames, a claimed group with refills as well."""
    spec = EvalSpec("MinAtar/SpaceInvaders-v1", {}, "cnn", {"convs": convs, "hidden": 32},
                    max_steps=120, archive_size=20)
    fast = RolloutWorker(spec)
    slow = RolloutWorker(dataclasses.replace(spec, native=False))
    assert isinstance(fast.compiled_forward, _rollout.CnnForward)
    assert slow.compiled_forward is None
    params = genomes("MinAtar/SpaceInvaders-v1", {"convs": convs, "hidden": 32}, 10, 1.5,
                     "cnn")
    tasks = [EvalTask(i, (i, i + 40), 3 + i) for i in range(len(params))]
    normalizer = ObsNormalizer()
    assert_same(fast.evaluate(params, tasks, normalizer), slow.evaluate(params, tasks, normalizer))
    assert sum(r.steps for r in fast.evaluate(params, tasks, normalizer)) > 500


def test_the_cnn_forward_binding_rejects_what_does_not_fit():
    forward = _rollout.CnnForward([6, 6, 2], True, 1.0, [[3, 3, 1, 0]], 4, 2, "relu", "linear")
    assert forward.num_params == 3 * 2 * 9 + 3 + 3 * 16 * 4 + 4 + 4 * 2 + 2
    prepared = forward.prepare(np.zeros((2, forward.num_params), np.float32))
    assert forward(prepared, 2, np.zeros((4, 72)), np.ones(4, bool)).shape == (4, 2)
    for args, message in [
        ((prepared[:, 1:], 2, np.zeros((4, 72)), np.ones(4, bool)), "prepared must have shape"),
        ((prepared, 2, np.zeros((4, 71)), np.ones(4, bool)), "inputs must have shape"),
        ((prepared, 2, np.zeros((4, 72)), np.ones(3, bool)), "one flag per row"),
    ]:
        with pytest.raises(ValueError, match=message):
            forward(*args)
    with pytest.raises(ValueError, match="genomes must have shape"):
        forward.prepare(np.zeros((2, 5), np.float32))
    for frame, convs, message in [
        ([6, 6, 2], [[3, 7, 1, 0]], "shrink"), ([6, 6], [[3, 3, 1, 0]], "frame must be"),
        ([6, 6, 2], [[3, 3, 0, 0]], "each conv must be"), ([6, 6, 2], [], "at least one"),
    ]:
        with pytest.raises(ValueError, match=message):
            _rollout.CnnForward(frame, True, 1.0, convs, 4, 2, "relu", "linear")


@pytest.mark.parametrize(("spec", "compiled"), [
    (EvalSpec("Pendulum-v1", {}, "mlp", {}), True),
    (EvalSpec("Pendulum-v1", {}, "mlp", {}, device="cpu"), False),  # the device path: torch
    (EvalSpec("Pendulum-v1", {}, "mlp", {}, native=False), False),
    (EvalSpec("Pendulum-v1", {}, "gru", {}), False),
    (EvalSpec("CartPole-v1", {}, "mlp", {"output_activation": "softmax"}), False),
    (EvalSpec("MinAtar/Breakout-v1", {}, "cnn", {"convs": [[4, 3, 1]]}), True),
    (EvalSpec("MinAtar/Breakout-v1", {}, "cnn", {"convs": [[4, 3, 1]]}, native=False), False),
    (EvalSpec("MinAtar/Breakout-v1", {}, "cnn",
              {"convs": [[4, 3, 1]], "output_activation": "log_softmax"}), False),
])
def test_which_forward_the_lockstep_loop_takes(spec, compiled):
    assert (RolloutWorker(spec).compiled_forward is not None) == compiled


def test_the_forward_binding_rejects_arrays_that_do_not_fit():
    forward = _rollout.MlpForward([3, 4, 2], "tanh", "linear")
    genomes = np.zeros((2, 4 * 4 + 5 * 2))
    assert forward(genomes, 2, np.zeros((4, 3)), np.ones(4, bool)).shape == (4, 2)
    for args, message in [
        ((np.zeros((2, 7)), 2, np.zeros((4, 3)), np.ones(4, bool)), "genomes must have shape"),
        ((genomes, 2, np.zeros((4, 2)), np.ones(4, bool)), "inputs must have shape"),
        ((genomes, 1, np.zeros((4, 3)), np.ones(4, bool)), "inputs must have shape"),
        ((genomes, 2, np.zeros((4, 3)), np.ones(3, bool)), "one flag per row"),
        ((genomes, 0, np.zeros((0, 3)), np.ones(0, bool)), "episodes must be"),
    ]:
        with pytest.raises(ValueError, match=message):
            forward(*args)
    with pytest.raises(ValueError, match="sizes needs"):
        _rollout.MlpForward([3], "tanh", "linear")


def test_the_binding_rejects_a_genome_of_the_wrong_length():
    with pytest.raises(ValueError, match="genomes must have shape"):
        _rollout.cartpole(sizes=[4, 2], hidden="tanh", output="linear",
                          genomes=np.zeros((1, 9), np.float32),
                          initial_states=np.zeros((1, 4)), episodes=1, max_steps=-1,
                          obs_mean=None, obs_std=None, obs_clip=5.0, archive_size=4,
                          sample_seeds=np.zeros(1, np.uint64))


def test_the_binding_names_the_activations_it_applies():
    """`mlp_layout` takes its list from the binding: hidden tanh runs natively, a softmax head
    (which the binding does not name) takes the Python path."""
    assert set(_rollout.ACTIVATIONS) == {"linear", "relu", "tanh", "sigmoid", "selu"}
    env = gym.make("CartPole-v1")
    tanh = make_policy("mlp", env.observation_space, env.action_space, activation="tanh")
    softmax = make_policy("mlp", env.observation_space, env.action_space,
                          output_activation="softmax")
    assert mlp_layout(tanh) is not None and mlp_layout(softmax) is None
    frames = gym.spaces.Box(0, 1, (10, 10, 4), bool)
    assert cnn_layout(make_policy("cnn", frames, env.action_space, convs=[[4, 3, 1]],
                                  activation="selu")) is not None
    assert cnn_layout(make_policy("cnn", frames, env.action_space, convs=[[4, 3, 1]],
                                  output_activation="softmax")) is None


def test_the_stub_matches_the_binding():
    """`_rollout.pyi` names every function, class and attribute of the module, each function
    and method with the binding's parameters in the binding's order."""
    stub = ast.parse(resources.files("smevo.evaluation").joinpath("_rollout.pyi").read_text())
    functions = {node.name: (getattr(_rollout, node.name), node)
                 for node in stub.body if isinstance(node, ast.FunctionDef)}
    classes = [node for node in stub.body if isinstance(node, ast.ClassDef)]
    attributes = {node.target.id for node in stub.body if isinstance(node, ast.AnnAssign)}
    public = {name for name in vars(_rollout) if not name.startswith("_")}
    assert public == set(functions) | attributes | {node.name for node in classes}
    for node in classes:
        methods = [method for method in node.body if isinstance(method, ast.FunctionDef)]
        cls = getattr(_rollout, node.name)
        functions |= {f"{node.name}.{method.name}": (getattr(cls, method.name), method)
                      for method in methods if not method.decorator_list}
        assert all(isinstance(getattr(cls, method.name), property)
                   for method in methods if method.decorator_list), node.name
    for name, (bound, node) in functions.items():
        parameters = [arg.arg for arg in node.args.args if arg.arg != "self"]
        signature = bound.__doc__.splitlines()[0]
        named = re.findall(r"(\w+): ", signature.partition("(")[2])
        assert [arg for arg in named if arg != "self"] == parameters, name
