"""Chains across a stop of the runner (issue 25): a chained run is decided in the same commit as the run it follows,
and the runner that opens the store next starts the chained runs that were decided and not started, once.

The runner that stopped is stood for by what it left in the store (written with a store of its own, as a killed
process leaves its rows); the real kill -9 of a server process is in tests/server/test_chains_across_kill9.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from mcp_scheduler import SchedulerInput, SchedulerService
from mcp_scheduler.models import RunRecord
from mcp_scheduler.policies import PolicyInput
from mcp_scheduler.scheduler.chains import chain_run_id, waiting_run
from mcp_scheduler.store import SQLiteStore
from tests._net import eventually
from tests.scheduler._support import Calls, EventRecorder, Slow, finished, started
from tests.scheduler.conftest import ServiceFactory

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def job(job_id: str, text: str = "", *, after: str | None = None, on: str = "success", kind: str = "echo",
        **policy: Any) -> SchedulerInput:
    """A daily job (it does not fire during the test) chained after `after`, if given."""
    data = {"operation": "wait", "label": text} if kind == "slow" else {"operation": "echo", "text": text}
    if after is not None:
        policy["after"] = {"job": after, "on": on}
    return SchedulerInput(operation="schedule", job_id=job_id, schedule_type="cron", schedule="0 3 * * *",
                          agentool_name=kind, input_data=data,
                          policy=PolicyInput.model_validate(policy) if policy else None)


async def stored_runs(db_path: str, job_id: str) -> list[RunRecord]:
    """The job's run records as another process reads them from the file, oldest first."""
    store = SQLiteStore(db_path)
    await store.open()
    try:
        return list(reversed(await store.history(job_id, limit=100)))
    finally:
        await store.close()


async def left_by_a_stopped_runner(db_path: str, records: list[RunRecord]) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    try:
        await store.write_batch(records, [], 100)
    finally:
        await store.close()


async def test_the_chained_run_is_committed_with_the_run_it_follows_while_it_waits_for_room(
    make_service: ServiceFactory, db_path: str, slow: Slow, echo: Calls
) -> None:
    service = await make_service(max_runs_per_job=1)
    recorder = EventRecorder(service.events)
    await service.schedule(job("a", "from a"))
    await service.schedule(job("b", "!trigger:result/text", after="a", kind="slow", overlap="buffer_one"))
    in_progress = asyncio.create_task(service.run_now(SchedulerInput(operation="run_now", job_id="b")))
    await recorder.wait_for(started("b"))  # b's one place (max_runs_per_job 1) is taken: the chained run waits

    first = await service.run_now(SchedulerInput(operation="run_now", job_id="a"))
    [waiting] = [r for r in await stored_runs(db_path, "b") if r.trigger == "chain"]

    assert (waiting.run_id, waiting.status, waiting.started_at) == (chain_run_id(first.run_id, "b"), "running", None)
    assert waiting.result["trigger_data"]["result"] == first.result  # what a runner taking over would start it with
    assert slow.started == 1
    slow.release.set()
    await in_progress
    await recorder.wait_for(finished("b"), count=2)
    chained = [r for r in await service.get_history("b") if r.trigger == "chain"]
    assert [(r.run_id, r.status, r.result) for r in chained] == [(waiting.run_id, "success", {"label": "from a"})]


async def test_a_chained_run_the_last_runner_decided_and_did_not_start_starts_once_in_the_next(
    make_service: ServiceFactory, db_path: str, echo: Calls
) -> None:
    before = await make_service()
    await before.schedule(job("a", "from a"))
    await before.schedule(job("b", "!trigger:result/text", after="a"))
    b = before._table.get("b")
    assert b is not None
    await before.close()
    ran_a = RunRecord(run_id="run-of-a", job_id="a", agentool_name="echo", trigger="run_now", status="success",
                      started_at=T0, finished_at=T0, result={"text": "from a"})
    key = chain_run_id(ran_a.run_id, "b")
    note = "chained after run run-of-a of job 'a' (success)"
    data = {"job": "a", "run_id": ran_a.run_id, "status": "success", "summary": None, "result": ran_a.result}
    await left_by_a_stopped_runner(db_path, [ran_a, waiting_run(b, key, data, note)])

    after = await make_service()
    await eventually(lambda: len(echo.inputs) == 1, within=10, what="the chained run")
    [chained] = await after.get_history("b")
    assert (chained.run_id, chained.trigger, chained.status, chained.note) == (key, "chain", "success", note)
    assert echo.inputs[0]["text"] == "from a"
    await after.close()

    again: SchedulerService = await make_service()  # opens the store once more: nothing is left to start
    recorder = EventRecorder(again.events)
    second = await again.run_now(SchedulerInput(operation="run_now", job_id="a"))
    await recorder.wait_for(finished("b"))
    assert [r.run_id for r in await again.get_history("b")] == [chain_run_id(second.run_id, "b"), key]
    assert [data["text"] for data in echo.inputs] == ["from a", "from a", "from a"]  # b, then a and b


async def test_a_run_the_last_runner_left_unfinished_starts_its_on_failure_chain_once_the_next_opens(
    make_service: ServiceFactory, db_path: str, echo: Calls
) -> None:
    before = await make_service()
    await before.schedule(job("a", "from a"))
    await before.schedule(job("b", "!trigger:status", after="a", on="failure"))
    await before.close()
    cut = RunRecord(run_id="cut-short", job_id="a", agentool_name="echo", trigger="run_now", status="running",
                    started_at=T0)
    await left_by_a_stopped_runner(db_path, [cut])

    after = await make_service()
    await eventually(lambda: len(echo.inputs) == 1, within=10, what="the chained run")

    assert echo.inputs[0]["text"] == "interrupted"
    [chained] = await after.get_history("b")
    assert (chained.run_id, chained.status) == (chain_run_id("cut-short", "b"), "success")
    assert [r.status for r in await after.get_history("a")] == ["interrupted"]
