"""Gradient training (BPTT with Adam) of any registered policy on a differentiable task.

The plasticity papers trained their networks by gradient descent; `fit` does the same for
any smevo policy so that evolution and gradient descent can be compared on one network. A
task draws whole episodes as arrays (the supervised form of an smevo env): the policy runs
through every step from its initial state, the loss is taken at the last step, and the
gradient flows back through the whole episode (plastic traces included), as in the
reference code. The genome, a flat parameter vector (`smevo.functional`), is what Adam
updates, so the result is saved as an ordinary agent: `smevo eval RUN` plays it on the
task's env.

A run is a directory like `smevo train`'s: `config.yaml` (the fit settings), TensorBoard
events and `metrics.jsonl` (tags `fit/loss`, `fit/error`, `progress/episodes`, one point
per `log_every` updates, averaged over them) and `best.pt` (the final parameters).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from smevo import functional
from smevo._registry import Registry
from smevo.agent import save_agent
from smevo.envs import make_env
from smevo.logging import RunLogger
from smevo.policies import Policy, make_policy

__all__ = ["TASKS", "FitResult", "FitTask", "fit"]

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class FitTask:
    """A differentiable task: the env it is the supervised form of, and how to score it.

    `sample(rng, batch)` gives inputs `[batch, steps, *obs]` and targets; `loss` and
    `error` map the policy's last-step outputs `[batch, K]` and the targets to a scalar
    (mean over the batch): the loss is what Adam minimises, the error what is reported.
    """

    env_id: str
    env_kwargs: dict[str, Any]
    sample: Callable[[np.random.Generator, int], Batch]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    error: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def pattern_completion_task(**schedule: Any) -> FitTask:
    """DP's pattern completion (`smevo/PatternCompletion-v0` with the same arguments): loss
    the summed squared error of the last output against the full pattern (as in
    `simplest.py`), error the sign error rate (chance about 0.25)."""
    from smevo_envs.pattern_completion import PatternSchedule, pattern_completion_batch

    settings = PatternSchedule(**schedule)

    def sample(rng: np.random.Generator, batch: int) -> Batch:
        inputs, targets = pattern_completion_batch(rng, batch, settings)
        return torch.from_numpy(inputs), torch.from_numpy(targets)

    def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs - targets).square().sum(dim=-1).mean()

    def error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return ((torch.sign(outputs) - targets).abs() / 2).mean()

    return FitTask("smevo/PatternCompletion-v0", dict(schedule), sample, loss, error)


def parity_task(**kwargs: Any) -> FitTask:
    """Recurrent parity (`smevo/RecurrentParity-v0`): sequences drawn uniformly from all
    2^n_bits, loss the cross-entropy of the last step's logits (minus the env's reward),
    error the misclassification rate."""
    env = make_env("smevo/RecurrentParity-v0", kwargs).unwrapped
    bits = torch.tensor(np.stack([env.sequence(i) for i in range(env.num_sequences)]),
                        dtype=torch.float32)

    def sample(rng: np.random.Generator, batch: int) -> Batch:
        index = torch.from_numpy(rng.integers(env.num_sequences, size=batch))
        sequences = bits[index]
        return sequences[..., None], sequences.sum(dim=1).long() % 2

    def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(outputs, targets)

    def error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs.argmax(dim=-1) != targets).float().mean()

    return FitTask("smevo/RecurrentParity-v0", dict(kwargs), sample, loss, error)


LR_SCHEDULES: dict[str, Callable[[int], Callable[[int], float]]] = {
    "constant": lambda updates: lambda update: 1.0,
    "cosine": lambda updates: lambda update: 0.5 * (1 + math.cos(math.pi * update / updates)),
}
"""Learning-rate multipliers by update, given the number of updates: constant, or a cosine
decay to 0 at the last update (which settles the final parameters)."""

TASKS: Registry[Callable[..., FitTask]] = Registry("fit task")
TASKS.add("pattern-completion", pattern_completion_task)
TASKS.add("parity", parity_task)


@dataclass
class FitResult:
    """How a fit ended: the per-update curves, and the error on fresh held-out episodes."""

    run_dir: Path
    updates: int
    episodes: int
    seconds: float
    losses: list[float]
    errors: list[float]
    final_error: float
    params: torch.Tensor = field(repr=False)


@dataclass(frozen=True)
class FitSettings:
    """Everything a fit run depends on (saved as the run's `config.yaml`)."""

    task: str
    policy: str
    policy_options: dict[str, Any]
    task_options: dict[str, Any]
    updates: int
    batch_size: int
    lr: float
    lr_schedule: str
    grad_clip: float | None
    seed: int
    eval_episodes: int


def fit(
    task: str,
    policy: str = "plastic",
    *,
    policy_options: dict[str, Any] | None = None,
    task_options: dict[str, Any] | None = None,
    updates: int = 1000,
    batch_size: int = 1,
    lr: float = 3e-4,
    lr_schedule: str = "constant",
    grad_clip: float | None = None,
    seed: int = 0,
    eval_episodes: int = 100,
    logdir: str | Path = "runs",
    name: str | None = None,
    log_every: int = 10,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train `policy` on `task` by BPTT and Adam; returns the curves and the final error.

    Each update draws `batch_size` fresh episodes (from a generator seeded with `seed`, which
    also seeds the policy's init), runs the policy over them, and takes one Adam step (`lr`,
    scaled by `lr_schedule`; gradient norm clipped to `grad_clip` if set). The defaults are
    `simplest.py`'s: one episode per update, lr 3e-4.
    `on_log(update, metrics)` sees each logged point (the CLI prints them). Raises
    `ValueError` for unknown names or options and out-of-range settings.
    """
    settings = FitSettings(
        TASKS.canonical(task), policy, dict(policy_options or {}), dict(task_options or {}),
        updates, batch_size, float(lr), lr_schedule, grad_clip, seed, eval_episodes,
    )
    _check(settings, log_every)
    spec = TASKS.get(settings.task)(**settings.task_options)
    net, params = _build_policy(spec, settings)
    optimizer = torch.optim.Adam([params], lr=settings.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, LR_SCHEDULES[lr_schedule](updates))
    rng = np.random.default_rng([seed, 0])

    run_dir = _new_run_dir(Path(logdir), name or _default_name(settings))
    config_text = yaml.safe_dump(asdict(settings), sort_keys=False)
    (run_dir / "config.yaml").write_text(config_text, encoding="utf-8")
    logger = RunLogger(run_dir, quiet=True)
    logger.log_config(config_text)
    logger.log_hparams(asdict(settings), ["fit/error", "fit/loss"])
    losses: list[float] = []
    errors: list[float] = []
    start, logged = time.perf_counter(), 0
    try:
        for update in range(1, updates + 1):
            inputs, targets = spec.sample(rng, batch_size)
            outputs = _last_outputs(net, params, inputs)
            loss = spec.loss(outputs, targets)
            optimizer.zero_grad()
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_([params], grad_clip)
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            errors.append(float(spec.error(outputs.detach(), targets)))
            if update % log_every == 0 or update == updates:
                metrics = {
                    "fit/loss": float(np.mean(losses[logged:])),
                    "fit/error": float(np.mean(errors[logged:])),
                    "progress/episodes": update * batch_size,
                    "perf/seconds": time.perf_counter() - start,
                }
                logger.log(update, metrics)
                logged = update
                if on_log is not None:
                    on_log(update, metrics)
        seconds = time.perf_counter() - start
        final_error = evaluate(net, params.detach(), spec, eval_episodes,
                               np.random.default_rng([seed, 1]))
    finally:
        logger.close()
    save_agent(
        run_dir / "best.pt", env_id=spec.env_id, env_kwargs=spec.env_kwargs,
        policy_name=policy, policy_options=settings.policy_options, params=params.detach(),
        obs_norm=None, fitness=-final_error, generation=updates,
        config={"env": {"id": spec.env_id, "kwargs": spec.env_kwargs}, "fit": asdict(settings)},
    )
    return FitResult(run_dir, updates, updates * batch_size, seconds, losses, errors,
                     final_error, params.detach().clone())


def evaluate(
    net: Policy, params: torch.Tensor, task: FitTask, episodes: int, rng: np.random.Generator
) -> float:
    """The task's error of `params` on `episodes` fresh episodes (no gradient)."""
    with torch.no_grad():
        inputs, targets = task.sample(rng, episodes)
        return float(task.error(_last_outputs(net, params, inputs), targets))


def _last_outputs(net: Policy, params: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """The policy's outputs at the last step of each episode `[B, K]`, run from its initial
    state through every step (the gradient flows back through all of them)."""
    return functional.forward_observations(net, params, inputs, sequential=True)[:, -1]


def _build_policy(task: FitTask, settings: FitSettings) -> tuple[Policy, torch.Tensor]:
    """The policy for the task's env spaces, initialised under a seeded torch generator
    (the global RNG is restored afterwards), and its genome as the trainable tensor."""
    env = make_env(task.env_id, task.env_kwargs)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            net = make_policy(settings.policy, env.observation_space, env.action_space,
                              **settings.policy_options)
    finally:
        env.close()
    if not net.is_recurrent:
        raise ValueError(f"fit trains over whole episodes and needs a recurrent policy; "
                         f"{settings.policy!r} is feedforward")
    return net, functional.get_flat(net).requires_grad_(True)


def _check(settings: FitSettings, log_every: int) -> None:
    for name, value in (("updates", settings.updates), ("batch_size", settings.batch_size),
                        ("eval_episodes", settings.eval_episodes), ("log_every", log_every)):
        if value < 1:
            raise ValueError(f"fit needs {name} >= 1, got {value}")
    if settings.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {settings.lr_schedule!r}; "
                         f"valid: {', '.join(LR_SCHEDULES)}")
    if not (math.isfinite(settings.lr) and settings.lr > 0):
        raise ValueError(f"fit needs a learning rate > 0, got {settings.lr}")
    if settings.grad_clip is not None and not settings.grad_clip > 0:
        raise ValueError(f"fit needs grad_clip > 0 (or none), got {settings.grad_clip}")


def _default_name(settings: FitSettings) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{settings.task}-fit-{settings.policy}-{stamp}")


def _new_run_dir(logdir: Path, name: str) -> Path:
    """`logdir/name`, with a numeric suffix if it exists; created."""
    run_dir, suffix = logdir / name, 1
    while run_dir.exists():
        run_dir, suffix = logdir / f"{name}-{suffix}", suffix + 1
    run_dir.mkdir(parents=True)
    return run_dir
