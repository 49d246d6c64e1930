"""The condition triggers' table on both backends: what each watched job's condition was last seen to be.

`scheduler_conditions` holds one row per job with a `policy.when`: `key` (the condition's identity: a hash of the job's
creation time and its `when`, so that a changed condition or a new job of the same id starts afresh), `holds` (1 true,
0 false), `since` (when it became that) and `checked_at` (when a check last changed the row). The runner writes a row
when a check finds the condition changed, before it starts the run that the change fires, so that a runner that
takes over (or a restart) does not fire the same change again. On PostgreSQL that write is fenced as the runner's
run records are (`fence.py`): a runner that lost its lease stores nothing that would make the next runner take a
change as seen. Rows of jobs that are gone are removed when the rows are read. Times are POSIX seconds. The stores
take the two classes as mixins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .fence import token_is_stale

if TYPE_CHECKING:
    from .hooks_table import SQLiteLike
    from .postgres_connections import PostgresConnections

__all__ = ["POSTGRES_CONDITIONS_SCHEMA", "SQLITE_CONDITIONS_SCHEMA", "ConditionRow", "PostgresConditions",
           "SQLiteConditions"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scheduler_conditions (
    job_id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    holds INTEGER NOT NULL,
    since {real} NOT NULL,
    checked_at {real} NOT NULL
);
"""
SQLITE_CONDITIONS_SCHEMA = _SCHEMA.format(real="REAL")
POSTGRES_CONDITIONS_SCHEMA = _SCHEMA.format(real="DOUBLE PRECISION")

_PRUNE = "DELETE FROM scheduler_conditions WHERE job_id NOT IN (SELECT job_id FROM scheduler_jobs)"
_ALL = "SELECT job_id, key, holds, since, checked_at FROM scheduler_conditions"
_NOTE = (
    "INSERT INTO scheduler_conditions (job_id, key, holds, since, checked_at) VALUES ({m}, {m}, {m}, {m}, {m}) "
    "ON CONFLICT (job_id) DO UPDATE SET key = excluded.key, holds = excluded.holds, since = excluded.since, "
    "checked_at = excluded.checked_at"
)


@dataclass(frozen=True)
class ConditionRow:
    """A job's condition as last seen: its identity (`key`), whether it held, since when and when last checked."""

    job_id: str
    key: str
    holds: bool
    since: float
    checked_at: float


def _rows(rows: list[Any]) -> dict[str, ConditionRow]:
    return {row[0]: ConditionRow(row[0], row[1], bool(row[2]), float(row[3]), float(row[4])) for row in rows}


class SQLiteConditions:
    """The condition methods of `SQLiteStore`."""

    async def load_conditions(self: SQLiteLike) -> dict[str, ConditionRow]:
        """Every watched job's condition as last seen, by job id (rows of jobs that are gone removed first)."""

        def load() -> dict[str, ConditionRow]:
            with self._write() as conn:
                conn.execute(_PRUNE)
                return _rows(conn.execute(_ALL).fetchall())

        return await self._run(load)

    async def note_condition(self: SQLiteLike, row: ConditionRow) -> bool:
        """Store a job's condition as now seen (replacing what was stored); True once stored. (The file lock that is
        the runner lease on SQLite is never lost by a live process: no other runner can have written meanwhile.)"""

        def note() -> None:
            with self._write() as conn:
                conn.execute(_NOTE.format(m="?"), (row.job_id, row.key, int(row.holds), row.since, row.checked_at))

        await self._run(note)
        return True


class _PostgresLike(Protocol):
    _db: PostgresConnections
    _fence: Callable[[], int | None]


class PostgresConditions:
    """The condition methods of `PostgresStore` (same meaning as `SQLiteConditions`')."""

    async def load_conditions(self: _PostgresLike) -> dict[str, ConditionRow]:
        async with self._db.transaction() as conn:
            await conn.execute(_PRUNE)
            return _rows(await (await conn.execute(_ALL)).fetchall())

    async def note_condition(self: _PostgresLike, row: ConditionRow) -> bool:
        """As `SQLiteConditions.note_condition`, unless this process's fencing token is stale (it lost the runner
        lease): then nothing is stored and False returned (the next runner checks the condition itself)."""
        async with self._db.transaction() as conn:
            token = self._fence()
            if token is not None and await token_is_stale(conn, token):
                logger.warning("Job %s: the change of its condition is not stored: this process no longer holds the "
                               "runner lease (fencing token %d); the next runner checks it", row.job_id, token)
                return False
            await conn.execute(_NOTE.format(m="%s"), (row.job_id, row.key, int(row.holds), row.since, row.checked_at))
        return True
