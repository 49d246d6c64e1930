"""What a call or a fire reports is committed: read back with a separate connection, as after a crash.

The batched writer is slowed down here (flush_delay 30 s), so that anything found in the database
was committed on purpose, not by the next batch.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from mcp_scheduler import QueueEvent, SchedulerInput, SchedulerService
from tests.scheduler._support import Calls, EventRecorder, Slow, finished, request, started

WAIT = {"operation": "wait", "label": "slow"}
SLOW_BATCHES = 30.0


def stored_runs(database: str, job_id: str) -> list[dict[str, Any]]:
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT record FROM scheduler_runs WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall()
    conn.close()
    return [json.loads(text) for (text,) in rows]


def stored_job(database: str, job_id: str) -> tuple[str, str | None]:
    with sqlite3.connect(database) as conn:
        row = conn.execute("SELECT state, last_status FROM scheduler_jobs WHERE job_id = ?", (job_id,)).fetchone()
    conn.close()
    return row


async def test_run_now_answers_only_once_its_record_is_committed(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    service: SchedulerService = await make_service(flush_delay=SLOW_BATCHES)
    await service.schedule(request("manual"))

    record = await service.run_now(SchedulerInput(operation="run_now", job_id="manual"))

    [stored] = stored_runs(db_path, "manual")
    assert (stored["run_id"], stored["status"]) == (record.run_id, "success")


async def test_a_run_starts_only_once_its_start_and_its_jobs_completion_are_committed(
    make_service: Any, db_path: str, slow: Slow
) -> None:
    service: SchedulerService = await make_service(open=False, flush_delay=SLOW_BATCHES)
    recorder = EventRecorder(service.events)
    await service.open()
    await service.schedule(request("one-shot", "once", "now", agentool_name="slow", input_data=WAIT))
    await recorder.wait_for(started("one-shot"))

    [stored] = stored_runs(db_path, "one-shot")
    assert stored["status"] == "running" and stored["started_at"]
    assert stored_job(db_path, "one-shot") == ("completed", "running")
    slow.release.set()


async def test_a_run_left_running_by_a_dead_scheduler_is_interrupted_and_not_run_again(
    make_service: Any, db_path: str, slow: Slow
) -> None:
    # The first scheduler is left running without its lease, as if it had been killed mid-run.
    dead: SchedulerService = await make_service(open=False, use_lease=False, flush_delay=SLOW_BATCHES)
    recorder = EventRecorder(dead.events)
    await dead.open()
    await dead.schedule(request("one-shot", "once", "now", agentool_name="slow", input_data=WAIT))
    await recorder.wait_for(started("one-shot"))

    successor: SchedulerService = await make_service(use_lease=False)
    [interrupted] = await successor.get_history("one-shot")

    assert interrupted.status == "interrupted" and "not run again" in (interrupted.note or "")
    assert stored_job(db_path, "one-shot") == ("completed", "interrupted")
    assert slow.started == 1  # the successor did not run it again
    [job] = [j for j in successor.list_jobs(include_completed=True)[0] if j.job_id == "one-shot"]
    assert job.state == "completed" and job.last_status == "interrupted"
    await dead.stop()  # the "dead" one must not write over the successor's records from here on
    slow.release.set()


async def test_a_result_reaches_its_queue_only_after_its_record_is_committed(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    service: SchedulerService = await make_service(open=False, flush_delay=SLOW_BATCHES)
    recorder = EventRecorder(service.events)
    await service.open()
    await service.schedule(request("announced", "once", "now", result_queue="results"))

    [event] = await recorder.wait_for(lambda e: isinstance(e, QueueEvent))
    assert event.message["job_id"] == "announced"  # type: ignore[union-attr]
    [stored] = stored_runs(db_path, "announced")
    assert stored["status"] == "success" and stored["run_id"] == event.message["run_id"]  # type: ignore[union-attr]
    await recorder.wait_for(finished("announced", "success"))
