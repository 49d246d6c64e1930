"""The PostgreSQL store: the SQLite store's tables and semantics on a server that several machines share.

Imported only when a PostgreSQL URL is used (`from mcp_scheduler.store.postgres import PostgresStore`):
psycopg is imported here, in `postgres_lease.py` and in `agentool_bridge.postgres` (the connection helpers
and wording shared with the toolkits' PostgreSQL database), so that a scheduler on SQLite does not pay for it.

Three connections of the store's own: one for writes (a transaction at a time, under a lock), one for
reads, and one that LISTENs for what other processes write, so that `changed()` costs no round trip.
Every statement over many rows passes arrays (`unnest`, sent in binary: text arrays would have every
quote of the JSON escaped), so a batch of 10,000 runs is a handful of round trips. The LISTEN
connection must reach the server directly, not through a transaction-mode pooler (pgbouncer), which
does not deliver notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from agentool_bridge.postgres import (
    ADVISORY_XACT_LOCK,
    CONNECT_TIMEOUT,
    KEEPALIVES,
    SCHEMA_LOCK,
    cannot_connect,
    channel,
    mask_password,
    no_schema,
)
from agentool_bridge.postgres import where as _where
from agentool_bridge.toolkits.queue import EVENTS_CHANNEL as QUEUE_CHANNEL

from ..errors import JobExistsError, JobNotFoundError, SchedulerError, SchedulerStateError, TooManyJobsError
from ..jobs import Job, JobDefinition, JobState, RunStatus
from ..models import RunRecord
from ..schedules import load_schedule
from .base import Bookkeeping, RunQuery, run_time

__all__ = ["PostgresStore", "PostgresUnavailableError"]

logger = logging.getLogger(__name__)

CHANGES_KEPT = 10_000  # as in the SQLite store: a follower further behind reloads every job
RECHECK_EVERY = 10.0  # seconds: changed() answers True at least this often, in case a notification was lost

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
_SCHEMA_LOCK, _CHANGES_LOCK, _RUNS_LOCK, _JOBS_LOCK = SCHEMA_LOCK, 1, 2, 4
_LOCK = ADVISORY_XACT_LOCK

# Runs written by an earlier version have no time or AgenTool column yet: filled in once from the record.
_BACKFILL = (
    "UPDATE scheduler_runs SET agentool = record::jsonb->>'agentool_name', at = extract(epoch FROM "
    "COALESCE(record::jsonb->>'started_at', record::jsonb->>'scheduled_time', record::jsonb->>'finished_at')"
    "::timestamptz) WHERE agentool IS NULL"
)

_JOB_COLUMNS = "job_id, definition, state, next_run_time, last_run_at, last_status, created_seq, progress"


class PostgresUnavailableError(SchedulerError, ConnectionError):
    """The PostgreSQL server of the store cannot be reached or used."""


class PostgresStore:
    """Jobs and run history in PostgreSQL; implements `SchedulerStore` like `SQLiteStore` does.

    `url`: a libpq connection string or URL (`postgresql://user@host:5432/db`); a schema can be chosen
    with `?options=-csearch_path%3Dname` (the schema must exist; the tables are created in it).
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._write_conn: psycopg.AsyncConnection[Any] | None = None
        self._read_conn: psycopg.AsyncConnection[Any] | None = None
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._listen_conn: psycopg.AsyncConnection[Any] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._notified = True  # the first changed() answers True
        self._answered = 0.0  # time.monotonic() when changed() last answered True
        self._channel = ""
        self._queue_channel = ""
        self._open = False
        self._unpruned: Counter[str] = Counter()  # runs written per job since it was last pruned
        self.writer = secrets.token_hex(8)  # marks this process's rows, which its followers skip
        # who is connected, in pg_stat_activity (`mcp-scheduler status` lists the processes by it)
        self.application_name = f"mcp-scheduler/{self.writer} pid {os.getpid()} on {socket.gethostname()}"[:63]

    @property
    def location(self) -> str | None:
        return mask_password(self._url)

    # ------------------------------------------------------------------ connections

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                application_name=self.application_name,
                **KEEPALIVES,
            )
        except psycopg.Error as exc:
            raise PostgresUnavailableError(cannot_connect(self._url, exc)) from exc
        try:
            await conn.execute("SET TIME ZONE 'UTC'")
        except BaseException:
            await conn.close()
            raise
        return conn

    async def open(self) -> None:
        if self._open:
            return
        try:
            self._write_conn = await self._connect()
            self._read_conn = await self._connect()
            schema = (await (await self._write_conn.execute("SELECT current_schema()")).fetchone() or [None])[0]
            if schema is None:
                raise PostgresUnavailableError(no_schema(self._url))
            # One channel per schema (at most 63 bytes), so that stores in other schemas do not wake this one.
            self._channel = channel("mcp_scheduler", schema)
            # The queue toolkit's enqueues, on the same schema: their feed is followed with the runs.
            self._queue_channel = channel(QUEUE_CHANNEL, schema)
            async with self._write_conn.transaction():  # several processes may create the tables at once
                await self._write_conn.execute(_LOCK, (_SCHEMA_LOCK,))
                await self._write_conn.execute(SCHEMA)
                await self._write_conn.execute(_BACKFILL)
            await self._listen()  # before anything is loaded: a write made after the load is never missed
            self._open = True
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._open = False
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                await listener
        for name in ("_listen_conn", "_read_conn", "_write_conn"):
            conn = getattr(self, name)
            setattr(self, name, None)
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    await conn.close()

    @contextlib.asynccontextmanager
    async def _using(self, write: bool) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The write or read connection, held alone; reconnected if it was lost."""
        if not self._open:
            raise SchedulerStateError("The job store is closed: open it first.")
        async with self._write_lock if write else self._read_lock:
            conn = self._write_conn if write else self._read_conn
            if conn is None or conn.closed or conn.broken:
                if conn is not None:
                    logger.warning("The connection to PostgreSQL at %s was lost: reconnecting", _where(self._url))
                    with contextlib.suppress(psycopg.Error):
                        await conn.close()
                conn = await self._connect()
                if write:
                    self._write_conn = conn
                else:
                    self._read_conn = conn
            try:
                yield conn
            except BaseException:
                # Cancelled or failed halfway through a transaction: start afresh on a new connection.
                if not conn.closed and conn.info.transaction_status not in (
                    TransactionStatus.IDLE,
                    TransactionStatus.UNKNOWN,
                ):
                    with contextlib.suppress(psycopg.Error):
                        await conn.close()
                raise

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A transaction on the write connection, held alone. A connection found lost when the transaction
        begins (nothing is written yet, so this is safe) is replaced and the transaction begun once more."""
        for attempt in (1, 2):
            async with self._using(write=True) as conn:
                stack = contextlib.AsyncExitStack()
                try:
                    await stack.enter_async_context(conn.transaction())
                except psycopg.OperationalError:
                    if attempt == 2 or not (conn.closed or conn.broken):
                        raise
                    continue
                async with stack:
                    yield conn
                return

    async def _fetch(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of a read; asked again once on a new connection if the read connection was lost
        (a server restart, an idle connection dropped by a firewall): reading twice is harmless."""
        for attempt in (1, 2):
            try:
                async with self._using(write=False) as conn:
                    cur = await conn.execute(query, params)
                    return await cur.fetchall()
            except psycopg.OperationalError:
                lost = self._read_conn
                if attempt == 2 or not (lost is None or lost.closed or lost.broken):
                    raise
        raise AssertionError("unreachable")

    async def _listen(self) -> None:
        conn = await self._connect()
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._queue_channel)))
        except BaseException:
            await conn.close()
            raise
        self._listen_conn = conn
        self._notified = True
        self._listener = asyncio.create_task(self._receive(conn), name="mcp-scheduler-postgres-listen")

    async def _receive(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async for notify in conn.notifies():
            if notify.payload != self.writer:  # a process is not woken by its own writes
                self._notified = True

    async def _notify(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Wake the followers once this transaction commits (the payload names the writer)."""
        await conn.execute("SELECT pg_notify(%s, %s)", (self._channel, self.writer))

    # ------------------------------------------------------------------ what other processes changed

    async def changed(self) -> bool:
        if not self._open:
            raise SchedulerStateError("The job store is closed: open it first.")
        listener = self._listener
        if listener is None or listener.done():
            # The LISTEN connection was lost: notifications may have been missed, so report a change.
            if listener is not None and not listener.cancelled() and (error := listener.exception()) is not None:
                logger.warning("Listening to PostgreSQL at %s failed (%s): listening again", _where(self._url), error)
            listen_conn, self._listen_conn, self._listener = self._listen_conn, None, None
            if listen_conn is not None:
                with contextlib.suppress(psycopg.Error):
                    await listen_conn.close()
            await self._listen()
        now = time.monotonic()
        moved, self._notified = self._notified or now - self._answered >= RECHECK_EVERY, False
        if moved:
            self._answered = now
        return moved

    async def positions(self) -> tuple[int, int]:
        [row] = await self._fetch(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM scheduler_changes), "
            "(SELECT COALESCE(MAX(seq), 0) FROM scheduler_runs)"
        )
        return int(row[0]), int(row[1])

    async def changes_since(self, seq: int) -> tuple[int, set[str] | None]:
        rows = await self._fetch(
            "SELECT seq, job_id, writer FROM scheduler_changes WHERE seq > %s ORDER BY seq", (seq,)
        )
        if not rows:
            return seq, set()
        if rows[0][0] > seq + 1:
            # Changes the follower had not read were pruned (or a transaction that took a number rolled
            # back: rare, and reloading every job is then merely slower): it reloads every job.
            return rows[-1][0], None
        return rows[-1][0], {job_id for _, job_id, writer in rows if writer != self.writer}

    async def load_job(self, job_id: str) -> Job | None:
        rows = await self._fetch(f"SELECT {_JOB_COLUMNS} FROM scheduler_jobs WHERE job_id = %s", (job_id,))
        return self._jobs_of(rows)[0] if rows else None

    async def runs_since(self, seq: int, limit: int = 1000) -> tuple[int, list[RunRecord]]:
        rows = await self._fetch(
            "SELECT seq, record, writer FROM scheduler_runs WHERE seq > %s ORDER BY seq LIMIT %s", (seq, limit)
        )
        if not rows:
            return seq, []
        return rows[-1][0], [RunRecord.model_validate_json(r[1]) for r in rows if r[2] != self.writer]

    async def _note_changes(self, conn: psycopg.AsyncConnection[Any], job_ids: Sequence[str]) -> None:
        """Append the changed jobs to the change feed and wake the followers (in the caller's transaction)."""
        await conn.execute(_LOCK, (_CHANGES_LOCK,))
        cur = await conn.execute(
            "INSERT INTO scheduler_changes (job_id, writer) SELECT j, %s FROM unnest(%b::text[]) AS j "
            "RETURNING seq",
            (self.writer, list(job_ids)),
        )
        seq = max(row[0] for row in await cur.fetchall())
        if seq // 1000 != (seq - len(job_ids)) // 1000:
            await conn.execute("DELETE FROM scheduler_changes WHERE seq <= %s", (seq - CHANGES_KEPT,))
        await self._notify(conn)

    # ------------------------------------------------------------------ jobs

    async def load_jobs(self, page_size: int = 5000) -> AsyncIterator[list[Job]]:
        after = 0
        while True:
            rows = await self._fetch(
                f"SELECT {_JOB_COLUMNS} FROM scheduler_jobs WHERE created_seq > %s ORDER BY created_seq LIMIT %s",
                (after, page_size),
            )
            if not rows:
                return
            after = rows[-1][6]
            yield self._jobs_of(rows)

    def _jobs_of(self, rows: Sequence[tuple[Any, ...]]) -> list[Job]:
        definitions = self._decode_definitions(rows)
        jobs = []
        for row, data in zip(rows, definitions, strict=True):
            try:
                # The schedule first: its loader names what is wrong with a stored schedule.
                definition = JobDefinition.model_validate({**data, "schedule": load_schedule(data["schedule"])})
            except Exception as exc:
                exc.add_note(f"while loading job {row[0]!r} from {self.location}")
                raise
            job = Job(definition, row[2], row[3], row[4], row[5])
            if row[7] is not None:
                job.load_progress(row[7])
            jobs.append(job)
        return jobs

    def _decode_definitions(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        # One decode for the whole page shares equal keys between rows (as in the SQLite store).
        texts = [r[1] for r in rows]
        try:
            decoded: list[Any] = json.loads("[" + ",".join(texts) + "]")
            if len(decoded) == len(texts):
                return decoded
        except json.JSONDecodeError:
            pass
        definitions = []
        for job_id, text, *_ in rows:
            try:
                definitions.append(json.loads(text))
            except json.JSONDecodeError as exc:
                exc.add_note(f"while loading job {job_id!r} from {self.location}")
                raise
        return definitions

    async def insert_jobs(self, jobs: Sequence[Job], *, max_jobs: int | None = None) -> None:
        jobs = list(jobs)
        if not jobs:
            return
        ids = [j.job_id for j in jobs]
        async with self._transaction() as conn:
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
                (
                    ids,
                    [j.definition.model_dump_json() for j in jobs],
                    [j.state for j in jobs],
                    [j.next_run_time for j in jobs],
                ),
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
            await self._note_changes(conn, ids)

    async def set_state(
        self, job_id: str, state: JobState, next_run_time: datetime | None, progress: str | None = None
    ) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE scheduler_jobs SET state = %s, next_run_time = %s, progress = COALESCE(%s, progress) "
                "WHERE job_id = %s",
                (state, next_run_time, progress, job_id),
            )
            await self._note_changes(conn, [job_id])

    async def update_job(self, job: Job) -> None:
        async with self._transaction() as conn:
            cur = await conn.execute(
                "UPDATE scheduler_jobs SET definition = %s, state = %s, next_run_time = %s WHERE job_id = %s",
                (job.definition.model_dump_json(), job.state, job.next_run_time, job.job_id),
            )
            if not cur.rowcount:
                raise JobNotFoundError(job.job_id)
            await self._note_changes(conn, [job.job_id])

    async def delete_job(self, job_id: str) -> None:
        async with self._transaction() as conn:
            await conn.execute("DELETE FROM scheduler_jobs WHERE job_id = %s", (job_id,))
            await self._note_changes(conn, [job_id])

    # ------------------------------------------------------------------ runs

    async def write_batch(
        self, runs: Iterable[RunRecord], bookkeeping: Iterable[Bookkeeping], history_limit: int
    ) -> None:
        # A run_id given twice keeps its last record (as INSERT OR REPLACE does in SQLite).
        records = {r.run_id: r for r in runs}
        books = {b.job_id: b for b in bookkeeping}
        if not records and not books:
            return
        async with self._transaction() as conn:
            if records:
                await conn.execute(_LOCK, (_RUNS_LOCK,))
                # A run written again gets a new seq (DEFAULT draws from the sequence), so that followers,
                # who read the runs by seq, see its later record.
                await conn.execute(
                    "INSERT INTO scheduler_runs (run_id, job_id, status, record, writer, at, agentool) "
                    "SELECT r.run_id, r.job_id, r.status, r.record, %s, r.at, r.agentool FROM unnest("
                    "%b::text[], %b::text[], %b::text[], %b::text[], %b::float8[], %b::text[]) WITH ORDINALITY "
                    "AS r(run_id, job_id, status, record, at, agentool, n) ORDER BY r.n "
                    "ON CONFLICT (run_id) DO UPDATE SET seq = DEFAULT, "
                    "job_id = EXCLUDED.job_id, status = EXCLUDED.status, record = EXCLUDED.record, "
                    "writer = EXCLUDED.writer, at = EXCLUDED.at, agentool = EXCLUDED.agentool",
                    (
                        self.writer,
                        list(records),
                        [r.job_id for r in records.values()],
                        [r.status for r in records.values()],
                        [r.model_dump_json() for r in records.values()],
                        [run_time(r) for r in records.values()],
                        [r.agentool_name for r in records.values()],
                    ),
                )
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
                    (
                        list(books),
                        [b.state for b in books.values()],
                        [b.next_run_time for b in books.values()],
                        [b.last_run_at for b in books.values()],
                        [b.last_status for b in books.values()],
                        [b.progress for b in books.values()],
                    ),
                )
            # A job is pruned once it has gained a tenth of its limit since it was last pruned (as in the
            # SQLite store): up to 10% more runs stay until then; all such jobs in one statement.
            slack = max(1, history_limit // 10)
            due = []
            for job_id, added in Counter(r.job_id for r in records.values()).items():
                self._unpruned[job_id] += added
                if self._unpruned[job_id] >= slack:
                    del self._unpruned[job_id]
                    due.append(job_id)
            if due:
                await conn.execute(
                    "DELETE FROM scheduler_runs WHERE seq IN (SELECT seq FROM (SELECT seq, row_number() OVER "
                    "(PARTITION BY job_id ORDER BY seq DESC) AS newer FROM scheduler_runs "
                    "WHERE job_id = ANY(%b::text[])) AS ranked WHERE newer > %s)",
                    (due, history_limit),
                )
            await self._notify(conn)

    async def interrupt_unfinished(self, note: str) -> list[RunRecord]:
        async with self._transaction() as conn:
            cur = await conn.execute("SELECT seq, record FROM scheduler_runs WHERE status = 'running' FOR UPDATE")
            changed = [
                (seq, RunRecord.model_validate_json(text).model_copy(update={"status": "interrupted", "note": note}))
                for seq, text in await cur.fetchall()
            ]
            if changed:
                await conn.execute(
                    "UPDATE scheduler_runs AS r SET status = 'interrupted', record = c.record "
                    "FROM unnest(%b::bigint[], %b::text[]) AS c(seq, record) WHERE r.seq = c.seq",
                    ([seq for seq, _ in changed], [record.model_dump_json() for _, record in changed]),
                )
            await conn.execute("UPDATE scheduler_jobs SET last_status = 'interrupted' WHERE last_status = 'running'")
        return [record for _, record in changed]

    async def history(
        self,
        job_id: str | None,
        status: RunStatus | None = None,
        limit: int = 20,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        agentool_name: str | None = None,
    ) -> list[RunRecord]:
        query = RunQuery(job_id, status, limit, since, until, agentool_name)
        where, params = query.where("%s")
        if job_id is not None:
            # A job's own runs: those after it was created, not those of an earlier job with its id.
            where.append("seq > COALESCE((SELECT runs_from FROM scheduler_jobs WHERE job_id = %s), 0)")
            params.append(job_id)
        order = "seq DESC" if job_id is not None else "at DESC NULLS LAST, seq DESC"
        rows = await self._fetch(
            f"SELECT record FROM scheduler_runs WHERE {' AND '.join(where) or 'true'} ORDER BY {order} LIMIT %s",
            [*params, limit],
        )
        return [RunRecord.model_validate_json(r[0]) for r in rows]

    async def has_history(self, job_id: str) -> bool:
        return bool(await self._fetch("SELECT 1 FROM scheduler_runs WHERE job_id = %s LIMIT 1", (job_id,)))
