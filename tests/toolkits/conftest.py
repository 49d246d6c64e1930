"""Fixtures of the built-in toolkit tests: an injector of each test's own, and the database the queue and
storage_kv tests run on (each behaviour test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentool_bridge import AgenToolInjector


@pytest.fixture
def injector() -> Iterator[AgenToolInjector]:
    """An injector active for the test; its AgenTools (and their databases and files) are closed after it."""
    own = AgenToolInjector()
    with own.activate():
        yield own
    own.clear()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's toolkit stores keep their data: a SQLite file, or a PostgreSQL schema of the test's own."""
    if request.param == "sqlite":
        return str(tmp_path / "toolkits.db")
    url: str = request.getfixturevalue("postgres_url")
    return url

