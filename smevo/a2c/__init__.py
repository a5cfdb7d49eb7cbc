"""Episodic A2C meta-training (Backpropamine) of recurrent, plastic and neuromodulated policies.

`smevo a2c --config FILE` (and `smevo resume RUN`) on the command line; `a2c(config)` and
`resume_a2c(run_dir)` here.
"""

from smevo.a2c.loss import A2CLoss, a2c_loss, discounted_returns
from smevo.a2c.run import A2CResult, Episodes, Learner, a2c, is_a2c_run, play, resume_a2c
from smevo.a2c.settings import A2CConfig, load_a2c_config

__all__ = [
    "A2CConfig",
    "A2CLoss",
    "A2CResult",
    "Episodes",
    "Learner",
    "a2c",
    "a2c_loss",
    "discounted_returns",
    "is_a2c_run",
    "load_a2c_config",
    "play",
    "resume_a2c",
]
