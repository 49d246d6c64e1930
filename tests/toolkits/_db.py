"""Reading a toolkit's tables from the test, on either database."""

from __future__ import annotations

import sqlite3
from typing import Any


def is_postgres(database: str) -> bool:
    """True for a PostgreSQL URL (the `database` fixture's other choice is a SQLite file)."""
    return database.startswith("postgresql://")


def query(database: str, statement: str) -> list[tuple[Any, ...]]:
    """The rows of one statement, read by a connection of the test's own (not the store's)."""
    if is_postgres(database):
        import psycopg

        with psycopg.connect(database, autocommit=True) as pg:
            cursor = pg.execute(statement)
            return cursor.fetchall() if cursor.description is not None else []
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute(statement).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def tables(database: str) -> list[str]:
    """The tables (and, on SQLite, indexes) of the database, or of the URL's schema on PostgreSQL."""
    if is_postgres(database):
        statement = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    else:
        statement = "SELECT name FROM sqlite_master WHERE name NOT GLOB 'sqlite_*'"
    return sorted(row[0] for row in query(database, statement))
