"""The evaluation backends by name: the one list of them, registered lazily by
``"module:Class"`` so that listing and validating names imports neither torch nor an optional
dependency (Ray), which only the run that chooses its backend needs."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from smevo._registry import Registry

if TYPE_CHECKING:
    from smevo.evaluation.backends import Backend
    from smevo.evaluation.rollout import EvalSpec

__all__ = ["BACKENDS", "make_backend"]

BACKENDS: Registry[type[Backend]] = Registry("backend", entry_points="smevo.backends")
BACKENDS.add("serial", "smevo.evaluation.backends:SerialBackend")
BACKENDS.add("vectorized", "smevo.evaluation.backends:VectorizedBackend")
BACKENDS.add("process", "smevo.evaluation.backends:ProcessBackend")
BACKENDS.add("ray", "smevo.evaluation.ray_backend:RayBackend")


def make_backend(
    name: str, spec: EvalSpec, workers: int | None = None, address: str | None = None
) -> Backend:
    """Build backend `name` (see `BACKENDS`) for an evaluation spec: `workers` processes or
    actors, and `address`, the cluster to join, for a backend that takes one (`ray`; None: a
    local instance)."""
    backend = BACKENDS.get(name)
    joins_cluster = "address" in inspect.signature(backend).parameters
    return backend(spec, workers, address=address) if joins_cluster else backend(spec, workers)
