"""Fixtures shared by the test modules."""

import signal

import pytest
import torch
from test_agent import save_cartpole_agent


@pytest.fixture
def run_dir(tmp_path):
    """A run directory holding only a CartPole agent's ``best.pt``, as `eval`/`watch` read it."""
    run = tmp_path / "runs" / "CartPole-v1-SM-G-SUM-test"
    run.mkdir(parents=True)
    save_cartpole_agent(run / "best.pt")
    return run


@pytest.fixture
def one_thread():
    """One intra-op torch thread for the test: small tensors run faster so, and the timing
    does not depend on a busy second core. Modules of small-tensor tests use it throughout
    (`pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def python_sigint():
    """Python's own Ctrl-C handler for the test, whatever the process inherited: a suite
    started in the background of a shell ignores SIGINT, and a run then rightly ignores it
    (`smevo.interrupts.StopSignals`), so a test that sends itself SIGINT needs it back."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def run(capsys):
    """Call the experiments' command line (`scripts/reproduce.py`'s main) with argv; return its
    stdout. Torch's thread count, which main sets, is restored afterwards."""
    from smevo.experiments.cli import main

    threads = torch.get_num_threads()

    def call(*argv):
        assert main([str(a) for a in argv]) == 0
        return capsys.readouterr().out

    yield call
    torch.set_num_threads(threads)
