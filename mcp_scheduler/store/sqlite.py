"""The SQLite store: jobs as JSON rows the scheduler owns (no pickle) and their run history.

Every query runs on one thread of the store's own, so the event loop never waits on disk; write
transactions start with `BEGIN IMMEDIATE` (a deferred transaction that reads, then writes, fails
at once with "database is locked" when another connection writes the same file). The job writes
are in `sqlite_jobs.py`, the hook methods in `hooks_table.py` (mixins of `SQLiteStore`).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from ..audit import AuditEntry, AuditQuery, read_audit_row
from ..errors import SchedulerStateError
from ..jobs import Job, RunStatus, RunTrigger
from ..models import RunRecord
from .audit_table import insert_entries
from .base import Bookkeeping, FeedRead, RunQuery
from .codec import JOB_COLUMNS, read_run, run_row, run_text, unfinished
from .conditions_table import SQLiteConditions
from .feeds import HistoryPruning, changes_after, feed_read, runs_after
from .hooks_table import SQLiteHooks
from .run_swap import SQLiteRunSwap, Swap, sqlite_swaps
from .sqlite_disk import DiskGuard, connect, connect_marks
from .sqlite_jobs import CODEC, SQLiteJobs, execute_rows
from .sqlite_schema import SQLITE_TABLES

__all__ = ["SQLiteStore"]

T = TypeVar("T")

class SQLiteStore(SQLiteJobs, SQLiteHooks, SQLiteConditions, SQLiteRunSwap):
    """Jobs and run history in one SQLite file (or in memory); implements `SchedulerStore`."""

    def __init__(self, database: str | os.PathLike[str] | None) -> None:
        self._database = None if database is None else os.fspath(database)
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._pruning = HistoryPruning()
        self.writer = secrets.token_hex(8)  # marks this process's rows, which its followers skip
        self._data_version: int | None = None
        self._marks: sqlite3.Connection | None = None  # read_mark's own connection (see there)
        self._disk = DiskGuard(self._database, lambda: self._conn)

    @property
    def location(self) -> str | None:
        return self._database

    async def open(self) -> None:
        if self._thread is not None:
            return
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcp-scheduler-db")
        try:
            self._conn = await self._run(connect, self._database)
            await self._run(self._conn.executescript, SQLITE_TABLES)
            await self._run(self._migrate)
            if self._database is not None:
                self._marks = await self._run(connect_marks, self._database)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        thread, self._thread = self._thread, None
        conn, self._conn = self._conn, None
        marks, self._marks = self._marks, None
        if marks is not None:
            marks.close()
        if thread is None:
            return
        if conn is not None:
            thread.submit(conn.close)  # after whatever is still queued on that thread
        await asyncio.get_running_loop().run_in_executor(None, thread.shutdown, True)

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        if self._thread is None:
            raise SchedulerStateError("The job store is closed: open it first.")
        # A full disk: the WAL truncated and `func` tried once more, else DiskFullError naming the file.
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._disk.run, func, *args)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise SchedulerStateError("The job store is closed: open it first.")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._db()
        self._disk.before_write()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # SQLite rolls back by itself after some errors (a full disk): a ROLLBACK then would fail and hide them.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _migrate(self) -> None:
        # In one write transaction: processes opening a new file together each see the columns missing, and all but
        # the first would fail adding them ("duplicate column name") if they looked before taking the write lock.
        with self._write() as conn:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(scheduler_runs)")}
            if "writer" not in columns:  # a database of an earlier version
                conn.execute("ALTER TABLE scheduler_runs ADD COLUMN writer TEXT NOT NULL DEFAULT ''")
            if "at" not in columns:
                conn.execute("ALTER TABLE scheduler_runs ADD COLUMN at REAL")
                conn.execute("ALTER TABLE scheduler_runs ADD COLUMN agentool TEXT")
                conn.execute(
                    "UPDATE scheduler_runs SET agentool = json_extract(record, '$.agentool_name'), "
                    "at = (julianday(COALESCE(json_extract(record, '$.started_at'), "
                    "json_extract(record, '$.scheduled_time'), json_extract(record, '$.finished_at'))) "
                    "- 2440587.5) * 86400.0"
                )
            conn.execute("CREATE INDEX IF NOT EXISTS scheduler_runs_by_time ON scheduler_runs (at)")
            job_columns = {row[1] for row in conn.execute("PRAGMA table_info(scheduler_jobs)")}
            if "runs_from" not in job_columns:
                conn.execute("ALTER TABLE scheduler_jobs ADD COLUMN runs_from INTEGER NOT NULL DEFAULT 0")
            if "progress" not in job_columns:  # Job.progress_json(): failures, runs, pause reason, pending retry
                conn.execute("ALTER TABLE scheduler_jobs ADD COLUMN progress TEXT")

    # ------------------------------------------------------------------ what other processes changed

    async def changed(self) -> bool:
        return await self._run(self._changed)

    def _changed(self) -> bool:
        # data_version moves when another connection commits: the cheap check a follower polls.
        version = int(self._db().execute("PRAGMA data_version").fetchone()[0])
        moved, self._data_version = version != self._data_version, version
        return moved

    def read_mark(self) -> int | None:
        if self._thread is None:
            return None
        if self._marks is None:
            return 0  # in memory: no other connection can write it
        # PRAGMA data_version on a connection of its own, which never writes: it moves when any other connection,
        # this store's too, commits. Called on the event loop: a WAL reader only looks at the shared-memory index,
        # and with no busy timeout (connect_marks) a lock it would wait for is an error, answered None.
        try:
            return int(self._marks.execute("PRAGMA data_version").fetchall()[0][0])
        except sqlite3.Error:
            return None

    async def positions(self) -> tuple[int, int]:
        return await self._run(self._positions)

    def _positions(self) -> tuple[int, int]:
        conn = self._db()
        changes = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM scheduler_changes").fetchone()[0]
        runs = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM scheduler_runs").fetchone()[0]
        return int(changes), int(runs)

    async def changes_since(self, seq: int) -> tuple[int, set[str] | None]:
        return await self._run(self._changes_since, seq)

    def _changes_since(self, seq: int) -> tuple[int, set[str] | None]:
        return changes_after(self._change_rows(seq), seq, self.writer)

    def _change_rows(self, seq: int) -> list[tuple[int, str, str]]:
        return self._db().execute(
            "SELECT seq, job_id, writer FROM scheduler_changes WHERE seq > ? ORDER BY seq", (seq,)
        ).fetchall()

    async def feeds_since(self, change_seq: int, run_seq: int, limit: int = 1000) -> FeedRead:
        changes, runs = await self._run(self._feed_rows, change_seq, run_seq, limit)
        return feed_read(changes, runs, (change_seq, run_seq), limit, self.writer)

    def _feed_rows(
        self, change_seq: int, run_seq: int, limit: int
    ) -> tuple[list[tuple[int, str, str]], list[tuple[int, str, str]]]:
        return self._change_rows(change_seq), self._runs_since(run_seq, limit)

    async def load_job(self, job_id: str) -> Job | None:
        return await self._run(self._load_job, job_id)

    def _load_job(self, job_id: str) -> Job | None:
        rows = self._db().execute(f"SELECT {JOB_COLUMNS} FROM scheduler_jobs WHERE job_id = ?", (job_id,)).fetchall()
        return CODEC.jobs(rows, self._source())[0] if rows else None

    async def load_jobs_by_id(self, job_ids: Collection[str]) -> dict[str, Job]:
        if not job_ids:
            return {}
        jobs = await self._run(self._load_jobs_by_id, json.dumps(list(job_ids)))
        return {job.job_id: job for job in jobs}

    def _load_jobs_by_id(self, ids: str) -> list[Job]:
        rows = self._db().execute(
            f"SELECT {JOB_COLUMNS} FROM scheduler_jobs WHERE job_id IN (SELECT value FROM json_each(?))", (ids,)
        ).fetchall()
        return CODEC.jobs(rows, self._source())

    async def runs_since(self, seq: int, limit: int = 1000) -> tuple[int, list[RunRecord]]:
        return runs_after(await self._run(self._runs_since, seq, limit), seq, self.writer)

    def _runs_since(self, seq: int, limit: int) -> list[tuple[int, str, str]]:
        return self._db().execute(
            "SELECT seq, record, writer FROM scheduler_runs WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        ).fetchall()

    # ------------------------------------------------------------------ jobs

    async def load_jobs(self, page_size: int = 5000) -> AsyncIterator[list[Job]]:
        # The next page is read while the caller works on this one.
        page = asyncio.ensure_future(self._run(self._load_page, 0, page_size))
        try:
            while True:
                last, jobs = await page
                if not jobs:
                    return
                page = asyncio.ensure_future(self._run(self._load_page, last, page_size))
                yield jobs
        finally:
            if not page.done():
                page.cancel()
            elif not page.cancelled():
                page.exception()  # a read-ahead that failed after the caller stopped: nothing to report

    def _load_page(self, after_seq: int, limit: int) -> tuple[int, list[Job]]:
        """The jobs created after `after_seq` (at most `limit`), and the created_seq of the last of them."""
        rows = self._db().execute(
            f"SELECT {JOB_COLUMNS} FROM scheduler_jobs WHERE created_seq > ? ORDER BY created_seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return (rows[-1][6] if rows else after_seq), CODEC.jobs(rows, self._source())

    def _source(self) -> str:
        return self._database or "(memory)"

    async def write_batch(
        self, runs: Iterable[RunRecord], bookkeeping: Iterable[Bookkeeping], history_limit: int, *,
        swaps: Sequence[Swap] = (),
    ) -> set[str]:
        return await self._run(self._write_batch, list(runs), list(bookkeeping), history_limit, swaps)

    def _write_batch(
        self, records: list[RunRecord], bookkeeping: list[Bookkeeping], history_limit: int, swaps: Sequence[Swap]
    ) -> set[str]:
        # Serialised here, on the store's thread: the event loop is busy starting runs.
        runs = [(*run_row(r), self.writer) for r in records]
        books = [CODEC.books(b) for b in bookkeeping]
        with self._write() as conn:
            # REPLACE gives a run's later record a new seq, so that followers see it.
            columns = "run_id, job_id, status, record, at, agentool, writer"
            execute_rows(conn, f"INSERT OR REPLACE INTO scheduler_runs ({columns})", runs)
            swapped = sqlite_swaps(conn, swaps, self.writer) if swaps else set()
            if books:
                conn.execute("DELETE FROM temp.books")
                execute_rows(conn, "INSERT OR REPLACE INTO temp.books", books)
                # Firing never flips paused and scheduled: set_state does, from any process; a batch
                # written after another process paused a job must not resume it.
                conn.execute(
                    "UPDATE scheduler_jobs SET (state, next_run_time, last_run_at, last_status, progress) = ("
                    "SELECT CASE WHEN b.state = 'completed' THEN 'completed' ELSE scheduler_jobs.state END, "
                    "CASE WHEN scheduler_jobs.state = 'paused' THEN NULL ELSE b.next_run_time END, "
                    "b.last_run_at, b.last_status, b.progress FROM temp.books b "
                    "WHERE b.job_id = scheduler_jobs.job_id) "
                    "WHERE job_id IN (SELECT job_id FROM temp.books)"
                )
            written = [*(r.job_id for r in records), *(r.job_id for _, r in swaps if r.run_id in swapped)]
            for job_id in self._pruning.due(written, history_limit):
                conn.execute(
                    "DELETE FROM scheduler_runs WHERE job_id = ? AND seq <= ("
                    "SELECT seq FROM scheduler_runs WHERE job_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (job_id, job_id, history_limit),
                )
        return swapped

    async def interrupt_unfinished(self, note: str, *, keep_unstarted: Collection[RunTrigger] = ()) -> list[RunRecord]:
        return await self._run(self._interrupt_unfinished, note, keep_unstarted)

    def _interrupt_unfinished(self, note: str, keep_unstarted: Collection[str]) -> list[RunRecord]:
        with self._write() as conn:
            rows = conn.execute("SELECT seq, record FROM scheduler_runs WHERE status = 'running' ORDER BY seq")
            changed, records = unfinished(rows.fetchall(), note, keep_unstarted)
            conn.executemany(
                "UPDATE scheduler_runs SET status = 'interrupted', record = ? WHERE seq = ?",
                [(run_text(record), seq) for seq, record in changed],
            )
            conn.execute("UPDATE scheduler_jobs SET last_status = 'interrupted' WHERE last_status = 'running'")
        return records

    async def history(
        self,
        job_id: str | None,
        status: RunStatus | None = None,
        limit: int = 20,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        agentool_name: str | None = None,
        run_id: str | None = None,
        owner: str | None = None,
    ) -> list[RunRecord]:
        statement = RunQuery(job_id, status, limit, since, until, agentool_name, run_id, owner).statement("?")
        return [read_run(r[0]) for r in await self._run(self._history, *statement)]

    def _history(self, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
        return self._db().execute(sql, params).fetchall()

    async def has_history(self, job_id: str) -> bool:
        return await self._run(self._has_history, job_id)

    def _has_history(self, job_id: str) -> bool:
        row = self._db().execute("SELECT 1 FROM scheduler_runs WHERE job_id = ? LIMIT 1", (job_id,)).fetchone()
        return row is not None

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        def append() -> None:
            with self._write() as conn:
                insert_entries(conn, entries)

        await self._run(append)

    async def read_audit(self, query: AuditQuery) -> list[AuditEntry]:
        return [read_audit_row(row) for row in await self._run(self._history, *query.statement("?"))]
