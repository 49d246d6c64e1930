"""A SQLite database written by an earlier version opens, and its runs can be found by time and AgenTool."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from mcp_scheduler import JobDefinition
from mcp_scheduler.models import RunRecord
from mcp_scheduler.schedules import parse_schedule
from mcp_scheduler.store import SQLiteStore

# The round-1 tables, before runs had a time and an AgenTool column and jobs a history start.
OLD_SCHEMA = """
CREATE TABLE scheduler_jobs (job_id TEXT PRIMARY KEY, created_seq INTEGER NOT NULL, definition TEXT NOT NULL,
    state TEXT NOT NULL, next_run_time TEXT, last_run_at TEXT, last_status TEXT);
CREATE TABLE scheduler_runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL, status TEXT NOT NULL, record TEXT NOT NULL);
"""


async def test_runs_of_an_earlier_version_get_their_time_and_agentool_on_open(tmp_path: Path) -> None:
    database = tmp_path / "old.sqlite"
    started = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    berlin = started.astimezone(ZoneInfo("Europe/Berlin"))  # stored with its own offset, found by its instant
    old = RunRecord(run_id="r-old", job_id="j", agentool_name="logging", trigger="schedule", status="error",
                    scheduled_time=started, started_at=berlin)
    with sqlite3.connect(database) as conn:
        conn.executescript(OLD_SCHEMA)
        conn.execute("INSERT INTO scheduler_runs (run_id, job_id, status, record) VALUES (?, ?, ?, ?)",
                     (old.run_id, old.job_id, old.status, old.model_dump_json()))
    conn.close()

    store = SQLiteStore(str(database))
    await store.open()
    try:
        assert [r.run_id for r in await store.history(None, since=started - timedelta(seconds=1))] == ["r-old"]
        assert await store.history(None, since=started + timedelta(seconds=1)) == []
        assert [r.run_id for r in await store.history(None, agentool_name="logging")] == ["r-old"]
        assert [r.run_id for r in await store.history("j")] == ["r-old"]
    finally:
        await store.close()


async def test_jobs_of_an_earlier_version_open_with_no_progress(tmp_path: Path) -> None:
    database = tmp_path / "old.sqlite"
    definition = JobDefinition(job_id="j", agentool_name="echo", schedule=parse_schedule("interval", "1 hour", "UTC"),
                               created_at=datetime(2026, 11, 1, 10, 0, tzinfo=UTC)).model_dump_json()
    with sqlite3.connect(database) as conn:
        conn.executescript(OLD_SCHEMA)
        conn.execute("INSERT INTO scheduler_jobs (job_id, created_seq, definition, state) VALUES ('j', 1, ?, "
                     "'scheduled')", (definition,))
    conn.close()

    store = SQLiteStore(str(database))
    await store.open()
    try:
        job = await store.load_job("j")
        assert job is not None and (job.failures, job.runs, job.pause_reason, job.retry) == (0, 0, None, None)
    finally:
        await store.close()
