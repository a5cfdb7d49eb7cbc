"""Reproduce the experiments of Lehman et al. 2018 (safe mutations) and write docs/results.

A thin entry point: the grid, runner, status, statistics, figures, report and verdicts are
the package `smevo.experiments`, and this script runs its command line
(`smevo.experiments.cli`; `python scripts/reproduce.py --help` for the usage).
"""

import sys

from smevo.experiments.cli import main

if __name__ == "__main__":
    sys.exit(main())
