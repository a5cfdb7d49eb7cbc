"""``smevo reproduce``: the paper's experiment grid, whose command line is
`smevo.experiments.cli`'s (scripts/reproduce.py runs it too)."""

from __future__ import annotations

import argparse

from smevo.commands.common import PROG


def cmd_reproduce(args: argparse.Namespace) -> int:
    """`smevo reproduce`: the experiment grid's command line (`smevo.experiments.cli`, which
    scripts/reproduce.py runs too), given every argument after the verb."""
    from smevo.experiments.cli import main as reproduce

    return reproduce(args.argv, prog=f"{PROG} reproduce", invocation=(PROG, "reproduce"))
