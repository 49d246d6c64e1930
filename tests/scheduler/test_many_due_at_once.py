"""Many runs due at the same moment: each starts before any of them does its bookkeeping."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp_scheduler import RunEvent, SchedulerInput
from tests.scheduler._support import Calls, EventRecorder, finished

JOBS = 5


async def test_runs_due_together_all_start_before_the_first_one_is_recorded(make_service: Any, echo: Calls) -> None:
    service = await make_service()
    recorder = EventRecorder(service.events)
    due = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0) + timedelta(seconds=1)
    for i in range(JOBS):
        await service.schedule(
            SchedulerInput(
                operation="schedule",
                job_id=f"together-{i}",
                schedule_type="once",
                schedule=due.isoformat(),
                agentool_name="echo",
                input_data={"operation": "echo", "text": str(i)},
            )
        )

    await recorder.wait_for(lambda e: isinstance(e, RunEvent) and e.kind == "finished", count=JOBS, within=10)

    kinds = [e.kind for e in recorder.events if isinstance(e, RunEvent)]
    assert kinds == ["started"] * JOBS + ["finished"] * JOBS
    for i in range(JOBS):
        [run] = recorder.runs(f"together-{i}")
        assert run.record.status == "success" and run.record.scheduled_time == due
        assert run.record.result == {"operation": "echo", "text": str(i), "count": 1}
    assert len(echo.inputs) == JOBS


async def test_run_now_still_returns_the_finished_record(make_service: Any, echo: Calls) -> None:
    service = await make_service()
    recorder = EventRecorder(service.events)

    record = await service.run_now(
        SchedulerInput(operation="run_now", agentool_name="echo", input_data={"operation": "echo", "text": "now"})
    )

    assert record.status == "success" and record.result == {"operation": "echo", "text": "now", "count": 1}
    await recorder.wait_for(finished(record.job_id))


async def test_opening_a_runtime_leaves_the_garbage_collector_alone(make_service: Any) -> None:
    # gc.freeze() is the server's choice (see the CLI tests), not something a library does to its host.
    gc.unfreeze()
    await make_service()
    assert gc.get_freeze_count() == 0
