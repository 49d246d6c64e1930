"""The toolkits' PostgreSQL database: one synchronous psycopg 3 connection (imported only for a PostgreSQL URL).

The tables live in the first existing schema of the URL's search_path (`?options=-csearch_path%3Dname`),
next to the scheduler's own. Times are stored as POSIX seconds (`double precision`), as on SQLite, so
every statement is the same on both. A connection found lost (a server restart, a firewall) is replaced
before the next transaction, and a read outside a transaction is asked once more on the new connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

import psycopg

from ..postgres import (
    ADVISORY_XACT_LOCK,
    CONNECT_TIMEOUT,
    KEEPALIVES,
    SCHEMA_LOCK,
    cannot_connect,
    channel,
    mask_password,
    no_schema,
    where,
)
from ._db import Cursor, Database
from .errors import DatabaseUnavailableError

__all__ = ["POLL_INTERVAL", "PostgresDatabase"]

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.2
"""Seconds between two looks of a waiting `dequeue` for messages that other processes enqueued."""


class PostgresDatabase(Database):
    """A toolkit store's connection to PostgreSQL (autocommit; explicit transactions)."""

    types: ClassVar[Mapping[str, str]] = {
        "key": "BIGSERIAL PRIMARY KEY",
        "serial": "BIGSERIAL PRIMARY KEY",
        "float": "DOUBLE PRECISION",
    }
    skip_locked: ClassVar[str] = " FOR UPDATE SKIP LOCKED"
    for_update: ClassVar[str] = " FOR UPDATE"
    poll_interval = POLL_INTERVAL

    def __init__(self, url: str, *, name: str) -> None:
        self._url = url
        self._name = name
        self.location = mask_password(url)
        self._statements: dict[str, str] = {}
        self._in_transaction = False
        self._closed = False
        self._conn = self._connect()
        try:
            row = self._conn.execute("SELECT current_schema()").fetchone()
            if row is None or row[0] is None:
                raise DatabaseUnavailableError(no_schema(url))
            self._schema = str(row[0])
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.Connection.connect(
                self._url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                application_name=f"agentool {self._name}",
                **KEEPALIVES,
            )
        except psycopg.Error as exc:
            raise DatabaseUnavailableError(cannot_connect(self._url, exc)) from exc

    def _usable(self) -> psycopg.Connection[Any]:
        """The connection, replaced first if it was lost (only between transactions)."""
        if self._closed:
            raise DatabaseUnavailableError(f"The connection to PostgreSQL at {where(self._url)} is closed.")
        conn = self._conn
        if (conn.closed or conn.broken) and not self._in_transaction:
            logger.warning("The connection of %s to PostgreSQL at %s was lost: reconnecting", self._name,
                           where(self._url))
            with suppress(psycopg.Error):
                conn.close()
            conn = self._conn = self._connect()
        return conn

    def _sql(self, statement: str) -> str:
        converted = self._statements.get(statement)
        if converted is None:
            if "%" in statement:
                raise ValueError(f"A toolkit statement must not contain '%' (it uses ? placeholders): {statement}")
            converted = self._statements[statement] = statement.replace("?", "%s")
        return converted

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Cursor:
        query = self._sql(statement)
        if self._in_transaction:
            return self._conn.execute(query, params)
        try:
            return self._usable().execute(query, params)
        except psycopg.OperationalError:
            if not (self._conn.closed or self._conn.broken):
                raise
            return self._usable().execute(query, params)  # a read outside a transaction: safe to ask again

    @contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self._usable()
        try:
            conn.execute("BEGIN")
        except psycopg.OperationalError:
            if not (conn.closed or conn.broken):
                raise
            conn = self._usable()  # lost before anything was written: begin once more on a new connection
            conn.execute("BEGIN")
        self._in_transaction = True
        try:
            yield
        except BaseException as exc:
            self._in_transaction = False
            if not conn.closed and not conn.broken:
                with suppress(psycopg.Error):
                    conn.execute("ROLLBACK")
            elif isinstance(exc, psycopg.OperationalError):
                raise DatabaseUnavailableError(
                    f"The connection of {self._name} to PostgreSQL at {where(self._url)} was lost during a transaction "
                    f"({str(exc).strip()}); nothing was written. Try again: the next call reconnects."
                ) from exc
            raise
        self._in_transaction = False
        try:
            conn.execute("COMMIT")
        except psycopg.OperationalError as exc:
            if not (conn.closed or conn.broken):
                raise
            raise DatabaseUnavailableError(
                f"The connection of {self._name} to PostgreSQL at {where(self._url)} was lost while committing "
                f"({str(exc).strip()}): the write may or may not have been made. Check before trying again."
            ) from exc

    def lock(self, which: int) -> None:
        self._conn.execute(ADVISORY_XACT_LOCK, (which,))

    def notify(self, topic: str, payload: str) -> None:
        self._conn.execute("SELECT pg_notify(%s, %s)", (channel(topic, self._schema), payload))

    def create_tables(self, statements: Sequence[str]) -> None:
        with self.transaction():
            self.lock(SCHEMA_LOCK)  # several processes may create the tables at once
            for statement in statements:
                self.execute(statement.format(**self.types))

    def close(self) -> None:
        self._closed = True
        with suppress(psycopg.Error):
            self._conn.close()
