"""The population forward on a device (`--device cuda`) while envs step on the CPU: tested
through the very transfers a device takes, with `device="cpu"`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from test_native_rollout import assert_same, genomes

from smevo.evaluation import EvalSpec, EvalTask, ObsNormalizer, RolloutWorker

CASES = {
    "mlp in CartPole (C++ rollout by default)": (
        EvalSpec("CartPole-v1", {}, "mlp", {"hidden": 16, "depth": 1}, archive_size=40), "mlp"),
    "gru in LunarLander (lockstep)": (
        EvalSpec("LunarLander-v3", {}, "gru", {"hidden": 8, "layers": 1}, max_steps=60,
                 archive_size=3), "gru"),
}


@pytest.mark.bitexact  # on the CPU the device path computes what the default path does
@pytest.mark.parametrize("case", list(CASES))
def test_device_path_gives_the_default_paths_results(case, monkeypatch):
    spec, policy = CASES[case]
    params = genomes(spec.env_id, spec.policy_options, 10, 1.5, policy)
    moved = []
    original = torch.Tensor.to

    def counting_to(tensor, *args, **kwargs):  # every transfer the device path makes
        moved.append(args[0] if args else kwargs.get("device"))
        return original(tensor, *args, **kwargs)

    default = RolloutWorker(spec)
    on_device = RolloutWorker(dataclasses.replace(spec, device="cpu"))
    assert on_device.native is None and on_device.device == torch.device("cpu")
    tasks = [EvalTask(i, (300 + 2 * i, 301 + 2 * i), 9 + i) for i in range(len(params))]
    normalizer = ObsNormalizer(enabled=True)
    normalizer.update(np.random.default_rng(1).normal(0, 1, size=(50, *default.observation_space
                                                                   .shape)).astype(np.float32))
    expected = default.evaluate(params, tasks, normalizer)
    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    got = on_device.evaluate(params, tasks, normalizer)
    assert_same(expected, got)
    assert moved.count(torch.device("cpu")) > max(r.steps for r in got) // 2  # each step
