"""Ctrl-C and SIGTERM as an orderly stop of a run.

A run may be abandoned at once only where that loses nothing: while a generation is being
evaluated (an algorithm commits a generation only after its evaluations, so the last finished
one is intact). There the first signal raises `KeyboardInterrupt`. Everywhere else (setting
up, mutating, logging, writing a checkpoint or ``best.pt``) it is only recorded, and the run
stops at the next evaluation or at the end of the generation. Any later signal is ignored: a
second Ctrl-C or SIGTERM may not cut a checkpoint write in half, and the shutdown it would
hurry is already short (the trainer kills its workers rather than wait for them).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

__all__ = ["StopSignals"]


class StopSignals:
    """Handlers for SIGINT and SIGTERM for the life of a ``with`` block (see the module
    docstring); `received` is the first signal's number, or None.

    Blocks may nest (the outermost installs and restores the handlers). Outside the main
    thread, where Python cannot install handlers, a block changes nothing. A SIGINT ignored
    when the block begins (a shell's background job) stays ignored.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._interruptible = 0
        self._depth = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        self._depth += 1
        if self._depth == 1 and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            if self._interruptible:
                raise KeyboardInterrupt(signal.Signals(signum).name)

    def check(self) -> None:
        """Raise `KeyboardInterrupt` if a signal was recorded: the place to stop is here."""
        if self.received is not None:
            raise KeyboardInterrupt(signal.Signals(self.received).name)

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block that the first signal abandons with `KeyboardInterrupt`; entered after a
        signal was recorded, it raises at once."""
        self.check()
        self._interruptible += 1
        try:
            yield
        finally:
            self._interruptible -= 1
