"""The SQLite file on its disk: the connection's settings (WAL), a WAL kept small, and a full disk told plainly.

SQLite checkpoints its WAL every 1,000 pages but keeps the file at its largest size; on a small or nearly full
disk the WAL alone can take the last free bytes, and then it cannot be checkpointed either (the database file
needs room for the pages it does not have yet). `DiskGuard` truncates it before a write once it grows past half
the disk's free space (or `WAL_MOST`), and when a statement fails for lack of room, then tries that statement
once more; a disk that is still full raises `DiskFullError` (the file, the free space, what to do).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import DiskFullError, is_disk_full

__all__ = ["WAL_KEPT", "WAL_LEAST", "WAL_MOST", "DiskGuard", "connect", "connect_marks"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

WAL_KEPT = 1 << 20
"""Bytes of the WAL file kept after a checkpoint (`journal_size_limit`): beyond that they go back to the disk."""
WAL_LEAST = 64 << 10
"""A WAL file smaller than this is left as it is after a commit (a full disk still truncates it)."""
WAL_MOST = 32 << 20
"""A WAL file larger than this, or than half the disk's free space, is checkpointed and truncated before a write."""
BUSY_TIMEOUT_MS = 5000
CHECKPOINT_WAIT_MS = 200
"""How long a truncating checkpoint waits for other connections' readers and writers (they hold the store's thread
meanwhile); one that they kept from finishing is not tried again before a write for `RETRY_AFTER` seconds."""
RETRY_AFTER = 1.0


def connect(database: str | os.PathLike[str] | None) -> sqlite3.Connection:
    """Open SQLite (WAL, synchronous=NORMAL) at `database`, or in memory when it is None."""
    path = ":memory:" if database is None else os.fspath(database)
    if path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    _set_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA journal_size_limit={WAL_KEPT}")
    return conn


def _set_wal(conn: sqlite3.Connection) -> None:
    # Switching a new file to WAL takes an exclusive lock without calling the busy handler: processes opening the
    # file together get "database is locked" at once, so this waits for the others here, as busy_timeout would.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def connect_marks(database: str) -> sqlite3.Connection:
    """A read-only connection to the file `database` for `PRAGMA data_version` only, which never waits for a lock
    (no busy timeout: a lock held elsewhere is an error at once)."""
    conn = sqlite3.connect(database, timeout=0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA query_only=1")
    return conn


class DiskGuard:
    """Keeps the WAL of the SQLite file `database` small and turns a full disk into `DiskFullError`.

    `connection()` returns the store's connection (None before it is open); every method runs on the store's
    thread.
    """

    def __init__(self, database: str | None, connection: Callable[[], sqlite3.Connection | None]) -> None:
        self._database = database
        self._wal = None if database is None else f"{database}-wal"
        self._connection = connection
        self._quiet_until = 0.0  # after a checkpoint that other connections kept from finishing

    def run(self, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)`; when the disk is full: the WAL truncated and `func` run once more (a failed write was
        rolled back whole), then `DiskFullError` if there is still no room."""
        try:
            return func(*args)
        except (sqlite3.Error, OSError) as exc:
            if self._database is None or not is_disk_full(exc):
                raise
        self.shrink_wal()
        try:
            return func(*args)
        except (sqlite3.Error, OSError) as exc:
            if is_disk_full(exc):
                raise DiskFullError(self._database) from exc
            raise

    def before_write(self) -> None:
        """Checkpoint and truncate the WAL once it is larger than `WAL_MOST` or half the disk's free space.

        Before a write rather than after it: copying the WAL into the database may need room (the pages the
        database file does not have yet), which this leaves, and which a write could take first.
        """
        if self._wal is None or time.monotonic() < self._quiet_until:
            return
        try:
            size = os.stat(self._wal).st_size
            if size <= WAL_LEAST:
                return
            if size > min(WAL_MOST, shutil.disk_usage(os.path.dirname(self._wal) or ".").free // 2):
                self.shrink_wal()
        except OSError:
            return

    def shrink_wal(self) -> None:
        """Copy the WAL into the database and truncate it to nothing (its space goes back to the disk)."""
        conn = self._connection()
        if conn is None:
            return
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
            try:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if busy:
                self._quiet_until = time.monotonic() + RETRY_AFTER
                logger.debug("The WAL of %s was not truncated: another connection is using it", self._database)
        except sqlite3.Error as exc:  # copying the WAL into the database may need room the disk does not have
            logger.debug("Checkpointing the WAL of %s failed: %s", self._database, exc)
