"""The three search algorithms' bookkeeping: population sizes, budgets, monotone bests."""

import itertools
import json

import numpy as np
import pytest

from smevo import Trainer, train
from smevo.algorithms.base import GenerationLog
from smevo.config import Config, apply_overrides
from smevo.seeding import VALIDATION

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
                          "algorithm.population=20", "algorithm.options.batch=10",
                          "algorithm.options.tournament=5", "budget.generations=6")
    assert result.evaluations == 20 + 5 * 10  # the initial population, then 5 batches
    assert result.env_steps == result.evaluations * 16 * 4  # 16 sequences of 4 bits each
    best = [m["fitness/best"] for m in history]
    assert all(b2 >= b1 for b1, b2 in itertools.pairwise(best))
    assert best[-1] > best[0]


def test_truncation_elites_carry_the_best_forward(tmp_path):
    result, history = run(tmp_path, *PARITY, "algorithm.population=20",
                          "algorithm.options.parents=5", "algorithm.options.elites=2",
                          "budget.generations=5")
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


def test_children_mutated_in_memory_bounded_chunks_equal_one_call(tmp_path, monkeypatch):
    """A big network's generation is mutated in several broods (a memory bound); its
    children are the ones a single brood makes (up to batched float rounding)."""
    import torch

    from smevo.mutations import breeding, operators

    cartpole = ["env.id=CartPole-v1", "policy.name=mlp", "mutation.name=SM-G-SO",
                "algorithm.population=24", "algorithm.options.parents=6", "budget.generations=2",
                "budget.stop_when_solved=false", "logging.quiet=true", "seed=4"]
    whole, _ = run(tmp_path / "whole", *cartpole)
    genome = whole.best_params.numel()
    monkeypatch.setattr(breeding, "OFFSPRING_CHUNK_ELEMENTS", 5 * genome)  # ~one parent a brood
    calls = []
    perturbations = operators.SafeMutationSecondOrder.perturbations

    def counted(self, brood):
        calls.append(len(brood.params))
        return perturbations(self, brood)

    monkeypatch.setattr(operators.SafeMutationSecondOrder, "perturbations", counted)
    chunked, _ = run(tmp_path / "chunked", *cartpole)
    assert len(calls) > 1 and max(calls) < 6
    torch.testing.assert_close(chunked.best_params, whole.best_params, rtol=1e-3, atol=1e-3)
    assert chunked.best_fitness == whole.best_fitness


@pytest.mark.bitexact
@pytest.mark.parametrize("backend", [
    "vectorized", pytest.param("process", marks=pytest.mark.processes)])
def test_validation_episodes_go_out_one_task_each_and_score_as_one_task(backend):
    """`validate` hands each validation episode to the backend as a task of its own (so that
    parallel workers share one genome's episodes) and scores each genome exactly as one task
    of all its episodes would: the mean of their returns, -inf if any broke; it counts one
    evaluation per genome."""
    config = apply_overrides(Config(), [
        "env.id=CartPole-v1", "seed=2", "algorithm.elite_episodes=4",
        f"evaluation.backend={backend}", "evaluation.workers=2"])
    with Trainer(config) as trainer:
        context = trainer.context
        params = context.initial_params(3)
        params[1] = float("nan")
        log, sent, evaluate = GenerationLog(), [], context.backend.evaluate
        meanwhile = context.backend.evaluate_meanwhile
        context.backend.evaluate_meanwhile = lambda p, tasks, n, m: (
            sent.append([len(task.seeds) for task in tasks]) or meanwhile(p, tasks, n, m))
        scores = context.validate(params, 5, log)
        whole = evaluate(
            params, context._tasks(VALIDATION, 4, 5, range(3)), context.normalizer)
    assert sent == [[1] * 12]
    assert scores.tolist() == [r.fitness for r in whole]
    assert scores[1] == -np.inf and len({float(s) for s in scores}) == 3
    assert log.evaluations == 3 and log.steps == sum(r.steps for r in whole)


def test_a_validated_individual_ranks_by_its_validation_score():
    """The best of generation 1 (one lucky LunarLander episode, maybe) is validated on 4 more
    episodes and from then on ranks by that score; everyone else keeps its evaluation."""
    config = apply_overrides(Config(), [
        "env.id=LunarLander-v3", "seed=4", "algorithm.population=6",
        "algorithm.options.parents=2", "algorithm.elite_episodes=4",
        "evaluation.backend=vectorized"])
    with Trainer(config) as trainer:
        log = trainer.algorithm.step()
        evaluated = np.array([r.fitness for r in log.evaluated])
        fitness = trainer.algorithm.population.fitness
    changed = np.flatnonzero(fitness != evaluated)
    assert changed.tolist() == [int(np.argmax(evaluated))]
    assert fitness[changed[0]] == log.validation != evaluated[changed[0]]
