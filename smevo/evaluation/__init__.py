"""Rollouts and the backends that run them.

`BACKENDS` and `make_backend` come from the light `registry` module; everything else is
imported on first use, so that naming and validating a backend (the config does) costs no
torch import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from smevo.evaluation.registry import BACKENDS, make_backend

if TYPE_CHECKING:
    from smevo.evaluation.backends import Backend
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

_LAZY = {
    "Backend": "smevo.evaluation.backends",
    "ObsNormalizer": "smevo.evaluation.obs_norm",
    "EvalResult": "smevo.evaluation.rollout",
    "EvalSpec": "smevo.evaluation.rollout",
    "EvalTask": "smevo.evaluation.rollout",
    "RolloutWorker": "smevo.evaluation.rollout",
}


def __getattr__(name: str) -> Any:
    """The names of `_LAZY`, imported from their module when first asked for."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
