"""The stores under test: every contract test runs on SQLite (a file in tmp_path) and on PostgreSQL (a
schema of its own, created and dropped around the test, on the server that scripts/postgres.sh finds
or starts)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_scheduler.store import SchedulerStore, SQLiteStore

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres.sh"

StoreFactory = Callable[[], Awaitable[Any]]


class _Server:
    def __init__(self, url: str | None, folder: str | None, reason: str) -> None:
        self.url, self.folder, self.reason = url, folder, reason


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_Server]:
    """The base URL of a PostgreSQL server for the session (started here if needed, stopped at the end)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        yield _Server(None, None, "psycopg is not installed: pip install -e '.[dev]' (or '.[postgres]')")
        return
    done = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=600, check=False)
    lines = done.stdout.split()
    if done.returncode != 0 or not lines:
        yield _Server(None, None, f"no PostgreSQL server: scripts/postgres.sh said: {done.stderr.strip()[-1000:]}")
        return
    server = _Server(lines[0], lines[1] if len(lines) > 1 else None, "")
    yield server
    if server.folder is not None:
        subprocess.run([str(SCRIPT), "stop", server.folder], capture_output=True, timeout=120, check=False)


@pytest.fixture
def postgres_url(postgres_server: _Server) -> Iterator[str]:
    """A URL whose search_path is a fresh schema of this test's own (dropped afterwards)."""
    if postgres_server.url is None:
        pytest.skip(postgres_server.reason)
    import psycopg

    schema = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in postgres_server.url else "?"
    yield f"{postgres_server.url}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the stores of a test keep their data: a SQLite file, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    return url


def new_store(database: str) -> SchedulerStore:
    """A store of the backend that `database` names."""
    if database.startswith("postgresql://"):
        from mcp_scheduler.store import PostgresStore  # loaded here, on first use

        return PostgresStore(database)
    return SQLiteStore(database)


@pytest.fixture
async def open_store(database: str) -> AsyncIterator[StoreFactory]:
    """Open another store on the test's database (as another process would); all are closed at teardown."""
    stores: list[SchedulerStore] = []

    async def factory() -> Any:
        store = new_store(database)
        stores.append(store)
        await store.open()
        return store

    yield factory
    for store in reversed(stores):
        await store.close()


@pytest.fixture
async def store(open_store: StoreFactory) -> Any:
    return await open_store()
