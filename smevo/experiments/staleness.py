"""Which records are stale: made by code that computed their operator's children, or chose
who breeds, otherwise.

`ARITHMETIC_SINCE` is bumped whenever a change moves an operator's children, and
`VALIDATED_RANKING_SINCE` marks a change in selection for runs that validate elites; the
records made before them no longer count (their cells run again, the report leaves them out).
Whether a record's commit comes after a bump is asked of git, in the repository (`grid.ROOT`).
"""

from __future__ import annotations

import functools
import subprocess
from typing import Any

from smevo.experiments.grid import ROOT, current_magnitude

ARITHMETIC_SINCE = dict.fromkeys(
    ("SM-R", "SM-G-SUM", "SM-G-ABS", "SM-G-SO", "SM-G-FO"),
    "c7e3ca7b880e804e65888467cdbaab1bf89a0c4f")
"""Per operator, the commit from which its children are computed as they are now; a record
made by code before it is stale, and its cell runs again. c7e3ca7: the mutation engine of
issue 11 (new per-sample Jacobians, divisors s / mean, batches of a whole generation). Control's
children have not changed since the first record. Bump an operator's entry whenever a change
moves its children, even by rounding."""

NETWORK_ARITHMETIC_SINCE = {
    ("SM-G-ABS", "rnn"): "59ad8c7271ac9cba57d826852bd9e7b1949ae536",
    ("SM-G-ABS", "gru"): "59ad8c7271ac9cba57d826852bd9e7b1949ae536",
    ("SM-G-ABS", "lstm"): "f4df153e3c3d8f83d47d8cfa36e0ebf3ee7d7554",
}
"""Later bumps that moved an operator's children on some networks only, by (operator, the
record's network). 59ad8c7 (tanh-RNN and GRU stacks) and f4df153 (LSTM stacks): SM-G-ABS's
per-sample Jacobians by a hand-written sweep (mutations/sweeps.py), equal to the transforms'
up to float32 rounding; feedforward nets and the other operators are untouched."""


VALIDATED_RANKING_SINCE = "bd3f3b7e9d7c373320d6239babf2a85c34100ec1"
"""From this commit an individual validated on `algorithm.elite_episodes` extra episodes ranks
by its validation score (`Algorithm.step`); before, it kept its evaluation's, and a lucky one
stayed on top for good. Runs that validate elites (the gym, grid-maze and MinAtar cells, every
operator, control included) select otherwise since, so their earlier records are stale."""


@functools.cache
def descends_from(commit: str, ancestor: str) -> bool | None:
    """Whether `commit` is `ancestor` or comes after it (None: git cannot tell here)."""
    try:
        done = subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", ancestor,
                               commit], capture_output=True, check=False)
    except OSError:
        return None
    return {0: True, 1: False}.get(done.returncode)


def current_arithmetic(record: dict[str, Any]) -> bool:
    """Whether `record` was made at or after its operator's `ARITHMETIC_SINCE` commit and, if
    its run validated elites, after `VALIDATED_RANKING_SINCE`. A record whose commit git does
    not know (a shallow clone) counts as current: the check needs the history, and says so by
    returning True only there."""
    algorithm = record.get("config", {}).get("algorithm", {})
    if algorithm.get("elite_episodes", 0) > 0 and not made_since(record, VALIDATED_RANKING_SINCE):
        return False
    since = NETWORK_ARITHMETIC_SINCE.get((record["operator"], record.get("network")),
                                         ARITHMETIC_SINCE.get(record["operator"]))
    return since is None or made_since(record, since)


def current(record: dict[str, Any]) -> bool:
    """Whether `record` counts in the reports: made by the operator's arithmetic and selection
    of now (`current_arithmetic`) at the magnitude its cell uses now (`current_magnitude`)."""
    return current_arithmetic(record) and current_magnitude(record)


def made_since(record: dict[str, Any], since: str) -> bool:
    """Whether `record`'s commit is `since` or later (False if it names none)."""
    commit = record["code"]["commit"]
    if not commit:
        return False
    return descends_from(commit, since) is not False
