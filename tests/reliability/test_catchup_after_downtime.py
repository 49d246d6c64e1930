"""A `once` job whose time passed while every process of the store was dead runs late at the next start.

Each test starts a real HTTP server on a SQLite file, schedules a `once` job an hour ahead, kills the server
with SIGKILL and edits the job's row as that downtime leaves it when it lasts: its time (the stored next run
time, and the schedule's own time) lies well in the past. Then a new server starts on the file and the test
waits for the job's record in the database. Within the catch-up window (one day by default) the job runs,
and its record says how late and why; beyond it the fire is recorded missed and the inbox says so, once.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mcp import Client

from mcp_scheduler.timestamps import utcnow
from tests._net import authorized, eventually, free_port, stop
from tests.reliability._support import marks, runs
from tests.reliability.test_kill9 import start_server

WAIT = 30.0
AT = r"(\d{4}-\d\d-\d\d )?\d\d:\d\d UTC"  # a time as the notes give it: the date only when it is not today


def _server(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = start_server(tmp / "s.db", port, tmp / "server.log", "--no-background-runner")
    return process, f"http://127.0.0.1:{port}/mcp"


async def _schedule_reminder(url: str, mark_file: Path) -> None:
    async with Client(authorized(url)) as client:
        result = await client.call_tool("schedule_job", {
            "job_id": "reminder", "job_name": "Reminder", "schedule_type": "once", "schedule": "in 1 hour",
            "agentool_name": "sleeper",
            "input_data": {"operation": "sleep", "seconds": 0, "token": "reminder", "path": str(mark_file)},
        })
        assert not result.is_error, result


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def _move_into_the_past(database: Path, job_id: str, when: datetime) -> None:
    """Make the stored `once` job due at `when`: what a store looks like after downtime longer than that."""
    with sqlite3.connect(database) as conn:
        (text,) = conn.execute("SELECT definition FROM scheduler_jobs WHERE job_id = ?", (job_id,)).fetchone()
        definition = json.loads(text)
        definition["schedule"].update(run_at=when.isoformat(), expression=when.isoformat(),
                                      description=f"once at {when:%Y-%m-%d %H:%M:%S} UTC (UTC)")
        changed = conn.execute(
            "UPDATE scheduler_jobs SET next_run_time = ?, definition = ? WHERE job_id = ?",
            (when.isoformat(), json.dumps(definition), job_id),
        ).rowcount
    conn.close()
    assert changed == 1


def _finished(database: Path, job_id: str) -> list[dict[str, Any]]:
    return [r for r in runs(database) if r["job_id"] == job_id and r["status"] != "running"]


async def _inbox(url: str) -> list[dict[str, Any]]:
    async with Client(authorized(url)) as client:
        page = await client.call_tool("read_inbox", {"count": 100})
        assert page.structured_content is not None
        messages: list[dict[str, Any]] = page.structured_content["messages"]
        return messages


async def test_a_once_job_due_while_every_process_was_killed_runs_late_at_the_next_start_and_says_how_late(
    tmp_path: Path,
) -> None:
    database, mark_file = tmp_path / "s.db", tmp_path / "marks"
    process, url = _server(tmp_path)
    try:
        await _schedule_reminder(url, mark_file)
    finally:
        _kill(process)
    due = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=10)  # well beyond the old 30 s grace
    _move_into_the_past(database, "reminder", due)

    process, url = _server(tmp_path)
    try:
        await eventually(lambda: bool(_finished(database, "reminder")), within=WAIT, what="the reminder's record")
        [record] = _finished(database, "reminder")
        inbox = await _inbox(url)
    finally:
        stop(process)

    assert (record["status"], record["trigger"]) == ("success", "catch_up"), record
    assert record["scheduled_time"] == due.isoformat()
    assert re.fullmatch(rf"ran 1[01] min late: nothing was running at {AT}", record["note"]), record["note"]
    assert f"{due:%H:%M} UTC" in record["note"]
    assert marks(mark_file) == [("reminder", "start"), ("reminder", "end")]  # it really ran, once
    assert inbox == []  # it ran: nothing to tell


async def test_a_once_job_due_longer_ago_than_the_catch_up_window_is_missed_and_the_inbox_says_so_once(
    tmp_path: Path,
) -> None:
    database, mark_file = tmp_path / "s.db", tmp_path / "marks"
    process, url = _server(tmp_path)
    try:
        await _schedule_reminder(url, mark_file)
    finally:
        _kill(process)
    due = utcnow().replace(second=0, microsecond=0) - timedelta(days=2)  # the default window is one day
    _move_into_the_past(database, "reminder", due)

    process, url = _server(tmp_path)
    try:
        await eventually(lambda: bool(_finished(database, "reminder")), within=WAIT, what="the reminder's record")
        stop(process)  # and once more: the missed fire is not told again
        process, url = _server(tmp_path)
        [record] = _finished(database, "reminder")
        inbox = await _inbox(url)
    finally:
        stop(process)

    assert (record["status"], record["trigger"]) == ("missed", "catch_up"), record
    assert re.fullmatch(
        rf"due 2 days ago, longer ago than its catch-up window \(1 day, the server's --catchup-window\): "
        rf"nothing was running at {AT}", record["note"]), record["note"]
    assert marks(mark_file) == []
    [message] = inbox
    assert (message["source"], message["level"], message["job_id"]) == ("scheduler", "warning", "reminder")
    assert message["title"] == "Reminder: missed 1 run"
    assert f"Job 'Reminder' missed its run due at {due:%Y-%m-%d %H:%M} UTC" in message["message"]
    assert "catch-up window (1 day, the server's --catchup-window)" in message["message"]
