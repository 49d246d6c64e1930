"""The audit log's table (`scheduler_audit`) on both backends: its schema, the INSERT of entries and the read.

One row per `AuditEntry`, appended in order (`seq`); times as POSIX seconds on both backends. A change's entry is
inserted in the change's own transaction (the `audit` argument of the stores' job and hook writes: both commit or
neither does); a change with no store write of its own (run_now, backfill, apply, start and stop) appends its entry
alone (`append_audit`). The stores read entries with `AuditQuery.statement`.

An entry the database refuses (a trigger, a rule, a permission, a constraint) is raised as `AuditWriteError`, which
says what was not done and what to do, with the database's own error logged to stderr (`refused`): the caller is
told nothing of the database's internals. A full disk and a lost connection stay as they are (their own handling
names them).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

from ..audit import AuditEntry, audit_row
from ..errors import AuditWriteError, is_disk_full

__all__ = ["POSTGRES_AUDIT_SCHEMA", "SQLITE_AUDIT_SCHEMA", "audit_insert", "audit_rows", "insert_entries", "refused"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scheduler_audit (
    seq {seq},
    at {real} NOT NULL,
    subject TEXT NOT NULL,
    client TEXT,
    operation TEXT NOT NULL,
    job_id TEXT,
    fields TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS scheduler_audit_by_subject ON scheduler_audit (subject, seq);
CREATE INDEX IF NOT EXISTS scheduler_audit_by_job ON scheduler_audit (job_id, seq);
"""

SQLITE_AUDIT_SCHEMA = _SCHEMA.format(seq="INTEGER PRIMARY KEY AUTOINCREMENT", real="REAL")
"""The table on SQLite (one writer at a time: `seq` is commit order)."""
POSTGRES_AUDIT_SCHEMA = _SCHEMA.format(seq="BIGSERIAL PRIMARY KEY", real="DOUBLE PRECISION")
"""The table on PostgreSQL (writers take advisory lock 5 first, so that `seq` is commit order there too and a
reader paging by seq skips nothing)."""


def audit_insert(mark: str) -> str:
    """The INSERT of one entry's row (`audit_rows`), with the driver's placeholder `mark`."""
    return (
        f"INSERT INTO scheduler_audit (at, subject, client, operation, job_id, fields) VALUES ({', '.join([mark] * 6)})"
    )


def audit_rows(entries: Sequence[AuditEntry]) -> list[tuple[float, str, str | None, str, str | None, str]]:
    """The rows of `entries`."""
    return [audit_row(entry) for entry in entries]


def refused(entries: Sequence[AuditEntry], exc: BaseException) -> AuditWriteError:
    """The error to raise for `entries` the database refused with `exc` (logged here, with the database's words)."""
    first = entries[0]
    logger.error("The database refused the audit entry of %s %s by %s, so the change was not made: %s: %s",
                 first.operation, first.job_id or "", first.subject, type(exc).__name__, exc)
    return AuditWriteError(first.operation, first.job_id)


def insert_entries(conn: sqlite3.Connection, entries: Sequence[AuditEntry]) -> None:
    """Insert `entries` on SQLite, in the caller's transaction; `AuditWriteError` if the database refuses them."""
    try:
        conn.executemany(audit_insert("?"), audit_rows(entries))
    except sqlite3.Error as exc:
        if is_disk_full(exc) or "locked" in str(exc):  # a full disk, another writer: not a refusal of the entry
            raise
        raise refused(entries, exc) from exc
