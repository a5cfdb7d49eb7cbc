"""The saved best agent of a run (``best.pt``) and acting with it.

``best.pt`` holds plain data only: the env id and kwargs, the policy's registry name and
options, the genome, the observation-normalisation statistics, and the run's config. Opening
one runs no code from it: it is read back with a weights-only load, and an env id that names
code is made only if the caller trusts it (`smevo.envs.check_env_trust`). Gym spaces are not
stored: they are recovered by making the env again, which is also what `smevo eval` and
`smevo watch` need in order to act.

`Agent.act` computes exactly what the trainer computes: normalised observation, the policy
in float64, outputs rounded to float32, then the action decoder, so an evaluation here
reproduces the fitness the trainer measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec

from smevo.checkpoint import CheckpointError, atomic_torch_save, load_torch_file
from smevo.evaluation.capabilities import make_episode_env
from smevo.evaluation.obs_norm import normalize
from smevo.functional import set_flat
from smevo.policies import ActionDecoder, Policy, State, make_policy

__all__ = ["FORMAT", "VERSION", "Agent", "load_agent", "save_agent", "solve_threshold"]

FORMAT = "smevo-agent"
"""The marker that tells a saved agent from any other torch file."""
VERSION = 1
"""The layout version this module writes and the newest it reads."""


def solve_threshold(
    threshold: float | None, max_steps: int | None, spec: EnvSpec | None
) -> float | None:
    """The return that counts as solved: the run's ``budget.solve_threshold``, else the env's
    registered ``reward_threshold``, which is meant for the env's whole episodes and so does
    not apply when ``env.max_steps`` cuts them (a cut episode of negative rewards would pass
    it too easily). None when there is none."""
    if threshold is not None or max_steps is not None or spec is None:
        return threshold
    return spec.reward_threshold


def save_agent(
    path: str | Path,
    *,
    env_id: str,
    env_kwargs: dict[str, Any],
    policy_name: str,
    policy_options: dict[str, Any],
    params: torch.Tensor,
    obs_norm: dict[str, np.ndarray] | None,
    fitness: float,
    generation: int,
    config: dict[str, Any],
) -> None:
    """Write an agent to `path` atomically (readers see the old file or the new one).

    `obs_norm` is None or ``{"mean": array, "std": array}``; `config` is the run's config as
    plain data (`smevo.config.config_to_dict`).
    """
    if obs_norm is not None:
        obs_norm = {"mean": np.asarray(obs_norm["mean"]), "std": np.asarray(obs_norm["std"])}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "env": {"id": env_id, "kwargs": dict(env_kwargs)},
        "policy": {"name": policy_name, "options": dict(policy_options)},
        "params": params.detach().to("cpu", torch.float32).reshape(-1).clone(),
        "obs_norm": obs_norm,
        "fitness": float(fitness),
        "generation": int(generation),
        "config": config,
    }
    atomic_torch_save(payload, path)


def _checked_payload(path: Path) -> dict[str, Any]:
    """The payload of a saved agent, or a `CheckpointError` saying what is wrong with it."""
    payload = load_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a smevo agent (no {FORMAT!r} marker)")
    version = payload.get("version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: corrupt smevo agent (version {version!r})")
    if version > VERSION:
        raise CheckpointError(
            f"{path}: written by a newer smevo (agent version {version}; "
            f"this smevo reads up to {VERSION}); upgrade smevo to load it"
        )
    env, policy, params = payload.get("env"), payload.get("policy"), payload.get("params")
    if (
        not isinstance(env, dict)
        or not isinstance(env.get("id"), str)
        or not isinstance(policy, dict)
        or not isinstance(policy.get("name"), str)
        or not isinstance(params, torch.Tensor)
    ):
        raise CheckpointError(f"{path}: corrupt smevo agent (env, policy or params missing)")
    problem = _field_problem(payload)
    if problem:
        raise CheckpointError(f"{path}: corrupt smevo agent ({problem})")
    if not bool(torch.isfinite(params).all()):
        raise CheckpointError(
            f"{path}: the agent's parameters hold NaN or infinite values; it cannot act (the "
            "trainer scores such an individual -inf)"
        )
    return payload


def _is_mapping(value: Any) -> bool:
    return isinstance(value, dict)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_stats(obs_norm: Any) -> bool:
    """Whether `obs_norm` is None or ``{"mean": array, "std": array}`` of one shape, finite,
    std > 0."""
    if obs_norm is None:
        return True
    if not isinstance(obs_norm, dict):
        return False
    mean, std = obs_norm.get("mean"), obs_norm.get("std")
    return (
        all(isinstance(a, np.ndarray) and a.dtype.kind in "iuf" for a in (mean, std))
        and mean.shape == std.shape
        and bool(np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all())
    )


def _field_problem(payload: dict[str, Any]) -> str:
    """What is wrong with the fields of a saved agent that loading and acting read, or "".

    A file that passes acts, or fails with a message, never with a traceback from deep inside.
    """
    config = payload.get("config", {})
    env = config.get("env", {}) if _is_mapping(config) else {}
    budget = config.get("budget", {}) if _is_mapping(config) else {}
    checks: tuple[tuple[str, str, Any, Callable[[Any], bool]], ...] = (
        ("env.kwargs", "a mapping", payload["env"].get("kwargs"), _is_mapping),
        ("policy.options", "a mapping", payload["policy"].get("options", {}), _is_mapping),
        ("params", "a float tensor", payload["params"], torch.Tensor.is_floating_point),
        ("obs_norm", "null or finite 'mean' and positive 'std' arrays of one shape",
         payload.get("obs_norm"), _is_stats),
        ("fitness", "a number", payload.get("fitness", math.nan), _is_number),
        ("generation", "an integer >= 0", payload.get("generation", 0),
         lambda v: _is_count(v, 0)),
        ("config", "a mapping", config, _is_mapping),
        ("config.env", "a mapping", env, _is_mapping),
        ("config.budget", "a mapping", budget, _is_mapping),
        ("config.env.max_steps", "null or an integer >= 1",
         env.get("max_steps") if _is_mapping(env) else None,
         lambda v: v is None or _is_count(v, 1)),
        ("config.budget.solve_threshold", "null or a finite number",
         budget.get("solve_threshold") if _is_mapping(budget) else None,
         lambda v: v is None or (_is_number(v) and math.isfinite(v))),
    )
    for where, expected, value, valid in checks:
        if not valid(value):
            dtype = f" of {value.dtype}" if isinstance(value, torch.Tensor | np.ndarray) else ""
            return f"{where} must be {expected}, got {type(value).__name__}{dtype}"
    return ""


def load_agent(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    render_mode: str | None = None,
    trust_env_code: bool = False,
) -> Agent:
    """Load a saved agent and make its env (with `render_mode`, e.g. "human" or "rgb_array").

    The file may come from anyone: an env id in it that names code (``module:factory``) is
    refused unless `trust_env_code` (`smevo.envs.check_env_trust`).
    Raises `CheckpointError` (a `ValueError`) for a missing, corrupt or foreign file, and
    `ValueError` when the env or the policy cannot be rebuilt (`UntrustedEnvError` when the
    env is refused).
    """
    path = Path(path)
    payload = _checked_payload(path)
    env = make_episode_env(payload["env"]["id"], payload["env"]["kwargs"],
                           render_mode=render_mode, trust_env_code=trust_env_code)
    try:
        policy = make_policy(
            payload["policy"]["name"],
            env.observation_space,
            env.action_space,
            **payload["policy"].get("options", {}),
        )
        set_flat(policy, payload["params"].to(torch.float32))
    except (ValueError, TypeError) as error:  # TypeError: an option of the wrong type
        env.close()
        raise CheckpointError(f"{path}: cannot rebuild the policy: {error}") from None
    obs_norm = payload.get("obs_norm")
    if obs_norm is not None and obs_norm["mean"].shape != env.observation_space.shape:
        env.close()
        raise CheckpointError(
            f"{path}: corrupt smevo agent (obs_norm is for observations of shape "
            f"{obs_norm['mean'].shape}, the env's are {env.observation_space.shape})"
        )
    return Agent(
        env,
        policy,
        obs_norm=payload.get("obs_norm"),
        fitness=float(payload.get("fitness", float("nan"))),
        generation=int(payload.get("generation", 0)),
        config=payload.get("config") or {},
        device=device,
    )


class Agent:
    """A policy with its env, acting as it did in training. The policy is converted to float64
    in place (the trainer's arithmetic); the agent owns it and the env from then on.

    `solve_threshold` is the run's (see `solve_threshold`); `max_steps` is the run's
    ``env.max_steps``.
    """

    def __init__(
        self,
        env: gym.Env,
        policy: Policy,
        *,
        obs_norm: dict[str, np.ndarray] | None = None,
        fitness: float = float("nan"),
        generation: int = 0,
        config: dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.env = env
        self.device = torch.device(device)
        self.policy = policy.to(self.device, torch.float64).eval()
        self.decoder = ActionDecoder(env.action_space)
        self.obs_norm = obs_norm
        self.fitness = fitness
        self.generation = generation
        self.config = config or {}
        self.max_steps: int | None = self.config.get("env", {}).get("max_steps")
        self.solve_threshold = solve_threshold(
            self.config.get("budget", {}).get("solve_threshold"), self.max_steps, env.spec
        )
        self._state: State = None
        self.reset_state()

    def reset_state(self) -> None:
        """Forget the recurrent state: call at the start of every episode."""
        self._state = self.policy.initial_state(1)

    def normalize(self, obs: Any) -> np.ndarray:
        """The observation as the policy sees it: float32, standardised with the run's
        statistics if it normalised observations, by the trainer's own function
        (`smevo.evaluation.obs_norm.normalize`), so the result is bit for bit the trainer's.
        """
        if self.obs_norm is None:
            return np.asarray(obs, dtype=np.float32)
        return normalize(obs, self.obs_norm["mean"], self.obs_norm["std"])

    @torch.no_grad()
    def act(self, obs: Any) -> Any:
        """The action for one observation; the recurrent state carries over between calls.

        Non-finite outputs act as zeros (the trainer scores such an individual -inf).
        """
        x = torch.as_tensor(self.normalize(obs), dtype=torch.float64, device=self.device)
        output, self._state = self.policy(x.unsqueeze(0), self._state)
        return self.decoder(torch.nan_to_num(output.to(torch.float32), 0.0, 0.0, 0.0))[0]

    def run_episodes(
        self,
        episodes: int,
        seed: int = 0,
        *,
        on_step: Callable[[gym.Env], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Play `episodes` episodes; episode e resets with ``seed + e``.

        Returns one dict per episode: ``return``, ``length`` and ``solved``, true when the
        env flagged ``info["solved"]`` at any step or the return reached `solve_threshold`.
        `on_step(env)` is called after the reset and after every step (e.g. to grab frames).
        """
        results = []
        for episode in range(episodes):
            obs, info = self.env.reset(seed=seed + episode)
            self.reset_state()
            if on_step is not None:
                on_step(self.env)
            total, length, flagged, done = 0.0, 0, bool(info.get("solved")), False
            while not done:
                obs, reward, terminated, truncated, info = self.env.step(self.act(obs))
                total += float(reward)
                length += 1
                flagged = flagged or bool(info.get("solved"))
                done = terminated or truncated or length == self.max_steps
                if on_step is not None:
                    on_step(self.env)
            reached = self.solve_threshold is not None and total >= self.solve_threshold
            results.append({"return": total, "length": length, "solved": flagged or reached})
        return results

    def close(self) -> None:
        """Close the env (and its window, if rendering)."""
        self.env.close()
