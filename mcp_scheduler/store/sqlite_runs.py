"""The run history of the SQLite store (a mixin of `SQLiteStore`): batches of run records and bookkeeping, the runs a
stopped runner left unfinished, and reads of the history.

Batches are written as multi-row statements (`execute_rows`): each statement is one hand-over of the GIL to the
store's thread, so a batch of thousands of runs does not wait for the busy event loop once per row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar

from ..jobs import RunStatus, RunTrigger
from ..models import RunRecord
from .base import Bookkeeping, RunQuery
from .codec import TextTimes, read_run, run_row, run_text, unfinished
from .feeds import HistoryPruning

__all__ = ["BOOKS_TABLE", "ROWS_PER_STATEMENT", "SQLiteRuns", "execute_rows"]

T = TypeVar("T")

# Rows per multi-row statement: within the 999 parameters of older SQLite builds. Each statement is one
# hand-over of the GIL from this thread; one statement per row would wait for the busy event loop's
# switch interval once per row (a 20,000-row batch then took 13 s instead of a fraction of one).
ROWS_PER_STATEMENT = 150

BOOKS_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS books (
    job_id TEXT PRIMARY KEY, state TEXT, next_run_time TEXT, last_run_at TEXT, last_status TEXT, progress TEXT
)
"""


def execute_rows(
    conn: sqlite3.Connection, head: str, rows: Sequence[tuple[Any, ...]], tail: str = ""
) -> int | None:
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


_CODEC = TextTimes()  # SQLite has no time type: times are ISO 8601 text


class _SQLiteLike(Protocol):
    writer: str
    _pruning: HistoryPruning

    async def _run(self, func: Callable[..., T], *args: Any) -> T: ...
    def _db(self) -> sqlite3.Connection: ...
    def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...
    def _history(self, sql: str, params: list[object]) -> list[tuple[Any, ...]]: ...
    def _write_batch(self, records: list[RunRecord], bookkeeping: list[Bookkeeping], history_limit: int) -> None: ...
    def _interrupt_unfinished(self, note: str, keep_unstarted: Collection[str]) -> list[RunRecord]: ...
    def _has_history(self, job_id: str) -> bool: ...


class SQLiteRuns:
    """The run-history methods of `SQLiteStore` (see `SchedulerStore` for what each means)."""

    async def write_batch(
        self: _SQLiteLike, runs: Iterable[RunRecord], bookkeeping: Iterable[Bookkeeping], history_limit: int
    ) -> None:
        await self._run(self._write_batch, list(runs), list(bookkeeping), history_limit)

    def _write_batch(
        self: _SQLiteLike, records: list[RunRecord], bookkeeping: list[Bookkeeping], history_limit: int
    ) -> None:
        # Serialised here, on the store's thread: the event loop is busy starting runs.
        runs = [(*run_row(r), self.writer) for r in records]
        books = [_CODEC.books(b) for b in bookkeeping]
        with self._write() as conn:
            # REPLACE gives a run's later record a new seq, so that followers see it.
            columns = "run_id, job_id, status, record, at, agentool, writer"
            execute_rows(conn, f"INSERT OR REPLACE INTO scheduler_runs ({columns})", runs)
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
            for job_id in self._pruning.due((r.job_id for r in records), history_limit):
                conn.execute(
                    "DELETE FROM scheduler_runs WHERE job_id = ? AND seq <= ("
                    "SELECT seq FROM scheduler_runs WHERE job_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (job_id, job_id, history_limit),
                )

    async def interrupt_unfinished(
        self: _SQLiteLike, note: str, *, keep_unstarted: Collection[RunTrigger] = ()
    ) -> list[RunRecord]:
        return await self._run(self._interrupt_unfinished, note, keep_unstarted)

    def _interrupt_unfinished(self: _SQLiteLike, note: str, keep_unstarted: Collection[str]) -> list[RunRecord]:
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
        self: _SQLiteLike,
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

    def _history(self: _SQLiteLike, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
        return self._db().execute(sql, params).fetchall()

    async def has_history(self: _SQLiteLike, job_id: str) -> bool:
        return await self._run(self._has_history, job_id)

    def _has_history(self: _SQLiteLike, job_id: str) -> bool:
        row = self._db().execute("SELECT 1 FROM scheduler_runs WHERE job_id = ? LIMIT 1", (job_id,)).fetchone()
        return row is not None
