"""Jobs removed, paused, resumed or changed while nothing fires: after stop_scheduler (the engine is paused) and
in the engine itself before it starts (stopped), a change must hold when firing starts again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from mcp_scheduler import SchedulerInput, SchedulerService
from mcp_scheduler._engine import STATE_STOPPED, Engine, EngineJob
from mcp_scheduler.schedules import parse_schedule
from tests.scheduler._support import Calls, EventRecorder, finished, request, started


def _text(job_id: str) -> dict[str, str]:
    return {"operation": "echo", "text": job_id}


async def test_cancel_pause_resume_and_update_during_stop_scheduler_hold_after_start_scheduler(
    service: SchedulerService, recorder: EventRecorder, echo: Calls
) -> None:
    for job_id in ("ticker", "cancelled", "paused", "updated", "resumed"):
        await service.schedule(request(job_id, schedule="1 second", input_data=_text(job_id)))
    await service.pause("resumed")
    await service.stop()

    await service.cancel("cancelled")
    await service.pause("paused")
    await service.resume("resumed")
    await service.update(SchedulerInput(operation="update", job_id="updated", input_data=_text("changed")))
    before = {job_id: len(recorder.runs(job_id, "started")) for job_id in ("cancelled", "paused")}
    await service.start()

    # The jobs all come due every second at the same instants: two fires of the ticker after the start are two
    # chances for the cancelled and the paused job to have fired too.
    await recorder.wait_for(started("ticker"), count=len(recorder.runs("ticker", "started")) + 2, within=6)
    await recorder.wait_for(finished("resumed", "success"), within=3)
    await recorder.wait_for(finished("updated", "success"), count=len(recorder.runs("updated")) + 1, within=3)
    assert "changed" in {call["text"] for call in echo.inputs}
    assert {job_id: len(recorder.runs(job_id, "started")) for job_id in ("cancelled", "paused")} == before
    assert sorted(job.job_id for job in service.list_jobs()[0]) == ["paused", "resumed", "ticker", "updated"]


async def test_the_engine_removes_pauses_and_resumes_jobs_before_it_starts() -> None:
    """Before `start` (and so also between a `load` and the `start` of a restart) APScheduler looks for jobs in
    its own pending list, which the engine never fills: the engine's job table must answer instead."""
    fired: set[str] = set()
    expected = {"kept", "added"}
    all_fired = asyncio.Event()

    async def on_due(job_id: str, run_times: list[datetime]) -> None:
        fired.add(job_id)
        if expected <= fired:
            all_fired.set()

    due = datetime.now(UTC) - timedelta(seconds=1)  # all due at once when the engine starts: fired in one look
    hourly = parse_schedule("interval", "1 hour", "UTC")
    engine = Engine(on_due, lambda job_id, times: None, ZoneInfo("UTC"))
    engine.load([EngineJob(job_id, hourly, 1, due) for job_id in ("kept", "removed", "paused")]
                + [EngineJob("resumed", hourly, 1, due, paused=True)])
    engine.add_job(EngineJob("added", hourly, 1, due))
    engine.add_job(EngineJob("added-then-removed", hourly, 1, due))
    assert engine.state == STATE_STOPPED

    engine.remove_job("removed")
    engine.remove_job("added-then-removed")
    engine.remove_job("never-there")  # a job that already left the engine is fine
    engine.pause_job("paused")
    resumed_at = engine.resume_job("resumed")

    assert not engine.has_job("removed") and not engine.has_job("added-then-removed")
    assert engine.next_run_time("paused") is None
    assert resumed_at is not None and resumed_at > due and engine.next_run_time("resumed") == resumed_at
    engine.start()
    try:
        await asyncio.wait_for(all_fired.wait(), 5)
    finally:
        engine.shutdown()
    assert fired == expected
