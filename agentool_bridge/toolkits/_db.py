"""Where the `queue` and `storage_kv` toolkits keep their data: SQLite (a file, or memory) or PostgreSQL.

A `Database` is one synchronous connection, used by its store under the store's own lock. The stores
write each statement once, in SQL that both databases run, with `?` placeholders; the database says
what differs: the column types of CREATE TABLE (`{key}`, `{serial}`, `{float}`), how a write
transaction begins, row locks for rows a transaction takes (`skip_locked`, `for_update`) and
transaction-level advisory locks. The PostgreSQL side (`_postgres.py`, psycopg 3) is imported only
for a `postgresql://` URL, so a process on SQLite never loads psycopg.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, Protocol

from ..extras import POSTGRES, require_extra
from ._common import is_postgres_url, open_sqlite, transaction

__all__ = ["Cursor", "Database", "SQLiteDatabase", "open_database"]


class Cursor(Protocol):
    """What a statement returns, on either database: rows as tuples."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Database(ABC):
    """One connection of a toolkit store; callers serialize its use with their own lock."""

    types: ClassVar[Mapping[str, str]]
    """Column types for CREATE TABLE: `key` (an integer primary key), `serial` (one never reused), `float`."""
    skip_locked: ClassVar[str] = ""
    """Appended to a SELECT of rows the transaction takes: rows other transactions hold are skipped."""
    for_update: ClassVar[str] = ""
    """Appended to a SELECT of a row the transaction changes: it waits for others holding the row."""
    poll_interval: float | None = None
    """How often a waiting `dequeue` looks for messages that other processes enqueued (None: it does not)."""
    location: str
    """Where the data is, for messages (never a password)."""

    @abstractmethod
    def execute(self, statement: str, params: Sequence[Any] = ()) -> Cursor:
        """Run one statement (`?` placeholders), in the current transaction if there is one."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction: committed when the block ends, rolled back on any error."""

    @abstractmethod
    def lock(self, which: int) -> None:
        """Inside a transaction: wait for other writers holding lock `which` (until this one commits).

        SQLite has one writer at a time already; PostgreSQL takes a transaction-level advisory lock.
        """

    @abstractmethod
    def notify(self, topic: str, payload: str) -> None:
        """Inside a transaction: tell the listeners of `topic` on this database once it commits.

        PostgreSQL: NOTIFY on the topic's channel of the schema; SQLite: nothing (readers of a file
        see every commit through `PRAGMA data_version`).
        """

    def create_tables(self, statements: Sequence[str]) -> None:
        """Run CREATE statements (with `{key}`, `{serial}`, `{float}` column types) in one transaction."""
        with self.transaction():
            for statement in statements:
                self.execute(statement.format(**self.types))

    @abstractmethod
    def close(self) -> None:
        """Close the connection (idempotent)."""


class SQLiteDatabase(Database):
    """A SQLite file (WAL, one writer at a time: `BEGIN IMMEDIATE`) or a private in-memory database."""

    types: ClassVar[Mapping[str, str]] = {
        "key": "INTEGER PRIMARY KEY",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "float": "REAL",
    }

    def __init__(self, database: str | os.PathLike[str] | None) -> None:
        self._conn = open_sqlite(database)
        self.location = ":memory:" if database is None else os.fspath(database)

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Cursor:
        return self._conn.execute(statement, params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with transaction(self._conn):
            yield

    def lock(self, which: int) -> None:
        pass  # BEGIN IMMEDIATE: this transaction is the only writer until it ends

    def notify(self, topic: str, payload: str) -> None:
        pass

    def close(self) -> None:
        self._conn.close()


def open_database(
    database: str | os.PathLike[str] | None, *, name: str, tables: Sequence[str] = ()
) -> Database:
    """The database of a toolkit store: a PostgreSQL URL, a SQLite file, or None for memory.

    `name` says whose connection it is (shown in PostgreSQL's `pg_stat_activity`); `tables`: the store's
    CREATE TABLE statements, run before it is returned (the connection is closed if they fail).
    """
    opened: Database
    if is_postgres_url(database):
        require_extra(POSTGRES)
        from ._postgres import PostgresDatabase  # psycopg is imported only for a PostgreSQL database

        opened = PostgresDatabase(str(database), name=name)
    else:
        opened = SQLiteDatabase(database)
    try:
        opened.create_tables(tables)
    except BaseException:
        opened.close()
        raise
    return opened
