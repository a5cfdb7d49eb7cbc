"""Plugins by entry point: a distribution installed beside smevo adds operators, policies,
algorithms and backends that `smevo list`, `train` and `eval` use by name, and a broken one
is one line naming it while every other name keeps working.

The plugin the CLI tests install is docs/extending.md itself: its ```toml block declares the
entry points and its ```python blocks are the module, so the guide's examples are run.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import gymnasium as gym
import pytest
import torch
import yaml

from smevo._registry import Registry

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "extending.md"
TINY_RUN = ["--env", "CartPole-v1", "--pop", "8", "--generations", "2", "--quiet"]


def guide_blocks(language: str) -> list[str]:
    """The fenced code blocks of docs/extending.md in `language`, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", GUIDE.read_text(), flags=re.M | re.S)


def install(site: Path, name: str, version: str, modules: dict[str, str],
            entry_points: dict[str, dict[str, str]]) -> None:
    """Install distribution `name` into `site` the way pip lays it out: its modules, and a
    ``.dist-info`` with METADATA and entry_points.txt (what `importlib.metadata` reads)."""
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in names.items()) + "\n"
        for group, names in entry_points.items()))


def guide_module() -> str:
    """The source of docs/extending.md's module `smevo_demo`: its python blocks."""
    return "\n\n".join(guide_blocks("python"))


def install_guide(site: Path) -> None:
    """docs/extending.md's distribution: its module `smevo_demo` and its entry points."""
    (toml,) = guide_blocks("toml")
    project = tomllib.loads(toml)["project"]
    install(site, project["name"], project["version"], {"smevo_demo": guide_module()},
            project["entry-points"])


def install_broken(site: Path) -> None:
    """A distribution with a name that clashes with a built-in one, one that cannot be
    imported, and a policy that is no `nn.Module`."""
    source = "class Net:\n    def __init__(self, *spaces):\n        pass\n"
    install(site, "smevo-broken", "0.3", {"smevo_broken": source}, {"smevo.policies": {
        "mlp": "smevo_broken:Net", "ghost": "smevo_no_such_module:Net",
        "notnet": "smevo_broken:Net"}})


@pytest.fixture
def site(tmp_path):
    """A folder that holds the guide's plugin and the broken one, as a site-packages would."""
    folder = tmp_path / "site"
    folder.mkdir()
    install_guide(folder)
    install_broken(folder)
    return folder


SESSION = """
import contextlib, io, json, sys
from smevo.cli import main

results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    results.append((status, out.getvalue(), err.getvalue()))
sys.stdout.write(json.dumps(results))
"""


def smevo(site: Path, *commands: list[str], cwd: Path) -> list[tuple[int, str, str]]:
    """(exit status, stdout, stderr) of each `smevo` command line, run one after the other in
    a fresh process that sees the plugins installed in `site` (one process: torch is
    imported once)."""
    paths = [str(site), str(ROOT), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    result = subprocess.run([sys.executable, "-c", SESSION, json.dumps(commands)],
                            capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    return [tuple(outcome) for outcome in json.loads(result.stdout)]


def row(listing: str, name: str) -> str:
    """What `smevo list` says of `name` (its first line), or "" when it is not listed."""
    found = re.search(rf"^  {re.escape(name)} +(.*)$", listing, flags=re.M)
    return found.group(1) if found else ""


def assert_one_line_error(outcome: tuple[int, str, str], *fragments: str) -> None:
    status, out, err = outcome
    assert status == 2, out + err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert all(fragment in err for fragment in fragments), err


# --------------------------------------------------------------------------- the registry


@pytest.fixture
def things(tmp_path, monkeypatch):
    """A registry of one built-in `thing`, extended by the group `smevo.test_things`."""
    monkeypatch.syspath_prepend(str(tmp_path))
    install(tmp_path, "things-good", "1.0", {"things_good": "def widget():\n    return 7\n"},
            {"smevo.test_things": {"Widget": "things_good:widget"}})
    install(tmp_path, "things-bad", "2.0", {}, {"smevo.test_things": {
        "builtin": "things_bad:clash", "gone": "things_no_such_module:thing",
        "widget": "things_bad:again"}})
    install(tmp_path, "things-third", "3.0", {"things_third": "def gadget():\n    pass\n"},
            {"smevo.test_things": {"gadget": "things_third:gadget"}})
    importlib.invalidate_caches()
    registry: Registry = Registry("thing", entry_points="smevo.test_things")
    registry.add("builtin", len)
    yield registry
    for module in ("things_good", "things_third"):
        sys.modules.pop(module, None)


def test_a_plugin_joins_the_built_in_names_and_is_imported_only_when_got(things):
    assert things.names() == ["builtin", "gadget", "gone", "widget"]
    assert "things_third" not in sys.modules
    assert things.plugin("GADGET") == "things-third 3.0" and things.plugin("builtin") is None
    assert things.get("gadget")() is None and "things_third" in sys.modules


def test_a_plugin_never_replaces_a_built_in_name(things):
    assert things.get("builtin") is len
    assert things.plugin_problems() == [
        "ignored the thing 'builtin' of the plugin things-bad 2.0 (smevo.test_things): "
        "the name is smevo's own"
    ]


def test_a_plugin_that_cannot_be_imported_is_one_line_naming_its_distribution(things):
    with pytest.raises(ValueError) as error:
        things.get("gone")
    assert str(error.value) == (
        "thing 'gone' of the plugin things-bad 2.0 (things_no_such_module:thing) cannot be "
        "loaded: ModuleNotFoundError: No module named 'things_no_such_module'"
    )
    assert things.get("gadget")() is None  # the others still load


def test_a_name_two_plugins_register_is_an_error_naming_both(things):
    with pytest.raises(ValueError, match=r"^thing 'widget' is registered by several plugins "
                                         r"\(things-bad 2.0, things-good 1.0\); uninstall"):
        things.get("widget")


def test_a_name_in_a_file_imports_only_what_an_entry_point_registered(things, tmp_path):
    """Files are data: a ``module:attribute`` name is just an unknown name."""
    (tmp_path / "things_sneaky.py").write_text("raise SystemExit('imported')\n")
    with pytest.raises(ValueError, match="^unknown thing 'things_sneaky:run'"):
        things.get("things_sneaky:run")
    assert "things_sneaky" not in sys.modules


def test_an_unknown_name_lists_the_plugins_too(things):
    with pytest.raises(ValueError, match="valid: builtin, gadget, gone, widget. Did you mean "
                                         "'gadget'"):
        things.get("gadgets")


# --------------------------------------------------------------------------- the guide


@pytest.fixture
def guide(tmp_path, monkeypatch):
    """docs/extending.md's module, imported from a temporary folder (and forgotten after).
    Its entry points are not installed: this process's registries stay smevo's own."""
    (tmp_path / "smevo_demo.py").write_text(guide_module())
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("smevo_demo")
    sys.modules.pop("smevo_demo", None)
    gym.registry.pop("smevo_demo/Corridor-v0", None)


def test_the_guides_env_follows_gymnasium_and_smevo_makes_it(guide):
    from gymnasium.utils.env_checker import check_env

    from smevo.envs import make_env

    env = make_env("smevo_demo:smevo_demo/Corridor-v0", trust_env_code=True)
    check_env(env.unwrapped)
    observation, _ = env.reset(seed=3)
    assert env.observation_space.contains(observation) and env.spec.max_episode_steps == 50
    with pytest.raises(ValueError, match="invalid action"):
        env.step(2)


def test_the_guides_policy_follows_the_calling_convention(guide):
    env = gym.make("CartPole-v1")
    policy = guide.TinyNet(env.observation_space, env.action_space, hidden=5)
    output, state = policy(torch.zeros(3, 4, dtype=torch.float64), policy.initial_state(3))
    assert output.shape == (3, 2) and state is None and not policy.is_recurrent


def test_the_guides_operator_perturbs_by_half_the_magnitude(guide):
    """Its children are control's at half the magnitude, from the same noise."""
    from smevo.mutations import make_mutation

    env = gym.make("CartPole-v1")
    policy = guide.TinyNet(env.observation_space, env.action_space)
    params = torch.randn(sum(p.numel() for p in policy.parameters()))
    child, _ = guide.HalfNoise(0.2)(params, policy, None, torch.Generator().manual_seed(5))
    control, _ = make_mutation("control", 0.1)(params, policy, None,
                                               torch.Generator().manual_seed(5))
    torch.testing.assert_close(child, control)  # 0.5 * 0.2 is 0.1: equal up to rounding
    assert not torch.allclose(child, params)


# --------------------------------------------------------------------------- the CLI


@pytest.mark.processes
def test_the_cli_lists_trains_and_evaluates_with_plugins(site, tmp_path):
    """SM-G-ABS on the guide's policy, searched by its algorithm (with its own option) on its
    backend; the agent it saves is evaluated by name; the broken plugin is reported and hides
    nothing; the algorithm's option is checked by its class."""
    elitist = [*TINY_RUN, "--algo", "elitist"]
    listing, train, evaluation, ghost, notnet, unknown, out_of_range = smevo(
        site,
        ["list"],
        ["train", *elitist, "--policy", "tiny", "--mutation", "SM-G-ABS", "--backend",
         "chunked", "--set", "policy.options.hidden=4", "--set", "algorithm.options.best=2",
         "--logdir", "runs", "--name", "tiny"],
        ["eval", "runs/tiny", "--episodes", "2"],
        ["train", *TINY_RUN, "--policy", "ghost"],
        ["train", *TINY_RUN, "--policy", "notnet"],
        ["train", *elitist, "--set", "algorithm.options.parents=2"],
        ["train", *elitist, "--set", "algorithm.options.best=8"],
        cwd=tmp_path,
    )
    status, out, err = listing
    assert status == 0 and err == "", err
    for plugin in ("tiny", "elitist", "chunked"):
        assert row(out, plugin).startswith("[plugin smevo-demo 0.1] "), out
    assert row(out, "elitist").endswith("Options: best = 1."), out
    assert row(out, "mlp") and row(out, "SM-G-ABS") and row(out, "truncation")
    assert row(out, "ghost").startswith(
        "unavailable: policy 'ghost' of the plugin smevo-broken 0.3 (smevo_no_such_module:Net) "
        "cannot be loaded: ModuleNotFoundError")
    assert ("  note: ignored the policy 'mlp' of the plugin smevo-broken 0.3 (smevo.policies): "
            "the name is smevo's own\n") in out

    assert train[0] == 0, train[2]
    run = tmp_path / "runs" / "tiny"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["policy"]["name"] == "tiny" and saved["algorithm"]["options"] == {"best": 2}
    assert evaluation[0] == 0, evaluation[2]
    assert "2 episodes of CartPole-v1" in evaluation[1]
    assert_one_line_error(ghost, "policy 'ghost' of the plugin smevo-broken 0.3",
                          "cannot be loaded")
    assert_one_line_error(notnet, "policy 'notnet' of the plugin smevo-broken 0.3 built a Net, "
                          "not a torch.nn.Module")
    assert_one_line_error(unknown, "unknown option(s) parents for algorithm 'elitist'; "
                          "valid: best")
    assert_one_line_error(out_of_range, "algorithm.options.best must be in [1, 8), got 8")


@pytest.mark.processes
def test_the_cli_lists_and_trains_with_a_plugin_operator(site, tmp_path):
    """The guide's operator at magnitude 0.2 makes the same run as control at 0.1."""
    listing, *trains = smevo(
        site,
        ["list", "mutations"],
        ["train", *TINY_RUN, "--mutation", "half-noise", "--mutation-mag", "0.2", "--logdir",
         "runs", "--name", "half-noise"],
        ["train", *TINY_RUN, "--mutation", "control", "--mutation-mag", "0.1", "--logdir",
         "runs", "--name", "control"],
        cwd=tmp_path,
    )
    assert listing[0] == 0, listing[2]
    assert row(listing[1], "half-noise") == (
        "[plugin smevo-demo 0.1] control mutation with half the step, for runs that overshoot. "
        "Magnitude: twice the sigma of the Gaussian. Options: weight_clip = null.")
    assert [status for status, _, _ in trains] == [0, 0], [err for _, _, err in trains]
    runs = tmp_path / "runs"
    recorded = yaml.safe_load((runs / "half-noise" / "config.yaml").read_text())["mutation"]
    assert (recorded["name"], recorded["magnitude"]) == ("half-noise", 0.2)
    measured = {
        name: [{key: value for key, value in json.loads(line).items()
                if key.startswith(("fitness/", "mutation/"))}
               for line in (runs / name / "metrics.jsonl").read_text().splitlines()]
        for name in ("half-noise", "control")
    }
    assert measured["half-noise"] == measured["control"]
    assert measured["control"][-1]["mutation/delta_norm"] > 0
