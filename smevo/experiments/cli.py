"""Reproduce the experiments of Lehman et al. 2018 (safe mutations) and write docs/results.

    python scripts/reproduce.py EXPERIMENT... [--seeds N] [--quick] [--backend B]
                                [--out docs/results] [--runs-dir runs/reproduce]
                                [--data-dir docs/results/data] [--operators A,B]
                                [--networks X,Y] [--domains X,Y] [--set KEY=VALUE ...]
                                [--jobs N] [--commit-records]
    python scripts/reproduce.py --report-only
    python scripts/reproduce.py status [EXPERIMENT...] [same options]
    python scripts/reproduce.py backpropamine [--runs-dir runs/backpropamine] [--run]
                                [--seeds 3] [--set KEY=VALUE ...] [--report-only]

Experiments (`all` runs every one):

| name           | domains                                    | operators                     |
|----------------|--------------------------------------------|-------------------------------|
| `illustrative` | easy, medium, washout (toy2w, hill climber)| all six                       |
| `parity`       | recurrent parity: rnn, gru, lstm stacks    | all six                       |
| `maze`         | hard maze: depth 7 (the reference's 6x15)  | all six                       |
|                | and depth 32                               |                               |
| `depth`        | hard maze, depth 1, 4, 16, 32, 64          | control, SM-G-SUM, SM-G-ABS   |
| `gym`          | CartPole-v1, LunarLander-v3,               | control, SM-G-SUM, SM-G-ABS   |
|                | BipedalWalker-v3 (truncation GA)           |                               |
| `gridmaze`     | Backpropamine's grid maze: rnn, plastic,   | control, SM-G-ABS             |
|                | neuromod (truncation GA; fresh episodes)   |                               |
| `minatar`      | MinAtar Breakout, SpaceInvaders, Asterix   | control, SM-G-SUM, SM-G-ABS   |
|                | from pixels: shallow and deep cnn (1M      |                               |
|                | frames per run; fresh episodes)            |                               |

The grid is data (`EXPERIMENTS`, `MAGNITUDES`): a cell is (experiment, domain, network,
operator, seed), one `smevo.train` run in `<runs-dir>/<experiment>/<domain>-<network>-
<operator>/seed<N>` (checkpoints, metrics: not committed). A finished run leaves a compact
record, `<data-dir>/<experiment>/<domain>-<network>-<operator>/seed<N>.json` (kilobytes: its
config, seed, final and solve statistics, its curve downsampled, what the figures need, and
the commit, smevo version, wall time, core-seconds and machine it ran on; `RECORD_FORMAT`).
The records are committed: the report is rebuilt from them alone, so a grid stopped here
continues on another machine where the committed records end. A cell whose record was made
at the same settings (the config, less `RESULT_NEUTRAL`) is skipped; a record made at other
settings (e.g. a smaller budget) leaves its cell pending. A cell whose run another
experiment recorded at the same settings (the depth sweep's depth-32 cells are the maze
experiment's, magnitudes included) gets a copy of that record, naming it (`same_run_as`),
instead of running it again. A run cut short resumes from its last checkpoint
(`smevo.resume`) if it was started at the same settings, else restarts. So the same command
continues an interrupted grid, and `--seeds 10` after `--seeds 5` adds seeds.
`--commit-records` commits each record as it is written (that file only). `--jobs N` runs N
cells at once, each in a process of its own (one core each: every run uses one thread), and
prints each cell's line as it finishes; a run is the same whichever process runs it, so N only
changes how soon the grid ends (`status`'s core-hours divided by about N). Ctrl-C or SIGTERM
stops every run in progress with a checkpoint.

After the runs, `<out>/RESULTS.md` and its PNG figures are written from every record under
`--data-dir` (all experiments, whichever command or machine made them), so partial grids give
a partial report and several invocations can share a data folder, and `<out>/GRIDMAZE.md`
holds its grid-maze section alone; `--report-only` rewrites both without running anything.
`status` runs nothing either: it prints, per experiment and network, the runs done and
remaining and the core-hours left, from the core-seconds per evaluation measured in the
records.

`backpropamine` is not a cell grid but Backpropamine's grid maze meta-trained by episodic A2C
(issue 15; `smevo.experiments.backpropamine`): rnn, plastic and neuromod at matched size,
`configs/gridmaze-<net>-a2c.yaml`, seeds 0-2, 100,000 episodes each, one run per folder
`<runs-dir>/gridmaze-<net>-a2c-seed<S>` (default runs/backpropamine). It records every finished
run folder that has no record, in `<data-dir>/backpropamine/<net>/seed<S>.json`; `--run` first
runs the missing runs and resumes the unfinished ones from their checkpoints (hours: see
`status`). `<out>/BACKPROPAMINE.md` and its figure are then written from the records (also by
`--report-only`, which rewrites every document). `all` does not include it; `status` without
names does. Its `--set` keys are A2C config keys (e.g. `budget.episodes=300`), so name it
alone when setting them; `--networks` and `--seeds` pick its nets and seeds too.

`--quick` runs one seed with tiny budgets (listed in `QUICK` and printed) so that the whole
grid takes minutes: it checks the pipeline, not the paper. Its runs, records and report go to
`runs/reproduce-quick` unless `--runs-dir`/`--data-dir`/`--out` say otherwise, so they never
overwrite the real results. `--set KEY=VALUE` overrides a config key in every cell run by the
command (e.g. `--set budget.evaluations=20000`); the report states the settings each run
actually used.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from smevo.config import BACKENDS
from smevo.experiments.backpropamine import NAME as BACKPROPAMINE
from smevo.experiments.backpropamine import RUNS_DIR as A2C_RUNS_DIR
from smevo.experiments.backpropamine import SEEDS as A2C_SEEDS
from smevo.experiments.backpropamine import a2c_status_text, update_records
from smevo.experiments.backpropamine_report import write_backpropamine
from smevo.experiments.grid import DATA_DIR, EXPERIMENTS, Settings, build_grid
from smevo.experiments.report import write_report
from smevo.experiments.runner import run_grid, say
from smevo.experiments.status import status_text
from smevo.mutations import MUTATIONS


def parse_args(argv: Sequence[str] | None, prog: str = "reproduce.py") -> argparse.Namespace:
    """The command line, checked: unknown experiments, networks or operators and a bad
    `--seeds` are argparse errors; `status` first sets `args.status`; defaults filled in."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                        help=f"experiments to run: {', '.join(EXPERIMENTS)} or all, and "
                        f"{BACKPROPAMINE} (the A2C runs); 'status' "
                        "first: print the runs done and left of them (default all)")
    parser.add_argument("--seeds", type=int, help="seeds per cell (default: 10 illustrative, "
                        "maze depth 7 and parity rnn, 5 others; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="one seed, tiny budgets: checks the pipeline in minutes")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="evaluation backend for every run (default: each config's)")
    parser.add_argument("--out", type=Path, help="where RESULTS.md and the figures go "
                        "(default docs/results; runs/reproduce-quick/results with --quick)")
    parser.add_argument("--runs-dir", type=Path, help="where the runs go (default "
                        "runs/reproduce; runs/reproduce-quick with --quick)")
    parser.add_argument("--data-dir", type=Path, help="where the finished runs' records go "
                        f"(default {DATA_DIR}; runs/reproduce-quick/data with --quick)")
    parser.add_argument("--operators", type=lambda s: s.split(","),
                        help="only these operators, comma-separated (e.g. control,SM-G-ABS)")
    parser.add_argument("--networks", type=lambda s: s.split(","),
                        help="only these networks, comma-separated (e.g. d7,rnn)")
    parser.add_argument("--domains", type=lambda s: s.split(","),
                        help="only these domains, comma-separated (e.g. LunarLander-v3)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every run, e.g. budget.evaluations=20000")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing; rewrite the report from the records found")
    parser.add_argument("--jobs", type=int, default=1,
                        help="cells run at once, each in a process of its own on one core "
                        "(default 1); the records are the same whatever the number")
    parser.add_argument("--commit-records", action="store_true",
                        help="git-commit each record as it is written (that file only)")
    parser.add_argument("--run", action="store_true",
                        help=f"{BACKPROPAMINE}: run the missing A2C runs and resume the "
                        "unfinished ones (100,000 episodes each) before recording")
    args = parser.parse_args(argv)
    args.status = args.experiments[:1] == ["status"]
    if args.status:
        args.experiments = args.experiments[1:] or ["all", BACKPROPAMINE]
    if not args.experiments and not args.report_only:
        parser.error("name at least one experiment (or 'all'), or pass --report-only")
    unknown = [e for e in args.experiments if e not in (*EXPERIMENTS, "all", BACKPROPAMINE)]
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}; valid: "
                     f"{', '.join(EXPERIMENTS)}, all, {BACKPROPAMINE}")
    args.backpropamine = BACKPROPAMINE in args.experiments
    args.experiments = [e for e in args.experiments if e != BACKPROPAMINE]
    if args.run and not args.backpropamine:
        parser.error(f"--run is for {BACKPROPAMINE}")
    args.a2c_runs_dir = args.runs_dir or A2C_RUNS_DIR
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.operators:
        try:
            args.operators = [MUTATIONS.canonical(op) for op in args.operators]
        except ValueError as error:
            parser.error(f"--operators: {error}")
    for option, attribute in (("networks", "network"), ("domains", "name")):
        valid = {getattr(d, attribute) for e in EXPERIMENTS.values() for d in e.domains}
        given = getattr(args, option)
        if given and not set(given) <= valid:
            parser.error(f"--{option}: unknown {', '.join(sorted(set(given) - valid))}; "
                         f"valid: {', '.join(sorted(valid))}")
    quick_dir = Path("runs/reproduce-quick")
    args.runs_dir = args.runs_dir or (quick_dir if args.quick else Path("runs/reproduce"))
    args.data_dir = args.data_dir or (quick_dir / "data" if args.quick else DATA_DIR)
    args.out = args.out or (quick_dir / "results" if args.quick else Path("docs/results"))
    if "all" in args.experiments:
        args.experiments = list(EXPERIMENTS)
    return args


SCRIPT = ("python", "scripts/reproduce.py")
"""How the script is invoked, as records and the report's captions quote a command."""


def main(argv: Sequence[str] | None = None, *, prog: str = "reproduce.py",
         invocation: Sequence[str] = SCRIPT) -> int:
    """Run, resume or skip the grid's cells, then write the report (or only the report, or
    only the status table); returns the exit status (130: interrupted).

    `argv` defaults to the process's arguments; `prog` names the command in its usage and
    `invocation` in the command each record quotes (`smevo reproduce` passes its own)."""
    args = parse_args(argv, prog)
    # Small networks: one thread is fastest, and on shared cores several threads per process
    # oversubscribe them (measured: a 10x slowdown).
    torch.set_num_threads(1)
    argv = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join([*invocation, *argv])
    settings = Settings(args.runs_dir, args.quick, args.backend, tuple(args.sets), command,
                        args.data_dir, args.commit_records)
    cells = build_grid(dict.fromkeys(args.experiments), args.seeds, args.quick,
                       args.operators, args.networks, args.domains)
    a2c_seeds = args.seeds or A2C_SEEDS
    if args.status:
        if args.experiments:
            say(status_text(cells, settings))
        if args.backpropamine:
            say(a2c_status_text(args.a2c_runs_dir, args.data_dir, args.sets, a2c_seeds,
                                args.networks))
        return 0
    if not args.report_only and args.backpropamine:
        counts = update_records(args.a2c_runs_dir, args.data_dir, args.sets, command,
                                seeds=a2c_seeds, nets=args.networks, run=args.run,
                                commit=args.commit_records)
        say(f"{BACKPROPAMINE}: {', '.join(f'{k} {v}' for k, v in counts.items())}")
    if not args.report_only and args.experiments:
        if args.quick:
            say("--quick: one seed; reduced settings per experiment:")
            for name in dict.fromkeys(args.experiments):
                say(f"  {name}: {' '.join(EXPERIMENTS[name].quick)}")
        say(f"{len(cells)} runs in {args.runs_dir}, records in {args.data_dir}")
        start = time.perf_counter()
        try:
            counts = run_grid(cells, settings, args.jobs)
        except KeyboardInterrupt:
            say("interrupted; each run in progress saved a checkpoint: the same command "
                "resumes the grid")
            return 130
        busy = (f", {counts['busy']} left to the other process(es) training them"
                if counts["busy"] else "")
        say(f"ran {counts['ran']}, resumed {counts['resumed']}, skipped {counts['skipped']} "
            f"(finished before){busy} in {time.perf_counter() - start:.0f} s")
    documents, figures = [], []
    if args.experiments or not args.backpropamine:
        documents, figures = write_report(args.data_dir, args.out)
    document, drawn = write_backpropamine(args.data_dir, args.out)
    say(f"wrote {', '.join(map(str, [*documents, document]))} and "
        f"{len(figures) + len(drawn)} figures")
    return 0
