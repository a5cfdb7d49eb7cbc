"""The `ray` backend: groups of genomes rolled out by long-lived Ray actors, locally or on a
cluster.

Each actor holds a `RolloutWorker` (its env pool and policy skeleton) for the whole run. Per
generation the population's genomes go into the object store once; every task carries only
that reference and the bounds of its group, and the actor slices its rows out of the shared
array. Where the population is large enough, it is cut into more groups than there are
actors (`worker_groups`) and each actor is handed the next group as soon as it returns one
(`ray.wait`), so uneven episode lengths balance out. Results are keyed by group, so arrival
order is irrelevant and a re-run group replaces nothing. An actor that dies is replaced and
its group re-submitted; the generation completes and `events()` reports it.

Ray is an optional dependency (`pip install 'smevo[ray]'`); the backend registry
(`registry.py`) imports this module only when the `ray` backend is asked for. Only Ray's
public core API is used here.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections import Counter, deque
from collections.abc import Callable

import numpy as np
import torch

from smevo.evaluation.backends import Backend, nothing, once, worker_groups
from smevo.evaluation.obs_norm import ObsNormalizer
from smevo.evaluation.rollout import EvalResult, EvalSpec, EvalTask, RolloutWorker

try:
    import ray
    from ray.exceptions import RayActorError
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(
        "Ray is not installed: pip install 'smevo[ray]'"
    ) from error

MAX_GROUP_RETRIES = 3
"""How often one group may lose its actor in a generation before the error is raised: a lost
node costs each of its groups one retry, while a group that kills every actor it meets (a
segfaulting env) stops the run instead of looping."""


@ray.remote(num_cpus=1)
class RolloutActor:
    """One CPU's worth of rollouts: a `RolloutWorker` kept for the actor's lifetime."""

    def __init__(self, spec: EvalSpec) -> None:
        torch.set_num_threads(1)  # one core per actor; Ray schedules them side by side
        self.worker = RolloutWorker(spec)

    def ready(self) -> int:
        """The actor's process id, once its worker is built."""
        return os.getpid()

    def evaluate(
        self,
        params: np.ndarray,
        start: int,
        stop: int,
        tasks: list[EvalTask],
        normalizer: ObsNormalizer,
    ) -> list[EvalResult]:
        """Evaluate rows `start:stop` of the population (Ray resolves the reference to the
        shared, read-only array) on their tasks."""
        return self.worker.evaluate(params[start:stop], tasks, normalizer)


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast, naming the address, if nothing listens at `[ray://]HOST:PORT`: `ray.init`
    would retry forever."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as error:
        raise ValueError(
            f"no Ray cluster answers at {address!r} ({error}); start one with "
            "'ray start --head' or pass its HOST:PORT (or 'auto' on one of its nodes)"
        ) from error


def _auth_hint() -> str:
    """Why joining may fail although the cluster answers: Ray >= 2.59 starts clusters with
    token authentication, and a driver sends its token only in token mode."""
    if os.environ.get("RAY_AUTH_MODE") == "token":
        return " (RAY_AUTH_MODE=token is set: check that the token matches the cluster's)"
    return ("; if the cluster uses token authentication (the default of `ray start` since Ray "
            "2.59), set RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN, or the "
            "file ~/.ray/auth_token; `ray get-auth-token` on the head node prints it)")


def _owned(result: EvalResult) -> EvalResult:
    """`result` with its experiences copied: Ray deserialises arrays as read-only views of its
    buffers, which torch refuses to share and which would pin the object store's memory."""
    experiences = result.experiences
    if isinstance(experiences, np.ndarray):
        result.experiences = experiences.copy()
    elif isinstance(experiences, list):
        result.experiences = [np.array(sequence) for sequence in experiences]
    return result


class RayBackend(Backend):
    """Groups of individuals spread over Ray actors, one CPU each.

    `address` is passed to `ray.init` (`"auto"` or `"HOST:PORT"` joins a running cluster;
    None starts a private local instance with `workers` CPUs, or joins the cluster that the
    `RAY_ADDRESS` environment variable names) unless Ray is already initialised in this
    process, in which case that instance is used and left running by `close()`.
    `workers` is the number of actors (None: one per CPU of the cluster). The constructor
    returns once every actor has built its envs and policy, so a bad spec fails here and
    start-up is not charged to the first generation; on a cluster short of CPUs it waits
    for resources to appear (an autoscaler's nodes, say).
    """

    name = "ray"

    def __init__(
        self, spec: EvalSpec, workers: int | None = None, address: str | None = None
    ) -> None:
        self.spec = spec
        self._events: list[str] = []
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
            if address is None and not os.environ.get("RAY_ADDRESS"):
                # "local": a private instance even if `ray start` runs on this machine.
                ray.init(address="local", num_cpus=workers or os.cpu_count(),
                         include_dashboard=False, **quiet)
            else:  # address None: Ray joins the cluster that RAY_ADDRESS names
                if address not in (None, "auto"):
                    _check_reachable(address)
                try:
                    ray.init(address=address, **quiet)
                except ConnectionError as error:
                    raise ValueError(
                        f"cannot join the Ray cluster at {address!r}: {error}{_auth_hint()}"
                    ) from error
        cpus = int(ray.cluster_resources().get("CPU", 0))
        self.workers = workers or max(cpus, 1)
        if self.workers > cpus:
            warnings.warn(
                f"the ray backend asks for {self.workers} actors of one CPU each, but the "
                f"cluster has {cpus} CPUs: the rest wait until resources appear",
                stacklevel=2,
            )
        self._actors = [RolloutActor.remote(spec) for _ in range(self.workers)]
        ray.get([actor.ready.remote() for actor in self._actors])

    def evaluate(
        self, params: torch.Tensor, tasks: list[EvalTask], normalizer: ObsNormalizer
    ) -> list[EvalResult]:
        return self.evaluate_meanwhile(params, tasks, normalizer, nothing)

    def evaluate_meanwhile(
        self, params: torch.Tensor, tasks: list[EvalTask], normalizer: ObsNormalizer,
        meanwhile: Callable[[], None],
    ) -> list[EvalResult]:
        meanwhile = once(meanwhile)
        params_ref = ray.put(params.detach().cpu().numpy())
        normalizer_ref = ray.put(normalizer)
        groups = worker_groups(len(tasks), len(self._actors))
        queue = deque(range(len(groups)))
        idle = list(range(len(self._actors)))
        running: dict[ray.ObjectRef, tuple[int, int]] = {}  # task -> (group, actor slot)
        results: dict[int, list[EvalResult]] = {}
        retries: Counter[int] = Counter()
        while queue or running:
            while queue and idle:
                key, slot = queue.popleft(), idle.pop()
                group = groups[key]
                ref = self._submit(slot, params_ref, group, tasks[group], normalizer_ref)
                running[ref] = (key, slot)
            meanwhile()  # the actors have work: this process's own, while they run
            [ref], _ = ray.wait(list(running), num_returns=1)
            key, slot = running.pop(ref)
            try:
                results[key] = [_owned(result) for result in ray.get(ref)]
            except RayActorError as error:
                retries[key] += 1
                if retries[key] > MAX_GROUP_RETRIES:
                    raise
                self._replace(slot)
                queue.appendleft(key)
                group = groups[key]
                first, last = tasks[group.start].index, tasks[group.stop - 1].index
                self._events.append(
                    f"a Ray actor died ({type(error).__name__}); started a replacement and "
                    f"re-submitted individuals {first}-{last} of this generation"
                )
            idle.append(slot)
        meanwhile()  # where there was nothing to evaluate
        return [result for key in sorted(results) for result in results[key]]

    def _submit(
        self,
        slot: int,
        params_ref: ray.ObjectRef,
        group: slice,
        tasks: list[EvalTask],
        normalizer_ref: ray.ObjectRef,
    ) -> ray.ObjectRef:
        """Hand rows `group` of the population to the actor in `slot`."""
        return self._actors[slot].evaluate.remote(
            params_ref, group.start, group.stop, tasks, normalizer_ref)

    def _replace(self, slot: int) -> None:
        """Put a fresh actor in `slot` (the old one is killed in case it is only unreachable,
        so that it cannot come back and hold a CPU)."""
        ray.kill(self._actors[slot], no_restart=True)
        self._actors[slot] = RolloutActor.remote(self.spec)

    def events(self) -> list[str]:
        events, self._events = self._events, []
        return events

    @classmethod
    def local_workers(cls, workers: int | None, address: str | None) -> int:
        """A local Ray (no `address`) runs its actors on this machine; a cluster's run
        elsewhere."""
        return 0 if address is not None else (workers or os.cpu_count() or 1)

    def close(self) -> None:
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []
        if self._owns_ray:
            ray.shutdown()
