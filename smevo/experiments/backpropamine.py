"""Backpropamine's grid maze meta-trained by episodic A2C (issue 15): the runs, their records
and their count for `status`.

A run is `smevo a2c --config configs/gridmaze-<net>-a2c.yaml --set seed=<S>` in
`<runs-dir>/gridmaze-<net>-a2c-seed<S>` (the folder `--run` makes; a run started by hand
under that name counts alike). A finished run (its last checkpoint at its episode budget)
leaves a compact record,
`<data-dir>/backpropamine/<net>/seed<S>.json` (`RECORD_FORMAT`): its settings, the reward per
episode as means per block of `BLOCK` episodes, the per-update means of its last `LAST`
episodes (what the rank tests need), the final agent's reward on fresh episodes, its cost and
provenance. BACKPROPAMINE.md is written from the records alone (`backpropamine_report`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smevo.a2c import A2CConfig, a2c, play, resume_a2c
from smevo.agent import load_agent
from smevo.checkpoint import list_checkpoints
from smevo.config import apply_overrides, config_to_dict, load_config
from smevo.evaluation.env_pool import make_env_pool
from smevo.experiments.grid import ROOT
from smevo.experiments.provenance import Provenance, core_seconds
from smevo.experiments.runner import (
    FRESH_EPISODES,
    FRESH_SEED,
    commit_record,
    save_record,
    say,
)
from smevo.experiments.status import aligned
from smevo.plotting import read_metrics

NAME = "backpropamine"
NETS = ("rnn", "plastic", "neuromod")
"""The parameter-matched nets, in the order of the paper's claim (non-plastic first)."""
SEEDS = 3
RUNS_DIR = Path("runs/backpropamine")
BLOCK = 1000
"""Episodes per point of a record's reward curve."""
LAST = 10_000
"""The final window of episodes whose per-update means a record keeps for the rank tests."""
RECORD_FORMAT = ("smevo-backpropamine-record", 1)
PILOT_RATES = {"rnn": 0.006, "plastic": 0.007, "neuromod": 0.010}
"""Core-seconds per episode on one core (pilot runs of the three configs), for costing runs
before any record measures it."""


@dataclass(frozen=True)
class A2CCell:
    """One A2C run of the grid: a net's config at a seed."""

    net: str
    seed: int

    @property
    def name(self) -> str:
        return f"gridmaze-{self.net}-a2c-seed{self.seed}"

    def run_dir(self, runs_dir: Path) -> Path:
        return runs_dir / self.name

    def record_path(self, data_dir: Path) -> Path:
        return data_dir / NAME / self.net / f"seed{self.seed}.json"

    def config(self, runs_dir: Path, sets: Sequence[str] = ()) -> A2CConfig:
        """The run's config: the net's file at this seed and folder, then `sets`."""
        base = load_config(ROOT / "configs" / f"gridmaze-{self.net}-a2c.yaml", A2CConfig)
        return apply_overrides(base, [f"seed={self.seed}", f"logging.logdir={runs_dir}",
                                      f"logging.name={self.name}", "logging.quiet=true",
                                      *sets])


def a2c_cells(seeds: int = SEEDS, nets: Sequence[str] | None = None) -> list[A2CCell]:
    """Every net (of `nets`, default all) at seeds 0 .. seeds-1, seed by seed (so that an
    unfinished grid has whole seeds of every net rather than every seed of one)."""
    return [A2CCell(net, seed) for seed in range(seeds) for net in NETS
            if nets is None or net in nets]


def settings(config: A2CConfig) -> dict[str, Any]:
    """What a record must have been made at to count as its cell's: the config as JSON data
    less ``logging`` (where the run was written, not what it did)."""
    return json.loads(json.dumps({k: v for k, v in config_to_dict(config).items()
                                  if k != "logging"}))


def read(path: Path) -> dict[str, Any] | None:
    """The record at `path`, None where there is none."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_a2c_records(data_dir: Path) -> list[dict[str, Any]]:
    """Every A2C record under `data_dir`, net by net, seed by seed."""
    paths = sorted((data_dir / NAME).glob("*/seed*.json"))
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


def updates_done(run_dir: Path) -> int:
    """The update count of the run's newest checkpoint (0: none)."""
    found = list_checkpoints(run_dir)
    return found[-1][0] if found else 0


def finished(run_dir: Path) -> bool:
    """Whether the run in `run_dir` reached its episode budget (its last checkpoint, written
    after the last update, is at or past it) and left its agent."""
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "best.pt").is_file():
        return False
    config = load_config(run_dir / "config.yaml", A2CConfig)
    budget = config.budget.episodes
    return budget is not None and updates_done(run_dir) * config.a2c.batch >= budget


def finished_at(run_dir: Path, config: A2CConfig) -> bool:
    """Whether `run_dir` holds a finished run of `config` (same settings less logging)."""
    return finished(run_dir) and settings(
        load_config(run_dir / "config.yaml", A2CConfig)) == settings(config)


def fresh_rewards(agent_path: Path, episodes: int = FRESH_EPISODES) -> dict[str, Any]:
    """The agent's reward on `episodes` fresh episodes (seeds FRESH_SEED on, which training
    never draws): *sampled* from its softmax as A2C trained it (the curve's measure; the
    uniforms from a generator seeded FRESH_SEED) and *greedy* (the argmax, as `smevo eval`
    plays it and as evolved nets act). Each: episodes, first seed, mean, std; and the steps
    per episode."""
    agent = load_agent(agent_path)
    try:
        greedy = [r["return"] for r in agent.run_episodes(episodes, FRESH_SEED)]
        net = agent.policy.float()
        env = agent.config["env"]
        pool = make_env_pool(env["id"], env["kwargs"], False)
        try:
            with torch.no_grad():
                played = play(net, pool, list(range(FRESH_SEED, FRESH_SEED + episodes)),
                              np.random.default_rng(FRESH_SEED), values=False)
        finally:
            pool.close()
    finally:
        agent.close()
    sampled = played.returns.double().numpy()

    def summary(values: Any) -> dict[str, Any]:
        return {"episodes": episodes, "first_seed": FRESH_SEED,
                "mean": float(np.mean(values)), "std": float(np.std(values))}

    steps = float(played.mask.sum()) / episodes
    return {"sampled": summary(sampled), "greedy": summary(greedy), "steps_per_episode": steps,
            "parameters": sum(p.numel() for p in net.parameters())}


def reward_curve(metrics: list[dict[str, Any]], batch: int,
                 block: int) -> dict[str, list[float]]:
    """Mean reward per episode over each block of `block` episodes (an update of `batch`
    episodes counts in the block its first episode falls in, so the last update, past a
    round budget, does not make a block of its own), at the block's last episode."""
    episodes = np.array([m["progress/episodes"] for m in metrics])
    rewards = np.array([m["a2c/reward"] for m in metrics])
    blocks = (episodes - batch) // block
    ends, means = [], []
    for b in np.unique(blocks):
        ends.append(int(episodes[blocks == b][-1]))
        means.append(round(float(rewards[blocks == b].mean()), 4))
    return {"episodes": ends, "reward": means}


def make_record(cell: A2CCell, run_dir: Path, provenance: Provenance, command: str, *,
                block: int = BLOCK, last: int = LAST) -> dict[str, Any]:
    """A finished run's record, from its folder (config, metrics, best.pt) alone."""
    config = load_config(run_dir / "config.yaml", A2CConfig)
    updates = updates_done(run_dir)
    metrics = [m for m in read_metrics(run_dir) if m["generation"] <= updates]
    episodes = int(metrics[-1]["progress/episodes"])
    window = [round(m["a2c/reward"], 4) for m in metrics
              if m["progress/episodes"] > episodes - last]
    fresh = fresh_rewards(run_dir / "best.pt")
    parameters, steps = fresh.pop("parameters"), fresh.pop("steps_per_episode")
    format_name, version = RECORD_FORMAT
    return {
        "format": format_name, "version": version, "experiment": NAME,
        "net": cell.net, "seed": cell.seed, "config": settings(config),
        "parameters": parameters, "updates": updates, "episodes": episodes,
        "steps_per_episode": steps, "env_steps": round(episodes * steps),
        "curve": {"block": block, **reward_curve(metrics, config.a2c.batch, block)},
        "last": {"episodes": last, "update_rewards": window,
                 "mean": float(np.mean(window))},
        "fresh_episodes": fresh,
        "agent": "best.pt: the final policy (A2C keeps no other best)",
        "seconds": float(metrics[-1]["perf/wall_time"]),
        "command": command, "code": provenance.code, "machine": provenance.machine,
    }


def write_record(path: Path, record: dict[str, Any], commit: bool) -> None:
    """Write `record` at `path` atomically (and commit that file alone if `commit`)."""
    save_record(path, record)
    if commit:
        commit_record(path, f"reproduce: record {NAME}/{record['net']}/seed{record['seed']}")


def train(cell: A2CCell, config: A2CConfig, run_dir: Path) -> tuple[str, float | None]:
    """Run `cell` to its budget: resume its folder from its checkpoint if it holds the same
    run (settings less budget and logging: a longer budget continues it), else start it.
    Returns how ("ran" | "resumed") and its core-seconds when run whole in this process."""
    torch.set_num_threads(1)
    if (run_dir / "config.yaml").is_file():
        saved = settings(load_config(run_dir / "config.yaml", A2CConfig))
        wanted = settings(config)
        if {**saved, "budget": None} != {**wanted, "budget": None}:
            raise ValueError(f"{run_dir} holds a run at other settings; move it away to "
                             "start this one")
        budget = config.budget
        resume_a2c(run_dir, [f"budget.episodes={json.dumps(budget.episodes)}",
                             f"budget.wall_time={json.dumps(budget.wall_time)}"])
        return "resumed", None
    cores = core_seconds()
    a2c(config)
    return "ran", core_seconds() - cores


def update_records(runs_dir: Path, data_dir: Path, sets: Sequence[str], command: str, *,
                   seeds: int = SEEDS, nets: Sequence[str] | None = None, run: bool = False,
                   commit: bool = False, block: int = BLOCK,
                   last: int = LAST) -> dict[str, int]:
    """Record every finished run in `runs_dir` that has no record at its settings; with
    `run`, first run or resume those not finished. Returns counts per outcome."""
    counts = {"recorded": 0, "ran": 0, "resumed": 0, "skipped": 0, "pending": 0}
    provenance = Provenance.here()
    for cell in a2c_cells(seeds, nets):
        config = cell.config(runs_dir, sets)
        path, run_dir = cell.record_path(data_dir), cell.run_dir(runs_dir)
        record = read(path)
        if record is not None and record["config"] == settings(config):
            counts["skipped"] += 1
            continue
        how, cores = "found", None
        if run and not finished_at(run_dir, config):
            start = time.perf_counter()
            how, cores = train(cell, config, run_dir)
            counts[how] += 1
            say(f"{NAME}/{cell.name}: {how} in {time.perf_counter() - start:.0f} s")
        if not finished_at(run_dir, config):
            counts["pending"] += 1
            continue
        record = make_record(cell, run_dir, provenance, command, block=block, last=last)
        record |= {"core_seconds": cores, "resumed": how == "resumed"}
        write_record(path, record, commit)
        counts["recorded"] += 1
        sampled = record["fresh_episodes"]["sampled"]["mean"]
        say(f"{NAME}/{cell.name}: recorded ({how}), last {last:,} episodes "
            f"{record['last']['mean']:.1f}, fresh {sampled:.1f}")
    return counts


def episode_rate(records: list[dict[str, Any]], net: str) -> tuple[float, bool]:
    """Core-seconds per episode of `net`: measured by its records (core-seconds where the
    recording process ran the run whole, else the trainer's wall seconds, which on a busy
    machine overstate them), else `PILOT_RATES`; and whether measured."""
    mine = [r for r in records if r["net"] == net]
    if not mine:
        return PILOT_RATES[net], False
    spent = sum(r["core_seconds"] if r.get("core_seconds") else r["seconds"] for r in mine)
    return spent / sum(r["episodes"] for r in mine), True


def a2c_status(runs_dir: Path, data_dir: Path, sets: Sequence[str], seeds: int = SEEDS,
               nets: Sequence[str] | None = None) -> list[tuple[str, int, int, int, float]]:
    """Per net: (cells, done, remaining, recorded at other settings, core-seconds left), a
    pending run costed at its net's rate for the episodes its folder has not reached yet."""
    records = load_a2c_records(data_dir)
    rows = []
    for net in (n for n in NETS if nets is None or n in nets):
        done = remaining = elsewhere = 0
        seconds = 0.0
        for cell in a2c_cells(seeds, [net]):
            config = cell.config(runs_dir, sets)
            record = read(cell.record_path(data_dir))
            if record is not None and record["config"] == settings(config):
                done += 1
                continue
            remaining += 1
            elsewhere += record is not None
            reached = updates_done(cell.run_dir(runs_dir)) * config.a2c.batch
            left = max(0, (config.budget.episodes or 0) - reached)
            seconds += left * episode_rate(records, net)[0]
        rows.append((f"gridmaze-{net}-a2c", done, remaining, elsewhere, seconds))
    return rows


def a2c_status_text(runs_dir: Path, data_dir: Path, sets: Sequence[str], seeds: int = SEEDS,
                    nets: Sequence[str] | None = None) -> str:
    """`status`'s table for the A2C runs: done, remaining and core-hours left per net."""
    rows = a2c_status(runs_dir, data_dir, sets, seeds, nets)
    table = [[NAME, name, str(done), str(left), str(other), f"{seconds / 3600:.2f}"]
             for name, done, left, other, seconds in rows]
    total = [sum(row[i] for row in rows) for i in range(1, 5)]
    table.append([NAME, "all", *map(str, total[:3]), f"{total[3] / 3600:.2f}"])
    records = load_a2c_records(data_dir)
    rates = ", ".join(f"{net} {1000 * rate:.1f} ms" + ("" if known else " (pilot)")
                      for net in NETS for rate, known in [episode_rate(records, net)])
    return "\n".join([*aligned(table), "", (
        f"A2C runs in {runs_dir}, records in {data_dir / NAME}; a pending run is costed for "
        f"the episodes its folder has not reached, at core-seconds per episode: {rates}.")])
