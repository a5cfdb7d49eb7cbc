"""Fixtures shared by the test modules."""

import pytest
from test_agent import save_cartpole_agent


@pytest.fixture
def run_dir(tmp_path):
    """A run directory holding only a CartPole agent's ``best.pt``, as `eval`/`watch` read it."""
    run = tmp_path / "runs" / "CartPole-v1-SM-G-SUM-test"
    run.mkdir(parents=True)
    save_cartpole_agent(run / "best.pt")
    return run
