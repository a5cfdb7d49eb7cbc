"""smevo: neuroevolution for Gymnasium with the safe mutation operators of Lehman et al.

`train(config)` runs a search and returns a `TrainResult`; `resume(run_dir)` continues one.
`Trainer(config).step()` runs it one generation at a time; `AskTell(config)` breeds genomes
for users who evaluate them elsewhere (``ask()``, then ``tell(fitness, experiences)``).

The trainer (and with it torch and Gymnasium) is imported on first use of one of these names,
not by ``import smevo``: the command line answers ``smevo --help`` and builds configs without
paying for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smevo.config import Config, load_config

if TYPE_CHECKING:
    from smevo.ask_tell import AskTell
    from smevo.trainer import Trainer, TrainResult, resume, train

__all__ = ["AskTell", "Config", "TrainResult", "Trainer", "load_config", "resume", "train"]
__version__ = "0.1.0"

_FROM_TRAINER = frozenset({"TrainResult", "Trainer", "resume", "train"})


def __getattr__(name: str) -> Any:
    """The trainer's names, imported from `smevo.trainer` (`AskTell` from `smevo.ask_tell`)
    when first asked for."""
    if name in _FROM_TRAINER:
        from smevo import trainer

        return getattr(trainer, name)
    if name == "AskTell":
        from smevo.ask_tell import AskTell

        return AskTell
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
