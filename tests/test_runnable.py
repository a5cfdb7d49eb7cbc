"""One check decides whether a config can run here (`smevo.runnable.check_runnable`): the
command line, a `Trainer` built by hand and `AskTell` refuse a config with the same message,
and before anything is made."""

import dataclasses

import pytest
from test_cli import assert_user_error

from smevo.ask_tell import AskTell
from smevo.commands.common import one_line
from smevo.config import Config, apply_overrides
from smevo.runnable import check_runnable
from smevo.trainer import Trainer

TINY = ["algorithm.population=4", "budget.generations=1", "logging.quiet=true"]


@pytest.mark.parametrize(
    "sets, fragment",
    [
        (["env.id=smevo/RecurrentParity-v0", "env.max_steps=20"], "env.max_steps=20"),
        (["device=meta"], "holds no data"),
        (["algorithm.name=hilclimb"], "unknown algorithm 'hilclimb'"),
        (["mutation.options.florr=0.1"], "unknown option(s) florr"),
        (["policy.options.hidde=3"], "unknown option(s) hidde"),
        (["algorithm.options.tournament=3"],
         "unknown option(s) tournament for algorithm 'truncation'; valid: parents, elites"),
        (["algorithm.options.parents=5"], "algorithm.options.parents (5) must be <= "
                                          "algorithm.population (4)"),
        (["policy.name=cnn"], "cnn"),  # CartPole's observations are no image
        (["env.kwargs.gravity=3"], "gravity"),
    ],
)
def test_cli_trainer_and_ask_tell_refuse_alike(capsys, tmp_path, sets, fragment):
    logdir = tmp_path / "runs"
    config = apply_overrides(Config(), [*TINY, f"logging.logdir={logdir}", *sets])
    with pytest.raises(ValueError) as refused:
        Trainer(config)
    message = one_line(refused.value)
    assert fragment in message
    with pytest.raises(ValueError) as asked:
        AskTell(config)
    assert str(asked.value) == str(refused.value)
    argv = ["train", "--logdir", logdir, *[arg for s in TINY + sets for arg in ("--set", s)]]
    assert assert_user_error(capsys, argv) == f"smevo: error: {message}\n"
    assert not logdir.exists()


def test_a_config_edited_in_code_is_checked_like_a_file():
    """Ranges are part of the check: a config edited past them is refused by `Trainer`
    with the message a file or ``--set`` gets."""
    config = Config()
    bad = dataclasses.replace(config, algorithm=dataclasses.replace(config.algorithm,
                                                                    population=0))
    with pytest.raises(ValueError, match="algorithm.population must be >= 1, got 0"):
        Trainer(bad)
    with pytest.raises(ValueError, match="algorithm.population must be >= 1, got 0"):
        apply_overrides(config, ["algorithm.population=0"])


def test_the_check_hands_back_what_it_built():
    """What the trainer runs with: the operator, the policy for the env's spaces and the
    threshold (the env's own, unless cut episodes make it meaningless)."""
    config = apply_overrides(Config(), ["mutation.name=SM-G-ABS", "policy.options.hidden=5"])
    runnable = check_runnable(config)
    assert runnable.algorithm.name == "truncation"
    assert type(runnable.mutation).__name__ == "SafeMutationAbs"
    assert runnable.policy.spec.options == {"hidden": 5}
    assert runnable.policy.spec.observation_space.shape == (4,)  # CartPole-v1's
    assert runnable.threshold == 475.0  # CartPole-v1's reward_threshold
    assert check_runnable(apply_overrides(config, ["env.max_steps=50"])).threshold is None
