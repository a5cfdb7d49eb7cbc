"""Rollouts and the backends that run them."""

from smevo.evaluation.backends import BACKENDS, Backend, make_backend
from smevo.evaluation.obs_norm import ObsNormalizer
from smevo.evaluation.rollout import EvalResult, EvalSpec, EvalTask, RolloutWorker

__all__ = [
    "BACKENDS",
    "Backend",
    "EvalResult",
    "EvalSpec",
    "EvalTask",
    "ObsNormalizer",
    "RolloutWorker",
    "make_backend",
]
