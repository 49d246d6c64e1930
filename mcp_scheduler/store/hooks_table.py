"""Inbound webhooks' tables on both backends: the hooks (name, job, signing secret) and the deliveries seen lately.

`scheduler_hooks` holds one row per hook; its secret is kept as given (`whsec_...`): verifying a signature needs
it, so the database file (0600) and the PostgreSQL role guard it as they guard the jobs' input. A hook of a job that
is gone stays until removed and answers as unknown. `scheduler_hook_deliveries` keeps each accepted delivery's
`webhook-id` for the tolerance window, so that a replay is refused by whichever replica receives it: the insert of
an id already there inserts nothing. Times are POSIX seconds. The stores take the two as mixins. Creating and
removing a hook writes its audit entry (`audit`) in the same transaction, when the hook was added or removed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..audit import AuditEntry
from .audit_table import insert_entries

if TYPE_CHECKING:
    import psycopg

    from .postgres_connections import PostgresConnections

__all__ = ["POSTGRES_HOOKS_SCHEMA", "SQLITE_HOOKS_SCHEMA", "HookRow", "PostgresHooks", "SQLiteHooks", "SQLiteLike"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scheduler_hooks (
    name TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS scheduler_hook_deliveries (
    hook TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    at {real} NOT NULL,
    PRIMARY KEY (hook, msg_id)
);
"""
SQLITE_HOOKS_SCHEMA = _SCHEMA.format(real="REAL")
POSTGRES_HOOKS_SCHEMA = _SCHEMA.format(real="DOUBLE PRECISION")

_ADD = (
    "INSERT INTO scheduler_hooks (name, job_id, secret, created_at) VALUES ({m}, {m}, {m}, {m}) ON CONFLICT DO NOTHING"
)
_GET = "SELECT job_id, secret FROM scheduler_hooks WHERE name = {m}"
_OF_JOB = "SELECT name FROM scheduler_hooks WHERE job_id = {m} ORDER BY name"
_REMOVE = "DELETE FROM scheduler_hooks WHERE name = {m}"
_FORGET = "DELETE FROM scheduler_hook_deliveries WHERE at < {m}"
_SEEN = "INSERT INTO scheduler_hook_deliveries (hook, msg_id, at) VALUES ({m}, {m}, {m}) ON CONFLICT DO NOTHING"


@dataclass(frozen=True)
class HookRow:
    """A stored hook: the job it runs and its signing secret."""

    name: str
    job_id: str
    secret: str


class SQLiteLike(Protocol):
    """What the SQLite store's mixins use of it: its thread and its write transaction."""

    async def _run(self, func: Callable[..., T], *args: Any) -> T: ...
    def _db(self) -> sqlite3.Connection: ...
    def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...


class SQLiteHooks:
    """The hook methods of `SQLiteStore`."""

    async def add_hook(
        self: SQLiteLike, name: str, job_id: str, secret: str, at: float, *, audit: AuditEntry | None = None
    ) -> bool:
        """Store a new hook; False (nothing stored) if the name is taken."""

        def add() -> bool:
            with self._write() as conn:
                return _audited(conn, conn.execute(_ADD.format(m="?"), (name, job_id, secret, at)).rowcount, audit)

        return await self._run(add)

    async def get_hook(self: SQLiteLike, name: str) -> HookRow | None:
        """The hook named `name`, or None."""
        rows = await self._run(lambda: self._db().execute(_GET.format(m="?"), (name,)).fetchall())
        return HookRow(name, rows[0][0], rows[0][1]) if rows else None

    async def hooks_of(self: SQLiteLike, job_id: str) -> list[str]:
        """The names of the hooks that run `job_id`."""
        rows = await self._run(lambda: self._db().execute(_OF_JOB.format(m="?"), (job_id,)).fetchall())
        return [row[0] for row in rows]

    async def remove_hook(self: SQLiteLike, name: str, *, audit: AuditEntry | None = None) -> bool:
        """Remove a hook; False if there was none of that name."""

        def remove() -> bool:
            with self._write() as conn:
                return _audited(conn, conn.execute(_REMOVE.format(m="?"), (name,)).rowcount, audit)

        return await self._run(remove)

    async def note_delivery(self: SQLiteLike, hook: str, msg_id: str, at: float, forget_before: float) -> bool:
        """Record a delivery's id (forgetting those older than `forget_before`); False if it was recorded already
        (a replay)."""

        def note() -> bool:
            with self._write() as conn:
                conn.execute(_FORGET.format(m="?"), (forget_before,))
                return conn.execute(_SEEN.format(m="?"), (hook, msg_id, at)).rowcount == 1

        return await self._run(note)


def _audited(conn: sqlite3.Connection, rowcount: int, audit: AuditEntry | None) -> bool:
    """Whether a hook was added or removed (its row count: 1); if so, its audit entry inserted."""
    if rowcount != 1:
        return False
    if audit is not None:
        insert_entries(conn, [audit])
    return True


class _PostgresLike(Protocol):
    _db: PostgresConnections

    async def _append_audit(self, conn: psycopg.AsyncConnection[Any], entries: Sequence[AuditEntry]) -> None: ...


class PostgresHooks:
    """The hook methods of `PostgresStore` (same meaning as `SQLiteHooks`')."""

    async def add_hook(
        self: _PostgresLike, name: str, job_id: str, secret: str, at: float, *, audit: AuditEntry | None = None
    ) -> bool:
        async with self._db.transaction() as conn:
            added = (await conn.execute(_ADD.format(m="%s"), (name, job_id, secret, at))).rowcount == 1
            if added and audit is not None:
                await self._append_audit(conn, [audit])
            return added

    async def get_hook(self: _PostgresLike, name: str) -> HookRow | None:
        rows = await self._db.fetch(_GET.format(m="%s"), (name,))
        return HookRow(name, rows[0][0], rows[0][1]) if rows else None

    async def hooks_of(self: _PostgresLike, job_id: str) -> list[str]:
        return [row[0] for row in await self._db.fetch(_OF_JOB.format(m="%s"), (job_id,))]

    async def remove_hook(self: _PostgresLike, name: str, *, audit: AuditEntry | None = None) -> bool:
        async with self._db.transaction() as conn:
            removed = (await conn.execute(_REMOVE.format(m="%s"), (name,))).rowcount == 1
            if removed and audit is not None:
                await self._append_audit(conn, [audit])
            return removed

    async def note_delivery(self: _PostgresLike, hook: str, msg_id: str, at: float, forget_before: float) -> bool:
        async with self._db.transaction() as conn:
            await conn.execute(_FORGET.format(m="%s"), (forget_before,))
            return (await conn.execute(_SEEN.format(m="%s"), (hook, msg_id, at))).rowcount == 1
