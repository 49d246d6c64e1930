"""Processes that open a new SQLite file together all open it: the switch to WAL waits for the others (SQLite does
not call the busy handler for it: "database is locked"), and the tables' upgrade is one write transaction, not a
look at the columns followed by a change that another process made in between ("duplicate column name")."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mcp_scheduler.store import SQLiteStore


async def test_stores_opening_a_new_file_at_once_all_open_it(tmp_path: Path) -> None:
    for attempt in range(40):
        path = tmp_path / f"fresh-{attempt}.db"
        stores = [SQLiteStore(path) for _ in range(6)]
        try:
            results = await asyncio.gather(*(store.open() for store in stores), return_exceptions=True)
            assert [r for r in results if isinstance(r, BaseException)] == [], f"attempt {attempt}"
        finally:
            for store in stores:
                await store.close()
