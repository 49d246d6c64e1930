"""Restart with many jobs: paged loading from SQLite and the engine's bulk load must lose nothing."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mcp_scheduler import SchedulerService
from mcp_scheduler._engine import Engine, EngineJob
from mcp_scheduler.scheduler import replication
from mcp_scheduler.schedules import parse_schedule
from tests.scheduler._support import ECHO, Calls, EventRecorder, finished, request, set_stored_next_run


async def test_a_restart_reads_the_jobs_page_by_page_and_keeps_all_of_them(
    make_service: Any, db_path: str, echo: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replication, "LOAD_PAGE", 3)  # 11 jobs: four pages, the last one short
    first = await make_service()
    before = []
    for i in range(11):
        kind = ("interval", "1 hour") if i % 3 else ("cron", f"{i} 9 * * 1-5")
        before.append(await first.schedule(request(f"job-{i:02d}", *kind)))
    await first.pause("job-04")
    await first.close()
    overdue = datetime.now(UTC) - timedelta(seconds=5)  # within the grace time: runs at once on open
    set_stored_next_run(db_path, "job-07", overdue)

    second: SchedulerService = await make_service(open=False)
    recorder = EventRecorder(second.events)
    await second.open()
    jobs, total = second.list_jobs()

    assert total == 11
    assert [j.job_id for j in jobs] == [j.job_id for j in before]  # creation order
    by_id = {j.job_id: j for j in jobs}
    assert by_id["job-04"].state == "paused" and by_id["job-04"].next_run is None
    for job in before:
        if job.job_id not in ("job-04", "job-07"):
            assert by_id[job.job_id].next_run == job.next_run
            assert by_id[job.job_id].description == job.description
    [run] = await recorder.wait_for(finished("job-07"))
    assert run.record.scheduled_time == overdue
    assert echo.inputs == [{**ECHO, "count": 1}]  # the AgenTool sees its defaults filled in


async def test_a_job_row_that_is_not_json_fails_open_naming_the_job(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    first = await make_service()
    await first.schedule(request("fine"))
    await first.schedule(request("garbled"))
    await first.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE scheduler_jobs SET definition = '{\"job_id\": ' WHERE job_id = 'garbled'")
    conn.close()

    second = await make_service(open=False)
    with pytest.raises(json.JSONDecodeError) as caught:
        await second.open()

    assert "while loading job 'garbled'" in " ".join(getattr(caught.value, "__notes__", []))
    assert second.is_open is False


async def test_bulk_loaded_jobs_fire_in_time_order_and_answer_pause_resume_and_remove() -> None:
    fired: list[tuple[str, list[datetime]]] = []
    all_fired, added_fired = asyncio.Event(), asyncio.Event()
    due_ids = {"due-a", "due-b", "due-c"}

    async def on_due(job_id: str, run_times: list[datetime]) -> None:
        fired.append((job_id, run_times))
        if due_ids <= {j for j, _ in fired}:
            all_fired.set()
        if job_id == "added":
            added_fired.set()

    now = datetime.now(UTC)
    hourly = parse_schedule("interval", "1 hour", "UTC")
    rng = random.Random(7)
    specs = [
        EngineJob(f"later-{i:03d}", hourly, 1, now + timedelta(minutes=rng.randint(5, 500), microseconds=i))
        for i in range(300)
    ]
    # overdue jobs at random places in the input: only a list sorted by next run time lets them be found
    for offset, job_id in zip((2, 9, 30), sorted(due_ids), strict=True):
        specs.insert(rng.randrange(len(specs)), EngineJob(job_id, hourly, 1, now - timedelta(seconds=offset)))
    specs.append(EngineJob("held", hourly, 1, now - timedelta(seconds=1), paused=True))
    specs.append(EngineJob("computed", hourly, 1))  # no stored time: the trigger computes it

    engine = Engine(on_due, lambda job_id, times: None, ZoneInfo("UTC"))
    engine.load(specs)
    engine.start()
    try:
        await asyncio.wait_for(all_fired.wait(), 5)

        assert {job_id for job_id, _ in fired} == due_ids  # not "held", not any later job
        next_time = engine.next_run_time("later-000")
        assert next_time is not None and next_time > now
        computed = engine.next_run_time("computed")
        assert computed is not None and timedelta(minutes=59) < computed - now <= timedelta(hours=1, seconds=5)
        assert engine.next_run_time("held") is None
        assert engine.resume_job("held") is not None
        engine.pause_job("later-001")
        assert engine.next_run_time("later-001") is None
        engine.remove_job("later-002")
        assert not engine.has_job("later-002")
        engine.add_job(EngineJob("added", hourly, 1, now - timedelta(seconds=1)))
        await asyncio.wait_for(added_fired.wait(), 5)
    finally:
        engine.shutdown()
