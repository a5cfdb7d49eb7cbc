"""Learning with small budgets and fixed seeds: the paper's washout finding."""

import pytest

from smevo import train
from smevo.config import Config, apply_overrides

pytestmark = pytest.mark.slow  # minutes of CPU; `make test` runs it all the same

SEEDS = range(10)


def washout_run(tmp_path, operator: str, seed: int):
    """The reference's illustrative setup: (1+1) hill climber, 2000 steps, the 8 input rows."""
    return train(apply_overrides(Config(), [
        f"logging.logdir={tmp_path}",
        "env.id=smevo/GradientWashout-v0",
        "env.kwargs={repeats: 4}",
        "policy.name=toy2w",
        "algorithm.name=hillclimb",
        "algorithm.population=1",
        "algorithm.elite_episodes=0",
        "budget.generations=2000",
        f"mutation.name={operator}",
        "mutation.magnitude=0.01",
        "evaluation.backend=serial",
        "logging.quiet=true",
        "logging.checkpoint_every=2000",
        "logging.histogram_every=0",
        f"seed={seed}",
    ]))


@pytest.mark.parametrize("operator", ["SM-G-ABS", "SM-G-SO"])
def test_abs_and_so_reach_the_washout_optimum_in_every_seed(tmp_path, operator):
    # Solved: fitness >= -0.01 (the env's reward_threshold), i.e. w0 ≈ 0.01 and w1 ≈ 10.
    results = [washout_run(tmp_path, operator, seed) for seed in SEEDS]
    assert all(r.solved for r in results), [r.best_fitness for r in results]


def test_sum_never_reaches_the_washout_optimum(tmp_path):
    # Its gradients cancel over the +x and -x rows: w0 looks insensitive, gets an average
    # step, and every such step wrecks the output that w0 drives 100x.
    results = [washout_run(tmp_path, "SM-G-SUM", seed) for seed in SEEDS]
    assert not any(r.solved for r in results)
    assert max(r.best_fitness for r in results) < -1.0
