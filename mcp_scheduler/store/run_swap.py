"""Compare-and-swap of run records, on both backends: how a run asked of the runner through the store is settled
once, by its asker or by a runner, whichever comes first (scheduler/run_requests.py), and how a runner starts a run
that the store holds for it.

A swap `(expected, record)` writes `record` in place of the stored record of its run only if the stored one is still
`expected` (read back, it equals it: a version that stores more fields compares what both hold), or, with `expected`
None, only if no record of the run is stored; in a transaction that holds the row, giving the row a new seq so that
followers read it. `replace_run` makes one swap in a transaction of its own: a runner taking a request and the
process that wrote it withdrawing it both swap from the request as they read it, so the first commits and the other
finds another record there and changes nothing. `write_batch(..., swaps=...)` makes swaps in the transaction of a
history batch, after its records: a runner starts a run it took by a swap from the record it wrote when it took it
(a queue message's run from no record), so that of it and a runner that took over and took the run again, exactly
one starts it. On PostgreSQL a runner's swaps (`fenced`, and every swap of a batch) are refused too when this
process's fencing token is stale (`fence.py`), checked in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from ..models import RunRecord
from .codec import read_run, run_row, run_text
from .fence import token_is_stale
from .hooks_table import SQLiteLike

if TYPE_CHECKING:
    import psycopg

    from .postgres_connections import PostgresConnections

__all__ = ["POSTGRES_UPSERT", "RUNS_LOCK", "PostgresRunSwap", "SQLiteRunSwap", "Swap", "postgres_swaps",
           "sqlite_swaps"]

RUNS_LOCK = 2  # the advisory lock of the runs feed on PostgreSQL (postgres.py): seqs become visible in order

Swap: TypeAlias = tuple[RunRecord | None, RunRecord]
"""(expected, record): `record` is written only if the stored record of its run is `expected` (None: none)."""

# A run written again gets a new seq (DEFAULT draws from the sequence), so that followers, who read the runs by seq,
# see its later record.
POSTGRES_UPSERT = (
    "INSERT INTO scheduler_runs (run_id, job_id, status, record, writer, at, agentool) "
    "SELECT r.run_id, r.job_id, r.status, r.record, %s, r.at, r.agentool FROM unnest("
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::float8[], %b::text[]) WITH ORDINALITY "
    "AS r(run_id, job_id, status, record, at, agentool, n) ORDER BY r.n "
    "ON CONFLICT (run_id) DO UPDATE SET seq = DEFAULT, "
    "job_id = EXCLUDED.job_id, status = EXCLUDED.status, record = EXCLUDED.record, "
    "writer = EXCLUDED.writer, at = EXCLUDED.at, agentool = EXCLUDED.agentool"
)
_SQLITE_UPSERT = (
    "INSERT OR REPLACE INTO scheduler_runs (run_id, job_id, status, record, at, agentool, writer) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _holds(stored: str | RunRecord | None, expected: RunRecord | None) -> bool:
    """True if a run's stored record (its text; None: none stored) is `expected` (None: no record), both as the
    store keeps them: a record built in memory (a chained run's waiting record, carrying the result of the run it
    follows) may hold what its stored text does not give back as it was (a tuple, a NaN)."""
    if stored is None or expected is None:
        return stored is None and expected is None
    kept = read_run(run_text(expected))
    return (read_run(stored) if isinstance(stored, str) else read_run(run_text(stored))) == kept


def sqlite_swaps(conn: sqlite3.Connection, swaps: Sequence[Swap], writer: str) -> set[str]:
    """Make `swaps` in the caller's write transaction; the run ids written."""
    done: set[str] = set()
    for expected, record in swaps:
        row = conn.execute("SELECT record FROM scheduler_runs WHERE run_id = ?", (record.run_id,)).fetchone()
        if _holds(None if row is None else row[0], expected):
            conn.execute(_SQLITE_UPSERT, (*run_row(record), writer))  # REPLACE: a new seq, which followers read
            done.add(record.run_id)
    return done


async def postgres_swaps(conn: psycopg.AsyncConnection[Any], swaps: Sequence[Swap], writer: str) -> set[str]:
    """Make `swaps` in the caller's transaction, which holds the runs feed's lock (RUNS_LOCK: no record of these
    runs can be inserted meanwhile) and checked the fencing token; the run ids written."""
    if not swaps:
        return set()
    cur = await conn.execute("SELECT run_id, record FROM scheduler_runs WHERE run_id = ANY(%b::text[]) FOR UPDATE",
                             ([record.run_id for _, record in swaps],))
    stored: dict[str, str | RunRecord] = {run_id: text for run_id, text in await cur.fetchall()}
    written: dict[str, RunRecord] = {}
    for expected, record in swaps:  # in order, as SQLite makes them: a later swap of a run sees an earlier one's
        if _holds(stored.get(record.run_id), expected):
            stored[record.run_id] = written[record.run_id] = record
    if written:
        columns: list[list[Any]] = [[] for _ in range(6)]
        for row in map(run_row, written.values()):
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        await conn.execute(POSTGRES_UPSERT, (writer, *columns))
    return set(written)


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
                return bool(sqlite_swaps(conn, [(expected, record)], self.writer))

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

        async with self._db.transaction() as conn:
            token = self._fence() if fenced else None
            if token is not None and await token_is_stale(conn, token):
                return False
            # The feed's lock before the row's: write_batch takes them in that order.
            await conn.execute(ADVISORY_XACT_LOCK, (RUNS_LOCK,))
            if not await postgres_swaps(conn, [(expected, record)], self.writer):
                return False
            await self._db.notify(conn)
        return True
