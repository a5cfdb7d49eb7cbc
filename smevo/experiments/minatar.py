"""MinAtar's result: its champions' reward on fresh episodes, per game, network and operator,
against control's, and the MinAtar paper's own agents beside them (`minatar_tables`, a part
of the `minatar` section of RESULTS.md)."""

from __future__ import annotations

import numpy as np

from smevo.experiments.results import Results, fresh
from smevo.experiments.tables import number, rank_text, spread, table

PUBLISHED_SOURCE = (
    "Young & Tian 2019, *MinAtar: An Atari-Inspired Testbed for Thorough and Reproducible "
    "Reinforcement Learning Experiments* (arXiv:1903.03176), as plotted in "
    "`img/learning_curves.gif` of github.com/kenjyoung/MinAtar (commit 4241f24)")
"""Where the published returns come from. The paper gives curves, not tables: the values are
read off that figure by eye."""

PUBLISHED = {
    "Breakout-v1": {"DQN": (9.3, 10.0), "DQN without replay": (3.8, 4.3),
                    "AC(λ=0.8)": (9.8, 17.5), "AC(λ=0)": (7.5, 15.3)},
    "SpaceInvaders-v1": {"DQN": (31.0, 43.0), "DQN without replay": (11.0, 13.0),
                         "AC(λ=0.8)": (50.0, 185.0), "AC(λ=0)": (50.0, 145.0)},
    "Asterix-v1": {"DQN": (6.0, 17.0), "DQN without replay": (4.7, 5.5),
                   "AC(λ=0.8)": (0.7, 19.0), "AC(λ=0)": (0.6, 20.3)},
}
"""Per game, per agent: the moving average of training returns over 100 episodes (mean of 30
runs) at 1 million and 5 million frames, read off the figure of `PUBLISHED_SOURCE` (to about ±0.5 on
Breakout and Asterix, ±3 on SpaceInvaders; Asterix's DQN at 1M frames sits on a steep rise,
±3)."""


def fresh_versus_control_table(results: Results) -> str:
    """Per game, network and operator: the validated fitness and the reward on fresh episodes
    (median [IQR] over seeds), and the rank test of the fresh rewards against control's on the
    same game and network (the experiment's score); with its caption. Sticky actions make
    every episode differ, so the validated fitness, the best of noisy elites, overstates the
    champion; this does not."""
    rows = []
    for domain, operator, runs in results.cells():
        versus = ("—" if operator == "control"
                  else rank_text(results.compare(domain, operator, "control")))
        rows.append([results.label(domain), operator, str(len(runs)),
                     spread([r["best_fitness"] for r in runs]),
                     spread([fresh(r) for r in runs]), versus])
    episodes = sorted({r["fresh_episodes"]["episodes"] for r in results.records})
    caption = (
        "Reward per episode, median [IQR] over seeds. *Validated*: the run's champion on its "
        "validation episodes (the best of noisy elites: it overstates the champion); *fresh*: "
        f"the champion (`best.pt`) on {', '.join(map(str, episodes))} episodes the trainer "
        "never used. The last column compares the fresh rewards with control's on the same "
        "game and network (A > 0.5: better than control).")
    return caption + "\n\n" + table(
        ["game and network", "operator", "runs", "validated: median [IQR]",
         "fresh: median [IQR]", "fresh vs control: Mann-Whitney"], rows)


def published_table(results: Results) -> str:
    """Per game: the MinAtar paper's agents at 1M and 5M frames (`PUBLISHED`) beside the best
    of our cells (the highest median fresh reward over its seeds) at our frame budget; with
    the caveats that make the two only roughly comparable."""
    agents = list(next(iter(PUBLISHED.values())))
    rows = []
    for game, returns in PUBLISHED.items():
        cells = [(float(np.median([fresh(r) for r in runs])), operator, domain)
                 for domain, operator, runs in results.cells() if domain[0] == game]
        ours = "not run yet"
        if cells:
            reward, operator, domain = max(cells)
            ours = f"{number(reward)} ({domain[1]}, {operator})"
        rows.append([game, *(f"{number(a)} / {number(b)}" for a, b in
                             (returns[agent] for agent in agents)), ours])
    frames = sorted({r["config"]["budget"]["env_steps"] for r in results.records})
    caption = (
        f"Published agents beside ours. Theirs: {PUBLISHED_SOURCE}; the moving average of "
        "training returns over 100 episodes at 1M / 5M frames, mean of 30 runs, read off the "
        "figure by eye (about ±0.5 on Breakout and Asterix, ±3 on SpaceInvaders). Ours: the "
        "best cell's median fresh reward at "
        f"{' / '.join(f'{f:,}' for f in frames if f)} frames. Only roughly comparable: their "
        "agents used all six actions (ours each game's minimal set, -v1), their returns are "
        "those of exploring agents during training (ours a greedy champion on unseen "
        "episodes), and both use MinAtar's sticky actions (0.1) and difficulty ramping.")
    return caption + "\n\n" + table(
        ["game", *(f"{agent} (1M / 5M)" for agent in agents), "smevo: best cell"], rows)


def minatar_tables(results: Results) -> str:
    """The MinAtar section's own tables: fresh rewards against control, then the published
    agents."""
    return fresh_versus_control_table(results) + "\n\n" + published_table(results)
