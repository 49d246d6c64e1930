"""The PostgreSQL store: the SQLite store's tables and semantics on a server that several machines share.

Imported only when a PostgreSQL URL is used (`from mcp_scheduler.store.postgres import PostgresStore`):
psycopg is imported here, in `postgres_connections.py` (the store's three connections), `postgres_lease.py`
and `agentool_bridge.postgres` (the connection helpers and wording shared with the toolkits' PostgreSQL
database), so that a scheduler on SQLite does not pay for it.

Every statement over many rows passes arrays (`unnest`, sent in binary: text arrays would have every
quote of the JSON escaped), so a batch of 10,000 runs is a handful of round trips.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg

from agentool_bridge.postgres import ADVISORY_XACT_LOCK, SCHEMA_LOCK, mask_password

from ..audit import AuditEntry, AuditQuery, read_audit_row
from ..errors import JobExistsError, JobNotFoundError, TooManyJobsError
from ..jobs import Job, JobState, RunStatus, RunTrigger
from ..models import RunRecord
from .audit_table import POSTGRES_AUDIT_SCHEMA, audit_insert, audit_rows, refused
from .base import Bookkeeping, FeedRead, RunQuery
from .codec import JOB_COLUMNS, RowCodec, read_run, run_row, run_text, unfinished
from .conditions_table import POSTGRES_CONDITIONS_SCHEMA, PostgresConditions
from .feeds import HistoryPruning, changes_after, changes_pruned_to, feed_read, runs_after
from .fence import token_is_stale
from .hooks_table import POSTGRES_HOOKS_SCHEMA, PostgresHooks
from .postgres_connections import PostgresConnections
from .run_swap import POSTGRES_UPSERT, RUNS_LOCK, PostgresRunSwap, Swap, postgres_swaps

__all__ = ["PostgresStore"]

logger = logging.getLogger(__name__)

# The records a runner writes as the runner (fires, retries, fires not run, and runs of queue messages: a start kept
# out makes the next runner run the message), which a stale fencing token keeps out; run_now and backfill runs are
# anyone's.
_RUNNER_TRIGGERS = frozenset({"schedule", "catch_up", "retry", "queue"})

# Definitions and run records are stored as JSON *text*, not jsonb: they are written by pydantic's
# model_dump_json and read back by model_validate_json, never queried inside; jsonb would parse them on
# the way in and print them again on the way out, for nothing. Times are timestamptz (read back in UTC).
SCHEMA = """
CREATE TABLE IF NOT EXISTS scheduler_jobs (
    job_id TEXT PRIMARY KEY,
    created_seq BIGSERIAL NOT NULL UNIQUE,
    definition TEXT NOT NULL,
    state TEXT NOT NULL,
    next_run_time TIMESTAMPTZ,
    last_run_at TIMESTAMPTZ,
    last_status TEXT
);
CREATE TABLE IF NOT EXISTS scheduler_runs (
    seq BIGSERIAL PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    writer TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS scheduler_runs_by_job ON scheduler_runs (job_id, seq);
CREATE INDEX IF NOT EXISTS scheduler_runs_running ON scheduler_runs (seq) WHERE status = 'running';
ALTER TABLE scheduler_runs ADD COLUMN IF NOT EXISTS at DOUBLE PRECISION;
ALTER TABLE scheduler_runs ADD COLUMN IF NOT EXISTS agentool TEXT;
CREATE INDEX IF NOT EXISTS scheduler_runs_by_time ON scheduler_runs (at);
ALTER TABLE scheduler_jobs ADD COLUMN IF NOT EXISTS runs_from BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scheduler_jobs ADD COLUMN IF NOT EXISTS progress TEXT;
CREATE TABLE IF NOT EXISTS scheduler_changes (
    seq BIGSERIAL PRIMARY KEY,
    job_id TEXT NOT NULL,
    writer TEXT NOT NULL
);
"""

# Transaction-scoped advisory locks, keyed (hash of the schema, which): two int4 keys, a key space apart
# from the one-bigint keys of the runner lease. The feeds are read by seq, and a sequence hands out
# numbers in the order transactions *start* writing, not the order they commit: without the lock a
# follower could read seq 11 before seq 10 commits, move past 10 and never see it.
# The keys in use are listed in agentool_bridge.postgres (the queue toolkit's feed takes one too).
_SCHEMA_LOCK, _CHANGES_LOCK, _RUNS_LOCK, _JOBS_LOCK, _AUDIT_LOCK = SCHEMA_LOCK, 1, RUNS_LOCK, 4, 5
_LOCK = ADVISORY_XACT_LOCK

# Runs written by an earlier version have no time or AgenTool column yet: filled in once from the record.
_BACKFILL = (
    "UPDATE scheduler_runs SET agentool = record::jsonb->>'agentool_name', at = extract(epoch FROM "
    "COALESCE(record::jsonb->>'started_at', record::jsonb->>'scheduled_time', record::jsonb->>'finished_at')"
    "::timestamptz) WHERE agentool IS NULL"
)

_CODEC = RowCodec()  # timestamptz: psycopg hands datetimes over as they are


def _columns(rows: Iterable[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows of `width` values as that many columns: the arrays a statement passes to `unnest`."""
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


class PostgresStore(PostgresHooks, PostgresConditions, PostgresRunSwap):
    """Jobs and run history in PostgreSQL; implements `SchedulerStore` like `SQLiteStore` does.

    `url`: a libpq connection string or URL (`postgresql://user@host:5432/db`); a schema can be chosen
    with `?options=-csearch_path%3Dname` (the schema must exist; the tables are created in it).
    """

    def __init__(self, url: str) -> None:
        self._masked = mask_password(url)  # where the jobs were read, in messages
        self.writer = secrets.token_hex(8)  # marks this process's rows, which its followers skip
        self._db = PostgresConnections(url, self.writer)
        self._pruning = HistoryPruning()
        self._fence: Callable[[], int | None] = lambda: None

    def fence_with(self, token: Callable[[], int | None]) -> None:
        """Check `token()` (`RunnerLease.fencing_token`: the token of the lease this process holds, 0 once it lost
        it, None if it never held it) in the transaction of every batch of run records and bookkeeping: unless it
        is the newest one drawn, this process's records of fires and retries and its bookkeeping are not written
        (the next runner records the runs it cut short `interrupted`)."""
        self._fence = token

    @property
    def location(self) -> str | None:
        return self._masked

    @property
    def application_name(self) -> str:
        """What names this store's connections in pg_stat_activity."""
        return self._db.application_name

    async def open(self) -> None:
        await self._db.open(self._create_tables)

    @staticmethod
    async def _create_tables(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(_LOCK, (_SCHEMA_LOCK,))  # several processes may create the tables at once
        await conn.execute(SCHEMA)
        await conn.execute(POSTGRES_AUDIT_SCHEMA)
        await conn.execute(POSTGRES_HOOKS_SCHEMA)
        await conn.execute(POSTGRES_CONDITIONS_SCHEMA)
        await conn.execute(_BACKFILL)

    async def close(self) -> None:
        await self._db.close()

    # ------------------------------------------------------------------ what other processes changed

    async def changed(self) -> bool:
        return await self._db.changed()

    def read_mark(self) -> int | None:
        # A notification arrives some time after the commit it tells of: only a round trip could tell that nothing
        # was written, and it would cost what the read it saves costs.
        return None

    async def positions(self) -> tuple[int, int]:
        [row] = await self._db.fetch(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM scheduler_changes), "
            "(SELECT COALESCE(MAX(seq), 0) FROM scheduler_runs)"
        )
        return int(row[0]), int(row[1])

    async def changes_since(self, seq: int) -> tuple[int, set[str] | None]:
        rows = await self._db.fetch(
            "SELECT seq, job_id, writer FROM scheduler_changes WHERE seq > %s ORDER BY seq", (seq,)
        )
        return changes_after(rows, seq, self.writer)

    async def load_job(self, job_id: str) -> Job | None:
        rows = await self._db.fetch(f"SELECT {JOB_COLUMNS} FROM scheduler_jobs WHERE job_id = %s", (job_id,))
        return _CODEC.jobs(rows, self._masked)[0] if rows else None

    async def load_jobs_by_id(self, job_ids: Collection[str]) -> dict[str, Job]:
        if not job_ids:
            return {}
        rows = await self._db.fetch(
            f"SELECT {JOB_COLUMNS} FROM scheduler_jobs WHERE job_id = ANY(%b::text[])", (list(job_ids),)
        )
        return {job.job_id: job for job in _CODEC.jobs(rows, self._masked)}

    async def feeds_since(self, change_seq: int, run_seq: int, limit: int = 1000) -> FeedRead:
        rows = await self._db.fetch(
            "(SELECT 0 AS feed, seq, job_id, writer FROM scheduler_changes WHERE seq > %s) UNION ALL "
            "(SELECT 1, seq, record, writer FROM scheduler_runs WHERE seq > %s ORDER BY seq LIMIT %s) "
            "ORDER BY feed, seq",
            (change_seq, run_seq, limit),
        )
        changes = [row[1:] for row in rows if row[0] == 0]
        runs = [row[1:] for row in rows if row[0] == 1]
        return feed_read(changes, runs, (change_seq, run_seq), limit, self.writer)

    async def runs_since(self, seq: int, limit: int = 1000) -> tuple[int, list[RunRecord]]:
        rows = await self._db.fetch(
            "SELECT seq, record, writer FROM scheduler_runs WHERE seq > %s ORDER BY seq LIMIT %s", (seq, limit)
        )
        return runs_after(rows, seq, self.writer)

    async def _note_changes(
        self, conn: psycopg.AsyncConnection[Any], job_ids: Sequence[str], audit: AuditEntry | None
    ) -> None:
        """Append the changed jobs to the change feed and the change's audit entry, and wake the followers (in the
        caller's transaction)."""
        await conn.execute(_LOCK, (_CHANGES_LOCK,))
        cur = await conn.execute(
            "INSERT INTO scheduler_changes (job_id, writer) SELECT j, %s FROM unnest(%b::text[]) AS j "
            "RETURNING seq",
            (self.writer, list(job_ids)),
        )
        pruned_to = changes_pruned_to(max(row[0] for row in await cur.fetchall()), len(job_ids))
        if pruned_to is not None:
            await conn.execute("DELETE FROM scheduler_changes WHERE seq <= %s", (pruned_to,))
        if audit is not None:
            await self._append_audit(conn, [audit])
        await self._db.notify(conn)

    # ------------------------------------------------------------------ jobs

    async def load_jobs(self, page_size: int = 5000) -> AsyncIterator[list[Job]]:
        after = 0
        while True:
            rows = await self._db.fetch(
                f"SELECT {JOB_COLUMNS} FROM scheduler_jobs WHERE created_seq > %s ORDER BY created_seq LIMIT %s",
                (after, page_size),
            )
            if not rows:
                return
            after = rows[-1][6]
            yield _CODEC.jobs(rows, self._masked)

    async def insert_jobs(
        self, jobs: Sequence[Job], *, max_jobs: int | None = None, audit: AuditEntry | None = None
    ) -> None:
        jobs = list(jobs)
        if not jobs:
            return
        ids, definitions, states, next_run_times = _columns(map(_CODEC.new_job, jobs), 4)
        async with self._db.transaction() as conn:
            if max_jobs is not None:
                # Inserts under a limit take turns (read committed: each counts what those before it committed).
                await conn.execute(_LOCK, (_JOBS_LOCK,))
            cur = await conn.execute(
                # A job's history is the runs after this point: an id used before (a cancelled job's) starts afresh.
                "INSERT INTO scheduler_jobs (job_id, definition, state, next_run_time, runs_from) "
                "SELECT j.id, j.definition, j.state, j.next_run_time, "
                "(SELECT COALESCE(MAX(seq), 0) FROM scheduler_runs) FROM unnest("
                "%b::text[], %b::text[], %b::text[], %b::timestamptz[]) WITH ORDINALITY AS j(id, definition, state, "
                "next_run_time, n) ORDER BY j.n ON CONFLICT (job_id) DO NOTHING RETURNING job_id",
                (ids, definitions, states, next_run_times),
            )
            inserted = [row[0] for row in await cur.fetchall()]
            if len(inserted) != len(ids):
                # Taken before, or twice in this batch: nothing is stored (the transaction rolls back).
                taken = set(ids) - set(inserted) or {i for i, n in Counter(ids).items() if n > 1}
                raise JobExistsError(min(taken))
            if max_jobs is not None:
                total = (await (await conn.execute("SELECT COUNT(*) FROM scheduler_jobs")).fetchone() or [0])[0]
                if total > max_jobs:
                    raise TooManyJobsError(int(total) - len(jobs), max_jobs, len(jobs))
            await self._note_changes(conn, ids, audit)

    async def set_state(
        self,
        job_id: str,
        state: JobState,
        next_run_time: datetime | None,
        progress: str | None = None,
        *,
        audit: AuditEntry | None = None,
    ) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE scheduler_jobs SET state = %s, next_run_time = %s, progress = COALESCE(%s, progress) "
                "WHERE job_id = %s",
                (state, _CODEC.time(next_run_time), progress, job_id),
            )
            await self._note_changes(conn, [job_id], audit)

    async def update_job(self, job: Job, *, audit: AuditEntry | None = None) -> None:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE scheduler_jobs SET definition = %s, state = %s, next_run_time = %s WHERE job_id = %s",
                _CODEC.changed_job(job),
            )
            if not cur.rowcount:
                raise JobNotFoundError(job.job_id)
            await self._note_changes(conn, [job.job_id], audit)

    async def delete_job(self, job_id: str, *, audit: AuditEntry | None = None) -> None:
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM scheduler_jobs WHERE job_id = %s", (job_id,))
            await self._note_changes(conn, [job_id], audit)

    # ------------------------------------------------------------------ runs

    async def write_batch(
        self, runs: Iterable[RunRecord], bookkeeping: Iterable[Bookkeeping], history_limit: int, *,
        swaps: Sequence[Swap] = (),
    ) -> set[str]:
        # A run_id given twice keeps its last record (as INSERT OR REPLACE does in SQLite).
        records = {r.run_id: r for r in runs}
        books = {b.job_id: _CODEC.books(b) for b in bookkeeping}
        if not records and not books and not swaps:
            return set()
        async with self._db.transaction() as conn:
            token = self._fence()
            if token is not None and await token_is_stale(conn, token):
                records, books = self._fenced(records, books, token)
                swaps = ()  # a runner's: none is made
                if not records and not books:
                    return set()
            if records or swaps:
                await conn.execute(_LOCK, (_RUNS_LOCK,))
            if records:
                await conn.execute(POSTGRES_UPSERT, (self.writer, *_columns(map(run_row, records.values()), 6)))
            swapped = await postgres_swaps(conn, swaps, self.writer)
            if books:
                # Firing never flips paused and scheduled: set_state does, from any process; a batch
                # written after another process paused a job must not resume it.
                await conn.execute(
                    "UPDATE scheduler_jobs AS j SET "
                    "state = CASE WHEN b.state = 'completed' THEN 'completed' ELSE j.state END, "
                    "next_run_time = CASE WHEN j.state = 'paused' THEN NULL ELSE b.next_run_time END, "
                    "last_run_at = b.last_run_at, last_status = b.last_status, progress = b.progress "
                    "FROM unnest(%b::text[], %b::text[], %b::timestamptz[], %b::timestamptz[], %b::text[], "
                    "%b::text[]) AS b(job_id, state, next_run_time, last_run_at, last_status, progress) "
                    "WHERE j.job_id = b.job_id",
                    _columns(books.values(), 6),
                )
            due = self._pruning.due([*(r.job_id for r in records.values()),
                                     *(r.job_id for _, r in swaps if r.run_id in swapped)], history_limit)
            if due:  # all of them in one statement
                await conn.execute(
                    "DELETE FROM scheduler_runs WHERE seq IN (SELECT seq FROM (SELECT seq, row_number() OVER "
                    "(PARTITION BY job_id ORDER BY seq DESC) AS newer FROM scheduler_runs "
                    "WHERE job_id = ANY(%b::text[])) AS ranked WHERE newer > %s)",
                    (due, history_limit),
                )
            await self._db.notify(conn)
        return swapped

    @staticmethod
    def _fenced(
        records: dict[str, RunRecord], books: dict[str, tuple[Any, ...]], token: int
    ) -> tuple[dict[str, RunRecord], dict[str, tuple[Any, ...]]]:
        """What a process whose fencing token is stale may still write: records of runs outside the schedule (and
        no swap: a swap of a batch is the start of a run that the store holds for this runner)."""
        kept = {run_id: r for run_id, r in records.items() if r.trigger not in _RUNNER_TRIGGERS}
        logger.warning(
            "Not written: %d run record(s) and the bookkeeping of %d job(s) of this process's time as the runner "
            "(fencing token %d): it no longer holds the runner lease; the next holder records those runs",
            len(records) - len(kept), len(books), token,
        )
        return kept, {}

    async def interrupt_unfinished(
        self, note: str, *, keep_unstarted: Collection[RunTrigger] = ()
    ) -> list[RunRecord]:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT seq, record FROM scheduler_runs WHERE status = 'running' ORDER BY seq FOR UPDATE"
            )
            changed, records = unfinished(await cur.fetchall(), note, keep_unstarted)
            if changed:
                await conn.execute(
                    "UPDATE scheduler_runs AS r SET status = 'interrupted', record = c.record "
                    "FROM unnest(%b::bigint[], %b::text[]) AS c(seq, record) WHERE r.seq = c.seq",
                    ([seq for seq, _ in changed], [run_text(record) for _, record in changed]),
                )
            await conn.execute("UPDATE scheduler_jobs SET last_status = 'interrupted' WHERE last_status = 'running'")
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
        query = RunQuery(job_id, status, limit, since, until, agentool_name, run_id, owner)
        rows = await self._db.fetch(
            *query.statement("%s", nulls_last=" NULLS LAST", owner_of="definition::jsonb->>'owner'")
        )
        return [read_run(r[0]) for r in rows]

    async def has_history(self, job_id: str) -> bool:
        return bool(await self._db.fetch("SELECT 1 FROM scheduler_runs WHERE job_id = %s LIMIT 1", (job_id,)))

    # ------------------------------------------------------------------ audit

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        async with self._db.transaction() as conn:
            await self._append_audit(conn, entries)

    @staticmethod
    async def _append_audit(conn: psycopg.AsyncConnection[Any], entries: Sequence[AuditEntry]) -> None:
        """Insert `entries` in the caller's transaction (a job's or hook's change, or their own); `AuditWriteError`
        if the database refuses them (a lost connection or an exhausted server stays an `OperationalError`)."""
        await conn.execute(_LOCK, (_AUDIT_LOCK,))  # seq in commit order: a reader paging by seq skips nothing
        try:
            async with conn.cursor() as cur:
                await cur.executemany(audit_insert("%s"), audit_rows(entries))
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise
        except psycopg.Error as exc:
            raise refused(entries, exc) from exc

    async def read_audit(self, query: AuditQuery) -> list[AuditEntry]:
        return [read_audit_row(row) for row in await self._db.fetch(*query.statement("%s"))]
