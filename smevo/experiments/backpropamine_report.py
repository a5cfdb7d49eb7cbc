"""BACKPROPAMINE.md and its figure, written from the records alone: the A2C grid's reward per
episode (median and IQR over seeds per net), a table per net, the verdict on the paper's
ordering (neuromodulated >= plastic > non-plastic) and the evolved nets of the `gridmaze`
experiment beside the A2C runs at equal env steps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from smevo.envs import make_env
from smevo.experiments.backpropamine import LAST, NAME, NETS, PILOT_RATES, SEEDS, episode_rate
from smevo.experiments.backpropamine import load_a2c_records as load_a2c
from smevo.experiments.gridmaze import ORACLE_LEVEL, RANDOM_LEVEL, progress
from smevo.experiments.records import load_records
from smevo.experiments.results import fresh
from smevo.experiments.staleness import current
from smevo.experiments.stats import RankTest, rank_test
from smevo.experiments.tables import commits, number, rank_text, spread, table
from smevo.plotting import plot_curves
from smevo.policies import make_policy

FIGURE = "backpropamine_reward.png"
BUDGET = 100_000
"""Episodes per run: the paper's figure shows the first 100,000."""


def by_net(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The records per net, in `NETS` order, nets without records left out."""
    return {net: [r for r in records if r["net"] == net] for net in NETS
            if any(r["net"] == net for r in records)}


def last_means(runs: Sequence[dict[str, Any]]) -> list[float]:
    """Each run's mean reward per episode over its last episodes (one value per seed)."""
    return [r["last"]["mean"] for r in runs]


def pooled(runs: Sequence[dict[str, Any]]) -> list[float]:
    """Every update's mean reward over the last episodes of every run, pooled."""
    return [v for r in runs for v in r["last"]["update_rewards"]]


@dataclass(frozen=True)
class Comparison:
    """One step of the ordering, `better` against `worse`: the per-seed and the pooled test,
    and the verdict (`strict`: must be better; else: must not be worse)."""

    better: str
    worse: str
    strict: bool
    per_seed: RankTest | None
    pooled: RankTest | None
    seeds: int
    """Runs of the net with fewer of them."""

    @property
    def verdict(self) -> str:
        """"not run yet", "reproduced", "not reproduced" or "reversed", by the pooled test;
        "preliminary" while a net has fewer than `SEEDS` runs."""
        test = self.pooled
        if test is None:
            return "not run yet"
        worse = test.significant() and test.effect < 0.5
        better = test.significant() and test.effect > 0.5
        found = ("reversed" if worse
                 else "reproduced" if better or not self.strict else "not reproduced")
        if self.seeds < SEEDS:
            return f"{found} (preliminary: {self.seeds} of {SEEDS} seeds)"
        return found

    @property
    def claim(self) -> str:
        return f"{self.better} {'>' if self.strict else '≥'} {self.worse}"


def ordering(records: Sequence[dict[str, Any]]) -> list[Comparison]:
    """The paper's ordering as two comparisons: plastic > rnn, neuromod ≥ plastic."""
    nets = by_net(records)

    def compare(better: str, worse: str, strict: bool) -> Comparison:
        a, b = nets.get(better, []), nets.get(worse, [])
        return Comparison(better, worse, strict, rank_test(last_means(a), last_means(b)),
                          rank_test(pooled(a), pooled(b)), min(len(a), len(b)))

    return [compare("plastic", "rnn", True), compare("neuromod", "plastic", False)]


def overall(comparisons: Sequence[Comparison]) -> str:
    """The ordering's verdict: reproduced only if every step is."""
    verdicts = [c.verdict for c in comparisons]
    if "not run yet" in verdicts:
        return "not run yet"
    found = "reproduced" if all(v.startswith("reproduced") for v in verdicts) else "not reproduced"
    seeds = min(c.seeds for c in comparisons)
    return found if seeds >= SEEDS else f"{found} (preliminary: {seeds} of {SEEDS} seeds)"


def verdict_text(records: Sequence[dict[str, Any]]) -> str:
    """The verdict section: a table of both tests per step, and the ordering's verdict."""
    comparisons = ordering(records)
    rows = [[f"{c.claim}", rank_text(c.per_seed), rank_text(c.pooled), f"**{c.verdict}**"]
            for c in comparisons]
    return "\n\n".join([
        f"The paper's ordering on the last {LAST:,} episodes of each run: "
        f"**{overall(comparisons)}**.",
        table(["claim", "per-seed test: Mann-Whitney on the seeds' last-10k means",
               "pooled test: Mann-Whitney on every update's mean, all seeds", "verdict"], rows),
        "Two tests, said plainly. The *per-seed* test compares one number per run (its mean "
        "reward over the last 10,000 episodes): it is the honest unit, but with 3 seeds per "
        "net the smallest two-sided p it can give is 0.1, so it can never reach p < 0.05. The "
        "*pooled* test compares the mean reward of every update (a batch of 30 episodes) in "
        "those windows, all seeds together (about 333 per run): it has the power, but treats "
        "updates of one run as independent, which they are not (they share the run's weights "
        "and drift), so its p-values overstate the evidence. The verdicts follow the pooled "
        "test: *reproduced* where it finds the claimed direction at p < 0.05 (for ≥: where it "
        "finds no significant difference the other way), *reversed* where it finds the "
        "opposite at p < 0.05. A > 0.5: the first net tends to score higher."])


def setup_text(records: Sequence[dict[str, Any]]) -> str:
    """The runs' settings as found in the records, and the budget and its cost."""
    nets = by_net(records)
    lines = []
    for net, runs in nets.items():
        config = runs[0]["config"]
        options = ", ".join(f"{k} {v}" for k, v in config["policy"]["options"].items())
        lines.append(f"- {net}: {options}; {runs[0]['parameters']:,} parameters; budget "
                     f"{config['budget']['episodes']:,} episodes; seeds "
                     f"{', '.join(str(r['seed']) for r in runs)}.")
    settings = sorted({tuple(sorted(r["config"]["a2c"].items())) for r in records})
    a2c = "; ".join(", ".join(f"{k} {v}" for k, v in s) for s in settings)
    return "\n".join(lines + ([f"- A2C settings: {a2c}."] if a2c else []))


def cost_text(records: Sequence[dict[str, Any]]) -> str:
    """The budget (nets x seeds x episodes) and what it costs at the measured rates."""
    rates = {net: episode_rate(records, net) for net in NETS}
    per_seed = sum(rate * BUDGET for rate, _ in rates.values())
    measured = ", ".join(f"{net} {1000 * rate:.1f} ms" + ("" if known else " (pilot)")
                         for net, (rate, known) in rates.items())
    return (f"**Budget**: {len(NETS)} nets × {SEEDS} seeds × {BUDGET:,} episodes (200 steps "
            f"each: {BUDGET * 200 / 1e6:.0f} million env steps per run). **Cost** per episode "
            f"on one core: {measured} (from the records' seconds where there are records, "
            f"else pilot runs: {', '.join(f'{k} {1000 * v:g} ms' for k, v in PILOT_RATES.items())}"
            f"), so about {per_seed / 3600:.1f} core-hours per seed of all three nets and "
            f"{SEEDS * per_seed / 3600:.1f} for the grid. Runs that do not fit in one sitting "
            "continue later: every finished run leaves a committed record and an unfinished one "
            "resumes from its checkpoint (`python scripts/reproduce.py backpropamine --run`).")


def net_table(records: Sequence[dict[str, Any]]) -> str:
    """Per net: seeds, episodes, last-10k mean, fresh rewards, where they lie, cost."""
    rows = []
    for net, runs in by_net(records).items():
        sampled = [r["fresh_episodes"]["sampled"]["mean"] for r in runs]
        greedy = [r["fresh_episodes"]["greedy"]["mean"] for r in runs]
        rows.append([net, str(len(runs)), number(float(np.median([r["episodes"] for r in runs]))),
                     spread(last_means(runs)), spread(sampled),
                     progress(float(np.median(sampled))), spread(greedy),
                     progress(float(np.median(greedy))),
                     number(float(np.median([r["seconds"] for r in runs])) / 60),
                     commits(runs)])
    caption = (f"Reward per episode, median [IQR] over seeds. *Last 10k*: the training "
               f"episodes' mean over each run's last {LAST:,} episodes (every training "
               "episode is a new maze, so this is the policy's reward on unseen episodes); "
               "*fresh*: the final agent (`best.pt`, the last policy: A2C keeps no other best) "
               "on 100 episodes seeded from 1,000,000 on, *sampled* from its softmax as it "
               "was trained and *greedy* (the argmax, as `smevo eval` plays it and evolved "
               f"nets act). *random → oracle*: where the fresh median lies between a uniform "
               f"random policy ({RANDOM_LEVEL}, 0%) and an oracle that knows the goal "
               f"({ORACLE_LEVEL:.0f}, 100%). *Minutes per run*: the trainer's own wall "
               "time (updates only). *Commit*: the code that made the record; a run recorded "
               "from a folder that another process trained ran on that process's code.")
    return caption + "\n\n" + table(
        ["net", "seeds", "episodes", "last 10k: median [IQR]", "fresh sampled", "random → oracle",
         "fresh greedy", "random → oracle", "minutes per run", "commit"], rows)


def figure(records: Sequence[dict[str, Any]], out: Path) -> str:
    """Draw the reward per episode against episodes, median and IQR per net; returns its
    caption."""
    curves = {net: [np.array([r["curve"]["episodes"], r["curve"]["reward"]], dtype=float)
                    for r in runs] for net, runs in by_net(records).items()}
    plot_curves(curves, out / FIGURE, metric="reward per episode", x="episodes",
                levels={f"random {RANDOM_LEVEL}": RANDOM_LEVEL,
                        f"oracle {ORACLE_LEVEL:.0f}": ORACLE_LEVEL})
    blocks = sorted({r["curve"]["block"] for r in records})
    return (f"Reward per episode against training episodes (means per block of "
            f"{', '.join(f'{b:,}' for b in blocks)} episodes), median and interquartile band "
            "over seeds per net; dashed: the random and oracle levels.")


def a2c_at(runs: Sequence[dict[str, Any]], episodes: float) -> float | None:
    """The median over seeds of the training reward at `episodes` (the curve's block there),
    None where a run's curve does not reach that far."""
    values = []
    for r in runs:
        ends = r["curve"]["episodes"]
        if episodes > ends[-1]:
            return None
        values.append(r["curve"]["reward"][int(np.searchsorted(ends, episodes))])
    return float(np.median(values))


def parameter_count(config: dict[str, Any]) -> int:
    """The parameters of the policy a record's config builds (evolved records keep none)."""
    env = make_env(config["env"]["id"], config["env"]["kwargs"])
    try:
        net = make_policy(config["policy"]["name"], env.observation_space, env.action_space,
                          **config["policy"]["options"])
    finally:
        env.close()
    return sum(p.numel() for p in net.parameters())


def evolution_text(a2c: Sequence[dict[str, Any]], data_dir: Path) -> str:
    """The evolved nets (the `gridmaze` experiment's current records; stale ones are left out as
    in GRIDMAZE.md) beside the A2C runs at equal env steps."""
    evolved = [r for r in load_records(data_dir)
               if r.get("experiment") == "gridmaze" and current(r)]
    if not evolved:
        return ("Not run yet: no records of the `gridmaze` experiment in "
                f"`{data_dir}` (`python scripts/reproduce.py gridmaze`).")
    nets = by_net(a2c)
    rows = []
    for network, operator in sorted({(r["network"], r["operator"]) for r in evolved}):
        runs = [r for r in evolved if (r["network"], r["operator"]) == (network, operator)]
        steps = float(np.median([r["env_steps"] for r in runs]))
        rewards = [fresh(r) for r in runs]
        a2c_runs = nets.get(network, [])
        per_episode = a2c_runs[0]["steps_per_episode"] if a2c_runs else 200.0
        at = a2c_at(a2c_runs, steps / per_episode) if a2c_runs else None
        final = [r["fresh_episodes"]["sampled"]["mean"] for r in a2c_runs]
        size = parameter_count(runs[0]["config"])
        rows.append([network, f"{operator}, {size:,} parameters", str(len(runs)),
                     f"{steps / 1e6:.1f}M", spread(rewards), progress(float(np.median(rewards))),
                     "not run yet" if not a2c_runs else
                     "beyond the A2C runs" if at is None else
                     f"{number(at)} ({progress(at)}) at {steps / per_episode:,.0f} episodes",
                     spread(final)])
    matched = ", ".join(f"{net} {runs[0]['parameters']:,}" for net, runs in nets.items())
    return ("Evolved: the `gridmaze` experiment's runs (truncation GA, fitness the mean reward "
            "of 4 episodes; their champion's *greedy* reward on 100 fresh episodes, seeds from "
            "1,000,000). A2C at equal env steps: the median over seeds of the A2C training "
            "reward (sampled, on unseen mazes) in the block where the A2C runs had played as "
            "many env steps as the evolved run (median over its seeds); A2C final: the final "
            "agents' sampled fresh reward. The evolved nets are those of the `gridmaze` configs "
            "(their size in the second column) and the A2C nets are parameter-matched at "
            f"{matched or '—'}: "
            "where the sizes differ, this compares the methods at their grids' settings, not "
            "the same networks.\n\n" + table(
                ["net", "evolved: operator, size", "runs", "env steps",
                 "evolved fresh (greedy): median [IQR]", "random → oracle",
                 "A2C at equal env steps", "A2C final fresh (sampled)"], rows))


def write_backpropamine(data_dir: Path, out: Path) -> tuple[Path, list[str]]:
    """Write `out/BACKPROPAMINE.md` and its figure from the records under `data_dir` alone;
    returns its path and the figure files written."""
    records = load_a2c(data_dir)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    figures: list[str] = []
    parts = [
        "# Backpropamine's grid maze by gradient: non-plastic, plastic and neuromodulated "
        "RNNs meta-trained by A2C",
        f"Written by `scripts/reproduce.py` on {stamp} from the {len(records)} records of "
        f"finished A2C runs in `{data_dir / NAME}` and the `gridmaze` records beside them. "
        "`python scripts/reproduce.py backpropamine` records finished runs (`--run`: runs or "
        "resumes the others first); `python scripts/reproduce.py --report-only` rewrites this "
        "file from the records.",
        cost_text(records),
        "## Setup",
        "Backpropamine's grid maze (`smevo/GridMaze-v0`, size 11, 200 steps per episode, "
        "reward 10 per goal reached, then a teleport; the goal moves between episodes, so only "
        "what a net learns within the episode helps), meta-trained by episodic A2C "
        "(`smevo a2c --config configs/gridmaze-{rnn,plastic,neuromod}-a2c.yaml`). Three "
        "parameter-matched nets as in the paper's figure (22.4k–22.7k parameters): a tanh RNN "
        "of 139 units, a Hebbian plastic RNN of 101 units (learned decay rate eta, "
        "per-connection alpha), and a simple-neuromodulated plastic RNN of 100 units (a tanh "
        "modulator neuron with fanout sets each neuron's Hebbian rate; trace clipped to ±2); "
        "each 17 inputs → 4 action logits and a value. A2C: the figure's settings (batch 30, "
        "gamma 0.9, value weight 0.1, squared-probability weight 0.03, Adam lr 1e-4 eps 1e-4, "
        "gradient norm clipped at 4, no step in the first 100 updates).",
    ]
    if not records:
        parts.append("Not run yet: no A2C records. Run the grid with `python scripts/"
                     "reproduce.py backpropamine --run`, or record finished run folders with "
                     "`python scripts/reproduce.py backpropamine --runs-dir DIR`.")
    else:
        caption = figure(records, out)
        figures.append(FIGURE)
        missing = [f"{net} ({SEEDS - len(by_net(records).get(net, []))})" for net in NETS
                   if len(by_net(records).get(net, [])) < SEEDS]
        parts += [
            "Settings of the runs found:", setup_text(records),
            *([f"Not run yet: {', '.join(missing)} of {SEEDS} seeds."] if missing else []),
            "## Reward per episode",
            f"![{caption}]({FIGURE})\n\n*{caption}*",
            net_table(records),
            "## The paper's ordering",
            verdict_text(records),
        ]
    parts += ["## Evolution beside gradient meta-training", evolution_text(records, data_dir)]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "BACKPROPAMINE.md"
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path, figures
