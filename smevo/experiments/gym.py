"""The Gymnasium tasks' result: how many champions meet the env's own criterion on fresh
episodes, and what solving cost (`solved_table`, a part of the `gym` section of RESULTS.md)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from smevo.experiments.results import Results, fresh
from smevo.experiments.stats import solve_rate
from smevo.experiments.tables import spread, table


def reward_threshold(env_id: str) -> float | None:
    """The env's own "solved" level (its registered `reward_threshold`)."""
    return gym.spec(env_id).reward_threshold


def training_seconds(record: dict[str, Any]) -> float:
    """The run's training wall time: the trainer's clock across resumes (`wall_seconds`);
    records made before that field have only the seconds of their last process (`seconds`),
    which a resumed run's do not cover."""
    return record.get("wall_seconds", record["seconds"])


def solved_table(results: Results) -> str:
    """Per env and operator: the champions' mean reward on fresh episodes (median [IQR]), how
    many reach the env's threshold there, and the evaluations, env steps and minutes the
    solved runs took (median [IQR]); with its caption."""
    rows = []
    for domain, operator, runs in results.cells():
        threshold = reward_threshold(domain[0])
        rewards = [fresh(r) for r in runs]
        meets = ("—" if threshold is None
                 else str(solve_rate([reward >= threshold for reward in rewards])))
        solved = [r for r in runs if r["solved"]]
        rows.append([results.label(domain), operator, str(len(runs)),
                     "—" if threshold is None else f"{threshold:g}", spread(rewards), meets,
                     spread([r["evaluations"] for r in solved]),
                     spread([r["env_steps"] for r in solved]),
                     spread([training_seconds(r) / 60 for r in solved])])
    episodes = sorted({r["fresh_episodes"]["episodes"] for r in results.records})
    caption = (
        "The env's criterion, checked on fresh episodes: each run's champion (`best.pt`) "
        f"played {', '.join(map(str, episodes))} episodes the trainer never used; *meets "
        "threshold* counts the champions whose mean reward there reaches the env's "
        "`reward_threshold` (95% Wilson interval). The cost columns cover the runs that "
        "stopped solved (their validated elite reached the threshold, and again on as many "
        "new episodes where the record confirmed it), median [IQR]; minutes "
        "are the trainer's wall time (across resumes) on one core of the machine the record "
        "names.")
    return caption + "\n\n" + table(
        ["env", "operator", "runs", "threshold", "fresh reward: median [IQR]",
         "meets threshold (95% CI)", "evaluations to solve", "env steps to solve",
         "minutes to solve"], rows)

