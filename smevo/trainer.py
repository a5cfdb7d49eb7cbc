"""Training runs: build everything from a config, loop generations, log, checkpoint, resume.

`train(config)` starts a run in a new folder `runs/<env>-<mutation>-<UTC time>/`;
`resume(run_dir)` continues one from its latest checkpoint so that the result equals the
uninterrupted run's (every random draw derives from the run seed and what it is for).

One process owns a run directory at a time (`smevo.run_lock`). Ctrl-C, SIGTERM or workers
that keep dying end a run with a checkpoint of its last finished generation
(`smevo.interrupts`). A resume continues only the run it is given: each checkpoint carries
the run's identity (``RUN/run_id``, drawn when the run is made) and its config, and a
checkpoint of another run or a ``config.yaml`` changed beyond what a resume may change is
refused (`smevo.run_folders`). To branch a run, copy its whole directory and resume the
copy; to change how it searches, start a new run (``smevo train --config RUN/config.yaml``).

A `Trainer` is also driven by hand: `Trainer.step()` runs one generation and returns its
metrics (writing no files unless `run` drives it); callbacks (`Callback`) given to `train`,
`resume` or a `Trainer` see every generation's metrics and may stop the run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smevo.agent import save_agent
from smevo.algorithms import (
    ALGORITHMS,
    Algorithm,
    GenerationLog,
    SearchContext,
    algorithm_options,
)
from smevo.checkpoint import load_latest_checkpoint, save_checkpoint
from smevo.config import (
    Config,
    apply_overrides,
    config_to_dict,
    config_to_yaml,
    load_config,
    save_config,
)
from smevo.evaluation import Backend, EvalSpec, ObsNormalizer, make_backend
from smevo.evaluation.backends import WorkerCrashError
from smevo.interrupts import StopSignals
from smevo.logging import RunLogger
from smevo.mutations import MutationStats
from smevo.run_folders import check_same_run, new_run_dir, run_identity
from smevo.run_lock import RunLock
from smevo.runnable import check_runnable


@dataclass
class TrainResult:
    """How a run ended; `best_fitness` and `best_generation` are the champion's (the best
    individual validated so far, what `best.pt` holds)."""

    run_dir: Path
    env_id: str
    best_fitness: float
    best_generation: int
    generations: int
    evaluations: int
    env_steps: int
    solved: bool
    stopped_by: str
    best_params: torch.Tensor | None = field(default=None, repr=False)


Callback = Callable[["Trainer", dict[str, float]], "bool | None"]
"""``callback(trainer, metrics)``, called after each generation with the generation's metrics
(what `metrics.jsonl` records, as `Trainer.step` returns them) once it is logged. Returning
True stops the run there: `stopped_by` is ``"callback"``, the generation is checkpointed
(with `best.pt`), and a `resume` continues it. Every callback is called each generation,
in order, even after one asked to stop; an exception from one ends the run with it (the
last periodic checkpoint stands)."""


def train(config: Config, callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Run the search `config` describes in a new run folder and return how it ended;
    `callbacks` see each generation's metrics and may stop the run (`Callback`).

    `config` is the caller's own, so its env id may name code (``module:factory``)."""
    with StopSignals() as signals:
        # fails on a config that cannot run here (`check_runnable`) before any folder is made
        trainer = Trainer(config, trust_env_code=True, signals=signals, callbacks=callbacks)
        run_dir = new_run_dir(config)
        with RunLock(run_dir):
            save_config(config, run_dir / "config.yaml")
            return trainer.run(run_dir)


def resume(
    run_dir: str | Path,
    overrides: list[str] | None = None,
    *,
    trust_env_code: bool = False,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Continue a run from its latest checkpoint (`overrides`, e.g. a larger budget, are
    `--set`-style strings applied to its config.yaml; `callbacks` as for `train`). The run's
    files may come from anyone: an env id in them that names code is refused unless
    `trust_env_code` (`smevo.envs.check_env_trust`)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ValueError(f"{run_dir} is not a smevo run (no config.yaml)")
    with StopSignals() as signals, RunLock(run_dir):
        found = load_latest_checkpoint(run_dir)
        config = load_config(run_dir / "config.yaml")
        state, notes = None, ["no checkpoint yet: the run starts over from generation 0"]
        if found is not None:
            checkpoint, state, unreadable = found
            check_same_run(run_dir, checkpoint, state, config)
            notes = [f"{len(unreadable)} newer checkpoint(s) cannot be read ({unreadable[0]}); "
                     f"resuming from {checkpoint.name}"] if unreadable else []
        config = apply_overrides(config, overrides or [])
        trainer = Trainer(config, state, trust_env_code=trust_env_code, signals=signals,
                          callbacks=callbacks)
        if overrides:
            save_config(config, run_dir / "config.yaml")
        return trainer.run(run_dir, notes)


class Trainer:
    """Owns a run: the algorithm, its backend, the logger, checkpoints and `best.pt`.

    `trust_env_code` lets `config.env.id` name code (`smevo.envs.check_env_trust`); the
    workers make the env the driver allowed. `signals`: the stop signals `train` or `resume`
    installed before the set-up (by default `run` installs its own). `callbacks`: see
    `Callback`.

    Driven by hand, ``with Trainer(config) as trainer:`` then `step()` as often as wanted
    gives the generations (and metrics) `train` would, writing no files; leaving the block
    stops the backend's workers.
    """

    def __init__(
        self,
        config: Config,
        state: dict[str, Any] | None = None,
        *,
        trust_env_code: bool = False,
        signals: StopSignals | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.config = config
        self.callbacks = list(callbacks)
        self.logger: RunLogger | None = None
        self.run_dir = Path()
        self.run_id = ""
        self.signals = signals or StopSignals()
        runnable = check_runnable(config, trust_env_code=trust_env_code)
        spec = EvalSpec(
            env_id=config.env.id,
            env_kwargs=config.env.kwargs,
            policy_name=config.policy.name,
            policy_options=config.policy.options,
            max_steps=config.env.max_steps,
            archive_size=config.mutation.archive_size,
            index_episodes=config.env.index_episodes,
            native=config.evaluation.native,
            trust_env_code=True,  # the probe above is the driver's decision; workers follow it
            device=None if torch.device(config.device).type == "cpu" else config.device,
        )
        backend = _InterruptibleBackend(
            make_backend(config.evaluation.backend, spec, config.evaluation.workers,
                         config.evaluation.ray_address),
            self.signals)
        self.context = SearchContext(
            config, runnable.policy.to(config.device), runnable.mutation, backend,
            ObsNormalizer(enabled=config.env.normalize_obs),
            runnable.threshold,
        )
        self.algorithm: Algorithm = runnable.algorithm(self.context, **config.algorithm.options)
        self.elapsed, self.solved, self.stopped_by = 0.0, False, ""
        if state is not None:
            self.algorithm.load_state_dict(state["algorithm"])
            self.elapsed, self.solved = float(state["elapsed"]), bool(state["solved"])
        self.best_saved = self.algorithm.champion.generation

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the backend's workers (`run` does this itself when it ends)."""
        self.context.backend.close()

    def run(self, run_dir: Path, notes: Sequence[str] = ()) -> TrainResult:
        """Loop generations until a budget is spent or the task is solved, logging to and
        checkpointing in `run_dir` on the way and at the end; `notes` are logged first.

        Ctrl-C or SIGTERM (`smevo.interrupts`) ends the run with a checkpoint of the last
        finished generation, an "interrupted" line, then `KeyboardInterrupt`; workers that
        keep dying end it with that checkpoint and a `WorkerCrashError` that names it.
        """
        self.run_dir = Path(run_dir)
        self.run_id = run_identity(self.run_dir)
        algorithm, config = self.algorithm, self.config
        with self.signals:
            logger = RunLogger(self.run_dir, quiet=config.logging.quiet,
                               budgets=asdict(config.budget),
                               start_generation=algorithm.generation)
            try:
                if algorithm.generation == 0:
                    logger.log_config(config_to_yaml(config))
                    logger.log_hparams(run_hparams(config), HPARAMS_METRICS)
                for note in notes:
                    logger.log_event(note)
                self.logger = logger
                self.loop()
            except KeyboardInterrupt:
                self.stopped_by = "interrupted"
                logger.log_event(f"interrupted; {self.save_last_generation()}")
                raise
            except WorkerCrashError as error:
                self.stopped_by = "error"
                raise WorkerCrashError(f"{error}; {self.save_last_generation()}") from None
            finally:
                self.logger = None
                self.close()
                logger.close()
        champion = algorithm.champion
        return TrainResult(
            run_dir=self.run_dir,
            env_id=config.env.id,
            best_fitness=champion.fitness,
            best_generation=champion.generation,
            best_params=champion.params,
            generations=algorithm.generation,
            evaluations=self.context.evaluations,
            env_steps=self.context.env_steps,
            solved=self.solved,
            stopped_by=self.stopped_by,
        )

    def loop(self) -> None:
        """Run generations until a budget or a callback stops the run."""
        self.stopped_by = self.exhausted_budget()
        while not self.stopped_by:
            self.step()

    def step(self) -> dict[str, float]:
        """Run one generation and return its metrics (``fitness/…``, ``mutation/…``,
        ``progress/…``, ``perf/…``: one `metrics.jsonl` line); then the callbacks see them.
        Afterwards `stopped_by` names what would stop a run here ("" to go on): a budget,
        "solved" or "callback"; a hand-driven trainer may step on regardless.

        Within `run`, the generation is also logged and, every `checkpoint_every`
        generations and when the run stops, checkpointed; a stop signal received meanwhile
        raises `KeyboardInterrupt` once the generation is logged."""
        algorithm = self.algorithm
        start = time.perf_counter()
        log = algorithm.step(confirm=self.confirming())
        seconds = time.perf_counter() - start
        self.elapsed += seconds
        self.solved = self.solved or self.generation_solved(log)
        metrics, histograms = self.summarize(log, seconds)
        if self.logger is not None:
            self.logger.log(algorithm.generation, metrics, histograms)
            for event in self.context.backend.events():
                self.logger.log_event(event)
        self.signals.check()
        stop = [bool(callback(self, metrics)) for callback in self.callbacks]
        self.stopped_by = self.exhausted_budget() or ("callback" if any(stop) else "")
        every = self.config.logging.checkpoint_every
        if self.logger is not None and (algorithm.generation % every == 0 or self.stopped_by):
            self.save_checkpoint()
        return metrics

    def save_last_generation(self) -> str:
        """Checkpoint the last finished generation of a run cut short (the algorithm commits
        a generation only at its end, so its state is that generation's) and say so."""
        if self.algorithm.population is None:
            return "no generation finished, nothing to checkpoint"
        self.save_checkpoint()
        return (f"checkpoint at generation {self.algorithm.generation} (continue with: "
                f"smevo resume {self.run_dir})")

    def confirming(self) -> bool:
        """Whether this generation's validated elite must confirm a crossing of the solve
        threshold (`budget.confirm_solved`) before the run counts as solved: until it is
        solved, and only where fitness is validated (``algorithm.elite_episodes`` > 0)."""
        return (self.config.budget.confirm_solved and not self.solved
                and self.config.algorithm.elite_episodes > 0)

    def generation_solved(self, log: GenerationLog) -> bool:
        """An env said an individual solved it, or the validated best met the threshold
        (and, where asked to confirm it, met it again on new episodes)."""
        context = self.context
        crossed = context.meets_threshold(log.validation)
        if crossed and self.confirming():
            crossed = context.meets_threshold(log.confirmation)
            if self.logger is not None:
                verdict = "solved" if crossed else "not solved, going on"
                self.logger.log_event(
                    f"generation {self.algorithm.generation}: validated elite "
                    f"{log.validation:.4g} meets the threshold {context.solve_threshold:g}; on "
                    f"{self.config.algorithm.elite_episodes} new episodes "
                    f"{log.confirmation:.4g}: {verdict}")
        return any(r.solved for r in log.evaluated) or crossed

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
            **({} if math.isnan(log.confirmation) else
               {"fitness/confirmation": log.confirmation}),
            "fitness/solved_fraction": float(np.mean(
                [r.solved or context.meets_threshold(r.fitness) for r in evaluated])),
            "fitness/broken_fraction": float(np.mean([r.broken for r in evaluated])),
            "progress/generation": algorithm.generation,
            "progress/evaluations": context.evaluations,
            "progress/env_steps": context.env_steps,
            "perf/wall_time": self.elapsed,
            "perf/evals_per_s": log.evaluations / seconds,
            "perf/steps_per_s": log.steps / seconds,
            # What more workers can speed up: the rest is the driver's serial work.
            "perf/evaluation_share": min(1.0, log.evaluation_seconds / seconds),
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
            metrics |= _target_divergence_metrics(log.mutations)
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
                "run_id": self.run_id,
                "config": config_to_dict(self.config),
                "algorithm": self.algorithm.state_dict(),
                "elapsed": self.elapsed,
                "solved": self.solved,
            },
            keep=self.config.logging.keep_checkpoints,
        )


HPARAMS_METRICS = (
    "fitness/champion",
    "fitness/best",
    "fitness/mean",
    "fitness/solved_fraction",
    "progress/generation",
    "progress/evaluations",
    "progress/env_steps",
)
"""The scalars TensorBoard's HParams dashboard shows beside each run's hyperparameters."""


def run_hparams(config: Config) -> dict[str, Any]:
    """What shapes a run's search, for TensorBoard's HParams dashboard: the seed, the env,
    the policy, the mutation, and of the algorithm the shared keys it reads
    (`Algorithm.shared`) and its options as the run uses them (``algorithm.parents``: the
    truncation GA's number of parents, defaults filled in). Budgets, backend, device and
    logging are left out: they do not change what a generation computes."""
    data = config_to_dict(config)
    algorithm = ALGORITHMS.get(config.algorithm.name)
    settings = {key: data["algorithm"][key] for key in algorithm.shared}
    settings |= algorithm_options(config.algorithm.name, config.algorithm.population,
                                  config.algorithm.options)
    return {
        "seed": config.seed,
        "env": data["env"],
        "policy": data["policy"],
        "mutation": data["mutation"],
        "algorithm": {"name": algorithm.name, **settings},
    }


def _target_divergence_metrics(mutations: Sequence[MutationStats]) -> dict[str, float]:
    """For operators that aim at a target divergence (SM-R, SM-G-FO, "SM-G-…+R"): the
    fraction of children for which it was out of reach (a magnitude too large for the net's
    saturated outputs) and the mean divergence evaluations a line search spent per child
    (SM-R's cost); nothing for the other operators."""
    metrics = {}
    reached = [s.reachable for s in mutations if s.reachable is not None]
    if reached:
        metrics["mutation/unreachable_fraction"] = 1.0 - float(np.mean(reached))
    evaluations = [s.line_search_evals for s in mutations if s.line_search_evals is not None]
    if evaluations:
        metrics["mutation/line_search_evals"] = float(np.mean(evaluations))
    return metrics


def _stat(function: Any, values: np.ndarray) -> float:
    return float(function(values)) if len(values) else math.nan


class _InterruptibleBackend(Backend):
    """A backend whose evaluations a stop signal may abandon at once
    (`StopSignals.interruptible`): an algorithm commits a generation only after them."""

    def __init__(self, backend: Backend, signals: StopSignals) -> None:
        self.backend, self.signals, self.name = backend, signals, backend.name

    def evaluate(self, params, tasks, normalizer):
        with self.signals.interruptible():
            return self.backend.evaluate(params, tasks, normalizer)

    def evaluate_meanwhile(self, params, tasks, normalizer, meanwhile):
        with self.signals.interruptible():
            return self.backend.evaluate_meanwhile(params, tasks, normalizer, meanwhile)

    def events(self) -> list[str]:
        return self.backend.events()

    def close(self) -> None:
        self.backend.close()
