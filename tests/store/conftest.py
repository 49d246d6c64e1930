"""The stores under test: every contract test runs on SQLite (a file in tmp_path) and on PostgreSQL (a
schema of its own, from the `postgres_url` fixture of tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mcp_scheduler.store import SchedulerStore, store_for

StoreFactory = Callable[[], Awaitable[Any]]


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the stores of a test keep their data: a SQLite file, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def open_store(database: str) -> AsyncIterator[StoreFactory]:
    """Open another store on the test's database (as another process would); all are closed at teardown."""
    stores: list[SchedulerStore] = []

    async def factory() -> Any:
        store = store_for(database)
        stores.append(store)
        await store.open()
        return store

    yield factory
    for store in reversed(stores):
        await store.close()


@pytest.fixture
async def store(open_store: StoreFactory) -> Any:
    return await open_store()
