"""The Python lockstep rollout: its experience reservoir and its group of running genomes."""

import dataclasses

import numpy as np
import pytest
from backend_helpers import SPEC, population, same, tasks

from smevo.evaluation import ObsNormalizer
from smevo.evaluation.rollout import RolloutWorker, StateReservoir, _uniform_hash


def reservoir_one_by_one(obs, active, size, seeds):
    """Algorithm R observation by observation, in stream order (step, then episode): the
    reference the block-sampled `StateReservoir` must equal."""
    steps, groups, _ = active.shape
    buffer = np.zeros((groups, size, *obs.shape[3:]), dtype=np.float32)
    seen = np.zeros(groups, dtype=np.int64)
    for t in range(steps):
        for g in range(groups):
            for e in np.flatnonzero(active[t, g]):
                counter = seen[g]
                u = _uniform_hash(seeds[g:g + 1], np.array([counter]))[0]
                slot = counter if counter < size else int(np.floor(u * (counter + 1)))
                if slot < size:
                    buffer[g, slot] = obs[t, g, e]
                seen[g] += 1
    return [buffer[g, :min(seen[g], size)] for g in range(groups)]


@pytest.mark.bitexact
@pytest.mark.parametrize("block_bytes", [1, 200, 1 << 22])  # a block of 1 step, of 3, all
def test_reservoir_sampled_in_blocks_equals_one_by_one(monkeypatch, block_bytes):
    monkeypatch.setattr(StateReservoir, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(0)
    steps, groups, episodes, size = 40, 3, 2, 5
    obs = rng.normal(size=(steps, groups, episodes, 4)).astype(np.float32)
    active = rng.random((steps, groups, episodes)) < 0.7
    seeds = np.array([11, 12, 13], dtype=np.uint64)
    reservoir = StateReservoir(groups, size, episodes, (4,), seeds)
    for t in range(steps):
        reservoir.add(obs[t], active[t])
    expected = reservoir_one_by_one(obs, active, size, seeds)
    for g in range(groups):
        assert np.array_equal(reservoir.states(g), expected[g])


@pytest.mark.bitexact
@pytest.mark.filterwarnings("ignore:.*CartPole-v0 is out of date")
def test_genomes_leaving_the_group_score_as_alone():
    """CartPole-v0 takes the single-env pool, its episodes end at different steps (genomes
    leave the lockstep group one by one), and a genome with NaN weights breaks at once: each
    genome's result, experiences included, equals its evaluation in a group of its own."""
    spec = dataclasses.replace(SPEC, env_id="CartPole-v0")
    genomes = population(6, seed=3)
    genomes[2] = float("nan")
    group_tasks = tasks(6, generation=1, seed=3, episodes=2)
    worker = RolloutWorker(spec)
    together = worker.evaluate(genomes, group_tasks, ObsNormalizer())
    alone = [worker.evaluate(genomes[i:i + 1], [task], ObsNormalizer())[0]
             for i, task in enumerate(group_tasks)]
    worker.close()
    assert together[2].broken and len({r.steps for r in together}) > 2
    assert same(together, alone)
