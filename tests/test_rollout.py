"""The Python lockstep rollout: its experience reservoir and its group of running genomes."""

import dataclasses

import numpy as np
import pytest
from backend_helpers import SPEC, population, same, tasks

from smevo.evaluation import ObsNormalizer
from smevo.evaluation.rollout import LocalClaims, RolloutWorker, StateReservoir, _uniform_hash


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


def same_experiences(a, b) -> bool:
    """Experiences agree: a state array, or a list of per-episode sequences."""
    if isinstance(a, list):
        return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    return np.array_equal(a, b)


@pytest.mark.bitexact
@pytest.mark.filterwarnings("ignore:.*CartPole-v0 is out of date")
@pytest.mark.parametrize("policy", ["mlp", "gru"])
def test_lanes_refilled_from_claims_score_as_alone(policy):
    """Seven genomes in two lanes: a lane whose episodes have all ended takes the next claimed
    genome at once (CartPole-v0's episodes end at different steps; a genome with NaN weights
    breaks at once), and every genome's result, experiences included, equals its evaluation
    alone, whatever the recurrent state or the reservoir its lane held before."""
    spec = dataclasses.replace(SPEC, env_id="CartPole-v0", policy_name=policy,
                               policy_options={"hidden": 8})
    worker = RolloutWorker(spec)
    genomes = population(7, seed=5, spec=spec)
    genomes[3] = float("nan")
    group_tasks = tasks(7, generation=2, seed=5, episodes=2)
    admitted = []
    reset_sub_envs = worker.pool.reset_sub_envs
    worker.pool.reset_sub_envs = lambda subs, *args: admitted.append(len(subs)) or \
        reset_sub_envs(subs, *args)
    claimed = worker.evaluate_claimed(genomes, group_tasks, ObsNormalizer(), LocalClaims(7),
                                      lanes=2)
    alone = [worker.evaluate(genomes[i:i + 1], [task], ObsNormalizer())[0]
             for i, task in enumerate(group_tasks)]
    worker.close()
    assert sorted(p for p, _ in claimed) == list(range(7))
    assert sum(admitted) == 2 * 5  # five genomes entered a freed lane, two episodes each
    results = [r for _, r in sorted(claimed, key=lambda pair: pair[0])]
    assert results[3].broken and len({r.steps for r in results}) > 2
    for x, y in zip(results, alone, strict=True):
        assert (x.index, x.fitness, x.returns, x.steps, x.solved, x.broken) == \
            (y.index, y.fitness, y.returns, y.steps, y.solved, y.broken)
        assert same_experiences(x.experiences, y.experiences)
