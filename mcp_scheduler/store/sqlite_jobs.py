"""The SQLite store's job writes (insert, state, update, delete) and the change feed each appends to.

Each runs on the store's thread in one write transaction (BEGIN IMMEDIATE), which also inserts the change's audit
entry when one is given: the change and its entry commit together or not at all. `SQLiteStore` takes them as a
mixin, as it takes the hook methods.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from ..audit import AuditEntry
from ..errors import JobExistsError, JobNotFoundError, TooManyJobsError
from ..jobs import Job, JobState
from .audit_table import insert_entries
from .codec import TextTimes
from .feeds import changes_pruned_to
from .hooks_table import SQLiteLike

__all__ = ["CODEC", "ROWS_PER_STATEMENT", "SQLiteJobs", "execute_rows"]

CODEC = TextTimes()  # SQLite has no time type: times are ISO 8601 text

# Rows per multi-row statement: within the 999 parameters of older SQLite builds. Each statement is one
# hand-over of the GIL from this thread; one statement per row would wait for the busy event loop's
# switch interval once per row (a 20,000-row batch then took 13 s instead of a fraction of one).
ROWS_PER_STATEMENT = 150


def execute_rows(conn: sqlite3.Connection, head: str, rows: Sequence[tuple[Any, ...]], tail: str = "") -> int | None:
    """Run `head VALUES (...), (...) tail` over `rows`, ROWS_PER_STATEMENT rows per statement; the rowid of the last
    row an INSERT added (None when there are no rows)."""
    if not rows:
        return None
    one = "(" + ", ".join("?" * len(rows[0])) + ")"
    last = None
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        last = conn.execute(f"{head} VALUES {', '.join([one] * len(chunk))} {tail}", [v for row in chunk for v in row])
    return None if last is None else last.lastrowid


class _Store(SQLiteLike, Protocol):
    writer: str


class SQLiteJobs:
    """The job writes of `SQLiteStore` (see `SchedulerStore` for their meaning)."""

    async def insert_jobs(
        self: _Store, jobs: Sequence[Job], *, max_jobs: int | None = None, audit: AuditEntry | None = None
    ) -> None:
        jobs = list(jobs)

        def insert() -> None:
            rows = [CODEC.new_job(job) for job in jobs]  # serialised on the store's thread, off the event loop
            with self._write() as conn:
                _insert(conn, jobs, rows, max_jobs)
                _noted(conn, [job.job_id for job in jobs], self.writer, audit)

        await self._run(insert)

    async def set_state(
        self: _Store,
        job_id: str,
        state: JobState,
        next_run_time: datetime | None,
        progress: str | None = None,
        *,
        audit: AuditEntry | None = None,
    ) -> None:
        values = (state, CODEC.time(next_run_time), progress, job_id)

        def write() -> None:
            with self._write() as conn:
                conn.execute(
                    "UPDATE scheduler_jobs SET state = ?, next_run_time = ?, progress = COALESCE(?, progress) "
                    "WHERE job_id = ?",
                    values,
                )
                _noted(conn, [job_id], self.writer, audit)

        await self._run(write)

    async def update_job(self: _Store, job: Job, *, audit: AuditEntry | None = None) -> None:
        row = CODEC.changed_job(job)

        def update() -> None:
            with self._write() as conn:
                changed = conn.execute(
                    "UPDATE scheduler_jobs SET definition = ?, state = ?, next_run_time = ? WHERE job_id = ?", row
                ).rowcount
                if not changed:
                    raise JobNotFoundError(job.job_id)
                _noted(conn, [job.job_id], self.writer, audit)

        await self._run(update)

    async def delete_job(self: _Store, job_id: str, *, audit: AuditEntry | None = None) -> None:
        def delete() -> None:
            with self._write() as conn:
                conn.execute("DELETE FROM scheduler_jobs WHERE job_id = ?", (job_id,))
                _noted(conn, [job_id], self.writer, audit)

        await self._run(delete)


def _insert(conn: sqlite3.Connection, jobs: list[Job], rows: list[tuple[Any, ...]], max_jobs: int | None) -> None:
    # One statement (each is a hand-over of the GIL to this thread). runs_from: a job's history is the runs after
    # this point, so an id used before (a cancelled job's) starts afresh. `before`: the jobs stored.
    seq, runs_from, before = conn.execute(
        "SELECT (SELECT COALESCE(MAX(created_seq), 0) FROM scheduler_jobs), "
        "(SELECT COALESCE(MAX(seq), 0) FROM scheduler_runs), (SELECT COUNT(*) FROM scheduler_jobs)"
    ).fetchone()
    try:
        conn.executemany(
            "INSERT INTO scheduler_jobs (job_id, definition, state, next_run_time, created_seq, runs_from) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(*row, seq + i + 1, runs_from) for i, row in enumerate(rows)],
        )
    except sqlite3.IntegrityError as exc:
        # Stored before this batch (its own rows have later created_seq), or twice in the batch.
        ids = [j.job_id for j in jobs]
        taken = set(ids) & {
            r[0] for r in conn.execute("SELECT job_id FROM scheduler_jobs WHERE created_seq <= ?", (seq,))
        } or {job_id for job_id, n in Counter(ids).items() if n > 1}
        if taken:
            raise JobExistsError(min(taken)) from exc
        raise
    if max_jobs is not None:
        # Counted in the insert's transaction (BEGIN IMMEDIATE: one writer at a time on the file), so that the limit
        # holds for every process on it; checked after the insert, so an id taken says so first.
        total = before + len(jobs)
        if total > max_jobs:
            raise TooManyJobsError(total - len(jobs), max_jobs, len(jobs))


def _noted(conn: sqlite3.Connection, job_ids: Sequence[str], writer: str, audit: AuditEntry | None) -> None:
    """Append the changed jobs to the change feed (pruning it) and the change's audit entry, in the transaction."""
    last = execute_rows(conn, "INSERT INTO scheduler_changes (job_id, writer)", [(j, writer) for j in job_ids])
    pruned_to = None if last is None else changes_pruned_to(last, len(job_ids))
    if pruned_to is not None:
        conn.execute("DELETE FROM scheduler_changes WHERE seq <= ?", (pruned_to,))
    if audit is not None:
        insert_entries(conn, [audit])
