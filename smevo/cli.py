"""The ``smevo`` command: parses, builds a config, calls the library — nothing more.

    smevo train --env CartPole-v1 --mutation SM-G-SUM    # a run in runs/<env>-<mutation>-<time>
    smevo resume RUN                                     # continue it from its last checkpoint
    smevo eval RUN                                       # score best.pt on fresh episodes
    smevo watch RUN [--record FILE.gif]                  # see best.pt act
    smevo list [envs|policies|mutations|algorithms|backends|config [SECTION]]
    smevo plot RUN... --out curves.png                   # median and IQR across seeds
    smevo fit --task pattern-completion --policy plastic # gradient training (BPTT, Adam)
    smevo a2c --config configs/gridmaze-neuromod-a2c.yaml # episodic A2C meta-training

A config is built in one order: defaults, then ``--config FILE``, then explicit flags, then
``--set key=value`` in the order given. Names (env, policy, mutation, algorithm) and the
policy's fit to the env's spaces, the device, the output folders and the run's memory are
checked before a run starts. Every error the user can cause — a `ValueError` (config,
checkpoint, unknown name, bad spaces, sizes beyond memory) or an `OSError` (a missing file, a
folder that cannot be written) — is one line ``smevo: error: <message>`` on stderr and exit
status 2, never a traceback. Anything else is a bug: one line ``smevo: error: internal
error: ...`` and status 1 (``smevo --debug ...`` shows the traceback). Ctrl-C exits with 130
(the trainer checkpoints on its way out).

This module is the entry point and keeps that contract; the parser and each verb live in
`smevo.commands` (one module per verb or family of verbs).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from smevo.commands.common import PROG, one_line, os_error_line
from smevo.commands.parser import build_parser

__all__ = ["main"]


class _NeverRaised(Exception):
    """Stands in for `WorkerCrashError` while no backend has been imported (none can raise it)."""


def _worker_crash_error() -> type[Exception]:
    """`WorkerCrashError` if the backends are loaded, else a class nothing raises: `main` catches
    a crashed worker without importing the backends (and torch) for every command."""
    backends = sys.modules.get("smevo.evaluation.backends")
    return backends.WorkerCrashError if backends is not None else _NeverRaised


def main(argv: list[str] | None = None) -> int:
    """Run the ``smevo`` command line; returns the exit status: 2 for a user error (a bad
    value, name or file), 1 for an internal error (a bug: one line, the traceback with
    ``--debug``) or a crashed worker, 130 for Ctrl-C."""
    args = argparse.Namespace(debug=False)
    try:
        args = build_parser().parse_args(argv)
        return args.command(args)
    except SystemExit as done:  # --help and --version exit through argparse
        return done.code if isinstance(done.code, int) else 0
    except KeyboardInterrupt:
        if argv is None:  # this process exits now: a second Ctrl-C or SIGTERM must not
            for signum in (signal.SIGINT, signal.SIGTERM):  # interrupt its clean-up
                signal.signal(signum, signal.SIG_IGN)
        return 130
    except _worker_crash_error() as error:  # not the user's doing; the run is checkpointed
        sys.stderr.write(f"{PROG}: error: {one_line(error)}\n")
        return 1
    except ValueError as error:
        sys.stderr.write(f"{PROG}: error: {one_line(error)}\n")
        return 2
    except BrokenPipeError:  # e.g. `smevo list envs | head`: stop writing, no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as error:  # a file or folder that is missing, not writable, not a folder
        sys.stderr.write(f"{PROG}: error: {os_error_line(error)}\n")
        return 2
    except MemoryError as error:  # a size the up-front checks do not bound (e.g. `fit`)
        sys.stderr.write(f"{PROG}: error: out of memory ({one_line(error)}); use smaller sizes\n")
        return 2
    except Exception as error:  # a bug: one line, the traceback on request
        if args.debug:
            raise
        sys.stderr.write(
            f"{PROG}: error: internal error: {type(error).__name__}: {one_line(error)} "
            f"(run '{PROG} --debug ...' for the traceback and report it)\n"
        )
        return 1
