"""smevo: neuroevolution for Gymnasium with the safe mutation operators of Lehman et al.

`train(config)` runs a search and returns a `TrainResult`; `resume(run_dir)` continues one.

The trainer (and with it torch and Gymnasium) is imported on first use of `train`, `resume` or
`TrainResult`, not by ``import smevo``: the command line answers ``smevo --help`` and builds
configs without paying for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smevo.config import Config, load_config

if TYPE_CHECKING:
    from smevo.trainer import TrainResult, resume, train

__all__ = ["Config", "TrainResult", "load_config", "resume", "train"]
__version__ = "0.1.0"

_FROM_TRAINER = frozenset({"TrainResult", "resume", "train"})


def __getattr__(name: str) -> Any:
    """`train`, `resume` and `TrainResult`, imported from `smevo.trainer` when first asked for."""
    if name in _FROM_TRAINER:
        from smevo import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
