"""Opening a file runs no code it names: `eval`, `watch` and `resume` make the env a best.pt,
a checkpoint or a run's config.yaml names only if it is registered (or its module is smevo's or
already imported), unless the user passes --trust-env-code; `train --config` trusts the
config the user wrote."""

import sys

import gymnasium as gym
import pytest
import yaml
from env_trust_helpers import REGISTERED_ID
from test_cli import assert_user_error, run

from smevo.agent import load_agent, save_agent
from smevo.checkpoint import atomic_torch_save, list_checkpoints, load_torch_file
from smevo.config import Config, apply_overrides, config_to_dict
from smevo.envs import UntrustedEnvError, make_env
from smevo.functional import get_flat
from smevo.policies import make_policy
from smevo.trainer import Trainer, resume

FACTORY = "env_trust_helpers:make_cartpole"
FLAG = "--trust-env-code"
TINY_RUN = (
    "policy.name=mlp", "policy.options={hidden: 4, depth: 1}", "mutation.name=control",
    "algorithm.population=4", "algorithm.options.parents=2", "algorithm.elite_episodes=1",
    "budget.generations=1",
    "budget.stop_when_solved=false", "evaluation.backend=serial", "env.max_steps=20",
    "logging.quiet=true", "logging.checkpoint_every=1",
)


def tiny_config(tmp_path, env_id, *overrides):
    """A one-generation CartPole-sized run of `env_id`, logging under `tmp_path`."""
    return apply_overrides(Config(), [*TINY_RUN, f"env.id={env_id}",
                                      f"logging.logdir={tmp_path / 'runs'}", *overrides])


def save_agent_on(path, env_id, env_kwargs):
    """A random CartPole-sized mlp saved as an agent whose env is `env_id(**env_kwargs)`:
    what someone could send you."""
    env = gym.make("CartPole-v1")
    policy = make_policy("mlp", env.observation_space, env.action_space, hidden=4, depth=1)
    env.close()
    save_agent(path, env_id=env_id, env_kwargs=env_kwargs, policy_name="mlp",
               policy_options={"hidden": 4, "depth": 1}, params=get_flat(policy),
               obs_norm=None, fitness=1.0, generation=1, config=config_to_dict(Config()))
    return path


def importing_leaves(tmp_path, monkeypatch, marker):
    """The name of a module, importable from `tmp_path`, whose import creates `marker`."""
    name = f"sent_module_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def assert_refused(capsys, argv, env_id):
    """`smevo argv` is one error line naming the refused id and the flag that allows it."""
    return assert_user_error(capsys, argv, repr(env_id), FLAG)


# --------------------------------------------------------------------------- make_env


def test_untrusted_make_env_calls_no_factory_and_imports_no_module(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    with pytest.raises(UntrustedEnvError, match=f"'os:system'.*{FLAG}"):
        make_env("os:system", {"command": f"touch {marker}"})
    module = importing_leaves(tmp_path, monkeypatch, marker)
    with pytest.raises(UntrustedEnvError, match=f"imports module '{module}'"):
        make_env(f"{module}:CartPole-v1")
    assert not marker.exists() and module not in sys.modules


@pytest.mark.parametrize("env_id", [
    "CartPole-v1",                   # registered
    "smevo/Easy-v0",                 # registered by smevo_envs, smevo's own package
    "smevo_envs:smevo/Easy-v0",      # Gymnasium's module:EnvId form, module smevo's own
    "gymnasium:CartPole-v1",         # module already imported: importing it runs nothing
])
def test_untrusted_make_env_makes_registered_ids(env_id):
    make_env(env_id).close()


def test_trusted_make_env_calls_the_factory_and_imports_the_module(tmp_path, monkeypatch):
    make_env(FACTORY, {"render_mode": "rgb_array"}, trust_env_code=True).close()
    marker = tmp_path / "imported"
    module = importing_leaves(tmp_path, monkeypatch, marker)
    make_env(f"{module}:CartPole-v1", trust_env_code=True).close()
    assert marker.exists()


def test_compatibility_ids_that_load_an_env_named_in_their_kwargs_need_trust():
    with pytest.raises(UntrustedEnvError, match="'GymV26Environment-v0'"):
        make_env("GymV26Environment-v0", {"env_id": "os:CartPole-v1"})


# --------------------------------------------------------------------------- eval / watch


def test_eval_of_a_crafted_agent_runs_nothing(capsys, tmp_path):
    marker = tmp_path / "ran"
    agent = save_agent_on(tmp_path / "best.pt", "os:system", {"command": f"touch {marker}"})
    assert_refused(capsys, ["eval", agent], "os:system")
    assert not marker.exists()


def test_watch_of_a_crafted_agent_runs_nothing(capsys, tmp_path):
    marker, gif = tmp_path / "ran", tmp_path / "agent.gif"
    agent = save_agent_on(tmp_path / "best.pt", "os:system", {"command": f"touch {marker}"})
    assert_refused(capsys, ["watch", agent, "--record", gif], "os:system")
    log = tmp_path / "written.log"
    save_agent_on(agent, "logging:basicConfig", {"filename": str(log), "force": True})
    assert_refused(capsys, ["watch", agent], "logging:basicConfig")
    assert not marker.exists() and not gif.exists() and not log.exists()


def test_eval_imports_no_module_a_crafted_agent_names(capsys, tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    module = importing_leaves(tmp_path, monkeypatch, marker)
    agent = save_agent_on(tmp_path / "best.pt", f"{module}:CartPole-v1", {})
    assert_refused(capsys, ["eval", agent], f"{module}:CartPole-v1")
    assert not marker.exists()


def test_trust_env_code_lets_eval_and_watch_make_a_factory_env(capsys, tmp_path):
    agent = save_agent_on(tmp_path / "best.pt", FACTORY, {})
    assert_refused(capsys, ["eval", agent], FACTORY)
    status, out, err = run(capsys, "eval", agent, "--episodes", 1, FLAG)
    assert status == 0 and "return " in out, err
    gif = tmp_path / "agent.gif"
    status, _, err = run(capsys, "watch", agent, "--record", gif, FLAG)
    assert status == 0 and gif.exists(), err
    load_agent(agent, trust_env_code=True).close()
    with pytest.raises(UntrustedEnvError):
        load_agent(agent)


# --------------------------------------------------------------------------- train / resume


@pytest.fixture
def factory_run(capsys, tmp_path):
    """A one-generation run made by `smevo train --config` with a config naming a factory:
    the user's own config, so it trains without --trust-env-code."""
    path = tmp_path / "user.yaml"
    config = tiny_config(tmp_path, FACTORY, "logging.name=run")
    path.write_text(yaml.safe_dump(config_to_dict(config)))
    status, _, err = run(capsys, "train", "--config", path)
    assert status == 0, err
    return tmp_path / "runs" / "run"


def rename_env(run_dir, env_id, kwargs):
    """Make a run's config.yaml and checkpoints name another env, as someone who sends you a
    run directory can."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["env"] |= {"id": env_id, "kwargs": kwargs}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    for _, path in list_checkpoints(run_dir):
        payload = load_torch_file(path)
        payload["state"]["config"]["env"] |= {"id": env_id, "kwargs": kwargs}
        atomic_torch_save(payload, path)


def test_resume_of_a_crafted_run_runs_nothing(capsys, tmp_path, factory_run):
    marker = tmp_path / "ran"
    rename_env(factory_run, "os:system", {"command": f"touch {marker}"})
    assert_refused(capsys, ["resume", factory_run, "--generations", 2], "os:system")
    with pytest.raises(UntrustedEnvError):
        resume(factory_run, overrides=["budget.generations=2"])
    assert not marker.exists()


def test_resume_makes_a_factory_env_only_with_trust(capsys, factory_run):
    assert_refused(capsys, ["resume", factory_run, "--generations", 2], FACTORY)
    status, out, err = run(capsys, "resume", factory_run, "--generations", 2, FLAG)
    assert status == 0 and "after 2 generations" in out, err


def test_workers_make_the_env_their_driver_allowed(tmp_path):
    """The driver allows `module:EnvId` of a module it has imported; a spawned worker has not
    imported it, and makes the env on the driver's word rather than deciding again."""
    config = tiny_config(tmp_path, f"env_trust_helpers:{REGISTERED_ID}",
                         "evaluation.backend=process", "evaluation.workers=1")
    trainer = Trainer(config)  # trusts no env code by default
    try:
        log = trainer.algorithm.step()  # evaluated in the worker
    finally:
        trainer.context.backend.close()
    assert log.evaluated and all(r.fitness > 0 for r in log.evaluated)
