"""The operator's quotas as a model meets them through a real MCP client: each refusal says what was reached,
the limit, the flag that sets it and what to do; cancel_job answers once the run it stopped is recorded."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from mcp import Client
from pydantic import Field

from agentool_bridge import BaseOperationInput, RoutingConfig, register_agentool
from mcp_scheduler.server import SchedulerServer

from .conftest import WAIT, ServerFactory, error_text, hosted, structured

HOURLY = {"schedule_type": "interval", "schedule": "1 hour", "agentool_name": "logging",
          "input_data": {"operation": "log", "level": "INFO", "message": "hello"}}
QUOTAS = {"max_jobs": 2, "min_interval": 5.0, "max_runs_per_job": 2, "inbox_limit": 1}


class _WaitInput(BaseOperationInput):
    """Waits until cancelled."""

    operation: Literal["wait"] = Field(description="Wait until cancelled.")


def _register_forever(server: SchedulerServer) -> asyncio.Event:
    started = asyncio.Event()

    async def wait(operation: str) -> dict[str, Any]:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    register_agentool("forever", _WaitInput, RoutingConfig(operation_map={"wait": ("wait", None)}), [wait],
                      registry=server.runtime.registry)
    return started


async def test_each_quota_refusal_names_the_limit_the_flag_and_what_to_do(
    make_server: ServerFactory, db_file: str
) -> None:
    server = make_server(db_file, **QUOTAS)
    async with hosted(Client(server)) as client:
        too_often = error_text(await client.call_tool("schedule_job", {**HOURLY, "schedule": "2 seconds"}))
        assert "5 s" in too_often and "--min-interval" in too_often
        preview = error_text(await client.call_tool("preview_schedule",
                                                    {"schedule_type": "cron", "schedule": "*/2 * * * * *"}))
        assert "2 s apart" in preview and "--min-interval" in preview

        wide = error_text(await client.call_tool("schedule_job", {**HOURLY, "max_instances": 3}))
        assert "max_instances 3" in wide and "--max-runs-per-job" in wide and "2 or less" in wide

        for job_id in ("a", "b"):
            structured(await client.call_tool("schedule_job", {**HOURLY, "job_id": job_id}))
        full = error_text(await client.call_tool("schedule_job", {**HOURLY, "job_id": "c"}))
        assert "holds 2 jobs" in full and "--max-jobs" in full and "cancel_job" in full
        assert "completed jobs count until they are cancelled" in full

        notify = {"agentool_name": "notify", "input_data": {"operation": "inbox", "message": "hi"}}
        structured(await client.call_tool("run_now", notify))
        inbox = error_text(await client.call_tool("run_now", notify))
        assert "The inbox holds 1 unread message, its limit (--inbox-limit): read and acknowledge them" in inbox
        structured(await client.call_tool("read_inbox", {"acknowledge": True}))
        structured(await client.call_tool("run_now", notify))


async def test_cancel_job_answers_after_the_run_it_stopped_is_recorded(
    make_server: ServerFactory, db_file: str
) -> None:
    server = make_server(db_file)
    assert isinstance(server, SchedulerServer)
    started = _register_forever(server)
    async with hosted(Client(server)) as client:
        structured(await client.call_tool("schedule_job", {
            "job_id": "long", "schedule_type": "once", "schedule": "now", "agentool_name": "forever",
            "input_data": {"operation": "wait"}}))
        await asyncio.wait_for(started.wait(), WAIT)

        structured(await client.call_tool("cancel_job", {"job_id": "long"}))

        history = structured(await client.call_tool("get_history", {"job_id": "long"}))
        [run] = history["runs"]
        assert run["status"] == "cancelled"
        assert run["note"] == "the job was cancelled while this run was in progress"


async def test_a_run_now_stopped_by_cancel_job_answers_with_an_error_saying_so(
    make_server: ServerFactory, db_file: str
) -> None:
    server = make_server(db_file)
    assert isinstance(server, SchedulerServer)
    started = _register_forever(server)
    async with hosted(Client(server)) as client:
        structured(await client.call_tool("schedule_job", {
            "job_id": "manual", "schedule_type": "interval", "schedule": "1 hour", "agentool_name": "forever",
            "input_data": {"operation": "wait"}}))
        call = asyncio.create_task(client.call_tool("run_now", {"job_id": "manual"}))
        await asyncio.wait_for(started.wait(), WAIT)

        structured(await client.call_tool("cancel_job", {"job_id": "manual"}))

        answer = error_text(await asyncio.wait_for(call, WAIT))
        assert "cancelled: the job was cancelled while this run was in progress" in answer
        status = structured(await client.call_tool("scheduler_status", {}))
        assert status["runs_in_progress"] == 0
