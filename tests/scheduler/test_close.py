"""Closing the service while run_now calls are in progress: their runs are waited for and recorded; closing
while the store cannot be written; and closing as a job change wakes the background loops."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pytest

from mcp_scheduler import SchedulerInput, SchedulerRuntime, SchedulerService
from mcp_scheduler.errors import JobExecutionError
from mcp_scheduler.events import JobEvent
from mcp_scheduler.policies import PolicyInput
from mcp_scheduler.store.postgres_connections import PostgresUnavailableError
from tests._net import CuttableProxy, eventually
from tests.scheduler._support import Calls, EventRecorder, Slow, request, started

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


async def test_a_close_whose_history_cannot_be_written_still_stops_everything_then_says_so(
    postgres_url: str, make_runtime: Any, echo: Calls
) -> None:
    address = urlsplit(postgres_url)
    with CuttableProxy(address.hostname or "127.0.0.1", address.port or 5432) as proxy:
        url = address._replace(netloc=f"{address.username}@127.0.0.1:{proxy.port}").geturl()
        runtime: SchedulerRuntime = await make_runtime(database=url)
        service = runtime.service
        await service.schedule(request("ticking", "interval", "1 second"))
        await eventually(lambda: len(echo.inputs) >= 1, within=5, what="a run")
        proxy.cut()  # the database is gone: the run history is buffered, unwritten
        await eventually(lambda: service._history._failures.failures >= 1, within=10, what="a failed history write")

        with pytest.raises(PostgresUnavailableError):  # the records were not written: the caller is told
            await asyncio.wait_for(runtime.close(), 30)

    # A close that raised at its first write left the engine firing and the history writer running.
    assert service._engine.engine is None and not service._engine.runner
    assert [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("mcp-scheduler")] == []
    assert service._lease.session_pid is None  # the lease's session was let go



async def test_a_close_as_a_job_change_wakes_the_queue_consumer_ends_it_at_once(
    make_runtime: Any, echo: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    # asyncio.wait_for of Python 3.11 returns, swallowing the cancel, when the event it waits on was set in the step
    # that cancels it: the consumer went on looping and close() waited out close_timeout and the cancel grace.
    runtime: SchedulerRuntime = await make_runtime(close_timeout=0.1)
    [consumer] = [t for t in asyncio.all_tasks() if t.get_name() == "mcp-scheduler-queue-triggers"]
    await runtime.service.schedule(request("consumer", "cron", "0 3 1 1 *", policy=PolicyInput.model_validate(
        {"on_message": {"queue": "work"}})))
    triggers = runtime.service._extra._queue_triggers
    await eventually(lambda: bool(triggers._wake._waiters), within=5, what="the consumer waiting to be woken")
    runtime.service.events.publish(JobEvent("updated", "consumer", None))  # wakes it...
    await runtime.close()  # ...and close cancels it in the same step

    assert consumer.done()
    assert "did not stop after being cancelled" not in caplog.text
