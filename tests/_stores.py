"""The store of the backend a database string names, for tests on SQLite and PostgreSQL alike."""

from __future__ import annotations

from mcp_scheduler.store import SchedulerStore, SQLiteStore


def new_store(database: str) -> SchedulerStore:
    """A store of the backend that `database` names (a `postgresql://` URL, or a SQLite file)."""
    if database.startswith("postgresql://"):
        from mcp_scheduler.store import PostgresStore  # loaded here, on first use

        return PostgresStore(database)
    return SQLiteStore(database)
