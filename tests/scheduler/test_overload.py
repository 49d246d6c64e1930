"""Beyond what the scheduler can run: bounded runs at a time, and fires that do not run share records."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp_scheduler import SchedulerService
from tests.scheduler._support import Calls, EventRecorder, Slow, finished, request, started

WAIT = {"operation": "wait", "label": "slow"}


async def test_a_long_backlog_of_missed_fires_costs_a_few_records_not_one_per_fire(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    first: SchedulerService = await make_service()
    await first.schedule(request("minutely", "interval", "1 minute", misfire_grace_time=86_400, coalesce=True))
    await first.close()
    with sqlite3.connect(db_path) as conn:  # down for 20 minutes: 20 fires were due
        conn.execute(
            "UPDATE scheduler_jobs SET next_run_time = ? WHERE job_id = 'minutely'",
            ((datetime.now(UTC) - timedelta(minutes=19, seconds=30)).isoformat(),),
        )
    conn.close()

    second: SchedulerService = await make_service(open=False)
    recorder = EventRecorder(second.events)
    await second.open()
    await recorder.wait_for(finished("minutely", "success"))

    await second.close()
    third: SchedulerService = await make_service()
    history = await third.get_history("minutely", limit=100)
    missed = [r for r in history if r.status == "missed"]
    assert len(missed) == 2  # the first on its own, then one shared by the other 18
    [shared] = [r for r in missed if "one record for all" in (r.note or "")]
    assert shared.note is not None and shared.note.startswith("18 fires missed from ")
    assert "coalesced" in shared.note
    assert [r.status for r in history].count("success") == 1 and len(echo.inputs) == 1


async def test_no_more_runs_go_at_a_time_than_max_concurrent_runs(make_service: Any, slow: Slow) -> None:
    service: SchedulerService = await make_service(open=False, max_concurrent_runs=2)
    recorder = EventRecorder(service.events)
    await service.open()
    for i in range(4):
        await service.schedule(request(f"due-{i}", "once", "now", agentool_name="slow", input_data=WAIT))

    await recorder.wait_for(lambda e: getattr(e, "kind", None) == "started", count=2)
    assert slow.started == 2 and service.status().runs_in_progress == 2
    slow.release.set()
    for i in range(4):
        await recorder.wait_for(finished(f"due-{i}", "success"))
    assert slow.finished == 4


async def test_a_fire_that_waits_for_a_slot_beyond_its_grace_time_is_missed(make_service: Any, slow: Slow) -> None:
    service: SchedulerService = await make_service(open=False, max_concurrent_runs=1)
    recorder = EventRecorder(service.events)
    await service.open()
    await service.schedule(request("holder", "once", "now", agentool_name="slow", input_data=WAIT))
    await recorder.wait_for(started("holder"))
    await service.schedule(
        request("waiter", "once", "now", agentool_name="slow", input_data=WAIT, misfire_grace_time=0)
    )

    await asyncio.sleep(1.2)  # time passing is the point: the waiter's grace time (at least 1 s) runs out
    slow.release.set()

    [missed] = await recorder.wait_for(finished("waiter"))
    assert missed.record.status == "missed"  # type: ignore[union-attr]
    assert "runs the scheduler does at a time" in (missed.record.note or "")  # type: ignore[union-attr]
    assert slow.started == 1


async def test_fires_beyond_the_runs_at_a_time_wait_in_due_order_and_none_is_skipped(
    make_service: Any, slow: Slow, echo: Calls
) -> None:
    service: SchedulerService = await make_service(open=False, max_concurrent_runs=1)
    recorder = EventRecorder(service.events)
    await service.open()
    await service.schedule(request("holder", "once", "now", agentool_name="slow", input_data=WAIT))
    await recorder.wait_for(started("holder"))
    for i in range(3):
        await service.schedule(request(f"queued-{i}", "once", "now", misfire_grace_time=3600))

    await asyncio.sleep(0.3)  # what is checked is that nothing happens meanwhile
    assert service.status().runs_in_progress == 1 and echo.inputs == []
    # held by the engine, not handed over to wait inside the executor: still scheduled, not completed
    states = {job.job_id: job.state for job in service.list_jobs()[0]}
    assert [states[f"queued-{i}"] for i in range(3)] == ["scheduled"] * 3
    slow.release.set()
    for i in range(3):
        await recorder.wait_for(finished(f"queued-{i}", "success"))

    starts = [e.record.job_id for e in recorder.matching(lambda e: getattr(e, "kind", None) == "started")]
    assert starts == ["holder", "queued-0", "queued-1", "queued-2"]
    statuses = [e.record.status for e in recorder.matching(lambda e: getattr(e, "kind", None) == "finished")]
    assert "skipped" not in statuses and "missed" not in statuses


def _stored(db_path: str, job_id: str) -> tuple[str | None, list[str]]:
    """The job's stored next run time and the notes of its stored skipped records (read from the file)."""
    with sqlite3.connect(db_path) as conn:
        [(next_run,)] = conn.execute("SELECT next_run_time FROM scheduler_jobs WHERE job_id = ?", (job_id,))
        notes = [json.loads(text)["note"] for (text,) in conn.execute(
            "SELECT record FROM scheduler_runs WHERE job_id = ? AND status = 'skipped' ORDER BY seq", (job_id,))]
    conn.close()
    return next_run, notes


async def test_the_count_of_fires_not_run_is_committed_with_their_jobs_bookkeeping_not_before_or_after(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    service: SchedulerService = await make_service()
    await service.schedule(request("ticker", "interval", "1 hour"))
    await service._history.flush()
    start = datetime.now(UTC).replace(microsecond=0)
    fires = [start + timedelta(seconds=k) for k in range(4)]
    service._runs.admission.on_skipped("ticker", fires[:3])  # the first on its own, two share a record
    await service._history.flush()
    _, notes = _stored(db_path, "ticker")
    assert len(notes) == 2 and notes[1].startswith("2 fires skipped from ")

    # Another fire: its count waits for the job's bookkeeping (nothing else wrote the job)...
    service._runs.admission.on_skipped("ticker", fires[3:])
    await service._history.flush()
    assert _stored(db_path, "ticker")[1] == notes
    # ...and goes with it: one transaction for the job's next run time and the count.
    service._history.touch("ticker")
    await service._history.flush()
    _, after = _stored(db_path, "ticker")
    assert len(after) == 2 and after[1].startswith(f"3 fires skipped from {fires[1].isoformat()} to "
                                                   f"{fires[3].isoformat()}")
    assert echo.inputs == []


async def test_fires_recorded_in_one_call_give_the_records_of_as_many_calls(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    service: SchedulerService = await make_service()
    for job_id in ("together", "one-by-one"):
        await service.schedule(request(job_id, "interval", "1 hour"))
    start = datetime.now(UTC).replace(microsecond=0)
    fires = [start + timedelta(seconds=k) for k in range(10)]
    not_run = service._runs.not_run
    jobs = {job_id: service._runs.admission._table.get(job_id) for job_id in ("together", "one-by-one")}
    for part in (fires[:1], fires[1:4], fires[4:]):  # a window opened by one fire, then hand-overs of several
        not_run.record_many(jobs["together"], part, "skipped", "why")
        for fire in part:
            not_run.record(jobs["one-by-one"], fire, "skipped", "why")
        service._history.touch("together")
        service._history.touch("one-by-one")
        await service._history.flush()
        together, one_by_one = _stored(db_path, "together")[1], _stored(db_path, "one-by-one")[1]
        assert together == one_by_one
    assert together == ["why", f"9 fires skipped from {fires[1].isoformat()} to {fires[9].isoformat()} (one record "
                                "for all; the last said: why)"]
    assert echo.inputs == []
