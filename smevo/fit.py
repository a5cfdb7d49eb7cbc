"""Gradient training (BPTT with Adam) of any registered policy on a differentiable task.

The plasticity papers trained their networks by gradient descent; `fit` does the same for
any smevo policy so that evolution and gradient descent can be compared on one network. A
task draws whole episodes as arrays (the supervised form of an smevo env): the policy runs
through every step from its initial state, the loss is taken at the last step, and the
gradient flows back through the whole episode (plastic traces included), as in the
reference code. The genome, a flat parameter vector (`smevo.functional`), is what Adam
updates, so the result is saved as an ordinary agent: `smevo eval RUN` plays it on the
task's env.

A run is configured by a `FitConfig` (`smevo.fit_config`), read, overridden and written by
`smevo.config` as `smevo train`'s config is. A run is a directory like `smevo train`'s
(`smevo.run_folders.named_run_dir`): `config.yaml` (the resolved `FitConfig`, which
``load_config(path, FitConfig)`` reads back, so ``smevo fit --config RUN/config.yaml``
repeats the run), TensorBoard events and `metrics.jsonl` (tags `fit/loss`, `fit/error`,
`progress/episodes`, one point per `logging.log_every` updates, averaged over them) and
`best.pt` (the final parameters).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smevo import functional
from smevo.agent import save_agent
from smevo.config import PolicyConfig, config_to_dict, config_to_yaml, save_config, validate_config
from smevo.envs import make_env
from smevo.fit_config import LR_SCHEDULES, TASKS, FitConfig, FitTaskConfig
from smevo.logging import RunLogger
from smevo.policies import Policy, make_policy
from smevo.run_folders import named_run_dir

__all__ = ["TASKS", "FitConfig", "FitResult", "FitTask", "fit"]

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


def fit(
    config: FitConfig, *, on_log: Callable[[int, dict[str, float]], None] | None = None
) -> FitResult:
    """Train the config's policy on its task by BPTT and Adam in a new run folder; returns
    the curves and the final error.

    Each update draws `fit.batch_size` fresh episodes (from a generator seeded with `seed`,
    which also seeds the policy's init), runs the policy over them, and takes one Adam step
    (`fit.lr`, scaled by `fit.lr_schedule`; gradient norm clipped to `fit.grad_clip` if set).
    `on_log(update, metrics)` sees each logged point (the CLI prints them). Raises
    `ValueError` (before any folder is made) for unknown names or options, a feedforward
    policy and out-of-range settings.
    """
    validate_config(config)
    settings, seed = config.fit, config.seed
    spec = _task(config.task)
    net, params = _build_policy(spec, config.policy, seed)
    optimizer = torch.optim.Adam([params], lr=settings.lr)
    updates, batch_size, grad_clip = settings.updates, settings.batch_size, settings.grad_clip
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, LR_SCHEDULES[settings.lr_schedule](updates))
    rng = np.random.default_rng([seed, 0])

    run_dir = named_run_dir(config.logging.logdir, config.logging.name,
                            TASKS.canonical(config.task.name), "fit", config.policy.name)
    save_config(config, run_dir / "config.yaml")
    logger = RunLogger(run_dir, quiet=True)
    logger.log_config(config_to_yaml(config))
    logger.log_hparams({key: value for key, value in config_to_dict(config).items()
                        if key != "logging"}, ["fit/error", "fit/loss"])
    log_every = config.logging.log_every
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
        final_error = evaluate(net, params.detach(), spec, settings.eval_episodes,
                               np.random.default_rng([seed, 1]))
    finally:
        logger.close()
    save_agent(
        run_dir / "best.pt", env_id=spec.env_id, env_kwargs=spec.env_kwargs,
        policy_name=config.policy.name, policy_options=config.policy.options,
        params=params.detach(), obs_norm=None, fitness=-final_error, generation=updates,
        config={"env": {"id": spec.env_id, "kwargs": spec.env_kwargs},
                "fit": config_to_dict(config)},
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


def _task(task: FitTaskConfig) -> FitTask:
    """The task `task` names, made with its options; an option its env does not take is a
    `ValueError`."""
    factory = TASKS.get(task.name)
    try:
        return factory(**task.options)
    except TypeError as error:
        raise ValueError(f"fit task {TASKS.canonical(task.name)!r} with options "
                         f"{task.options}: {error}") from None


def _build_policy(task: FitTask, policy: PolicyConfig, seed: int) -> tuple[Policy, torch.Tensor]:
    """The policy for the task's env spaces, initialised under a seeded torch generator
    (the global RNG is restored afterwards), and its genome as the trainable tensor."""
    env = make_env(task.env_id, task.env_kwargs)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = make_policy(policy.name, env.observation_space, env.action_space,
                              **policy.options)
    finally:
        env.close()
    if not net.is_recurrent:
        raise ValueError(f"fit trains over whole episodes and needs a recurrent policy; "
                         f"{policy.name!r} is feedforward")
    return net, functional.get_flat(net).requires_grad_(True)
