"""The library's face besides the CLI: callbacks, `Trainer.step()` driven by hand, and
ask/tell for callers who evaluate elsewhere; the README's examples of them are run here."""

import math
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from backend_helpers import metrics, run_configs

import smevo
from smevo import AskTell, Trainer, resume, train
from smevo.agent import load_agent
from smevo.checkpoint import latest_checkpoint, load_checkpoint
from smevo.config import Config, apply_overrides
from smevo.evaluation import Backend
from smevo.experiences import Experiences
from smevo.functional import forward_observations, get_flat

README = Path(__file__).resolve().parents[1] / "README.md"

CARTPOLE = [
    "env.id=CartPole-v1",
    "env.max_steps=50",
    "policy.options={hidden: 8, depth: 1}",
    "mutation.name=SM-G-ABS",
    "mutation.magnitude=0.05",
    "algorithm.population=8",
    "algorithm.options.parents=3",
    "algorithm.options.elites=2",
    "algorithm.elite_episodes=2",
    "evaluation.backend=serial",
    "budget.stop_when_solved=false",
    "logging.quiet=true",
    "seed=5",
]


config = run_configs(CARTPOLE)


def without_timing(rows: list[dict]) -> list[dict]:
    """Metrics as `metrics.jsonl` holds them (non-finite numbers as None), timing left out."""
    return [{k: (v if math.isfinite(v) else None) for k, v in row.items()
             if not k.startswith("perf/")} for row in rows]


def jsonl(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "generation"} for row in metrics(run_dir)]


def readme_block(marker: str) -> str:
    """The README's one ```python block that contains `marker`."""
    blocks = re.findall(r"^```python\n(.*?)^```$", README.read_text(), flags=re.M | re.S)
    (block,) = [b for b in blocks if marker in b]
    return block


@pytest.mark.bitexact  # resume continues the very run; best.pt holds the champion's genome
def test_callbacks_see_every_generation_and_stop_a_run_that_resume_continues(tmp_path):
    whole = train(config(tmp_path, "logging.name=whole", "budget.generations=6"))
    seen = []

    def stop_at_4(trainer, metrics):
        return metrics["progress/generation"] >= 4

    def record(trainer, metrics):  # after the stop request: every callback is still called
        seen.append(dict(metrics))

    cut = train(config(tmp_path, "logging.name=cut", "budget.generations=6",
                       "logging.checkpoint_every=3"), callbacks=[stop_at_4, record])
    assert cut.stopped_by == "callback" and cut.generations == 4
    assert [m["progress/generation"] for m in seen] == [1, 2, 3, 4]
    assert jsonl(cut.run_dir) == without_timing(seen) == jsonl(whole.run_dir)[:4]
    # the stop checkpointed generation 4 (checkpoint_every=3 alone would not have)
    assert load_checkpoint(latest_checkpoint(cut.run_dir))["algorithm"]["generation"] == 4
    agent = load_agent(cut.run_dir / "best.pt")
    assert (agent.fitness, agent.generation) == (cut.best_fitness, cut.best_generation)
    assert torch.equal(get_flat(agent.policy).float(), cut.best_params)
    agent.close()
    resumed = resume(cut.run_dir)
    assert resumed.stopped_by == "generations" and resumed.generations == 6
    assert jsonl(resumed.run_dir) == jsonl(whole.run_dir)
    assert torch.equal(resumed.best_params, whole.best_params)


def test_trainer_stepped_by_hand_gives_the_metrics_of_train(tmp_path):
    run = train(config(tmp_path, "budget.generations=3"))
    seen = []
    with Trainer(config(tmp_path, "budget.generations=3"),
                 callbacks=[lambda trainer, m: seen.append(m)]) as trainer:
        stepped = [trainer.step() for _ in range(3)]
        assert trainer.stopped_by == "generations"
    assert without_timing(stepped) == jsonl(run.run_dir)
    assert seen == stepped
    assert list(tmp_path.iterdir()) == [run.run_dir]  # stepping by hand writes no files


class Recording(Backend):
    """A real backend that keeps every evaluation it is asked for (genomes and results)."""

    def __init__(self, backend: Backend) -> None:
        self.backend, self.name, self.calls = backend, backend.name, []

    def evaluate(self, params, tasks, normalizer):
        results = self.backend.evaluate(params, tasks, normalizer)
        self.calls.append((params.clone(), results))
        return results

    def close(self) -> None:
        self.backend.close()


@pytest.mark.bitexact  # the same seed and fitness breed the same genomes
@pytest.mark.parametrize("algorithm", [
    ["algorithm.name=truncation"],
    ["algorithm.name=steady_state", "algorithm.options={batch: 4, tournament: 3}"],
    ["algorithm.name=hillclimb", "algorithm.options={}", "algorithm.population=1"],
], ids=lambda a: a[0].partition("=")[2])
def test_ask_tell_told_the_trainers_fitness_asks_for_the_trainers_genomes(tmp_path, algorithm):
    """Same config and seed, told the fitness and observations the trainer's backend
    measured: ask/tell breeds the genomes the trainer evaluates, generation after generation
    (ask/tell validates no elites, so the trainer here validates none either: a validated
    individual ranks by its validation score)."""
    settings = config(tmp_path, *algorithm, "algorithm.elite_episodes=0")
    search = AskTell(settings)  # the spaces from the config's env
    with Trainer(settings) as trainer:
        recording = Recording(trainer.context.backend)
        trainer.context.backend = recording
        for _ in range(4):
            recording.calls.clear()
            trainer.step()
            params, results = recording.calls[0]
            assert torch.equal(search.ask(), params)
            search.tell([r.fitness for r in results], [r.experiences for r in results])
        assert torch.equal(search.population.params, trainer.algorithm.population.params)
        assert np.array_equal(search.population.fitness, trainer.algorithm.population.fitness)


def toy_search(*overrides: str, hidden: int = 8) -> AskTell:
    """Maximise -||x - target||² where x is a small mlp's output on fixed inputs."""
    settings = apply_overrides(Config(), [
        f"policy.options={{hidden: {hidden}, depth: 1}}", "mutation.name=SM-G-ABS",
        "mutation.magnitude=0.02", "algorithm.population=12", "algorithm.options.parents=3",
        *overrides])
    return AskTell(settings, gym.spaces.Box(-1.0, 1.0, (3,)), gym.spaces.Box(-1.0, 1.0, (2,)))


INPUTS = np.random.default_rng(0).uniform(-1, 1, (32, 3)).astype(np.float32)
TARGET = np.stack([INPUTS[:, 0] * INPUTS[:, 1], np.sin(2 * INPUTS[:, 2])], axis=1)


def toy_fitness(search: AskTell, genomes: torch.Tensor) -> np.ndarray:
    inputs = torch.from_numpy(INPUTS)
    outputs = np.stack([forward_observations(search.policy, g, inputs, False).numpy()
                        for g in genomes])
    return -((outputs - TARGET) ** 2).sum(-1).mean(-1)


@pytest.mark.bitexact  # a restored search asks for the same genomes
def test_ask_tell_improves_a_toy_task_with_sm_g_abs_from_the_told_observations():
    search = toy_search()
    history = []
    for _ in range(12):
        genomes = search.ask()
        assert torch.equal(search.ask(), genomes)  # asking again changes nothing
        history.append(search.tell(toy_fitness(search, genomes), [INPUTS] * len(genomes)))
    assert len(genomes) == 12 - 1  # after the first generation: children only (one elite)
    assert all(m["mutation/divergence_mean"] > 0 for m in history[1:])  # measured on INPUTS
    champion = [m["fitness/champion"] for m in history]
    assert champion == sorted(champion) and champion[-1] > champion[0] + 0.1, champion
    assert search.champion.fitness == champion[-1] == float(toy_fitness(
        search, search.champion.params[None])[0])
    # state_dict is the checkpoint: a copy loaded from it asks for the same genomes
    copy = toy_search()
    copy.load_state_dict(search.state_dict())
    assert torch.equal(copy.ask(), search.ask())


@pytest.mark.bitexact  # Experiences and raw arrays are the same observations
def test_ask_tell_keeps_at_most_archive_size_observations_and_takes_sequences():
    search = toy_search("mutation.archive_size=5")
    genomes = search.ask()
    search.tell(toy_fitness(search, genomes), np.stack([INPUTS] * len(genomes)))
    assert all(e.shape == (5, 3) for e in search.population.experiences)
    told_as_experiences = toy_search("mutation.archive_size=5")
    told_as_experiences.ask()
    told_as_experiences.tell(toy_fitness(search, genomes),
                             [Experiences.from_states(INPUTS)] * len(genomes))
    assert torch.equal(told_as_experiences.ask(), search.ask())
    recurrent = AskTell(apply_overrides(Config(), ["policy.name=gru", "mutation.name=SM-G-ABS",
                                                   "algorithm.population=4",
                                                   "algorithm.options.parents=2"]),
                        gym.spaces.Box(-1.0, 1.0, (1,)), gym.spaces.Box(-1.0, 1.0, (2,)))
    for _ in range(2):
        count = len(recurrent.ask())
        sequences = [[np.ones((3, 1)), np.zeros((5, 1))]] * count  # two episodes each
        metrics = recurrent.tell(np.arange(count, dtype=float), sequences)
    assert metrics["mutation/divergence_mean"] > 0
    count = len(recurrent.ask())
    with pytest.raises(ValueError, match=r"^experiences\[0\] must be sequences of shape \[T, 1\]"):
        recurrent.tell(np.zeros(count), [[np.ones((3, 2))]] * count)
    recurrent.tell(np.zeros(count),
                   [Experiences.from_sequences([np.ones((3, 1)), np.ones((2, 1))])] * count)


@pytest.mark.parametrize(("fitness", "experiences", "message"), [
    (np.zeros(3), None, r"^fitness must be 12 numbers \(one per asked genome\), got shape"),
    (np.r_[np.zeros(11), np.nan], None, r"^fitness must be finite, got nan for genome 11"),
    ("high", None, r"^fitness must be 12 numbers"),
    (np.zeros(12), None, r"^mutation 'SM-G-ABS' needs experiences"),
    (np.zeros(12), [INPUTS] * 11, r"^experiences must have one entry per asked genome \(12\)"),
    (np.zeros(12), [INPUTS[:, :2]] * 12,
     r"^experiences\[0\] must be states of shape \[k, 3\], got shape \(32, 2\)"),
    (np.zeros(12), [INPUTS] * 11 + [INPUTS * np.inf],
     r"^experiences\[11\] holds a non-finite observation"),
])
def test_tell_rejects_bad_input_in_one_line_and_can_be_told_again(fitness, experiences, message):
    search = toy_search()
    genomes = search.ask()
    with pytest.raises(ValueError, match=message) as error:
        search.tell(fitness, experiences)
    assert "\n" not in str(error.value)
    search.tell(toy_fitness(search, genomes), [INPUTS] * len(genomes))  # the ask still stands
    assert search.generation == 1


def test_readme_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the training example writes runs/ here
    scope: dict = {}
    exec(readme_block("callbacks=[good_enough]"), scope)
    assert scope["result"].stopped_by == "callback"
    assert scope["metrics"]["progress/generation"] == 3
    scope = {}
    exec(readme_block("search.ask()"), scope)
    assert scope["search"].champion.generation > 1  # it improved after the first generation
    assert smevo.AskTell is AskTell
