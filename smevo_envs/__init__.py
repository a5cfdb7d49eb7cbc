"""The safe-mutation paper's domains as Gymnasium environments, namespace ``smevo/``.

Importing this package registers the environments (string entry points: nothing heavier
than Gymnasium is imported until `gym.make`); `gym.make("smevo_envs:smevo/<Id>")` imports
it on demand. This package depends on Gymnasium and NumPy only, never on `smevo`.

`_SPECS` below is the one table of the environments: each id with its entry point, its
vector twin's (if any) and its solve threshold. `ENV_IDS`, `__all__` and the lazily imported
env classes are derived from it, so an env is added by its module and one entry there; what a
trainer may do with its vector twin or a native rollout the env class itself declares
(`EnvCapabilities`, in `smevo_envs.capabilities`).
"""

from __future__ import annotations

import importlib
from typing import Any

from gymnasium.envs.registration import register, registry

from smevo_envs.capabilities import EnvCapabilities

_SPECS: tuple[dict[str, Any], ...] = (
    {
        "id": "smevo/RecurrentParity-v0",
        "entry_point": "smevo_envs.parity:RecurrentParityEnv",
        "vector_entry_point": "smevo_envs.parity:RecurrentParityVectorEnv",
        "reward_threshold": -0.04,
    },
    {
        "id": "smevo/Easy-v0",
        "entry_point": "smevo_envs.illustrative:IllustrativeEnv",
        "kwargs": {"task": "easy"},
        "reward_threshold": -0.01,
    },
    {
        "id": "smevo/Medium-v0",
        "entry_point": "smevo_envs.illustrative:IllustrativeEnv",
        "kwargs": {"task": "medium"},
        "reward_threshold": -0.01,
    },
    {
        "id": "smevo/GradientWashout-v0",
        "entry_point": "smevo_envs.illustrative:IllustrativeEnv",
        "kwargs": {"task": "washout"},
        "reward_threshold": -0.01,
    },
    {
        "id": "smevo/BreadcrumbHardMaze-v0",
        "entry_point": "smevo_envs.maze:BreadcrumbHardMazeEnv",
        "vector_entry_point": "smevo_envs.maze:BreadcrumbHardMazeVectorEnv",
        "reward_threshold": -9.0,
    },
    {
        "id": "smevo/PatternCompletion-v0",
        "entry_point": "smevo_envs.pattern_completion:PatternCompletionEnv",
        "reward_threshold": -0.04,
    },
    {
        "id": "smevo/GridMaze-v0",
        "entry_point": "smevo_envs.grid_maze:GridMazeEnv",
        "vector_entry_point": "smevo_envs.grid_maze:GridMazeVectorEnv",
        "reward_threshold": 250.0,
    },
    {
        "id": "smevo/CueReward-v0",
        "entry_point": "smevo_envs.cue_reward:CueRewardEnv",
        "vector_entry_point": "smevo_envs.cue_reward:CueRewardVectorEnv",
        "reward_threshold": 10.0,
    },
)

ENV_IDS: tuple[str, ...] = tuple(spec["id"] for spec in _SPECS)

for _spec in _SPECS:
    if _spec["id"] not in registry:  # importing twice (e.g. importlib.reload) is harmless
        register(**_spec)


def _classes() -> dict[str, str]:
    """Each env class named by an entry point of `_SPECS` -> the module defining it."""
    entry_points = [spec.get(key) for spec in _SPECS
                    for key in ("entry_point", "vector_entry_point")]
    return {entry.partition(":")[2]: entry.partition(":")[0]
            for entry in entry_points if entry is not None}


# The env classes, imported on first access so that `import smevo_envs` stays light.
_CLASSES = _classes()
__all__ = ["ENV_IDS", "EnvCapabilities", *_CLASSES]


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(f"module 'smevo_envs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_CLASSES])
