"""Compare-and-swap of one run record, on both backends: how a run asked of the runner through the store is settled
once, by its asker or by a runner, whichever comes first (scheduler/run_requests.py).

`replace_run(expected, record)` writes `record` in place of the stored record of its run only if the stored one is
still `expected` (read back, it equals it: a version that stores more fields compares what both hold), or, with
`expected` None, only if no record of the run is stored; in one transaction that holds the row, and gives the row a
new seq so that followers read it. A runner taking a request and the process that wrote it withdrawing it both swap
from the request as they read it: the first swap commits, the other finds another record there and changes nothing.
A runner starts a run it took by a swap from the record it wrote when it took it (`Execution.execute`), so that of
it and a runner taking over that took the run again, exactly one starts it. On PostgreSQL a runner's swap
(`fenced`) is refused too when this process's fencing token is stale (`fence.py`), in the swap's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..models import RunRecord
from .codec import read_run, run_row
from .fence import token_is_stale
from .hooks_table import SQLiteLike

if TYPE_CHECKING:
    from .postgres_connections import PostgresConnections

__all__ = ["RUNS_LOCK", "PostgresRunSwap", "SQLiteRunSwap"]

RUNS_LOCK = 2  # the advisory lock of the runs feed on PostgreSQL (postgres.py): seqs become visible in order


def _is(row: Sequence[Any] | None, expected: RunRecord | None) -> bool:
    """True if the stored row of a run (None: none stored) holds `expected` (None: no record)."""
    if row is None or expected is None:
        return row is None and expected is None
    return read_run(row[0]) == expected


class _SQLiteSwapper(SQLiteLike, Protocol):
    writer: str


class SQLiteRunSwap:
    """`replace_run` of `SQLiteStore`."""

    async def replace_run(
        self: _SQLiteSwapper, expected: RunRecord | None, record: RunRecord, *, fenced: bool = False
    ) -> bool:
        """Write `record` in place of the stored `expected` (same run id) if that is what is stored, or with
        `expected` None if no record of the run is stored; True if written. `fenced`: a runner's write (on SQLite
        its file lock is the fence: nothing to check)."""

        def swap() -> bool:
            with self._write() as conn:
                row = conn.execute("SELECT record FROM scheduler_runs WHERE run_id = ?", (record.run_id,)).fetchone()
                if not _is(row, expected):
                    return False
                # REPLACE: a new seq, which followers read.
                conn.execute(
                    "INSERT OR REPLACE INTO scheduler_runs (run_id, job_id, status, record, at, agentool, writer) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", (*run_row(record), self.writer),
                )
                return True

        return await self._run(swap)


class _PostgresSwapper(Protocol):
    _db: PostgresConnections
    _fence: Callable[[], int | None]
    writer: str


class PostgresRunSwap:
    """`replace_run` of `PostgresStore` (same meaning as `SQLiteRunSwap`'s)."""

    async def replace_run(
        self: _PostgresSwapper, expected: RunRecord | None, record: RunRecord, *, fenced: bool = False
    ) -> bool:
        """As `SQLiteRunSwap.replace_run`; `fenced`: refused (False) if this process's fencing token is stale."""
        from agentool_bridge.postgres import ADVISORY_XACT_LOCK  # psycopg: imported on PostgreSQL only

        run_id, job_id, status, text, at, agentool = run_row(record)
        async with self._db.transaction() as conn:
            token = self._fence() if fenced else None
            if token is not None and await token_is_stale(conn, token):
                return False
            # The feed's lock before the row's: write_batch takes them in that order.
            await conn.execute(ADVISORY_XACT_LOCK, (RUNS_LOCK,))
            cur = await conn.execute("SELECT record FROM scheduler_runs WHERE run_id = %s FOR UPDATE", (run_id,))
            row = await cur.fetchone()
            if not _is(row, expected):
                return False
            if row is None:  # no record stored, as expected: none can be inserted meanwhile (the feed's lock)
                await conn.execute(
                    "INSERT INTO scheduler_runs (run_id, job_id, status, record, writer, at, agentool) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)", (run_id, job_id, status, text, self.writer, at, agentool),
                )
            else:
                await conn.execute(
                    "UPDATE scheduler_runs SET seq = DEFAULT, job_id = %s, status = %s, record = %s, writer = %s, "
                    "at = %s, agentool = %s WHERE run_id = %s",
                    (job_id, status, text, self.writer, at, agentool, run_id),
                )
            await self._db.notify(conn)
        return True


