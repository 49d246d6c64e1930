"""Runs asked of the runner through the store (`scheduler/run_requests.py`): what `mcp-scheduler run` does.

The runner is a real runtime on a SQLite file; the asking side is a second store on the same file, as the
command opens it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mcp_scheduler.models import RunRecord, SchedulerInput
from mcp_scheduler.scheduler.run_requests import RUNNER_GONE, RunRequest
from mcp_scheduler.store import SchedulerStore, store_for
from tests.scheduler import _support
from tests.scheduler.conftest import RuntimeFactory

WAIT = 30.0


@pytest.fixture
async def asking_store(db_path: str) -> AsyncIterator[SchedulerStore]:
    store = store_for(db_path)
    await store.open()
    yield store
    await store.close()


async def ask(store: SchedulerStore, job_id: str, *, alive: bool = True) -> tuple[RunRequest, RunRecord]:
    job = await store.load_job(job_id)
    assert job is not None
    request = RunRequest(store, job, history_limit=100, asked_by="a test")
    await request.send()

    async def runner_alive() -> bool:
        return alive

    return request, await request.wait(start_within=WAIT, runner_alive=runner_alive)


async def test_the_runner_runs_a_request_under_its_run_id_and_keeps_the_job_s_bookkeeping(
    make_runtime: RuntimeFactory, asking_store: SchedulerStore, echo: _support.Calls
) -> None:
    runtime = await make_runtime()
    await runtime.service.schedule(_support.request("hourly"))

    request, record = await ask(asking_store, "hourly")

    assert record.status == "success" and record.run_id == request.run_id
    assert record.trigger == "run_now" and record.started_at is not None
    assert echo.inputs == [{"operation": "echo", "text": "hello", "count": 1}]  # run once, by the runner
    job, runs = await runtime.service.get_job("hourly")
    assert job.last_status == "success" and [r.run_id for r in runs] == [request.run_id]


async def test_a_request_beyond_the_runner_s_quota_is_recorded_skipped_with_the_reason(
    make_runtime: RuntimeFactory, asking_store: SchedulerStore, slow: _support.Slow
) -> None:
    runtime = await make_runtime(max_concurrent_runs=1)
    service = runtime.service
    recorder = _support.EventRecorder(service.events)
    await service.schedule(_support.request("busy", agentool_name="slow", input_data={"operation": "wait"}))
    await service.schedule(_support.request("asked", agentool_name="slow", input_data={"operation": "wait"}))
    busy = asyncio.create_task(service.run_now(SchedulerInput(operation="run_now", job_id="busy")))
    await recorder.wait_for(_support.started("busy"), within=WAIT)  # the one run slot is taken

    _request, record = await ask(asking_store, "asked")

    slow.release.set()
    await busy
    assert record.status == "skipped" and "--max-concurrent-runs" in (record.note or "")
    assert slow.started == 1  # the asked job never ran


async def test_a_runner_that_stops_during_the_run_is_told(
    make_runtime: RuntimeFactory, asking_store: SchedulerStore, slow: _support.Slow
) -> None:
    runtime = await make_runtime()
    await runtime.service.schedule(_support.request("long", agentool_name="slow", input_data={"operation": "wait"}))

    _request, record = await ask(asking_store, "long", alive=False)

    assert record.status == "running" and record.note == RUNNER_GONE
    assert slow.started == 1
