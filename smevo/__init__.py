"""smevo: neuroevolution for Gymnasium with the safe mutation operators of Lehman et al.

`train(config)` runs a search and returns a `TrainResult`; `resume(run_dir)` continues one.
"""

from smevo.config import Config, load_config
from smevo.trainer import TrainResult, resume, train

__all__ = ["Config", "TrainResult", "load_config", "resume", "train"]
__version__ = "0.1.0"
