"""The store a database string names: a PostgreSQL URL, else a SQLite file (None: in memory); and an
existing one opened for reading, as `mcp-scheduler jobs`, `history` and the job commands do.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from agentool_bridge.extras import POSTGRES, require_extra
from agentool_bridge.toolkits import is_postgres_url

from .base import SchedulerStore
from .sqlite import SQLiteStore

__all__ = ["read_store", "require_database", "store_for"]


def store_for(database: str | None) -> SchedulerStore:
    """A new (not yet open) store on `database`: a `PostgresStore` for a PostgreSQL URL (psycopg is imported
    only then), else a `SQLiteStore` on that file, or in memory for None."""
    if is_postgres_url(database):
        from .postgres import PostgresStore

        return PostgresStore(str(database))
    return SQLiteStore(database)


def require_database(database: str) -> None:
    """Raise `FileNotFoundError` unless `database` is a PostgreSQL URL or a SQLite file with the scheduler's
    tables: opening any other file would create them in it (`IsADirectoryError` for a folder). A PostgreSQL
    URL needs the `postgres` extra: `MissingExtraError` names the command that installs it."""
    if is_postgres_url(database):
        require_extra(POSTGRES)
        return
    if os.path.isdir(database):
        raise IsADirectoryError(f"{database} is a folder, not a scheduler database: pass --db FILE (the one the "
                                "server uses).")
    if not os.path.exists(database):
        raise FileNotFoundError(f"No scheduler database at {database}: pass --db FILE (the one the server uses).")
    # as_uri() percent-encodes the path: a '?', '#' or '%' in it would otherwise end or change the URI.
    try:
        with contextlib.closing(sqlite3.connect(f"{Path(database).resolve().as_uri()}?mode=ro", uri=True)) as conn:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'scheduler_jobs'"
            ).fetchone()
    except sqlite3.DatabaseError as exc:  # not SQLite at all ("file is not a database"), or damaged
        raise FileNotFoundError(
            f"{database} is not a scheduler database (SQLite: {exc}): pass --db FILE, the one the server uses."
        ) from None
    if found is None:
        raise FileNotFoundError(
            f"{database} is not a scheduler database (it has no scheduler_jobs table): pass --db FILE, the one "
            "the server uses."
        )


@asynccontextmanager
async def read_store(database: str) -> AsyncIterator[SchedulerStore]:
    """The job store of `database` (a SQLite file that must exist, or a PostgreSQL URL), open for the block."""
    require_database(database)
    store = store_for(database)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
