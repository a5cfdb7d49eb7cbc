"""Ask/tell: smevo breeds the genomes, the caller evaluates them wherever it likes.

    search = AskTell(config, observation_space, action_space)
    for _ in range(generations):
        genomes = search.ask()                  # [n, D]: the genomes to evaluate
        fitness, observations = evaluate(genomes)  # the caller's simulator
        metrics = search.tell(fitness, observations)

The search is the config's algorithm (truncation, steady_state, hillclimb or a plugin's) with
its own selection; only its evaluation is replaced by the caller's. `ask` runs the algorithm's
generation until it needs fitness, keeps the genomes it asked for and abandons the generation
(an algorithm commits a generation only at its end, so nothing changed); `tell` runs the
generation again and answers its evaluation with the told fitness and observations. Every draw
derives from the run seed and what it is for, so the second pass asks for the same genomes;
the children bred by the first pass are reused, not bred again.

So with the same config, the same seed and the fitness and observations the trainer's
backend measured, `ask` returns the genomes `train` evaluates, generation after generation
(tests/test_library_api.py checks this). What differs from `train`: the champion is the best
told fitness (elites are not re-validated: `algorithm.elite_episodes` counts as 0), the
observations are not normalised (`env.normalize_obs` must be false), and there are no budgets,
logs or run folder: the caller's loop decides when to stop and `state_dict` is the checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from smevo.algorithms import Algorithm, Champion, GenerationLog, Population
from smevo.algorithms.base import SearchContext
from smevo.config import Config, validate_config
from smevo.evaluation import Backend, EvalResult, EvalTask, ObsNormalizer
from smevo.experiences import Experiences
from smevo.mutations import MutationStats
from smevo.policies import Policy
from smevo.runnable import check_runnable


class AskTell:
    """The config's search with the caller as its evaluation backend (see the module
    docstring). The spaces shape the policy; without them the config's env is made once to
    read them. The config is the caller's own, so its env id may name code."""

    def __init__(
        self,
        config: Config,
        observation_space: gym.Space | None = None,
        action_space: gym.Space | None = None,
    ) -> None:
        validate_config(config)
        if config.env.normalize_obs:
            raise ValueError("ask/tell does not normalise observations: set "
                             "env.normalize_obs=false and normalise them in your evaluation")
        given = None if observation_space is None or action_space is None else (
            observation_space, action_space)
        runnable = check_runnable(config, trust_env_code=True, spaces=given)
        self.config = dataclasses.replace(
            config, algorithm=dataclasses.replace(config.algorithm, elite_episodes=0))
        policy = runnable.policy
        self.observation_shape = tuple(policy.spec.observation_space.shape or ())
        self._backend = _CallerBackend()
        self._context = _BreedOnceContext(
            self.config, policy.to(config.device), runnable.mutation,
            self._backend, ObsNormalizer(enabled=False), None)
        self.algorithm: Algorithm = runnable.algorithm(self._context, **config.algorithm.options)

    @property
    def policy(self) -> Policy:
        """The policy the genomes parameterise (`smevo.functional` runs it under a genome)."""
        return self._context.policy

    @property
    def generation(self) -> int:
        """Generations told so far."""
        return self.algorithm.generation

    @property
    def population(self) -> Population | None:
        """The current population (genomes, told fitness, kept observations)."""
        return self.algorithm.population

    @property
    def champion(self) -> Champion:
        """The fittest genome told so far, and the generation that found it."""
        return self.algorithm.champion

    def ask(self) -> torch.Tensor:
        """The genomes `[n, D]` (float32, CPU) to evaluate in this generation: the whole first
        population, then the algorithm's new children (elites keep their fitness). Asking
        again before `tell` gives the same genomes."""
        if self._backend.asked is None:
            try:
                self.algorithm.step()
            except _Asked:
                pass
            else:
                raise RuntimeError(f"algorithm {self.algorithm.name!r} finished a generation "
                                   "without evaluating anything: nothing to ask")
        return self._backend.asked[0].clone()

    def tell(
        self,
        fitness: Sequence[float] | np.ndarray | torch.Tensor,
        experiences: Sequence[Any] | np.ndarray | torch.Tensor | None = None,
    ) -> dict[str, float]:
        """Finish the generation with the asked genomes' fitness (higher is better, one
        finite number each) and the observations each saw (safe mutation measures its
        children on them): per genome states `[k, *obs]` (feedforward policies), a list of
        sequences `[T, *obs]` (recurrent ones), or an `Experiences`; for feedforward policies
        also one array `[n, k, *obs]`. At most `mutation.archive_size` states or sequences are
        kept per genome (drawn from its own seed stream). `experiences` may be None only for
        an operator that needs none (control). Returns the generation's metrics."""
        if self._backend.asked is None:
            raise RuntimeError("tell() before ask(): ask for the genomes first")
        tasks = self._backend.asked[1]
        scores = self._fitness(fitness, len(tasks))
        kept = self._experiences(experiences, tasks)
        self._backend.answer = [
            EvalResult(index=task.index, fitness=score, returns=[score], steps=0, solved=False,
                       broken=False, experiences=raw)
            for task, score, raw in zip(tasks, scores.tolist(), kept, strict=True)
        ]
        try:
            log = self.algorithm.step()
        except _Asked:
            raise RuntimeError(f"algorithm {self.algorithm.name!r} evaluates more than once a "
                               "generation; ask/tell supports one evaluation per generation"
                               ) from None
        finally:
            self._backend.asked = self._backend.answer = None
            self._context.bred = None
        return self._metrics(log)

    def state_dict(self) -> dict[str, Any]:
        """The search after the last `tell` (a genome asked and not told is asked again)."""
        return self.algorithm.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._backend.asked = self._backend.answer = None
        self._context.bred = None
        self.algorithm.load_state_dict(state)

    def _fitness(self, fitness: Any, count: int) -> np.ndarray:
        """The told fitness as float64 `[count]`; one-line `ValueError`s otherwise."""
        if isinstance(fitness, torch.Tensor):
            fitness = fitness.detach().cpu()
        try:
            scores = np.asarray(fitness, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"fitness must be {count} numbers, got {type(fitness).__name__}"
                             ) from None
        if scores.shape != (count,):
            raise ValueError(f"fitness must be {count} numbers (one per asked genome), got "
                             f"shape {scores.shape}")
        bad = np.flatnonzero(~np.isfinite(scores))
        if len(bad):
            raise ValueError(f"fitness must be finite, got {scores[bad[0]]} for genome "
                             f"{bad[0]} ({len(bad)} non-finite in all)")
        return scores

    def _experiences(self, experiences: Any, tasks: list[EvalTask]) -> list[Any]:
        """Each genome's observations as the population keeps them (states `[k, *obs]` or a
        list of sequences `[T, *obs]`, float32 numpy), checked and subsampled."""
        count = len(tasks)
        if experiences is None:
            if self._context.mutation.needs_experiences:
                raise ValueError(f"mutation {self.config.mutation.name!r} needs experiences: "
                                 "pass the observations each asked genome saw")
            return [None] * count
        if isinstance(experiences, torch.Tensor | np.ndarray):
            if self.policy.is_recurrent:
                raise ValueError("experiences for a recurrent policy must be a list with one "
                                 "list of sequences [T, *obs] per asked genome")
            experiences = list(experiences)
        if len(experiences) != count:
            raise ValueError(f"experiences must have one entry per asked genome ({count}), got "
                             f"{len(experiences)}")
        return [self._kept(i, entry, task.sample_seed)
                for i, (entry, task) in enumerate(zip(experiences, tasks, strict=True))]

    def _kept(self, i: int, entry: Any, seed: int) -> Any:
        """Genome `i`'s observations, checked, at most `archive_size` of them."""
        recurrent, obs = self.policy.is_recurrent, self.observation_shape
        if isinstance(entry, Experiences):
            observations = entry.observations.detach().cpu().numpy()
            if entry.mask is None:
                entry = observations
            else:
                lengths = entry.mask.sum(dim=1).tolist()
                entry = [seq[:length] for seq, length in zip(observations, lengths, strict=True)]
        if recurrent:
            if isinstance(entry, np.ndarray | torch.Tensor) and entry.ndim == 2 + len(obs):
                entry = list(entry)  # equal-length sequences, stacked
            if isinstance(entry, np.ndarray | torch.Tensor) or not isinstance(entry, Sequence):
                raise ValueError(f"experiences[{i}] must be a list of sequences [T, *obs] for "
                                 "this recurrent policy")
            items = [np.asarray(seq, dtype=np.float32) for seq in entry]
            shapes = {seq.shape[1:] for seq in items if seq.ndim >= 1}
            if any(seq.ndim != 1 + len(obs) or len(seq) == 0 for seq in items) or shapes - {obs}:
                raise ValueError(f"experiences[{i}] must be sequences of shape [T, "
                                 f"{', '.join(map(str, obs))}], T >= 1, got shapes "
                                 f"{sorted({seq.shape for seq in items})}")
            finite = all(np.isfinite(seq).all() for seq in items)
        else:
            items = np.asarray(entry, dtype=np.float32)
            if items.ndim != 1 + len(obs) or items.shape[1:] != obs:
                raise ValueError(f"experiences[{i}] must be states of shape [k, "
                                 f"{', '.join(map(str, obs))}], got shape {items.shape}")
            finite = bool(np.isfinite(items).all())
        if not finite:
            raise ValueError(f"experiences[{i}] holds a non-finite observation")
        size = self.config.mutation.archive_size
        if len(items) > size:
            chosen = np.sort(np.random.default_rng(seed).choice(len(items), size, replace=False))
            items = items[chosen] if not recurrent else [items[j] for j in chosen]
        return items

    def _metrics(self, log: GenerationLog) -> dict[str, float]:
        """The generation's scalars, named as the trainer names them."""
        fitness = self.algorithm.population.fitness
        metrics = {
            "fitness/best": float(np.max(fitness)),
            "fitness/mean": float(np.mean(fitness)),
            "fitness/median": float(np.median(fitness)),
            "fitness/min": float(np.min(fitness)),
            "fitness/champion": self.champion.fitness,
            "progress/generation": self.generation,
            "progress/evaluations": self._context.evaluations,
        }
        if log.mutations:
            divergence = np.array([s.divergence for s in log.mutations])
            if not np.isnan(divergence).all():
                metrics["mutation/divergence_mean"] = float(np.nanmean(divergence))
                metrics["mutation/divergence_max"] = float(np.nanmax(divergence))
            metrics["mutation/delta_norm"] = float(np.mean([s.delta_norm
                                                            for s in log.mutations]))
        return metrics


class _Asked(Exception):
    """Raised where the algorithm waits for fitness: ends `ask`'s pass of a generation."""


class _CallerBackend(Backend):
    """Evaluation by the caller: the first call of a generation records what it asks and
    raises `_Asked`; the next (in `tell`'s pass) returns the told results."""

    name = "ask-tell"

    def __init__(self) -> None:
        self.asked: tuple[torch.Tensor, list[EvalTask]] | None = None
        self.answer: list[EvalResult] | None = None

    def evaluate(
        self, params: torch.Tensor, tasks: list[EvalTask], normalizer: ObsNormalizer
    ) -> list[EvalResult]:
        if self.answer is None:
            self.asked = (params.detach().cpu(), tasks)
            raise _Asked
        answer, self.answer = self.answer, None
        if not torch.equal(params.detach().cpu(), self.asked[0]):
            raise RuntimeError("the algorithm asked for other genomes on the second pass of "
                               "a generation: its draws do not all derive from the run seed")
        return answer

    def close(self) -> None:
        """Nothing to release: the caller owns the evaluation."""


class _BreedOnceContext(SearchContext):
    """A `SearchContext` that keeps the children it bred last: `tell`'s pass of a generation
    reuses those `ask`'s pass bred (same generation, same parents) instead of breeding again."""

    bred: tuple[tuple[int, tuple[int, ...]], torch.Tensor, list[MutationStats]] | None = None

    def breed(
        self, population: Population, parents: np.ndarray, generation: int, log: GenerationLog
    ) -> torch.Tensor:
        key = (generation, tuple(parents.tolist()))
        if self.bred is None or self.bred[0] != key:
            scratch = GenerationLog()
            children = super().breed(population, parents, generation, scratch)
            scratch.run_pending()
            self.bred = (key, children, scratch.mutations)
        log.mutations.extend(self.bred[2])
        return self.bred[1].clone()

