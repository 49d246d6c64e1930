"""The PostgreSQL store's connections: one for writes (a transaction at a time, under a lock), one for
reads, and one that LISTENs for what other processes write, so that `changed()` costs no round trip.

A lost connection is replaced when it is next used; a lost LISTEN connection counts as a change (its
notifications may have been missed). The LISTEN connection must reach the server directly, not through a
transaction-mode pooler (pgbouncer), which does not deliver notifications. psycopg is imported here, and
this module only by `store/postgres.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from agentool_bridge.postgres import CONNECT_TIMEOUT, KEEPALIVES, cannot_connect, channel, no_schema
from agentool_bridge.postgres import where as _where
from agentool_bridge.toolkits.queue import EVENTS_CHANNEL as QUEUE_CHANNEL

from ..errors import SchedulerError, SchedulerStateError

__all__ = ["PostgresConnections", "PostgresUnavailableError", "RECHECK_EVERY"]

logger = logging.getLogger(__name__)

IDLE_IN_WRITE_MS = 10_000  # a transaction left idle this long (its process frozen) is ended by the server
RECHECK_EVERY = 10.0  # seconds: changed() answers True at least this often, in case a notification was lost

Connection = psycopg.AsyncConnection[Any]


class PostgresUnavailableError(SchedulerError, ConnectionError):
    """The PostgreSQL server of the store cannot be reached or used."""


class PostgresConnections:
    """The connections of one store on `url`; its rows and notifications are marked with `writer`."""

    def __init__(self, url: str, writer: str) -> None:
        self._url = url
        self._writer = writer
        self._write_conn: Connection | None = None
        self._read_conn: Connection | None = None
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._listen_conn: Connection | None = None
        self._listener: asyncio.Task[None] | None = None
        self._notified = True  # the first changed() answers True
        self._answered = 0.0  # time.monotonic() when changed() last answered True
        self._channel = ""
        self._queue_channel = ""
        self.is_open = False
        # who is connected, in pg_stat_activity (`mcp-scheduler status` lists the processes by it)
        self.application_name = f"mcp-scheduler/{writer} pid {os.getpid()} on {socket.gethostname()}"[:63]

    async def _connect(self) -> Connection:
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
            # A process frozen in the middle of a write (SIGSTOP) would hold the runner lease's fencing token, and
            # with it the next runner's takeover, for as long as it is frozen.
            await conn.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_WRITE_MS}")
        except BaseException:
            await conn.close()
            raise
        return conn

    async def open(self, create: Callable[[Connection], Awaitable[None]]) -> None:
        """Connect, run `create` (the tables) in a transaction on the write connection, then listen."""
        if self.is_open:
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
            async with self._write_conn.transaction():
                await create(self._write_conn)
            await self._listen()  # before anything is loaded: a write made after the load is never missed
            self.is_open = True
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close every connection (idempotent)."""
        self.is_open = False
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
    async def _using(self, write: bool) -> AsyncIterator[Connection]:
        """The write or read connection, held alone; reconnected if it was lost."""
        if not self.is_open:
            raise SchedulerStateError("The job store is closed: open it first.")
        async with self._write_lock if write else self._read_lock:
            conn = self._write_conn if write else self._read_conn
            if conn is None or conn.closed or conn.broken:
                if conn is not None:
                    # Said once per loss: while the server is down the callers' attempts fail in _connect, and
                    # their backoff logs them.
                    logger.warning("The connection to PostgreSQL at %s was lost: reconnecting", _where(self._url))
                    if write:
                        self._write_conn = None
                    else:
                        self._read_conn = None
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
    async def transaction(self) -> AsyncIterator[Connection]:
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

    async def fetch(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
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

    async def notify(self, conn: Connection) -> None:
        """Wake the followers once this transaction commits (the payload names the writer)."""
        await conn.execute("SELECT pg_notify(%s, %s)", (self._channel, self._writer))

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

    async def _receive(self, conn: Connection) -> None:
        async for notify in conn.notifies():
            if notify.payload != self._writer:  # a process is not woken by its own writes
                self._notified = True

    async def changed(self) -> bool:
        """True if another process may have written since the last call: notified, the LISTEN connection
        was lost, or RECHECK_EVERY has passed."""
        if not self.is_open:
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
