"""The runner lease: at most one process runs the jobs of a database."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from .errors import LeaseHeldError

__all__ = ["RunnerLease", "FileLease", "NullLease"]


class RunnerLease(Protocol):
    """Held by the one process allowed to run jobs (a PostgreSQL advisory lock can implement it later)."""

    def acquire(self) -> None:
        """Take the lease or raise `LeaseHeldError` naming the holder."""

    def try_acquire(self) -> bool:
        """Take the lease if it is free (or held already); False if another process holds it."""
        ...

    def holder(self) -> str:
        """Who holds the lease, for messages."""
        ...

    def release(self) -> None:
        """Give the lease back (no-op if not held)."""


class NullLease:
    """No lease: for in-memory schedulers, which no other process can see."""

    def acquire(self) -> None:
        return None

    def try_acquire(self) -> bool:
        return True

    def holder(self) -> str:
        return "this process"

    def release(self) -> None:
        return None


class FileLease:
    """An exclusive `flock` on `<database>.lock`, which also names the holder (pid, host, since).

    The lock sits beside the database's real file: paths that reach it through a symbolic link (or
    `..`) take the same lock.
    """

    def __init__(self, database: str | os.PathLike[str]) -> None:
        self.path = Path(f"{os.path.realpath(database)}.lock")
        self._file: IO[str] | None = None

    def holder(self) -> str:
        """Who holds the lease, as written in the lock file."""
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return "an unknown process"
        return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"

    def acquire(self) -> None:
        if not self.try_acquire():
            raise LeaseHeldError(
                f"Another scheduler process ({self.holder()}) is running the jobs of {self.path.stem!r}. "
                "Stop it first, or use another database file."
            )

    def try_acquire(self) -> bool:
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the life of the lease
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        since = datetime.now(UTC).isoformat(timespec="seconds")
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}))
        handle.flush()
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is None:
            return
        try:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            self._file.close()
            self._file = None
