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

__all__ = ["KEEP_EVERY", "RunnerLease", "FileLease", "NullLease"]

KEEP_EVERY = 1.0
"""Seconds between a runner's confirmations of its lease (at most: a short lease is confirmed more often)."""


class RunnerLease(Protocol):
    """Held by the one process allowed to fire jobs: a file lock on SQLite, an advisory lock on PostgreSQL."""

    @property
    def claims_each_fire(self) -> bool:
        """True if `claim` asks the store (PostgreSQL); False if a claim is `is_held()` (then the run path asks
        that, without awaiting a coroutine per fire)."""
        ...

    async def try_acquire(self) -> bool:
        """Take the lease if it is free (or held already); False if another process holds it."""
        ...

    async def keep(self) -> bool:
        """Confirm the lease is still held (the runner calls this every `keep_every()` seconds); False means
        it is lost and the caller must stop firing at once, before another process can take it."""
        ...

    def keep_every(self) -> float:
        """Seconds between the runner's confirmations: often enough that a late one does not lose the lease."""
        ...

    async def claim(self, job_id: str, scheduled: datetime) -> bool:
        """Claim one fire through the lease: False if it was claimed before (or the lease is lost)."""
        ...

    def is_held(self) -> bool:
        """True while the lease is held and was confirmed recently enough to act on (no I/O)."""
        ...

    def holder(self) -> str:
        """Who holds the lease, for messages (as last seen)."""
        ...

    async def note_stopped(self, since: datetime | None) -> None:
        """While held: tell the other processes that this holder stopped processing jobs at `since`
        (stop_scheduler), or with None that it processes them again. Kept with the lease and gone with it."""

    def holder_stopped(self) -> str | None:
        """When the holder (as last seen) stopped processing jobs, ISO 8601 to the second; None while it processes
        them (or none holds the lease)."""
        ...

    def takeover_wait(self) -> float:
        """Seconds from when this process took the lease until the runs of the holder before it are known
        stopped: a holder that loses the lease cancels its runs within that time; 0 where only a stopped
        process lets go of the lease (a file lock). A run the last holder left interrupted is not retried
        before then."""
        ...

    def fencing_token(self) -> int | None:
        """The token the store checks with each write of the runner: the one drawn with the lease while this
        process holds it, one no holder draws once it lost it (None: no token, as with a file lock, which only
        a stopped process lets go of)."""
        ...

    async def release(self) -> None:
        """Give the lease back (no-op if not held)."""


class NullLease:
    """No lease: for in-memory schedulers, which no other process can see."""

    claims_each_fire = False

    async def try_acquire(self) -> bool:
        return True

    async def keep(self) -> bool:
        return True

    def keep_every(self) -> float:
        return KEEP_EVERY

    async def claim(self, job_id: str, scheduled: datetime) -> bool:
        return True

    def is_held(self) -> bool:
        return True

    def holder(self) -> str:
        return "this process"

    async def note_stopped(self, since: datetime | None) -> None:
        return None

    def holder_stopped(self) -> str | None:
        return None

    def takeover_wait(self) -> float:
        return 0.0

    def fencing_token(self) -> int | None:
        return None

    async def release(self) -> None:
        return None


class FileLease:
    """An exclusive `flock` on `<database>.lock`, which also names the holder (pid, host, since) and, while it has
    stopped processing jobs, since when (`stopped`).

    The lock sits beside the database's real file: paths that reach it through a symbolic link (or
    `..`) take the same lock.
    """

    claims_each_fire = False

    def __init__(self, database: str | os.PathLike[str]) -> None:
        self.path = Path(f"{os.path.realpath(database)}.lock")
        self._file: IO[str] | None = None
        self._since = ""

    def holder(self) -> str:
        """Who holds the lease, as written in the lock file."""
        info = self._read()
        if info is None:
            return "an unknown process"
        return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"

    def holder_stopped(self) -> str | None:
        info = self._read()
        stopped = None if info is None else info.get("stopped")
        return stopped if isinstance(stopped, str) else None

    def _read(self) -> dict[str, object] | None:
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    async def note_stopped(self, since: datetime | None) -> None:
        if self._file is not None:
            self._write(since)

    def _write(self, stopped: datetime | None) -> None:
        """The holder's line, in one write over the last one: its length never changes (padded with spaces), so
        a reader finds the one or the other, never a mix."""
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": self._since,
            "stopped": None if stopped is None else _seconds(stopped),
        }
        longest = json.dumps({**info, "stopped": _seconds(datetime.now(UTC))})
        fd = os.open(self.path, os.O_WRONLY)  # the held handle appends (a+): a rewrite in place needs another
        try:
            os.pwrite(fd, json.dumps(info).ljust(len(longest)).encode(), 0)
        finally:
            os.close(fd)

    async def try_acquire(self) -> bool:
        return self.take()

    async def keep(self) -> bool:
        return self._file is not None  # a lock held by a live process cannot be taken from it

    def keep_every(self) -> float:
        return KEEP_EVERY

    async def claim(self, job_id: str, scheduled: datetime) -> bool:
        # The lock fences by itself: only its holder fires, and the fire's start is committed before it
        # runs, so the next holder never sees it due again.
        return self._file is not None

    def is_held(self) -> bool:
        return self._file is not None

    def takeover_wait(self) -> float:
        # The kernel frees the lock only when its holder let go (after its runs ended) or died with them.
        return 0.0

    def fencing_token(self) -> int | None:
        return None

    async def release(self) -> None:
        self.drop()

    def acquire(self) -> None:
        """Take the lease or raise `LeaseHeldError` naming the holder."""
        if not self.take():
            raise LeaseHeldError(
                f"Another scheduler process ({self.holder()}) is running the jobs of {self.path.stem!r}. "
                "Stop it first, or use another database file."
            )

    def take(self) -> bool:
        """Take the lock if it is free (without waiting); False if another process holds it."""
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
        self._since = _seconds(datetime.now(UTC))
        self._write(None)
        self._file = handle
        return True

    def drop(self) -> None:
        """Give the lock back (no-op if not held)."""
        if self._file is None:
            return
        try:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            self._file.close()
            self._file = None


def _seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")
