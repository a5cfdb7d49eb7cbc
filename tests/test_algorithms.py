"""The three search algorithms' bookkeeping: population sizes, budgets, monotone bests."""

import itertools
import json

import numpy as np

from smevo import train
from smevo.config import Config, apply_overrides

PARITY = [
    "env.id=smevo/RecurrentParity-v0",
    "env.episodes=16",
    "env.index_episodes=true",
    "policy.name=gru",
    "mutation.name=SM-G-ABS",
    "algorithm.elite_episodes=0",
    "budget.stop_when_solved=false",
    "logging.quiet=true",
]


def run(tmp_path, *overrides):
    result = train(apply_overrides(Config(), [f"logging.logdir={tmp_path}", *overrides]))
    lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    return result, [json.loads(line) for line in lines]


def test_steady_state_keeps_its_size_and_never_loses_its_best(tmp_path):
    result, history = run(tmp_path, *PARITY, "algorithm.name=steady_state",
                          "algorithm.population=20", "algorithm.batch=10",
                          "algorithm.tournament=5", "budget.generations=6")
    assert result.evaluations == 20 + 5 * 10  # the initial population, then 5 batches
    assert result.env_steps == result.evaluations * 16 * 4  # 16 sequences of 4 bits each
    best = [m["fitness/best"] for m in history]
    assert all(b2 >= b1 for b1, b2 in itertools.pairwise(best))
    assert best[-1] > best[0]


def test_truncation_elites_carry_the_best_forward(tmp_path):
    result, history = run(tmp_path, *PARITY, "algorithm.population=20", "algorithm.parents=5",
                          "algorithm.elites=2", "budget.generations=5")
    assert result.evaluations == 20 + 4 * 18  # elites are not re-evaluated
    best = [m["fitness/best"] for m in history]
    assert all(b2 >= b1 for b1, b2 in itertools.pairwise(best))


def test_hillclimb_accepts_only_strict_improvements(tmp_path):
    result, history = run(tmp_path, "env.id=smevo/Medium-v0", "policy.name=toy2w",
                          "algorithm.name=hillclimb", "algorithm.population=1",
                          "algorithm.elite_episodes=0", "mutation.name=control",
                          "mutation.magnitude=0.05", "budget.generations=60",
                          "budget.stop_when_solved=false", "logging.quiet=true")
    fitness = np.array([m["fitness/best"] for m in history])
    assert result.evaluations == 60 and np.all(np.diff(fitness) >= 0) and fitness[-1] > fitness[0]
