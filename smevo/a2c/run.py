"""Episodic A2C meta-training of a recurrent policy (Backpropamine's grid maze and cue/reward).

Each update plays `a2c.batch` episodes together through the env's pool (its vector twin
where it has one, `smevo.evaluation.env_pool`), from a zero policy state, sampling actions
from the softmax of the policy's outputs; the gradient of the loss (`smevo.a2c.loss`) flows
back through every step of the episodes, plastic traces included (full BPTT, as in the
reference). Adam, gradient-norm clipping and a burn-in without optimiser steps follow
`simplemaze/`.

Every random draw derives from the run seed and what it is for (`smevo.seeding`): the init,
update u's episode seeds and its action noise, the final evaluation's episodes. So a
checkpoint needs only the update count, the parameters and Adam's state, and a resumed run
equals an uninterrupted one.

A run is a directory like `smevo train`'s: `config.yaml` (an `A2CConfig`, which loads back),
`run_id`, TensorBoard events and `metrics.jsonl` (one line per update: `a2c/reward` (the
batch's mean episode reward), the loss terms, entropy, gradient norm, the modulator's
activity for neuromodulated nets, `progress/episodes`), `checkpoints/` (atomic, the newest
`logging.keep_checkpoints`) and `best.pt`, the latest policy, which `smevo eval` and
`smevo watch` play (greedily: the action decoder takes the argmax).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml

from smevo import functional
from smevo.a2c.loss import a2c_loss
from smevo.a2c.progress import Progress
from smevo.a2c.settings import A2CConfig
from smevo.agent import save_agent
from smevo.checkpoint import load_latest_checkpoint, save_checkpoint
from smevo.config import apply_overrides, config_to_dict, config_to_yaml, load_config, save_config
from smevo.envs import make_env
from smevo.evaluation.env_pool import EnvPool, make_env_pool
from smevo.interrupts import StopSignals
from smevo.logging import RunLogger
from smevo.policies import Policy, make_policy, policy_options
from smevo.run_folders import (
    RESUMABLE_SECTIONS,
    check_same_run,
    config_changes,
    named_run_dir,
    run_identity,
)
from smevo.run_lock import RunLock
from smevo.seeding import EVALUATION, INIT, VALIDATION, derive_seed, episode_seeds, numpy_rng

__all__ = ["A2CResult", "Episodes", "Learner", "a2c", "is_a2c_run", "play", "resume_a2c"]

RUNNING_MEAN = 10
"""Updates whose mean reward an intermediate best.pt carries as its fitness."""


@dataclass
class Episodes:
    """A batch of episodes as `[T, B, ...]` tensors (T: the longest episode); `mask` says
    which steps belong to their episode; `modulator` holds M(t) of a neuromodulated net."""

    logits: torch.Tensor
    values: torch.Tensor | None
    actions: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor
    modulator: torch.Tensor | None

    @property
    def returns(self) -> torch.Tensor:
        """Each episode's total reward `[B]`."""
        return (self.rewards * self.mask).sum(dim=0)


def play(
    net: Policy, pool: EnvPool, seeds: Sequence[int], rng: np.random.Generator, *,
    values: bool = True,
) -> Episodes:
    """Play one episode per seed together, from the policy's initial state, sampling each
    action from the softmax of its outputs with uniforms from `rng` (inverse CDF, so the
    draws do not depend on torch's RNG). Gradients flow if enabled by the caller; `values`
    reads the value head at every step (in one call, on the stacked hidden units). A policy
    may offer `bptt_forward`, its step built for autograd through time (the Hebbian plastic
    net's fused step), which is then used in place of `forward`."""
    batch = len(seeds)
    step = getattr(net, "bptt_forward", net)
    obs = pool.reset(seeds, [None] * batch)
    state = net.initial_state(batch)
    alive = np.ones(batch, dtype=bool)
    logits, actions, rewards, masks, hidden = [], [], [], [], []
    while alive.any():
        out, state = step(torch.from_numpy(obs), state)
        probs = torch.softmax(out.detach(), dim=-1)
        noise = torch.from_numpy(rng.random(batch)).to(probs.dtype)
        action = (probs.cumsum(-1) < noise[:, None]).sum(-1).clamp_(max=out.shape[-1] - 1)
        obs, reward, terminated, truncated, _ = pool.step(action.numpy(), alive)
        logits.append(out)
        hidden.append(net.features(state))
        actions.append(action)
        rewards.append(torch.from_numpy(np.asarray(reward, dtype=np.float32)))
        masks.append(torch.from_numpy(alive.copy()))
        alive &= ~(terminated | truncated)
    hidden = torch.stack(hidden)  # [T, B, H]: the value head reads all steps at once
    modulator = None
    if hasattr(net, "modulator"):
        with torch.no_grad():
            modulator = net.modulator(hidden).squeeze(-1)
    return Episodes(torch.stack(logits), net.value(hidden) if values else None,
                    torch.stack(actions), torch.stack(rewards), torch.stack(masks), modulator)


def build_policy(config: A2CConfig, observation_space: gym.Space,
                 action_space: gym.Space) -> Policy:
    """The run's policy with its value head, initialised from the run seed (the global RNG
    is restored afterwards); a `ValueError` for a policy without a value head option
    (feedforward ones), or a non-Discrete action space."""
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(f"A2C samples from a softmax over discrete actions; "
                         f"{config.env.id} has {action_space}")
    if "value_head" not in policy_options(config.policy.name):
        raise ValueError(f"A2C needs a recurrent policy with a value head (the value_head "
                         f"option: rnn, gru, lstm, plastic, neuromod); {config.policy.name!r} "
                         "has none")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, INIT))
        net = make_policy(config.policy.name, observation_space, action_space,
                          **{**config.policy.options, "value_head": True})
    return net


class Learner:
    """The policy, Adam and the env pool of a run; `update` runs one A2C update.

    `state` (from `state_dict`) continues a run exactly. `trust_env_code` as for
    `smevo.envs.make_env`.
    """

    def __init__(self, config: A2CConfig, state: dict[str, Any] | None = None, *,
                 trust_env_code: bool = False) -> None:
        self.config = config
        env = make_env(config.env.id, config.env.kwargs, trust_env_code=trust_env_code)
        try:
            self.net = build_policy(config, env.observation_space, env.action_space)
        finally:
            env.close()
        settings = config.a2c
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=settings.lr,
                                          eps=settings.adam_eps)
        self.pool = make_env_pool(config.env.id, config.env.kwargs, index_episodes=False,
                                  trust_env_code=trust_env_code)
        self.updates, self.seconds = 0, 0.0
        if state is not None:
            self.net.load_state_dict(state["policy"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.updates, self.seconds = state["updates"], state["seconds"]

    @property
    def episodes(self) -> int:
        return self.updates * self.config.a2c.batch

    def update(self, signals: StopSignals | None = None) -> dict[str, float]:
        """Play a batch, take the loss, and (after the burn-in) one clipped Adam step;
        returns the update's metrics. A stop signal abandons it before the step (`signals`)."""
        settings, update = self.config.a2c, self.updates + 1
        seeds = episode_seeds(self.config.seed, settings.batch, EVALUATION, update)
        rng = numpy_rng(self.config.seed, EVALUATION, update, 1)
        started = time.perf_counter()
        stepped = update > settings.burn_in
        with (signals.interruptible() if signals is not None else contextlib.nullcontext()):
            with torch.set_grad_enabled(stepped):
                episodes = play(self.net, self.pool, seeds, rng)
                terms = a2c_loss(episodes.logits, episodes.values, episodes.actions,
                                 episodes.rewards, episodes.mask, gamma=settings.gamma,
                                 value_weight=settings.value_weight,
                                 concentration_weight=settings.concentration_weight)
            if stepped:
                self.optimizer.zero_grad()
                terms.loss.backward()
        metrics = {
            "a2c/reward": float(episodes.returns.mean()),
            "a2c/loss": float(terms.loss.detach()),
            "a2c/policy_loss": terms.policy,
            "a2c/value_loss": terms.value,
            "a2c/concentration": terms.concentration,
            "a2c/entropy": terms.entropy,
        }
        if stepped:
            parameters = list(self.net.parameters())
            clip = settings.grad_clip if settings.grad_clip is not None else math.inf
            metrics["a2c/grad_norm"] = float(torch.nn.utils.clip_grad_norm_(parameters, clip))
            self.optimizer.step()
        if episodes.modulator is not None:
            live = episodes.modulator[episodes.mask]
            metrics["a2c/modulator_abs"] = float(live.abs().mean())
            metrics["a2c/modulator_std"] = float(live.std())
        seconds = time.perf_counter() - started
        self.updates, self.seconds = update, self.seconds + seconds
        metrics.update({"progress/episodes": self.episodes, "perf/wall_time": self.seconds,
                        "perf/episodes_per_s": settings.batch / seconds})
        return metrics

    @torch.no_grad()
    def evaluate(self, episodes: int) -> float:
        """Mean reward of the current policy (sampling, as trained) on `episodes` fresh
        episodes, the same ones for every call of a run."""
        seeds = episode_seeds(self.config.seed, episodes, VALIDATION)
        played = play(self.net, self.pool, seeds, numpy_rng(self.config.seed, VALIDATION, 1),
                      values=False)
        return float(played.returns.mean())

    def state_dict(self, run_id: str) -> dict[str, Any]:
        """Everything `Learner(config, state)` needs to continue exactly (plain data)."""
        return {"run_id": run_id, "config": config_to_dict(self.config),
                "updates": self.updates, "seconds": self.seconds,
                "policy": dict(self.net.state_dict()), "optimizer": self.optimizer.state_dict()}

    def save_agent(self, path: Path, fitness: float) -> None:
        """Write the current policy as `best.pt` (what `smevo eval`/`watch` play)."""
        config = self.config
        save_agent(path, env_id=config.env.id, env_kwargs=config.env.kwargs,
                   policy_name=config.policy.name,
                   policy_options={**config.policy.options, "value_head": True},
                   params=functional.get_flat(self.net), obs_norm=None, fitness=fitness,
                   generation=self.updates, config=config_to_dict(config))

    def close(self) -> None:
        self.pool.close()


@dataclass
class A2CResult:
    """How a run ended: per-update mean rewards of this session, the final evaluation."""

    run_dir: Path
    updates: int
    episodes: int
    seconds: float
    rewards: list[float]
    final_reward: float
    stopped_by: str


OnLog = Callable[[int, dict[str, float]], None]


def a2c(config: A2CConfig, *, on_log: OnLog | None = None) -> A2CResult:
    """Meta-train a new run of `config` (the caller's own: its env id may name code);
    `on_log(update, metrics)` sees every update (the CLI's progress line)."""
    with StopSignals() as signals:
        learner = Learner(config, trust_env_code=True)  # bad names fail before any folder
        run_dir = named_run_dir(config.logging.logdir, config.logging.name, config.env.id,
                                "a2c", config.policy.name)
        with RunLock(run_dir):
            save_config(config, run_dir / "config.yaml")
            return _train(learner, run_dir, signals, on_log)


def resume_a2c(run_dir: str | Path, overrides: Sequence[str] = (), *,
               on_log: OnLog | None = None, trust_env_code: bool = False) -> A2CResult:
    """Continue an A2C run from its newest checkpoint; `overrides` (``--set`` strings) may
    change only its budget and logging. The run's files may come from anyone: an env id
    that names code is refused unless `trust_env_code`."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ValueError(f"{run_dir} is not a smevo run (no config.yaml)")
    with StopSignals() as signals, RunLock(run_dir):
        config = load_config(run_dir / "config.yaml", A2CConfig)
        found = load_latest_checkpoint(run_dir)
        state = None
        if found is not None:
            checkpoint, state, _ = found
            check_same_run(run_dir, checkpoint, state, config)
        changed = apply_overrides(config, list(overrides))
        changes = config_changes(config_to_dict(config), config_to_dict(changed))
        if changes:
            raise ValueError(f"a resumed run may change only its "
                             f"{', '.join(RESUMABLE_SECTIONS)} settings; not {'; '.join(changes)}")
        if overrides:
            save_config(changed, run_dir / "config.yaml")
        learner = Learner(changed, state, trust_env_code=trust_env_code)
        return _train(learner, run_dir, signals, on_log)


def is_a2c_run(run_dir: str | Path) -> bool:
    """Whether `run_dir` holds an A2C run (its config.yaml has an `a2c` section)."""
    path = Path(run_dir) / "config.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # not a run, or not one this function can tell: the caller's checks say
    return isinstance(data, dict) and "a2c" in data


def _train(learner: Learner, run_dir: Path, signals: StopSignals,
           on_log: OnLog | None) -> A2CResult:
    """Update until a budget is spent, logging every update and checkpointing every
    `logging.checkpoint_every`; a stop signal ends it with a checkpoint of the last update."""
    config, run_id = learner.config, run_identity(run_dir)
    logger = RunLogger(run_dir, quiet=True, start_generation=learner.updates)
    console = None if config.logging.quiet else Progress(config.budget, sys.stderr)
    if learner.updates == 0:
        logger.log_config(config_to_yaml(config))
    rewards: list[float] = []
    stopped_by = "episodes"
    threads = torch.get_num_threads()
    torch.set_num_threads(config.a2c.threads)
    try:
        while not _spent(config, learner):
            metrics = learner.update(signals)
            rewards.append(metrics["a2c/reward"])
            logger.log(learner.updates, metrics)
            for sink in (console, on_log):
                if sink is not None:
                    sink(learner.updates, metrics)
            if learner.updates % config.logging.checkpoint_every == 0:
                _checkpoint(learner, run_dir, run_id, float(np.mean(rewards[-RUNNING_MEAN:])))
            signals.check()
        if config.budget.wall_time is not None and learner.seconds >= config.budget.wall_time:
            stopped_by = "wall_time"
        final = learner.evaluate(config.a2c.eval_episodes)
        _checkpoint(learner, run_dir, run_id, final)
    except KeyboardInterrupt:
        _checkpoint(learner, run_dir, run_id,
                    float(np.mean(rewards[-RUNNING_MEAN:])) if rewards else math.nan)
        raise
    finally:
        torch.set_num_threads(threads)
        learner.close()
        logger.close()
    return A2CResult(run_dir, learner.updates, learner.episodes, learner.seconds, rewards,
                     final, stopped_by)


def _spent(config: A2CConfig, learner: Learner) -> bool:
    budget = config.budget
    return ((budget.episodes is not None and learner.episodes >= budget.episodes)
            or (budget.wall_time is not None and learner.seconds >= budget.wall_time))


def _checkpoint(learner: Learner, run_dir: Path, run_id: str, fitness: float) -> None:
    """The checkpoint of the last update and `best.pt` with the current policy."""
    save_checkpoint(run_dir, learner.updates, learner.state_dict(run_id),
                    keep=learner.config.logging.keep_checkpoints)
    learner.save_agent(run_dir / "best.pt", fitness)
