"""Observation standardisation with running statistics, frozen within a generation.

`normalize` is the one normaliser: the trainer's rollouts (through `ObsNormalizer`) and a
saved agent (`smevo.agent.Agent`) both call it, with the same float64 statistics, so `eval`
and `watch` feed the policy bit for bit what training fed it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLIP = 5.0
"""Normalised observations are clipped to ±CLIP (the C++ rollout is passed this value)."""


def normalize(obs: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """`(obs - mean) / std` computed in float64, clipped to ±5, returned as float32.

    `obs` is first rounded to float32 (what the env's observation space holds); statistics
    saved in float32 by older versions are widened to float64, the trainer's precision.
    """
    obs = np.asarray(obs, dtype=np.float32).astype(np.float64)
    scaled = (obs - np.asarray(mean, dtype=np.float64)) / np.asarray(std, dtype=np.float64)
    return np.clip(scaled, -CLIP, CLIP).astype(np.float32)


@dataclass
class ObsNormalizer:
    """`(obs - mean) / std` clipped to ±5; the identity while disabled.

    Statistics are merged (Chan et al.'s parallel variance) from the experiences sampled in a
    generation and applied, unchanged, to every rollout of the next, so that a rollout's inputs
    do not depend on which worker ran it.
    """

    enabled: bool = False
    count: float = 0.0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.count, 1.0)) + 1e-8

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if not self.enabled or self.mean is None:
            return obs
        return normalize(obs, self.mean, self.std)

    def affine(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The float64 (mean, std) that a call applies, or None while it is the identity."""
        if not self.enabled or self.mean is None:
            return None
        return np.asarray(self.mean, dtype=np.float64), np.asarray(self.std, dtype=np.float64)

    def update(self, observations: np.ndarray) -> None:
        """Merge a batch `[n, *obs]` of raw observations into the statistics."""
        if not self.enabled or len(observations) == 0:
            return
        batch = observations.astype(np.float64)
        n, mean = len(batch), batch.mean(axis=0)
        m2 = ((batch - mean) ** 2).sum(axis=0)
        if self.mean is None:
            self.count, self.mean, self.m2 = float(n), mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * n / total
        self.m2 = self.m2 + m2 + delta**2 * self.count * n / total
        self.count = total

    def state_dict(self) -> dict:
        return {"enabled": self.enabled, "count": self.count, "mean": self.mean, "m2": self.m2}

    @classmethod
    def from_state(cls, state: dict) -> ObsNormalizer:
        return cls(**state)

    def export(self) -> dict | None:
        """The statistics an agent needs to act, in the float64 that rollouts use (None while
        disabled or empty): `normalize` with them is exactly this normaliser."""
        stats = self.affine()
        return None if stats is None else {"mean": stats[0], "std": stats[1]}


@dataclass(frozen=True)
class FrozenNormalizer:
    """Saved statistics (an agent's ``{"mean", "std"}``) applied as the run that saved them
    applied them, never updated: what a rollout of a finished run's champion needs."""

    mean: np.ndarray
    std: np.ndarray

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return normalize(obs, self.mean, self.std)

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """The float64 (mean, std) that a call applies (`ObsNormalizer.affine`)."""
        return np.asarray(self.mean, dtype=np.float64), np.asarray(self.std, dtype=np.float64)
