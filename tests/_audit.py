"""A broken audit log on a real database: a trigger that makes every insert into `scheduler_audit` fail (SQLite's
`RAISE(ABORT)`, a PL/pgSQL `RAISE EXCEPTION`), for the tests that show a change and its audit entry commit together."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["BACKENDS", "audit_refused", "database_of", "is_postgres"]

BACKENDS = ["sqlite", "postgres"]

_SQLITE_ON = (
    "CREATE TRIGGER refuse_audit BEFORE INSERT ON scheduler_audit BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
)
_POSTGRES_ON = (
    "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit refused'; END $$; "
    "CREATE TRIGGER refuse_audit BEFORE INSERT ON scheduler_audit FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
)
_POSTGRES_OFF = "DROP TRIGGER refuse_audit ON scheduler_audit; DROP FUNCTION refuse_audit()"


def database_of(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database of a test parametrized over BACKENDS: a SQLite file in `tmp_path`, or a PostgreSQL schema of
    its own (the `postgres_url` fixture)."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    return url


def is_postgres(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://"))


def _execute(database: str, script: str) -> None:
    if is_postgres(database):
        import psycopg

        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(script)  # type: ignore[arg-type]
    else:
        with contextlib.closing(sqlite3.connect(database)) as conn:
            conn.executescript(script)


@contextlib.contextmanager
def audit_refused(database: str) -> Iterator[None]:
    """While inside, every audit entry written to `database` (a SQLite file or a PostgreSQL URL whose tables exist)
    fails, in whichever transaction writes it."""
    _execute(database, _POSTGRES_ON if is_postgres(database) else _SQLITE_ON)
    try:
        yield
    finally:
        _execute(database, _POSTGRES_OFF if is_postgres(database) else "DROP TRIGGER refuse_audit")
