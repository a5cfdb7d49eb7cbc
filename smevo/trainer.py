"""Training runs: build everything from a config, loop generations, log, checkpoint, resume.

`train(config)` starts a run in a new folder `runs/<env>-<mutation>-<UTC time>/`;
`resume(run_dir)` continues one from its latest checkpoint so that the result equals the
uninterrupted run's (every random draw derives from the run seed and what it is for).
"""

from __future__ import annotations

import math
import re
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smevo.agent import save_agent
from smevo.algorithms import ALGORITHMS, Algorithm, GenerationLog, SearchContext
from smevo.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from smevo.config import (
    Config,
    apply_overrides,
    config_to_dict,
    config_to_yaml,
    load_config,
    save_config,
    validate_config,
)
from smevo.envs import make_env
from smevo.evaluation import EvalSpec, ObsNormalizer, make_backend
from smevo.logging import RunLogger
from smevo.mutations import make_mutation
from smevo.policies import make_policy


@dataclass
class TrainResult:
    """How a run ended."""

    run_dir: Path
    best_fitness: float
    generations: int
    evaluations: int
    env_steps: int
    solved: bool
    stopped_by: str
    best_params: torch.Tensor | None = field(default=None, repr=False)


def train(config: Config) -> TrainResult:
    """Run the search `config` describes in a new run folder and return how it ended."""
    validate_config(config)
    trainer = Trainer(config)  # fails on bad names or spaces before any folder is made
    run_dir = new_run_dir(config)
    save_config(config, run_dir / "config.yaml")
    return trainer.run(run_dir)


def resume(run_dir: str | Path, overrides: list[str] | None = None) -> TrainResult:
    """Continue a run from its latest checkpoint (`overrides`, e.g. a larger budget, are
    `--set`-style strings applied to its config.yaml)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ValueError(f"{run_dir} is not a smevo run (no config.yaml)")
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise ValueError(f"{run_dir} has no checkpoint to resume from")
    config = apply_overrides(load_config(run_dir / "config.yaml"), overrides or [])
    trainer = Trainer(config, load_checkpoint(checkpoint))
    if overrides:
        save_config(config, run_dir / "config.yaml")
    return trainer.run(run_dir)


def new_run_dir(config: Config) -> Path:
    """`<logdir>/<name>`, by default `<env>-<mutation>-<UTC time>`; never an existing one."""
    name = config.logging.name
    if name is None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        env = re.sub(r"[^A-Za-z0-9._-]+", "_", config.env.id)
        name = f"{env}-{config.mutation.name}-{stamp}"
    base = Path(config.logging.logdir) / name
    run_dir, suffix = base, 1
    while run_dir.exists():
        run_dir, suffix = base.with_name(f"{base.name}-{suffix}"), suffix + 1
    run_dir.mkdir(parents=True)
    return run_dir


class Trainer:
    """Owns a run: the algorithm, its backend, the logger, checkpoints and `best.pt`."""

    def __init__(self, config: Config, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.run_dir = Path()
        if config.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {config.device!r} requested but CUDA is not available")
        algorithm_class = ALGORITHMS.get(config.algorithm.name)
        mutation = make_mutation(config.mutation.name, config.mutation.magnitude,
                                 **config.mutation.options)
        probe = make_env(config.env.id, config.env.kwargs)
        try:
            policy = make_policy(config.policy.name, probe.observation_space, probe.action_space,
                                 **config.policy.options)
            spec_threshold = probe.spec.reward_threshold if probe.spec is not None else None
        finally:
            probe.close()
        threshold = config.budget.solve_threshold
        spec = EvalSpec(
            env_id=config.env.id,
            env_kwargs=config.env.kwargs,
            policy_name=config.policy.name,
            policy_options=config.policy.options,
            max_steps=config.env.max_steps,
            archive_size=config.mutation.archive_size,
            index_episodes=config.env.index_episodes,
            native=config.evaluation.native,
        )
        backend = make_backend(config.evaluation.backend, spec, config.evaluation.workers,
                               config.evaluation.ray_address)
        self.context = SearchContext(
            config, policy.to(config.device), mutation, backend,
            ObsNormalizer(enabled=config.env.normalize_obs),
            threshold if threshold is not None else spec_threshold,
        )
        self.algorithm: Algorithm = algorithm_class(self.context)
        self.elapsed, self.solved, self.stopped_by = 0.0, False, ""
        if state is not None:
            self.algorithm.load_state_dict(state["algorithm"])
            self.elapsed, self.solved = float(state["elapsed"]), bool(state["solved"])
        self.best_saved = self.algorithm.champion.generation

    def run(self, run_dir: Path) -> TrainResult:
        """Loop generations until a budget is spent or the task is solved, logging to and
        checkpointing in `run_dir` on the way, at the end, and on Ctrl-C or SIGTERM."""
        self.run_dir = Path(run_dir)
        algorithm, config = self.algorithm, self.config
        logger = RunLogger(self.run_dir, quiet=config.logging.quiet,
                           total=config.budget.generations,
                           start_generation=algorithm.generation)
        if algorithm.generation == 0:
            logger.log_config(config_to_yaml(config))
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self.stopped_by = self.exhausted_budget()
            while not self.stopped_by:
                start = time.perf_counter()
                log = algorithm.step()
                seconds = time.perf_counter() - start
                self.elapsed += seconds
                self.solved = self.solved or self.generation_solved(log)
                metrics, histograms = self.summarize(log, seconds)
                logger.log(algorithm.generation, metrics, histograms)
                for event in self.context.backend.events():
                    logger.log_event(event)
                self.stopped_by = self.exhausted_budget()
                if algorithm.generation % config.logging.checkpoint_every == 0 or self.stopped_by:
                    self.save_checkpoint()
        except KeyboardInterrupt:
            self.stopped_by = "interrupted"
            if algorithm.population is not None:
                self.save_checkpoint()
                logger.log_event(f"interrupted; checkpoint at generation {algorithm.generation}")
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.context.backend.close()
            logger.close(final_hparams=config_to_dict(config))
        champion = algorithm.champion
        return TrainResult(
            run_dir=self.run_dir,
            best_fitness=champion.fitness,
            best_params=champion.params,
            generations=algorithm.generation,
            evaluations=self.context.evaluations,
            env_steps=self.context.env_steps,
            solved=self.solved,
            stopped_by=self.stopped_by,
        )

    def generation_solved(self, log: GenerationLog) -> bool:
        """An env said an individual solved it, or the validated best met the threshold."""
        return any(r.solved for r in log.evaluated) or self.context.meets_threshold(
            log.validation)

    def exhausted_budget(self) -> str:
        """The name of the budget that stops the run now, or "" to go on."""
        budget, context = self.config.budget, self.context
        if self.solved and budget.stop_when_solved:
            return "solved"
        limits = [
            ("generations", budget.generations, self.algorithm.generation),
            ("evaluations", budget.evaluations, context.evaluations),
            ("env_steps", budget.env_steps, context.env_steps),
            ("wall_time", budget.wall_time, self.elapsed),
        ]
        return next((name for name, limit, used in limits
                     if limit is not None and used >= limit), "")

    def summarize(
        self, log: GenerationLog, seconds: float
    ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """The generation's scalars (grouped tags) and histograms."""
        context, algorithm = self.context, self.algorithm
        fitness = algorithm.population.fitness
        finite = fitness[np.isfinite(fitness)]
        evaluated = log.evaluated
        metrics = {
            "fitness/best": _stat(np.max, finite),
            "fitness/mean": _stat(np.mean, finite),
            "fitness/median": _stat(np.median, finite),
            "fitness/min": _stat(np.min, finite),
            "fitness/elite_validation": log.validation,
            "fitness/champion": algorithm.champion.fitness,
            "fitness/solved_fraction": float(np.mean(
                [r.solved or context.meets_threshold(r.fitness) for r in evaluated])),
            "fitness/broken_fraction": float(np.mean([r.broken for r in evaluated])),
            "progress/generation": algorithm.generation,
            "progress/evaluations": context.evaluations,
            "progress/env_steps": context.env_steps,
            "perf/evals_per_s": log.evaluations / seconds,
            "perf/steps_per_s": log.steps / seconds,
        }
        histograms: dict[str, np.ndarray] = {}
        every = self.config.logging.histogram_every
        if every and algorithm.generation % every == 1 % every:
            histograms["fitness/population"] = finite
        if log.mutations:
            divergence = np.array([s.divergence for s in log.mutations])
            metrics |= {
                "mutation/divergence_mean": float(np.nanmean(divergence)),
                "mutation/divergence_max": float(np.nanmax(divergence)),
                "mutation/delta_norm": float(np.mean([s.delta_norm for s in log.mutations])),
            }
            sensitivity = log.mutations[0].sensitivity
            if sensitivity is not None:
                metrics |= {
                    "mutation/sensitivity_min": min(s.sensitivity_min for s in log.mutations),
                    "mutation/sensitivity_max": max(s.sensitivity_max for s in log.mutations),
                }
                if "fitness/population" in histograms:
                    positive = sensitivity[sensitivity > 0].cpu().numpy()
                    histograms["mutation/log10_sensitivity"] = np.log10(positive)
        return metrics, histograms

    def save_best(self) -> None:
        """Write the champion to `best.pt` with everything needed to act."""
        config, champion = self.config, self.algorithm.champion
        save_agent(
            self.run_dir / "best.pt",
            env_id=config.env.id,
            env_kwargs=config.env.kwargs,
            policy_name=config.policy.name,
            policy_options=config.policy.options,
            params=champion.params.cpu(),
            obs_norm=self.context.normalizer.export(),
            fitness=champion.fitness,
            generation=champion.generation,
            config=config_to_dict(config),
        )

    def save_checkpoint(self) -> None:
        """Write the run's state (and `best.pt`, if the champion changed since it was last
        written), so that a kill at any moment leaves a resumable run."""
        if self.algorithm.champion.generation != self.best_saved:
            self.save_best()
            self.best_saved = self.algorithm.champion.generation
        save_checkpoint(
            self.run_dir,
            self.algorithm.generation,
            {
                "config": config_to_dict(self.config),
                "algorithm": self.algorithm.state_dict(),
                "elapsed": self.elapsed,
                "solved": self.solved,
            },
            keep=self.config.logging.keep_checkpoints,
        )


def _stat(function: Any, values: np.ndarray) -> float:
    return float(function(values)) if len(values) else math.nan


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
