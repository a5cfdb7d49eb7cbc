"""One process owns a run directory at a time.

Two processes writing one run (two ``smevo resume RUN`` at once) would interleave their
``metrics.jsonl`` lines and delete each other's temporary checkpoints. `RunLock` takes an
exclusive ``flock`` on ``RUN/.lock`` for as long as the run is trained and writes its PID
there; a second process is refused with a `RunLockedError` naming that PID. The kernel drops
the lock when its holder exits, however it exits (SIGKILL included), so a stale lock file
never blocks a later resume. On systems without ``fcntl`` (Windows) runs are not locked.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["LOCK_FILE", "RunLock", "RunLockedError"]

LOCK_FILE = ".lock"
"""The lock file's name inside a run directory."""


class RunLockedError(ValueError):
    """The run directory is in use by another process; the message names its PID."""


class RunLock:
    """An exclusive lock on a run directory, held from `acquire` (or ``with``) to `release`."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write this process's PID into the lock file, or raise
        `RunLockedError` at once (never wait) if another process holds it."""
        if fcntl is None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            raise RunLockedError(
                f"{self.run_dir} is in use by another smevo process"
                f"{f' (PID {holder})' if holder.isdigit() else ''}; wait for it to end or "
                "stop it first"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        """Drop the lock. The file stays: deleting it could let a process that opened it just
        before lock a file no longer in the directory while a third locks a new one."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
