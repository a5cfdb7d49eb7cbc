"""Atari as a pixel domain: ale-py's ``ALE/`` ids and the preprocessed ``Atari/`` ones made on
demand, seeded episodes, and configs/atari-pong.yaml training the cnn on stacked frames."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_logging import read_events

from smevo import train
from smevo.config import apply_overrides, load_config
from smevo.envs import make_env

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "atari-pong.yaml"


def test_the_ids_resolve_without_registering_anything():
    """In a fresh interpreter (ale-py registers its ids when imported, once a process):
    listing the envs does not import ale_py; the config's id and ale-py's own resolve, and a
    file may name them."""
    code = (
        "import sys\n"
        "from smevo.envs import check_env_trust, env_names, make_env\n"
        "env_names()\n"
        "assert 'ale_py' not in sys.modules, 'listing the envs imported ale_py'\n"
        f"env_id = {load_config(CONFIG).env.id!r}\n"
        "check_env_trust(env_id, trust_env_code=False)\n"
        "env = make_env(env_id)\n"
        "print(env.observation_space, env.action_space)\n"
        "print(make_env('ALE/Pong-v5').observation_space)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                         capture_output=True, text=True).stdout.splitlines()
    assert out == ["Box(0, 255, (4, 84, 84), uint8) Discrete(6)",
                   "Box(0, 255, (210, 160, 3), uint8)"]


def test_without_ale_py_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ale_py", None)  # what an import finds when not installed
    with pytest.raises(ValueError, match=r"pip install 'smevo\[pixels\]'"):
        make_env("Atari/Pong-v0")


def episode(env, seed: int, actions: list[int]) -> np.ndarray:
    frames = [env.reset(seed=seed)[0]]
    for action in actions:
        frames.append(env.step(action)[0])
    return np.stack(frames)


@pytest.mark.bitexact  # the same uint8 frames
def test_an_episode_depends_on_its_seed_alone():
    """Emulator, sticky actions and no-op starts all follow the reset's seed, so a reused env
    (the trainer's pools reuse them) plays what a fresh one does: no `reset_keeps_state`."""
    actions = [2, 3] * 20
    fresh = episode(make_env("Atari/Pong-v0"), 7, actions)
    used = make_env("Atari/Pong-v0")
    episode(used, 8, [1] * 40)
    assert np.array_equal(fresh, episode(used, 7, actions))
    assert not np.array_equal(fresh, episode(used, 8, actions))


def test_the_config_trains_the_cnn_with_tensorboard(tmp_path):
    """Two generations of two individuals, the second bred by SM-G-SUM from uint8 frames."""
    result = train(apply_overrides(load_config(CONFIG), [
        "budget.generations=2", "algorithm.population=2", "algorithm.options.parents=1",
        "algorithm.elite_episodes=0", "env.max_steps=50", "mutation.name=SM-G-SUM",
        "mutation.magnitude=0.003", "mutation.archive_size=4", "evaluation.backend=serial",
        "logging.quiet=true", f"logging.logdir={tmp_path}"]))
    assert (result.generations, result.stopped_by) == (2, "generations")
    assert (result.run_dir / "best.pt").is_file()
    assert "fitness/best" in read_events(result.run_dir).Tags()["scalars"]
    last = json.loads((result.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["mutation/delta_norm"] > 0
