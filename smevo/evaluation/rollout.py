"""Rollouts: a group of individuals, each over its episodes, stepped in lockstep.

One code path serves every backend: a group of G genomes acts through one batched forward
per step (of the genomes that still have an episode running) over a pool of G×E sub-envs.
The forward runs in float64 and its outputs are rounded to float32 before actions are
decoded, which makes actions independent of how the population was split into groups (float32
kernels round differently at different batch sizes), so every backend and worker count
returns bit-identical fitnesses for the same seed. Where the policy and the env exist in C++
(an `mlp` in CartPole-v1 or the hard maze), the group instead runs in one native call that
computes the same thing (`smevo.evaluation.native`); an `mlp` in any other env steps in the
Python loop with that rollout's C++ forward (one call per step, where torch's per-call cost was
most of a small group's step), a `cnn` with a C++ forward of its own (where torch's
per-genome convolution calls were most of a MinAtar step). Which path a group takes depends on
the spec alone, never on the backend.

A worker may also be handed its genomes one claim at a time (`RolloutWorker.evaluate_claimed`,
how the process backend balances its workers): the lockstep group then keeps a fixed number of
lanes, and a lane whose genome has finished takes the next claimed genome at once, so a
worker's lanes stay full until the claims run out instead of idling behind the group's
longest episode. Where the env pool cannot reset single sub-envs (vector twins) or the rollout
is native, claims are taken a group at a time instead.

With `EvalSpec.device` set (`--device cuda`), the population forward runs on that device
while the envs step on the CPU: each step moves the observations there and the outputs back.
That path never takes the C++ rollout; on the CPU (`device="cpu"`, how the tests exercise
it) it gives the default path's fitnesses bit for bit, on an accelerator up to the rounding
of its float64 kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from smevo import functional
from smevo.envs import make_env
from smevo.evaluation.env_pool import make_env_pool
from smevo.evaluation.native import NativeRollout, compiled_forward
from smevo.evaluation.obs_norm import ObsNormalizer
from smevo.policies import ActionDecoder, Policy, State, make_policy


@dataclass(frozen=True)
class EvalSpec:
    """What every worker needs to evaluate genomes: plain data, cheap to send anywhere."""

    env_id: str
    env_kwargs: dict[str, Any]
    policy_name: str
    policy_options: dict[str, Any]
    max_steps: int | None = None
    archive_size: int = 100
    index_episodes: bool = False
    native: bool = True
    trust_env_code: bool = False
    """Whether workers may import and call what `env_id` names. The driver sets it once its
    own `make_env` accepted the id (trusted by the user, or naming no code there): a worker
    process has imported other modules than the driver and must not decide again."""
    device: str | None = None
    """Where the population forward runs (None: the CPU, C++ rollouts allowed)."""


@dataclass(frozen=True)
class EvalTask:
    """One evaluation: the individual's place in the population (results are keyed by it), an
    env seed per episode (their number is the number of episodes), and the seed of its
    experience sampling."""

    index: int
    seeds: tuple[int, ...]
    sample_seed: int


@dataclass
class EvalResult:
    """The outcome of one evaluation. `experiences` holds the raw observations kept for safe
    mutation: states `[n, *obs]`, or one `[T, *obs]` array per episode for recurrent policies,
    in the observations' `archive_dtype`."""

    index: int
    fitness: float
    returns: list[float]
    steps: int
    solved: bool
    broken: bool
    experiences: Any = field(default=None, repr=False)


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _uniform_hash(seeds: np.ndarray, counters: np.ndarray) -> np.ndarray:
    """Deterministic uniforms in [0, 1) from (seed, counter) pairs (splitmix64 finaliser)."""
    with np.errstate(over="ignore"):
        z = seeds.astype(np.uint64) + (counters.astype(np.uint64) + np.uint64(1)) * _MIX
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


FRAME_DTYPES = (np.dtype(bool), np.dtype(np.uint8))
"""Observation dtypes kept as they are in the experience archive (pixel frames: MinAtar's
booleans, RGB bytes); any other observation is kept as float32. A frame archive so takes
1 byte per pixel instead of 4, and the policy reads the same values either way."""


def archive_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype in which observations of `dtype` are recorded (`FRAME_DTYPES`)."""
    return dtype if dtype in FRAME_DTYPES else np.dtype(np.float32)


class StateReservoir:
    """A uniform sample of at most `size` observations per individual (Algorithm R), with
    hash-derived uniforms so it is the same however the work is split. Its memory is bounded:
    the sample, `groups * size` observations, plus a pending block of at most
    `BLOCK_BYTES` (or one step), in the observations' `archive_dtype`.

    `add` only copies a step's observations into a pending block; the block is sampled in one
    vectorised pass when it is full and before `states` (a per-step pass cost more than a
    cheap env's step). Sampling a block of steps at once gives exactly what sampling them one
    by one gives: each observation's fate depends only on its position in its individual's
    stream, and when several take one slot the latest in the stream wins either way.
    """

    BLOCK_BYTES = 1 << 22
    """Memory of the pending block (at least one step, at most 256)."""

    def __init__(self, groups: int, size: int, episodes: int, obs_shape: tuple[int, ...],
                 seeds: np.ndarray, dtype: np.dtype | None = None):
        self.size = size
        self.seen = np.zeros(groups, dtype=np.int64)
        self.buffer = np.zeros((groups, size, *obs_shape), dtype=dtype or np.float32)
        self.seeds = np.array(seeds, dtype=np.uint64)
        step_bytes = groups * episodes * max(1, int(np.prod(obs_shape))) * self.buffer.itemsize
        block = int(np.clip(self.BLOCK_BYTES // step_bytes, 1, 256))
        self.pending_obs = np.zeros((block, groups, episodes, *obs_shape),
                                    dtype=self.buffer.dtype)
        self.pending_active = np.zeros((block, groups, episodes), dtype=bool)
        self.pending = 0

    def add(self, obs: np.ndarray, active: np.ndarray) -> None:
        """`obs [G, E, *obs]`, `active [G, E]`: each individual's new observations, in episode
        order."""
        self.pending_obs[self.pending] = obs
        self.pending_active[self.pending] = active
        self.pending += 1
        if self.pending == len(self.pending_obs):
            self._flush()

    def _flush(self) -> None:
        """Sample the pending steps into the buffer, in stream order (step, then episode)."""
        steps, self.pending = self.pending, 0
        groups = len(self.seen)
        active = self.pending_active[:steps].transpose(1, 0, 2).reshape(groups, -1)
        counter = self.seen[:, None] + np.cumsum(active, axis=1) - 1  # positions in streams
        u = _uniform_hash(np.broadcast_to(self.seeds[:, None], counter.shape), counter)
        slot = np.where(counter < self.size, counter, np.floor(u * (counter + 1)).astype(np.int64))
        g, j = np.nonzero(active & (slot < self.size))
        # When observations take the same slot the latest wins; reversing the stream order
        # and taking first occurrences picks it.
        flat = g * self.size + slot[g, j]
        _, last = np.unique(flat[::-1], return_index=True)
        pick = len(flat) - 1 - last
        g, j = g[pick], j[pick]
        episodes = self.pending_obs.shape[2]
        self.buffer[g, slot[g, j]] = self.pending_obs[j // episodes, g, j % episodes]
        self.seen += active.sum(axis=1)

    def states(self, group: int) -> np.ndarray:
        if self.pending:
            self._flush()
        return self.buffer[group, : min(self.seen[group], self.size)].copy()

    def restart(self, group: int, seed: int) -> None:
        """Make row `group` an empty sample of a new individual's stream, sampled by `seed`
        (a lane that took the next genome)."""
        if self.pending:
            self._flush()
        self.seen[group] = 0
        self.seeds[group] = seed


@dataclass
class GroupOutcome:
    """What a group's rollout measured per episode (`[G * E]`, genome-major) and the
    experiences each genome kept; both rollout paths end here."""

    returns: np.ndarray
    steps: np.ndarray
    solved: np.ndarray
    broken: np.ndarray
    experiences: list[Any]

    def results(self, tasks: list[EvalTask]) -> list[EvalResult]:
        """One result per task (the group's genomes in order)."""
        episodes = len(tasks[0].seeds)
        return [
            genome_result(task, *(a[g * episodes:(g + 1) * episodes] for a in (
                self.returns, self.steps, self.solved, self.broken)), self.experiences[g])
            for g, task in enumerate(tasks)
        ]


def genome_result(task: EvalTask, returns: np.ndarray, steps: np.ndarray, solved: np.ndarray,
                  broken: np.ndarray, experiences: Any) -> EvalResult:
    """A genome's result from its episodes' measurements: fitness is the mean return, -inf
    for an individual with a non-finite output."""
    is_broken = bool(broken.any())
    return EvalResult(
        index=task.index,
        fitness=-np.inf if is_broken else float(returns.mean()),
        returns=returns.tolist(),
        steps=int(steps.sum()),
        solved=bool(solved.any()),
        broken=is_broken,
        experiences=experiences,
    )


Claim = Callable[[int], Sequence[int]]
"""Hands out up to `n` more positions in a call's task list, fewer or none once they run out:
how a worker learns which genomes are its own (`evaluate_claimed`)."""


class LocalClaims:
    """The claims of one worker that evaluates every task of a call itself."""

    def __init__(self, count: int) -> None:
        self.count, self.next = count, 0

    def __call__(self, n: int) -> range:
        start, self.next = self.next, min(self.count, self.next + n)
        return range(start, self.next)


class RolloutWorker:
    """Evaluates genomes; holds the env pool and a policy skeleton between calls.

    MLP policies in CartPole-v1 and the hard maze take the fused C++ rollout
    (`smevo.evaluation.native`) unless a device is set; everything else steps in lockstep
    here, an `mlp` or `cnn` through a C++ forward on the CPU.
    """

    def __init__(self, spec: EvalSpec) -> None:
        self.spec = spec
        probe = make_env(spec.env_id, spec.env_kwargs, trust_env_code=spec.trust_env_code)
        self.observation_space, self.action_space = probe.observation_space, probe.action_space
        # A float64 skeleton: rollouts compute in float64 (see the module docstring).
        self.device = torch.device(spec.device or "cpu")
        self.policy = make_policy(spec.policy_name, self.observation_space, self.action_space,
                                  **spec.policy_options).double().to(self.device)
        native_code = spec.native and spec.device is None
        fused = native_code and not spec.index_episodes
        self.native = NativeRollout.build(spec.env_id, spec.env_kwargs, probe,
                                          self.policy) if fused else None
        self.compiled_forward = compiled_forward(self.policy) if native_code else None
        probe.close()
        self.decoder = ActionDecoder(self.action_space)
        self.pool = make_env_pool(spec.env_id, spec.env_kwargs, spec.index_episodes,
                                  trust_env_code=spec.trust_env_code)
        self._placeholder_action = np.asarray(self.action_space.sample()) * 0

    def close(self) -> None:
        self.pool.close()

    def evaluate(
        self, params: np.ndarray | torch.Tensor, tasks: list[EvalTask], normalizer: ObsNormalizer
    ) -> list[EvalResult]:
        """Evaluate genomes `params [G, D]` on their tasks, as one lockstep group; one result
        per task, same order."""
        done = self.evaluate_claimed(params, tasks, normalizer, LocalClaims(len(tasks)),
                                     lanes=max(1, len(tasks)))
        return [result for _, result in sorted(done, key=lambda pair: pair[0])]

    def evaluate_claimed(
        self, params: np.ndarray | torch.Tensor, tasks: list[EvalTask],
        normalizer: ObsNormalizer, claim: Claim, lanes: int,
    ) -> list[tuple[int, EvalResult]]:
        """Evaluate the tasks that `claim` hands out (task i evaluates genome `params[i]`),
        at most `lanes` genomes at a time, until the claims run out; `(position, result)`
        for each task evaluated here. Every genome's result is what it would be alone."""
        episodes = len(tasks[0].seeds) if tasks else 0
        if any(len(task.seeds) != episodes for task in tasks):
            raise ValueError("every task of one group needs the same number of episodes")
        params = np.asarray(params)
        done: list[tuple[int, EvalResult]] = []
        while claimed := list(claim(lanes)):
            if self.native is not None:
                group = [tasks[p] for p in claimed]
                done += zip(claimed, self._native(params[claimed], group, normalizer),
                            strict=True)
            else:
                refill = claim if self.pool.resets_sub_envs else None
                done += self._lockstep(params, tasks, claimed, refill, normalizer)
        return done

    def _native(
        self, params: np.ndarray, tasks: list[EvalTask], normalizer: ObsNormalizer
    ) -> list[EvalResult]:
        """The whole group in one C++ call (`smevo.evaluation.native`)."""
        episodes = len(tasks[0].seeds)
        seeds = [seed for task in tasks for seed in task.seeds]
        sample_seeds = np.array([task.sample_seed for task in tasks], dtype=np.uint64)
        raw = self.native(params, seeds, episodes, self.spec.max_steps, normalizer,
                          self.spec.archive_size, sample_seeds)
        kept = np.minimum(raw["seen"], self.spec.archive_size)
        archive = raw["archive"]
        return GroupOutcome(raw["returns"], raw["steps"], raw["solved"], raw["broken"],
                            [archive[g, :k].copy() for g, k in enumerate(kept)]).results(tasks)

    def _lockstep(
        self, params: np.ndarray, tasks: list[EvalTask], claimed: list[int],
        refill: Claim | None, normalizer: ObsNormalizer,
    ) -> list[tuple[int, EvalResult]]:
        """The `claimed` genomes in lanes stepped one step at a time: one batched forward of
        the genomes still running, one pool step. A lane whose episodes have all ended hands
        in its genome's result and, with `refill`, takes the next claimed genome."""
        lanes = _Lanes(self, params, tasks, claimed)
        acting = self._acting(lanes.genomes(claimed), lanes.episodes)
        with torch.no_grad():
            while lanes.running():
                outputs = acting(lanes.record(), lanes.active(), normalizer)
                broken = None
                if not np.isfinite(outputs).all():
                    broken = lanes.active() & ~np.isfinite(outputs).all(axis=1)
                    outputs = np.nan_to_num(outputs, nan=0.0, posinf=0.0, neginf=0.0)
                actions = self.decoder.decode(outputs)
                if broken is not None and broken.any():
                    actions[broken] = self._placeholder_action
                lanes.step(actions, broken)
                freed = lanes.finish()
                if len(freed):
                    taken = list(refill(len(freed))) if refill is not None else []
                    if taken:
                        lanes.admit(freed[:len(taken)], taken)
                        acting.admit(freed[:len(taken)], lanes.genomes(taken))
        return lanes.results

    def _acting(self, genomes: np.ndarray, episodes: int) -> _RunningGenomes | _CompiledGenomes:
        """The forward of a lockstep group's genomes: the C++ one for an `mlp` or a `cnn` on
        the CPU (unless the spec turns native code off), torch's otherwise."""
        if self.compiled_forward is not None:
            return _CompiledGenomes(self.compiled_forward, genomes, episodes)
        return _RunningGenomes(self.policy, genomes, episodes, self.device)


_NO_LANES = np.zeros(0, dtype=np.int64)


class _Lanes:
    """The sub-envs and measurements of a lockstep group, in lanes of one genome each (its
    episodes side by side): what each genome has returned, stepped, solved and kept so far,
    and the results of the genomes that have finished."""

    def __init__(self, worker: RolloutWorker, params: np.ndarray, tasks: list[EvalTask],
                 claimed: list[int]) -> None:
        self.worker, self.params, self.tasks = worker, params, tasks
        self.spec, self.pool = worker.spec, worker.pool
        self.episodes = len(tasks[0].seeds)
        self.occupant = np.array(claimed, dtype=np.int64)
        lanes, episodes = len(claimed), self.episodes
        n = lanes * episodes
        self.obs = self.pool.reset(self._seeds(claimed), self._options(lanes))
        self.obs_shape, self.dtype = self.obs.shape[1:], archive_dtype(self.obs.dtype)
        self.done = np.zeros(n, dtype=bool)
        self.broken = np.zeros(n, dtype=bool)
        self.solved = np.zeros(n, dtype=bool)
        self.returns = np.zeros(n)
        self.steps = np.zeros(n, dtype=np.int64)
        self.recurrent = worker.policy.is_recurrent
        self.reservoir = None if self.recurrent else StateReservoir(
            lanes, self.spec.archive_size, episodes, self.obs_shape,
            np.array([tasks[p].sample_seed for p in claimed], dtype=np.uint64), self.dtype)
        # Recurrent policies keep sequences: each lane's observations `[E, *obs]` at every
        # step since its genome came in, and how many steps of each episode are kept (an
        # episode's rows are the first of its lane's: all of a lane's episodes start together).
        self.rows: list[list[np.ndarray]] = [[] for _ in range(lanes)]
        self.kept = np.zeros(n, dtype=np.int64)
        self.ended = False
        """Whether an episode ended since the last `finish`."""
        self.results: list[tuple[int, EvalResult]] = []

    def _seeds(self, claimed: Sequence[int]) -> list[int]:
        return [seed for p in claimed for seed in self.tasks[p].seeds]

    def _options(self, lanes: int) -> list[dict | None]:
        return [{"index": e} if self.spec.index_episodes else None
                for _ in range(lanes) for e in range(self.episodes)]

    def genomes(self, claimed: Sequence[int]) -> np.ndarray:
        """The parameters of the `claimed` genomes, as the driver sent them (read only: a
        view where they are consecutive, as a whole group's are, rather than a copy of a
        population of pixel nets)."""
        first, count = claimed[0], len(claimed)
        if list(claimed) == list(range(first, first + count)):
            return self.params[first:first + count]
        return self.params[list(claimed)]

    def running(self) -> bool:
        return bool((self.occupant >= 0).any())

    def active(self) -> np.ndarray:
        return ~self.done

    def record(self) -> np.ndarray:
        """The current observations `[lanes, E, *obs]`, kept as experiences where active."""
        active = ~self.done
        raw = np.asarray(self.obs, dtype=self.dtype)
        by_lane = raw.reshape(-1, self.episodes, *self.obs_shape)
        if self.recurrent:
            for lane in np.flatnonzero(active.reshape(-1, self.episodes).any(axis=1)):
                self.rows[lane].append(by_lane[lane])
            self.kept += active
        else:
            self.reservoir.add(by_lane, active.reshape(-1, self.episodes))
        return by_lane

    def step(self, actions: np.ndarray, broken: np.ndarray | None) -> None:
        """End the `broken` sub-envs' episodes (None: none broke), step the others' envs."""
        if broken is not None:
            self.broken |= broken
            self.done |= broken
            self.ended |= bool(broken.any())
        active = ~self.done
        if not active.any():
            return
        self.obs, rewards, terminated, truncated, solved = self.pool.step(actions, active)
        np.add(self.returns, rewards, out=self.returns, where=active)
        np.add(self.steps, 1, out=self.steps, where=active)
        self.solved |= solved & active
        ended = terminated | truncated
        if self.spec.max_steps is not None:
            ended |= self.steps >= self.spec.max_steps
        ended &= active
        if ended.any():
            self.done |= ended
            self.ended = True

    def finish(self) -> np.ndarray:
        """Hand in the result of every genome whose episodes have all ended; its lane is
        freed (the lanes returned). Only a step that ended an episode can free one."""
        if not self.ended:
            return _NO_LANES
        self.ended = False
        over = self.done.reshape(-1, self.episodes).all(axis=1) & (self.occupant >= 0)
        freed = np.flatnonzero(over)
        for lane in freed:
            episode = slice(lane * self.episodes, (lane + 1) * self.episodes)
            position = int(self.occupant[lane])
            self.results.append((position, genome_result(
                self.tasks[position], self.returns[episode], self.steps[episode],
                self.solved[episode], self.broken[episode], self._experiences(lane))))
            self.occupant[lane] = -1
        return freed

    def _experiences(self, lane: int) -> Any:
        if not self.recurrent:
            return self.reservoir.states(lane)
        if not self.rows[lane]:
            return []
        steps = np.stack(self.rows[lane])  # [T, E, *obs]
        self.rows[lane] = []
        kept = self.kept[lane * self.episodes:(lane + 1) * self.episodes]
        return [steps[:length, episode].copy()
                for episode, length in enumerate(kept[: self.spec.archive_size].tolist())
                if length]

    def admit(self, lanes: np.ndarray, claimed: list[int]) -> None:
        """Start the `claimed` genomes' episodes in the freed `lanes`."""
        episodes = self.episodes
        subs = (lanes[:, None] * episodes + np.arange(episodes)).ravel()
        self.obs[subs] = self.pool.reset_sub_envs(subs, self._seeds(claimed),
                                                  self._options(len(claimed)))
        for array in (self.done, self.broken, self.solved):
            array[subs] = False
        self.returns[subs] = 0.0
        self.steps[subs] = 0
        for lane, position in zip(lanes, claimed, strict=True):
            self.occupant[lane] = position
            if self.recurrent:
                self.rows[lane] = []
                self.kept[lane * episodes:(lane + 1) * episodes] = 0
            else:
                self.reservoir.restart(lane, self.tasks[position].sample_seed)


class _RunningGenomes:
    """The genomes of a lockstep group that still have an episode running, with their batched
    forward and recurrent state. A genome whose episodes have all ended leaves: the forward
    is rebuilt for the others, so that the group's last long episodes do not pay for the
    whole population's forward at every step; a freed lane may instead take a new genome
    (`admit`). Each genome's outputs do not depend on which others share its forward
    (float64, rounded to float32: see the module docstring). The forward runs on `device`
    (the policy's); observations go there and outputs come back."""

    def __init__(self, policy: Policy, genomes: np.ndarray, episodes: int,
                 device: torch.device) -> None:
        self.policy, self.episodes, self.device = policy, episodes, device
        population = self.population = self._float64(genomes)
        self.running = np.arange(population.shape[0])
        self.active_count = population.shape[0] * episodes
        self.state = functional.population_initial_state(policy, len(self.running), episodes)
        self.forward = functional.population_forward(policy, population)

    def __call__(
        self, obs: np.ndarray, active: np.ndarray, normalizer: ObsNormalizer
    ) -> np.ndarray:
        """Raw outputs `[G * E, K]` (float32) for raw observations `obs [G, E, *obs]`; rows of
        genomes no longer running (none of them `active`) are zeros."""
        groups = obs.shape[0]
        active_count = int(np.count_nonzero(active))
        if active_count != self.active_count:  # an episode ended: maybe a genome's last
            self.active_count = active_count
            self._keep(np.flatnonzero(active.reshape(groups, self.episodes).any(axis=1)))
        every = len(self.running) == groups
        inputs = torch.as_tensor(normalizer(obs if every else obs[self.running]),
                                 dtype=torch.float64).to(self.device)
        outputs, self.state = self.forward(inputs, self.state)
        outputs = outputs.to(torch.float32).cpu().numpy()
        if not every:
            full = np.zeros((groups, *outputs.shape[1:]), dtype=np.float32)
            full[self.running] = outputs
            outputs = full
        return outputs.reshape(groups * self.episodes, -1)

    def _keep(self, running: np.ndarray) -> None:
        """Narrow the group to the genomes `running` (a subset of the current ones)."""
        if len(running) == len(self.running):
            return
        rows = torch.as_tensor(np.searchsorted(self.running, running), device=self.device)
        self.running = running
        self.population = self.population[rows]
        self.state = functional.map_state(lambda t: t[rows], self.state)
        self.forward = functional.population_forward(self.policy, self.population)

    def _float64(self, genomes: np.ndarray) -> torch.Tensor:
        """A copy (rows are overwritten by `admit`; `genomes` may be the driver's own)."""
        return torch.tensor(genomes, dtype=torch.float64).to(self.device)

    def admit(self, lanes: np.ndarray, genomes: np.ndarray) -> None:
        """Put new genomes into freed `lanes` (still among the running ones): their rows of
        the population, from the initial state."""
        rows = torch.as_tensor(np.searchsorted(self.running, lanes), device=self.device)
        self.population[rows] = self._float64(genomes)
        fresh = functional.population_initial_state(self.policy, len(lanes), self.episodes)
        _assign_rows(self.state, rows, fresh)
        self.forward = functional.population_forward(self.policy, self.population)


class _CompiledGenomes:
    """A lockstep group's genomes acting through a C++ forward (`native.compiled_forward`:
    an `mlp`'s, the fused rollouts' own, or a `cnn`'s), one call per step: the float64 forward
    rounded to float32 that `_RunningGenomes` computes with torch, without torch's per-call
    cost, which a step of a few small genomes (or of 64 small convolutional nets) paid several
    times over the products themselves. Each row's outputs depend on its genome and
    observation alone, as there; its float64 sums are taken in another order, so that the two
    paths' float32 outputs agree except where a float64 result lies within rounding of a
    float32 boundary (`tests/test_native_rollout.py` compares them). Its summation order is
    fixed and compiled without fused multiply-add, where torch's float64 kernels are chosen
    per CPU. The genomes are laid out once (`prepare`) for the steps; rows of ended episodes
    are skipped (zeros) rather than the group narrowed."""

    def __init__(self, forward: Any, genomes: np.ndarray, episodes: int) -> None:
        self.forward, self.episodes = forward, episodes
        self.population = forward.prepare(genomes)

    def __call__(
        self, obs: np.ndarray, active: np.ndarray, normalizer: ObsNormalizer
    ) -> np.ndarray:
        """Raw outputs `[G * E, K]` (float32) for raw observations `obs [G, E, *obs]`."""
        inputs = np.asarray(normalizer(obs), dtype=np.float64).reshape(len(active), -1)
        return self.forward(self.population, self.episodes, inputs, active)

    def admit(self, lanes: np.ndarray, genomes: np.ndarray) -> None:
        """Put new genomes into freed `lanes`."""
        self.population[lanes] = self.forward.prepare(genomes)


def _assign_rows(state: State, rows: torch.Tensor, values: State) -> None:
    """Overwrite rows `rows` of every tensor of a policy state with those of `values`."""
    if isinstance(state, torch.Tensor):
        state[rows] = values.to(state.device)
    elif state is not None:
        for part, value in zip(state, values, strict=True):
            _assign_rows(part, rows, value)
