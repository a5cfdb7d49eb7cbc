"""What every search algorithm shares: the population, evaluation, mutation and validation.

An algorithm's `step()` runs one generation and returns plain-float metrics; it changes the
algorithm's state only at its very end, so an interrupted step leaves the previous
generation's state intact for the checkpoint.
"""

from __future__ import annotations

import abc
import math
import numbers
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from smevo import functional
from smevo._registry import keyword_options
from smevo.config import Config, ConfigError, check_minimums
from smevo.evaluation import Backend, EvalResult, EvalTask, ObsNormalizer
from smevo.experiences import Experiences
from smevo.mutations import Mutation, MutationStats, breed
from smevo.policies import Policy, policy_from_spec
from smevo.seeding import (
    CONFIRMATION,
    EVALUATION,
    INIT,
    MUTATION,
    VALIDATION,
    derive_seeds,
    episode_seed_rows,
    torch_generators,
)


@dataclass
class Population:
    """Genomes `[P, D]` with their fitness, solved flags and the raw observations each saw."""

    params: torch.Tensor
    fitness: np.ndarray
    solved: np.ndarray
    experiences: list[Any]

    def __len__(self) -> int:
        return len(self.fitness)

    def ranking(self) -> np.ndarray:
        """Indices from best to worst fitness (ties keep population order)."""
        return np.argsort(-self.fitness, kind="stable")

    def take(self, indices: np.ndarray | list[int]) -> Population:
        indices = np.asarray(indices, dtype=np.int64)
        return Population(
            self.params[torch.as_tensor(indices)],
            self.fitness[indices],
            self.solved[indices],
            [self.experiences[i] for i in indices],
        )

    def revalued(self, indices: np.ndarray, fitness: np.ndarray) -> Population:
        """This population with the fitness of `indices` replaced by `fitness`."""
        updated = self.fitness.copy()
        updated[indices] = fitness
        return replace(self, fitness=updated)

    @staticmethod
    def concat(parts: list[Population]) -> Population:
        return Population(
            torch.cat([p.params for p in parts]),
            np.concatenate([p.fitness for p in parts]),
            np.concatenate([p.solved for p in parts]),
            [e for p in parts for e in p.experiences],
        )

    @staticmethod
    def from_results(params: torch.Tensor, results: list[EvalResult]) -> Population:
        return Population(
            params,
            np.array([r.fitness for r in results]),
            np.array([r.solved for r in results]),
            [r.experiences for r in results],
        )

    def state_dict(self) -> dict[str, Any]:
        return {"params": self.params, "fitness": self.fitness, "solved": self.solved,
                "experiences": [_packed(e) for e in self.experiences]}

    @staticmethod
    def from_state(state: dict[str, Any]) -> Population:
        return Population(state["params"], np.asarray(state["fitness"]),
                          np.asarray(state["solved"]),
                          [_unpacked(e) for e in state["experiences"]])


def _packed(experiences: Any) -> Any:
    """A recurrent individual's observation sequences (a list of `[T_i, *obs]` arrays) as
    their steps end to end and their lengths: two arrays in a checkpoint instead of one per
    sequence (pickling thousands of small arrays made a parity checkpoint cost more than its
    generations). Anything else is kept as it is."""
    if isinstance(experiences, list) and experiences:
        return {"steps": np.concatenate(experiences),
                "lengths": np.array([len(sequence) for sequence in experiences])}
    return experiences


def _unpacked(experiences: Any) -> Any:
    """`_packed`'s inverse; a checkpoint written before packing holds the list itself."""
    if isinstance(experiences, dict):
        return np.split(experiences["steps"], np.cumsum(experiences["lengths"])[:-1])
    return experiences


@dataclass
class Champion:
    """The best individual validated so far (what `best.pt` holds); `generation` is the
    generation that found it, numbered as logged (the first generation is 1)."""

    params: torch.Tensor | None = None
    fitness: float = -math.inf
    generation: int = -1


@dataclass
class GenerationLog:
    """What one generation measured: scalars for every logger, histograms for TensorBoard."""

    evaluated: list[EvalResult] = field(default_factory=list)
    mutations: list[MutationStats] = field(default_factory=list)
    validation: float = math.nan
    confirmation: float = math.nan
    """The validated elite's mean on a second set of validation episodes, measured only when
    asked to confirm a validation that meets the solve threshold (NaN otherwise)."""
    evaluations: int = 0
    steps: int = 0
    evaluation_seconds: float = 0.0
    """Wall time spent in the backend's evaluations (with what ran meanwhile): the rest of a
    generation is this process's own serial work, which more workers do not shorten."""
    pending: list[Callable[[], None]] = field(default_factory=list)
    """Measurements of this generation's children left for later (`mutations.breed`'s
    `later`): the backend runs them while it evaluates, `Algorithm.step` any left after."""

    def run_pending(self) -> None:
        """Run the measurements left for later, in the order they were left."""
        while self.pending:
            self.pending.pop(0)()


class SearchContext:
    """The pieces an algorithm works with, and the run's counters (all in the checkpoint)."""

    def __init__(
        self,
        config: Config,
        policy: Policy,
        mutation: Mutation,
        backend: Backend,
        normalizer: ObsNormalizer,
        solve_threshold: float | None,
    ) -> None:
        self.config = config
        self.seed = config.seed
        self.policy = policy
        self.mutation = mutation
        self.backend = backend
        self.normalizer = normalizer
        self.solve_threshold = solve_threshold
        self.device = torch.device(config.device)
        self.evaluations = 0
        self.env_steps = 0

    def initial_params(self, count: int) -> torch.Tensor:
        """`count` freshly initialised genomes, individual i from its own seed stream."""
        genomes = []
        seeds = derive_seeds(self.seed, np.array([(INIT, i) for i in range(count)]).reshape(-1, 2))
        for seed in seeds:
            with torch.random.fork_rng(devices=[]):
                # The CPU generator alone: torch.manual_seed also queues seeds for every
                # accelerator backend, at a cost of about 1 ms per individual.
                torch.default_generator.manual_seed(seed)
                genomes.append(functional.get_flat(policy_from_spec(self.policy.spec)))
        return torch.stack(genomes)

    def initial_population(self, count: int, log: GenerationLog) -> Population:
        """Generation 0 of every algorithm: `count` fresh genomes, evaluated."""
        params = self.initial_params(count)
        return Population.from_results(params, self.evaluate(params, 0, log))

    def evaluate(
        self, params: torch.Tensor, generation: int, log: GenerationLog, offset: int = 0
    ) -> list[EvalResult]:
        """Evaluate genomes as individuals `offset…` of `generation` (their seed streams)."""
        indices = range(offset, offset + len(params))
        tasks = self._tasks(EVALUATION, self.config.env.episodes, generation, indices)
        results = self._run(params, tasks, log)
        log.evaluated.extend(results)
        return results

    def validate(
        self, params: torch.Tensor, generation: int, log: GenerationLog,
        stream: int = VALIDATION,
    ) -> np.ndarray:
        """Mean return of each genome over `elite_episodes` fresh validation episodes (-inf
        for a genome with a non-finite output), drawn from `stream` (`CONFIRMATION`: a second,
        independent set). Each episode goes to the backend as a task of its own, so that a
        parallel backend spreads one genome's episodes over its workers; indexed episodes
        (whose reset depends on their place in the task) stay together."""
        episodes = self.config.algorithm.elite_episodes
        tasks = self._tasks(stream, episodes, generation, range(len(params)))
        if self.config.env.index_episodes:
            return np.array([r.fitness for r in self._run(params, tasks, log)])
        single = [replace(task, seeds=(seed,)) for task in tasks for seed in task.seeds]
        results = self._run(params.repeat_interleave(episodes, dim=0), single, log,
                            evaluations=len(tasks))
        scores = []
        for g in range(len(tasks)):
            mine = results[g * episodes:(g + 1) * episodes]
            broken = any(r.broken for r in mine)
            scores.append(-np.inf if broken else float(np.array([r.returns[0] for r in mine])
                                                       .mean()))
        return np.array(scores)

    def _tasks(
        self, stream: int, episodes: int, generation: int, indices: range
    ) -> list[EvalTask]:
        """One task per individual: episode seeds and sampling seed from its own stream."""
        keys = np.array([(stream, generation, i, 1) for i in indices]).reshape(-1, 4)
        seeds = episode_seed_rows(self.seed, episodes, keys[:, :3])
        samples = derive_seeds(self.seed, keys)
        return [EvalTask(index=i, seeds=tuple(s), sample_seed=sample)
                for i, s, sample in zip(indices, seeds, samples, strict=True)]

    def _run(
        self, params: torch.Tensor, tasks: list[EvalTask], log: GenerationLog,
        evaluations: int | None = None,
    ) -> list[EvalResult]:
        """The backend's results of `tasks`, counted in `log` as `evaluations` (default: one
        per task) and their steps."""
        start = time.perf_counter()
        results = self.backend.evaluate_meanwhile(params.detach().cpu(), tasks, self.normalizer,
                                                  log.run_pending)
        log.evaluation_seconds += time.perf_counter() - start
        log.evaluations += len(results) if evaluations is None else evaluations
        log.steps += sum(r.steps for r in results)
        return results

    def meets_threshold(self, fitness: float) -> bool:
        return self.solve_threshold is not None and fitness >= self.solve_threshold

    def breed(
        self, population: Population, parents: np.ndarray, generation: int, log: GenerationLog
    ) -> torch.Tensor:
        """Children `[C, D]` (on the CPU) of `generation`: child i mutates member `parents[i]`
        with noise from its own seed stream (`mutations.breed`)."""
        members, parent_of = np.unique(parents, return_inverse=True)  # only those bred from
        children, stats = breed(
            self.mutation, self.policy,
            population.params[torch.as_tensor(members)].to(self.device),
            [self.experiences(population.experiences[m]) for m in members],
            parent_of.tolist(),
            torch_generators(self.seed, np.array([(MUTATION, generation, i) for i in
                                                  range(len(parents))]).reshape(-1, 3)),
            later=log.pending,
        )
        log.mutations.extend(stats)
        return children.cpu()

    def experiences(self, raw: Any) -> Experiences | None:
        """Recorded raw observations as `Experiences`, seen through the current normaliser."""
        if raw is None or len(raw) == 0:
            return None
        if self.policy.is_recurrent:
            return Experiences.from_sequences([self.normalizer(seq) for seq in raw])
        return Experiences.from_states(self.normalizer(np.asarray(raw)))

    def update_normalizer(self, experiences: list[Any]) -> None:
        """Merge a generation's recorded observations into the observation statistics."""
        if not self.normalizer.enabled:
            return
        chunks = [np.concatenate(e) if self.policy.is_recurrent else e
                  for e in experiences if e is not None and len(e)]
        if chunks:
            self.normalizer.update(np.concatenate(chunks))


def check_count(name: str, value: Any, low: int) -> None:
    """Raise `ConfigError`, naming ``algorithm.options.<name>``, unless `value` is an int of
    at least `low`: the check of an algorithm's count options (parents, tournament, ...)."""
    key = f"algorithm.options.{name}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{key}: expected int, got {value!r}")
    check_minimums([(key, value, low)])


class Algorithm(abc.ABC):
    """One generation per `step()`: `next_population` (the algorithm's own rule), then the
    champion's validation, then — only then — the new state is committed.

    An algorithm's own options (``algorithm.options`` in a config) are the keyword-only
    parameters of its constructor, with their defaults: its signature is the one source of
    their names and defaults (`smevo._registry.keyword_options`), and `resolve_options`
    checks their values. ``algorithm.population`` and ``algorithm.elite_episodes`` are
    every algorithm's, in the config's `AlgorithmConfig`.
    """

    name = "algorithm"
    shared: tuple[str, ...] = ("population", "elite_episodes")
    """The shared ``algorithm.*`` keys this algorithm reads; with its options, what
    TensorBoard's HParams shows of it."""

    def __init__(self, context: SearchContext) -> None:
        self.context = context
        self.generation = 0
        self.population: Population | None = None
        self.champion = Champion()

    @classmethod
    def resolve_options(cls, population: int, **options: Any) -> dict[str, Any]:
        """Every option of this class for a run of `population`, as the run uses them:
        `options` over the signature's defaults, derived values filled in. A value out of
        range raises `ConfigError` naming ``algorithm.options.<key>``; a class with options
        overrides this to check them (the base has none to check)."""
        return {**keyword_options(cls), **options}

    @classmethod
    def footprint(cls, population: int, options: Mapping[str, Any]) -> tuple[int, int, int]:
        """What a generation holds, for `smevo.resources`: the individuals kept, the children
        bred, and the candidates validated, given `resolve_options`' result."""
        return population, population, 1

    @abc.abstractmethod
    def next_population(self, log: GenerationLog) -> Population:
        """The population after this generation (the first call initialises it)."""

    def validation_candidates(self, population: Population) -> np.ndarray:
        """Who may become champion: by default the best individual."""
        return population.ranking()[:1]

    def step(self, confirm: bool = False) -> GenerationLog:
        """Run one generation and return what it measured. With `confirm`, a validated elite
        that meets the solve threshold is validated again on new episodes
        (`GenerationLog.confirmation`), inside the generation so that a checkpoint never
        holds a crossing without its confirmation; that second score, not the first, is what
        it may become champion with. The population (who breeds) ranks it by its validation
        either way."""
        context = self.context
        log = GenerationLog()
        population = self.next_population(log)
        log.run_pending()  # an algorithm that bred without evaluating after
        candidates = self.validation_candidates(population)
        if context.config.algorithm.elite_episodes > 0:
            scores = context.validate(population.params[torch.as_tensor(candidates)],
                                      self.generation, log)
            best = int(np.argmax(scores))
            index, log.validation = int(candidates[best]), float(scores[best])
            # From now on a validated individual ranks by its validation, a mean over more
            # episodes: with a noisy fitness, one lucky evaluation would otherwise keep it on
            # top for good, the only individual ever validated, and the champion would stall.
            population = population.revalued(candidates, scores)
            if confirm and context.meets_threshold(log.validation):
                log.confirmation = float(context.validate(
                    population.params[index:index + 1], self.generation, log,
                    stream=CONFIRMATION)[0])
        else:
            index = int(candidates[0])
            log.validation = float(population.fitness[index])
        # A confirmed candidate competes with its confirmation, the score that did not select
        # it, so the champion a solved run leaves is the genome whose crossing held.
        score = log.validation if math.isnan(log.confirmation) else log.confirmation
        champion = self.champion
        if score > champion.fitness:
            champion = Champion(population.params[index].clone(), score, self.generation + 1)
        # Commit: nothing above changed the algorithm's or the context's state.
        self.population, self.champion = population, champion
        self.generation += 1
        context.evaluations += log.evaluations
        context.env_steps += log.steps
        context.update_normalizer([r.experiences for r in log.evaluated])
        return log

    def state_dict(self) -> dict[str, Any]:
        context = self.context
        return {
            "algorithm": self.name,
            "generation": self.generation,
            "population": self.population.state_dict(),
            "champion": vars(self.champion).copy(),
            "evaluations": context.evaluations,
            "env_steps": context.env_steps,
            "normalizer": context.normalizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["algorithm"] != self.name:
            raise ValueError(
                f"checkpoint is of algorithm {state['algorithm']!r}, the config says {self.name!r}"
            )
        context = self.context
        self.generation = int(state["generation"])
        self.population = Population.from_state(state["population"])
        self.champion = Champion(**state["champion"])
        context.evaluations, context.env_steps = state["evaluations"], state["env_steps"]
        context.normalizer = ObsNormalizer.from_state(state["normalizer"])
