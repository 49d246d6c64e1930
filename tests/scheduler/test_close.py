"""Closing the service while run_now calls are in progress: their runs are waited for and recorded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mcp_scheduler import SchedulerInput, SchedulerService
from mcp_scheduler.errors import JobExecutionError
from tests.scheduler._support import EventRecorder, Slow, started

WAIT = {"operation": "wait", "label": "late"}


def run_now(job_id: str) -> SchedulerInput:
    return SchedulerInput(operation="run_now", job_id=job_id, agentool_name="slow", input_data=WAIT)


async def test_close_waits_for_a_run_now_in_progress_and_keeps_its_record(make_service: Any, slow: Slow) -> None:
    service: SchedulerService = await make_service()
    recorder = EventRecorder(service.events)
    caller = asyncio.create_task(service.run_now(run_now("manual")))
    await recorder.wait_for(started("manual"))

    closing = asyncio.create_task(service.close())
    await asyncio.wait({closing}, timeout=0.2)
    assert not closing.done()  # still waiting for the run
    slow.release.set()
    record = await asyncio.wait_for(caller, 5)
    await asyncio.wait_for(closing, 5)

    assert record.status == "success" and record.result == {"label": "late"}
    reopened: SchedulerService = await make_service()
    [stored] = await reopened.get_history("manual")
    assert (stored.run_id, stored.status, stored.trigger) == (record.run_id, "success", "run_now")


async def test_a_run_now_past_the_close_timeout_is_cancelled_and_recorded_so(make_service: Any, slow: Slow) -> None:
    service: SchedulerService = await make_service(close_timeout=0.2)
    recorder = EventRecorder(service.events)
    caller = asyncio.create_task(service.run_now(run_now("stuck")))
    await recorder.wait_for(started("stuck"))

    await asyncio.wait_for(service.close(), 5)

    # The caller is answered (not cancelled itself): the run was cancelled, and it may have done part of its work.
    with pytest.raises(JobExecutionError, match=r"cancelled: the server shut down .*recorded 'cancelled'"):
        await asyncio.wait_for(caller, 5)  # a TimeoutError here would mean the run was left running
    assert slow.finished == 0
    reopened: SchedulerService = await make_service()
    [stored] = await reopened.get_history("stuck")
    assert stored.status == "cancelled" and stored.trigger == "run_now"
    assert stored.note is not None and "shut down" in stored.note
