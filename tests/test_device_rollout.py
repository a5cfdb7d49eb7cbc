"""The population forward on a device (`--device cuda`) while envs step on the CPU: tested
through the very transfers a device takes, with `device="cpu"`, and on a GPU where there is one
(its float kernels round otherwise than the CPU's: close, not equal)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from test_hebbian_step import DEVICES
from test_native_rollout import assert_same, genomes

from smevo.evaluation import EvalSpec, EvalTask, ObsNormalizer, RolloutWorker

CASES = {
    "mlp in CartPole (C++ rollout by default)": (
        EvalSpec("CartPole-v1", {}, "mlp", {"hidden": 16, "depth": 1}, archive_size=40), "mlp"),
    "gru in LunarLander (lockstep)": (
        EvalSpec("LunarLander-v3", {}, "gru", {"hidden": 8, "layers": 1}, max_steps=60,
                 archive_size=3), "gru"),
}


def setting(spec: EvalSpec, policy: str) -> tuple[RolloutWorker, RolloutWorker, tuple]:
    """A worker of the default path, one of the device path (`spec.device`) and what both
    evaluate: ten genomes of `policy`, two episodes each, observations normalised."""
    params = genomes(spec.env_id, spec.policy_options, 10, 1.5, policy)
    default = RolloutWorker(dataclasses.replace(spec, device=None))
    tasks = [EvalTask(i, (300 + 2 * i, 301 + 2 * i), 9 + i) for i in range(len(params))]
    normalizer = ObsNormalizer(enabled=True)
    normalizer.update(np.random.default_rng(1).normal(0, 1, size=(50, *default.observation_space
                                                                   .shape)).astype(np.float32))
    return default, RolloutWorker(spec), (params, tasks, normalizer)


@pytest.mark.bitexact  # on the CPU the device path computes what the default path does
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(CASES))
def test_device_path_gives_the_default_paths_results(case, device, monkeypatch):
    """On the CPU bit for bit, each step's observations and outputs moved as a device's
    would be; on a GPU (where there is one) up to its float64 kernels' rounding."""
    spec, policy = CASES[case]
    moved = []
    original = torch.Tensor.to

    def counting_to(tensor, *args, **kwargs):  # every transfer the device path makes
        moved.append(args[0] if args else kwargs.get("device"))
        return original(tensor, *args, **kwargs)

    default, on_device, inputs = setting(dataclasses.replace(spec, device=device), policy)
    assert on_device.native is None and on_device.device.type == device
    expected = default.evaluate(*inputs)
    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    got = on_device.evaluate(*inputs)
    to_device = [m for m in moved if isinstance(m, torch.device) and m.type == device]
    assert len(to_device) > max(r.steps for r in got) // 2  # each step
    if device == "cpu":
        assert_same(expected, got)
        return
    for a, b in zip(expected, got, strict=True):
        assert (a.index, a.steps, a.solved, a.broken) == (b.index, b.steps, b.solved, b.broken)
        np.testing.assert_allclose(b.fitness, a.fitness, rtol=1e-5, atol=1e-8)
        for x, y in zip(a.experiences, b.experiences, strict=True):
            np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-6)
