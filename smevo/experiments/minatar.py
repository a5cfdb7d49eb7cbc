"""MinAtar's result: its champions' reward on fresh episodes, per game, network and operator,
against control's (`fresh_versus_control_table`, a part of the `minatar` section of
RESULTS.md)."""

from __future__ import annotations

from smevo.experiments.results import Results, fresh
from smevo.experiments.stats import rank_test
from smevo.experiments.tables import rank_text, spread, table


def fresh_versus_control_table(results: Results) -> str:
    """Per game, network and operator: the validated fitness and the reward on fresh episodes
    (median [IQR] over seeds), and a rank test of the fresh rewards against control's on the
    same game and network; with its caption. Sticky actions make every episode differ, so the
    validated fitness, the best of noisy elites, overstates the champion; this does not."""
    rows = []
    for domain, operator, runs in results.cells():
        rewards = [fresh(r) for r in runs]
        versus = "—" if operator == "control" else rank_text(rank_test(
            rewards, [fresh(r) for r in results.runs(domain, "control")]))
        rows.append([results.label(domain), operator, str(len(runs)),
                     spread([r["best_fitness"] for r in runs]), spread(rewards), versus])
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
