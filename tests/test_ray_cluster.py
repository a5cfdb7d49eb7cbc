"""`--ray-address HOST:PORT`: `smevo train` joins a cluster that `ray start --head` started,
with Ray's token authentication on, and gives the run the serial backend gives."""

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from backend_helpers import metrics

RAY = Path(sys.executable).with_name("ray")
TRAIN = ["--env", "CartPole-v1", "--mutation", "SM-G-SUM", "--pop", "16", "--generations",
         "2", "--seed", "5", "--set", "budget.stop_when_solved=false", "--quiet"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A real head node on this machine (2 CPUs, token authentication), stopped afterwards."""
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    subprocess.run([RAY, "start", "--head", f"--port={port}", "--num-cpus=2",
                    "--include-dashboard=false", "--disable-usage-stats"],
                   env=env, check=True, capture_output=True, timeout=180)
    yield f"127.0.0.1:{port}", env
    subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def smevo(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smevo", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.bitexact  # same seed, same run on every backend
@pytest.mark.processes
def test_train_joins_a_cluster_by_host_and_port(cluster, tmp_path):
    address, env = cluster
    joined = smevo("train", *TRAIN, "--backend", "ray", "--ray-address", address,
                   "--workers", "2", "--logdir", "runs", "--name", "cluster",
                   env=env, cwd=tmp_path)
    assert joined.returncode == 0, joined.stderr
    serial = smevo("train", *TRAIN, "--backend", "serial", "--logdir", "runs",
                   "--name", "serial", env=env, cwd=tmp_path)
    assert serial.returncode == 0, serial.stderr
    assert metrics(tmp_path / "runs/cluster") == metrics(tmp_path / "runs/serial")


def test_a_missing_token_is_a_clear_error(cluster, tmp_path):
    address, env = cluster
    without = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
    failed = smevo("train", *TRAIN, "--backend", "ray", "--ray-address", address,
                   env=without, cwd=tmp_path)
    assert failed.returncode == 2
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("smevo: error: cannot join the Ray cluster at"), failed.stderr
    assert "RAY_AUTH_MODE=token" in last
