"""The grid maze's result: its champions' reward on fresh episodes, per network and operator,
against the maze's random and oracle levels (`fresh_table`, a part of the `gridmaze`
section of RESULTS.md and of GRIDMAZE.md)."""

from __future__ import annotations

import numpy as np

from smevo.experiments.results import Results, fresh
from smevo.experiments.stats import rank_test
from smevo.experiments.tables import rank_text, spread, table

RANDOM_LEVEL = 7.6
"""Mean reward of a uniform random policy on the size-11 grid maze (200 steps; Backpropamine's
reference level, 300 episodes)."""
ORACLE_LEVEL = 325.0
"""Mean reward of an oracle that knows the goal and walks shortest paths (same source)."""


def progress(reward: float) -> str:
    """Where `reward` lies from the random level (0%) to the oracle's (100%)."""
    return f"{100 * (reward - RANDOM_LEVEL) / (ORACLE_LEVEL - RANDOM_LEVEL):.1f}%"


def fresh_table(results: Results) -> str:
    """Per network and operator: the validated fitness and the reward on fresh episodes
    (median [IQR] over seeds), where the fresh median lies between the random and oracle
    levels, and a rank test of the fresh rewards against the first network's (the
    non-plastic RNN) under the same operator; with its caption."""
    first = results.experiment.domains[0]
    baseline = (first.name, first.network)
    rows = []
    for domain, operator, runs in results.cells():
        rewards = [fresh(r) for r in runs]
        versus = "—" if domain == baseline else rank_text(rank_test(
            rewards, [fresh(r) for r in results.runs(baseline, operator)]))
        rows.append([results.label(domain), operator, str(len(runs)),
                     spread([r["best_fitness"] for r in runs]), spread(rewards),
                     progress(float(np.median(rewards))), versus])
    episodes = sorted({r["fresh_episodes"]["episodes"] for r in results.records})
    seeds = sorted({r["fresh_episodes"]["first_seed"] for r in results.records})
    caption = (
        "Reward per episode, median [IQR] over seeds. *Validated*: the run's champion on its "
        "validation episodes (the best of noisy elites: it overstates the champion); *fresh*: "
        f"the champion (`best.pt`) on {', '.join(map(str, episodes))} episodes seeded from "
        f"{', '.join(f'{s:,}' for s in seeds)} on, which the trainer never used. Reference "
        f"levels: a uniform random policy {RANDOM_LEVEL}, an oracle that knows the goal "
        f"{ORACLE_LEVEL:.0f}; *random → oracle* places the fresh median between them (0%: "
        f"random). The last column compares each network's fresh rewards with "
        f"{results.label(baseline)}'s under the same operator (A > 0.5: better than "
        f"{results.label(baseline)}).")
    return caption + "\n\n" + table(
        ["network", "operator", "runs", "validated: median [IQR]", "fresh: median [IQR]",
         "random → oracle", f"fresh vs {results.label(baseline)}: Mann-Whitney"], rows)
