"""Policies: parameter counts of the paper's nets, one calling convention, decoders, errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from smevo.policies import POLICIES, ActionDecoder, make_policy, policy_from_spec

BOX11 = gym.spaces.Box(0.0, 1.0, (11,), np.float32)
BOX2 = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
BIT = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
LOGITS = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)


def count(policy):
    return sum(p.numel() for p in policy.parameters())


def test_reference_maze_net_has_1652_parameters():
    net = make_policy("mlp", BOX11, BOX2, hidden=15, depth=7, activation="relu", init="xavier",
                      output_activation="sigmoid")
    assert count(net) == 1652
    out, state = net(torch.rand(5, 11))
    assert state is None and out.shape == (5, 2) and bool(((out > 0) & (out < 1)).all())


def test_deep_wide_mlp_is_about_a_million_parameters():
    net = make_policy("mlp", BOX11, BOX2, hidden=125, depth=65, activation="tanh")
    assert 1_000_000 < count(net) < 1_030_000


@pytest.mark.parametrize("cell, expected", [("rnn", 782), ("gru", 2282), ("lstm", 3032)])
def test_parity_stacks_match_reference_parameter_counts(cell, expected):
    net = make_policy(cell, BIT, LOGITS)
    assert count(net) == expected
    state = net.initial_state(4)
    for _ in range(3):
        out, state = net(torch.rand(4, 1), state)
    assert out.shape == (4, 2) and len(state) == 2


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_cells_match_pytorch_builtin_cells(cell):
    torch.manual_seed(0)
    net = make_policy(cell, BIT, LOGITS, hidden=6, layers=1)
    ours = net.cells[0]
    builtin = {"gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}[cell](1, 6)
    builtin.load_state_dict(ours.state_dict())
    x, h = torch.randn(3, 1), torch.randn(3, 6)
    if cell == "gru":
        assert torch.allclose(ours(x, h), builtin(x, h), atol=1e-6)
    else:
        c = torch.randn(3, 6)
        h2, c2 = builtin(x, (h, c))
        assert torch.allclose(ours(x, torch.cat([h, c], -1)), torch.cat([h2, c2], -1), atol=1e-6)


def test_cnn_serves_car_racing_frames():
    env = gym.make("CarRacing-v3")
    net = make_policy("cnn", env.observation_space, env.action_space)
    obs, _ = env.reset(seed=0)
    out, _ = net(torch.as_tensor(obs)[None])
    assert out.shape == (1, 3)
    env.close()


def test_toy_model_is_the_papers_formula():
    net = make_policy("toy2w", gym.spaces.Box(-1, 1, (2,)), gym.spaces.Box(-1, 1, (2,)))
    w = net.w.detach()
    assert bool((w.abs() <= 1).all())
    out, _ = net(torch.tensor([[2.0, 3.0]]))
    assert torch.allclose(out[0], torch.stack([100 * w[0] * 2, 0.1 * w[1] * 3]))


def test_decoders_cover_discrete_box_and_multibinary():
    outputs = torch.tensor([[0.1, 2.0, -1.0], [3.0, -5.0, 0.5]])
    assert ActionDecoder(gym.spaces.Discrete(3))(outputs).tolist() == [1, 0]
    box = ActionDecoder(gym.spaces.Box(-1.0, 1.0, (3,), np.float32))(outputs)
    assert box.dtype == np.float32 and box.max() <= 1 and box.min() >= -1
    assert ActionDecoder(gym.spaces.MultiBinary(3))(outputs).tolist() == [[1, 1, 0], [1, 0, 1]]


def test_spec_rebuilds_the_same_architecture():
    net = make_policy("gru", BIT, LOGITS, hidden=7)
    clone = policy_from_spec(net.spec)
    assert [p.shape for p in clone.parameters()] == [p.shape for p in net.parameters()]


def test_bad_names_options_and_spaces_are_clear_errors():
    with pytest.raises(ValueError, match="valid: mlp, rnn, gru, lstm, cnn, toy2w.*'mlp'"):
        make_policy("mpl", BOX11, BOX2)
    with pytest.raises(ValueError, match="unknown option.*hiden.*valid: hidden"):
        make_policy("mlp", BOX11, BOX2, hiden=3)
    with pytest.raises(ValueError, match="activation 'swish'"):
        make_policy("mlp", BOX11, BOX2, activation="swish")
    with pytest.raises(ValueError, match="cnn.*image"):
        make_policy("cnn", BOX11, BOX2)
    with pytest.raises(ValueError, match="Box observation"):
        make_policy("mlp", gym.spaces.Discrete(4), BOX2)
    with pytest.raises(ValueError, match="unsupported action space"):
        make_policy("mlp", BOX11, gym.spaces.Tuple([BOX2]))
    assert "GRU" in POLICIES and POLICIES.canonical("GRU") == "gru"


def test_every_option_of_every_policy_is_explained_by_smevo_list(capsys):
    """The registry entry (the class's `option_help`) gives each option a one-line meaning,
    which `smevo list policies` prints with its default."""
    from smevo import cli
    from smevo.policies import policy_option_help

    assert cli.main(["list", "policies"]) == 0
    out = capsys.readouterr().out
    for name in POLICIES.names():
        for option in policy_option_help(name):
            assert option.meaning, f"policy {name!r}: option {option.name!r} is unexplained"
            assert f"  {option.name} = " in out and option.meaning in out
    assert "  clip = 2.0: the plastic trace is clipped" in out


def test_option_meanings_name_only_options_of_the_signature():
    """The class's signature is the one source of option names and defaults; `option_help`
    only explains them, so an entry for an option the class no longer takes is stale."""
    from smevo.policies import policy_options

    for name in POLICIES.names():
        factory = POLICIES.get(name)
        meanings = getattr(getattr(factory, "func", factory), "option_help", {})
        fixed = set(getattr(factory, "keywords", {}))
        assert set(meanings) - fixed <= set(policy_options(name)), name
