"""The schema of a run's config: one typed tree of sections, each field with its default,
its help text (``metadata["help"]``, which ``smevo list config`` and ``--help`` show) and the
value ranges that need no other module (`check_ranges`). How dicts, YAML files and ``--set``
strings fill the tree is `smevo.config`'s business.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from smevo.evaluation.registry import BACKENDS


class ConfigError(ValueError):
    """A config that cannot be built; the message is one line, fit to print as is."""


def _help(text: str) -> dict[str, str]:
    """Field metadata carrying the help text that ``--help`` and ``smevo list`` show."""
    return {"help": text}


def _show(value: Any) -> str:
    """A value as an error message quotes it: repr, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."




@dataclass
class EnvConfig:
    """The environment every individual is evaluated on."""

    id: str = field(
        default="CartPole-v1",
        metadata=_help(
            "Gymnasium id (e.g. CartPole-v1, smevo/BreadcrumbHardMaze-v0) or 'module:factory'"
        ),
    )
    kwargs: dict[str, Any] = field(
        default_factory=dict, metadata=_help("keyword arguments passed to gymnasium.make")
    )
    episodes: int = field(
        default=1, metadata=_help("episodes per fitness evaluation (fitness = mean return)")
    )
    max_steps: int | None = field(
        default=None,
        metadata=_help("cut every episode after this many steps (null: the env's own limit)"),
    )
    normalize_obs: bool = field(
        default=False,
        metadata=_help(
            "standardise observations with running mean/std statistics (saved in best.pt)"
        ),
    )
    index_episodes: bool = field(
        default=False,
        metadata=_help(
            "episode e resets with options={'index': e} (enumerable tasks such as parity)"
        ),
    )


@dataclass
class PolicyConfig:
    """The network; `options` go to ``make_policy(name, obs_space, act_space, **options)``."""

    name: str = field(default="mlp", metadata=_help("policy architecture (see `smevo list`)"))
    options: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help("architecture options, e.g. {hidden: 32}; `smevo list policies` shows "
                       "each policy's, with their defaults"),
    )


@dataclass
class MutationConfig:
    """The mutation operator (DESIGN.md, 'Mutation operator')."""

    name: str = field(
        default="SM-G-SUM",
        metadata=_help("operator, as `smevo list mutations` names them (e.g. control, SM-G-ABS)"),
    )
    magnitude: float = field(
        default=0.1,
        metadata=_help("step size; what it means is the operator's (`smevo list mutations`)"),
    )
    options: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help("operator options, e.g. {weight_clip: 0.2}; `smevo list mutations` names "
                       "each operator's"),
    )
    archive_size: int = field(
        default=100,
        metadata=_help("experiences (states or sequences) kept per parent for safe mutation"),
    )


@dataclass
class AlgorithmConfig:
    """The search: truncation GA, steady-state tournament GA or (1+1) hill climber. The keys
    here are every algorithm's; `options` are the chosen algorithm's own (the keyword-only
    parameters of its class, checked with it: `smevo.algorithms.algorithm_options`)."""

    name: str = field(
        default="truncation", metadata=_help("an algorithm named by `smevo list algorithms`")
    )
    population: int = field(default=100, metadata=_help("individuals per generation"))
    elite_episodes: int = field(
        default=5,
        metadata=_help("extra episodes to re-evaluate the best elite on (0: no re-evaluation)"),
    )
    options: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help("the algorithm's own options, e.g. {parents: 10, elites: 2}; "
                       "`smevo list algorithms` shows each algorithm's, with their defaults"),
    )


@dataclass
class BudgetConfig:
    """When to stop: the first budget reached ends the run (null: no limit)."""

    generations: int | None = field(default=50, metadata=_help("stop after this many generations"))
    evaluations: int | None = field(
        default=None, metadata=_help("stop after this many fitness evaluations")
    )
    env_steps: int | None = field(
        default=None, metadata=_help("stop after this many environment steps")
    )
    wall_time: float | None = field(default=None, metadata=_help("stop after this many seconds"))
    solve_threshold: float | None = field(
        default=None,
        metadata=_help(
            "fitness that counts as solved (null: the env's reward_threshold, unless "
            "env.max_steps cuts its episodes)"
        ),
    )
    stop_when_solved: bool = field(
        default=True, metadata=_help("stop as soon as the validated elite is solved")
    )
    confirm_solved: bool = field(
        default=True,
        metadata=_help(
            "count a validated elite that meets the threshold as solved only if it meets it "
            "again on as many new episodes (the first crossing of a noisy mean is biased "
            "upward); applies where algorithm.elite_episodes > 0"
        ),
    )


@dataclass
class EvaluationConfig:
    """Where rollouts run; every backend gives the same fitnesses for the same seed."""

    backend: str = field(
        default="vectorized", metadata=_help("a backend named by `smevo list backends`")
    )
    workers: int | None = field(
        default=None, metadata=_help("worker processes / actors (null: one per CPU core)")
    )
    ray_address: str | None = field(
        default=None, metadata=_help("Ray cluster to join, e.g. 'auto' (null: start a local Ray)")
    )
    native: bool = field(
        default=True,
        metadata=_help("C++ for mlp policies: fused rollouts in CartPole-v1 and the hard maze, "
                       "the forward in other envs (same results as torch's Python loop, faster)"),
    )


@dataclass
class LoggingConfig:
    """Where and how the run is recorded (DESIGN.md, 'Runs on disk')."""

    logdir: str = field(default="runs", metadata=_help("directory that holds one folder per run"))
    name: str | None = field(
        default=None, metadata=_help("run folder name (null: <env>-<mutation>-<UTC time>)")
    )
    checkpoint_every: int = field(
        default=10, metadata=_help("save a checkpoint every this many generations")
    )
    keep_checkpoints: int = field(
        default=3, metadata=_help("keep only the newest this many checkpoints")
    )
    quiet: bool = field(
        default=False,
        metadata=_help("no console progress (TensorBoard and metrics.jsonl still written)"),
    )
    histogram_every: int = field(
        default=10,
        metadata=_help("log fitness/sensitivity histograms every this many generations (0: never)"),
    )


@dataclass
class Config:
    """Everything a run needs; `config.yaml` in a run folder is this tree, fully resolved."""

    seed: int = field(
        default=0, metadata=_help("the run seed: every random draw of the run derives from it")
    )
    device: str = field(
        default="cpu", metadata=_help("torch device for policies and mutations, e.g. cpu, cuda")
    )
    env: EnvConfig = field(default_factory=EnvConfig, metadata=_help("environment"))
    policy: PolicyConfig = field(default_factory=PolicyConfig, metadata=_help("policy network"))
    mutation: MutationConfig = field(
        default_factory=MutationConfig, metadata=_help("mutation operator")
    )
    algorithm: AlgorithmConfig = field(
        default_factory=AlgorithmConfig, metadata=_help("search algorithm")
    )
    budget: BudgetConfig = field(default_factory=BudgetConfig, metadata=_help("stopping criteria"))
    evaluation: EvaluationConfig = field(
        default_factory=EvaluationConfig, metadata=_help("evaluation backend")
    )
    logging: LoggingConfig = field(
        default_factory=LoggingConfig, metadata=_help("run directory, checkpoints, console")
    )




def check_ranges(config: Config) -> None:
    """Value ranges that need no other module; the first violation raises `ConfigError`.
    An algorithm's own options are its class's to check (`Algorithm.resolve_options`)."""
    checks: list[tuple[bool, str]] = []

    def at_least(key: str, value: float | None, low: float) -> None:
        if value is not None:
            checks.append((value >= low, f"{key} must be >= {low}, got {_show(value)}"))

    at_least("seed", config.seed, 0)
    env, alg, mut, budget = config.env, config.algorithm, config.mutation, config.budget
    at_least("env.episodes", env.episodes, 1)
    at_least("env.max_steps", env.max_steps, 1)
    at_least("algorithm.population", alg.population, 1)
    at_least("algorithm.elite_episodes", alg.elite_episodes, 0)
    checks.append(
        (
            math.isfinite(mut.magnitude) and mut.magnitude > 0,
            f"mutation.magnitude must be a finite number > 0, got {_show(mut.magnitude)}",
        )
    )
    at_least("mutation.archive_size", mut.archive_size, 1)
    at_least("budget.generations", budget.generations, 1)
    at_least("budget.evaluations", budget.evaluations, 1)
    at_least("budget.env_steps", budget.env_steps, 1)
    if budget.wall_time is not None:
        checks.append(
            (budget.wall_time > 0, f"budget.wall_time must be > 0, got {_show(budget.wall_time)}")
        )
    if budget.solve_threshold is not None:
        checks.append(
            (
                math.isfinite(budget.solve_threshold),
                f"budget.solve_threshold must be finite, got {_show(budget.solve_threshold)}",
            )
        )
    checks.append(
        (
            config.evaluation.backend in BACKENDS.names(),
            f"evaluation.backend must be one of {', '.join(BACKENDS)}; "
            f"got {_show(config.evaluation.backend)}",
        )
    )
    at_least("evaluation.workers", config.evaluation.workers, 1)
    at_least("logging.checkpoint_every", config.logging.checkpoint_every, 1)
    at_least("logging.keep_checkpoints", config.logging.keep_checkpoints, 1)
    at_least("logging.histogram_every", config.logging.histogram_every, 0)
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if config.logging.name is not None:
        check_run_name(config.logging.name, "logging.name")


def check_minimums(minimums: Iterable[tuple[str, float | None, float]]) -> None:
    """Raise `ConfigError` for the first `(key, value, low)` whose value (when set) is below
    `low`: the range check every config tree (train, fit, a2c) makes of its counts."""
    for key, value, low in minimums:
        if value is not None and value < low:
            raise ConfigError(f"{key} must be >= {low}, got {_show(value)}")


def check_positive(values: Iterable[tuple[str, float | None]]) -> None:
    """Raise `ConfigError` for the first `(key, value)` whose value (when set) is not a finite
    number > 0 (rates, clips, time limits)."""
    for key, value in values:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{key} must be a finite number > 0, got {_show(value)}")


_PATH_SEPARATORS = ("/", "\\")
"""Characters a run name may not hold: the path separators of every OS smevo runs on."""


def check_run_name(name: str, key: str) -> None:
    """Raise `ConfigError` unless `name` is one folder name, so that a run lands inside its
    logdir: no path separator (``../x``, ``/abs``, ``a/b``), not ``""``, ``.`` or ``..`` (the
    logdir itself or its parent), no NUL."""
    if name in ("", ".", "..") or "\0" in name or any(s in name for s in _PATH_SEPARATORS):
        raise ConfigError(
            f"{key} must be one folder name (no '/' or '\\', not '', '.' or '..'), "
            f"got {_show(name)}"
        )
