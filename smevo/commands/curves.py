"""``smevo plot``: learning curves of runs, median and interquartile band across seeds (the
drawing is `smevo.plotting`'s)."""

from __future__ import annotations

import argparse
from pathlib import Path

from smevo.commands.common import check_output_file, say


def cmd_plot(args: argparse.Namespace) -> int:
    """`smevo plot RUN... --out FILE.png`: median and IQR curves across runs."""
    from smevo.plotting import image_path, plot_runs

    check_output_file(image_path(Path(args.out)), "--out")
    out = plot_runs([Path(run) for run in args.runs], Path(args.out), metric=args.metric, x=args.x)
    say(f"wrote {out}")
    return 0
