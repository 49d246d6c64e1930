"""Runs as tasks (the MCP tasks extension): a client that declares it gets a task at once and follows it with
tasks/get on another replica of the store; tasks/cancel there stops the run in the runner; without the extension
the plain result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp_types import CallToolResult, Request, RequestParams, Result
from pydantic import ConfigDict

from mcp_scheduler import SchedulerRuntime
from mcp_scheduler.server import SchedulerServer, build_server
from mcp_scheduler.server.tasks import ORPHANED_AFTER
from mcp_scheduler.settings import Settings
from mcp_scheduler.store.tasks import StoredTask
from tests.reliability._support import marks, runs

from .._net import eventually
from .conftest import WAIT, structured

TASKS = "io.modelcontextprotocol/tasks"


class TaskResult(Result):
    """A task on the wire: `resultType: "task"` and the task's fields (flat)."""

    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"] = "task"


async def _not_resolved(result: TaskResult, ctx: ClaimContext) -> CallToolResult:
    raise AssertionError("the test reads the task itself")


class TasksClient(ClientExtension):
    """Declares the extension and claims its `resultType: "task"`."""

    identifier = TASKS

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskResult, resolve=_not_resolved)]


class TaskParams(RequestParams):
    model_config = ConfigDict(extra="allow")


class TasksGet(Request[TaskParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"


class TasksCancel(Request[TaskParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"


class Answer(Result):
    model_config = ConfigDict(extra="allow")


async def task_call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.session.call_tool(tool, arguments, allow_claimed=True)
    assert isinstance(result, TaskResult), result
    return dict(result.model_extra or {})


async def tasks_get(client: Client, task_id: str) -> dict[str, Any]:
    return dict(
        (await client.session.send_request(TasksGet(params=TaskParams(taskId=task_id)), Answer)).model_extra or {}
    )


async def followed(client: Client, task_id: str, seen: list[str]) -> dict[str, Any]:
    """tasks/get until the task ends (the statuses seen on the way in `seen`)."""

    async def poll() -> dict[str, Any]:
        while True:
            task = await tasks_get(client, task_id)
            seen.append(task["status"])
            if task["status"] != "working":
                return task
            await asyncio.sleep(task["pollIntervalMs"] / 1000 / 10)  # a tenth of what the server asks: a quick test

    return await asyncio.wait_for(poll(), 20)


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[tuple[SchedulerServer, SchedulerServer]]:
    """Two servers on one SQLite file (the first opened is the runner), with the test toolkit's sleeper."""
    runtimes = []
    for _ in range(2):
        settings = Settings(database=str(tmp_path / "s.db"), timezone="UTC", discover_entry_points=False)
        runtimes.append(
            SchedulerRuntime(
                settings.service_config(),
                toolkit_config=settings.toolkit_config(),
                toolkits=["tests.reliability._support:create_sleeper"],
            )
        )
    try:
        yield build_server(runtimes[0], settings), build_server(runtimes[1], settings)
    finally:
        for runtime in reversed(runtimes):
            await runtime.close()


def sleep_for(seconds: float, token: str, path: Path) -> dict[str, Any]:
    return {
        "agentool_name": "sleeper",
        "input_data": {"operation": "sleep", "seconds": seconds, "token": token, "path": str(path)},
    }


async def test_a_run_now_answers_a_task_at_once_that_another_replica_follows_to_completed_and_cancels(
    replicas: tuple[SchedulerServer, SchedulerServer], tmp_path: Path
) -> None:
    runner, standby = replicas
    mark_file = tmp_path / "marks"
    async with (
        Client(runner, extensions=[TasksClient()]) as at_runner,
        Client(standby, extensions=[TasksClient()]) as at_standby,
    ):
        slow = await task_call(at_runner, "run_now", sleep_for(3, "slow", mark_file))
        doomed = await task_call(at_runner, "run_now", sleep_for(60, "doomed", mark_file))
        assert slow["status"] == doomed["status"] == "working"
        assert {"taskId", "createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs"} <= set(slow)

        await eventually(lambda: ("doomed", "start") in marks(mark_file), within=WAIT, what="the run's start")
        assert (await tasks_get(at_standby, doomed["taskId"]))["status"] == "working"
        await at_standby.session.send_request(TasksCancel(params=TaskParams(taskId=doomed["taskId"])), Answer)

        seen: list[str] = []
        cancelled = await followed(at_standby, doomed["taskId"], seen)
        assert cancelled["status"] == "cancelled"
        assert cancelled["result"]["isError"] is True
        completed = await followed(at_standby, slow["taskId"], seen)
        assert completed["status"] == "completed"
        assert completed["result"]["structuredContent"]["status"] == "success"
        assert ("doomed", "end") not in marks(mark_file)

        history = structured(await at_standby.call_tool("get_history", {"agentool_name": "sleeper"}))
        by_status = {r["status"]: r for r in history["runs"]}
        assert sorted(by_status) == ["cancelled", "success"]
        assert "its task was cancelled" in by_status["cancelled"]["note"]


async def test_a_client_without_the_extension_gets_the_plain_result(
    replicas: tuple[SchedulerServer, SchedulerServer], tmp_path: Path
) -> None:
    runner, _ = replicas
    async with Client(runner) as client:
        result = await client.call_tool("run_now", sleep_for(0, "plain", tmp_path / "marks"))
    assert structured(result)["status"] == "success"


async def test_cancelling_a_backfills_task_from_another_replica_stops_the_backfill(
    replicas: tuple[SchedulerServer, SchedulerServer], tmp_path: Path
) -> None:
    runner, standby = replicas
    mark_file = tmp_path / "marks"
    job = {"job_id": "slow-backfill", "schedule_type": "cron", "schedule": "*/10 * * * *", "agentool_name": "sleeper",
           "input_data": {"operation": "sleep", "seconds": 60, "token": "fire", "path": str(mark_file),
                          "mark_cut": True}}
    async with Client(runner, extensions=[TasksClient()]) as at_runner, \
            Client(standby, extensions=[TasksClient()]) as at_standby:
        structured(await at_runner.call_tool("schedule_job", job))
        backfill = await task_call(at_runner, "backfill_job", {"job_id": "slow-backfill", "since": "1 hour"})
        await eventually(lambda: ("fire", "start") in marks(mark_file), within=WAIT, what="the first fire's start")
        await at_standby.session.send_request(TasksCancel(params=TaskParams(taskId=backfill["taskId"])), Answer)

        ended = await followed(at_standby, backfill["taskId"], [])
        assert ended["status"] == "cancelled" and ended["result"]["isError"] is True
        assert "fire times left were not run" in ended["result"]["content"][0]["text"]

        def recorded() -> list[dict[str, Any]]:
            return [r for r in runs(tmp_path / "s.db") if r["job_id"] == "slow-backfill"]

        await eventually(lambda: recorded() and recorded()[-1]["status"] != "running", within=WAIT, what="the record")
    assert [(r["trigger"], r["status"]) for r in recorded()] == [("backfill", "cancelled")]
    assert "its backfill was cancelled" in recorded()[0]["note"]
    assert marks(mark_file) == [("fire", "start"), ("fire", "cut")]  # the other fire times never started


async def test_a_task_whose_process_went_follows_its_runs_record_once_it_ended_5_s_ago(
    replicas: tuple[SchedulerServer, SchedulerServer], tmp_path: Path
) -> None:
    runner, standby = replicas
    async with Client(runner) as at_runner, Client(standby, extensions=[TasksClient()]) as at_standby:
        run = structured(await at_runner.call_tool("run_now", sleep_for(0, "ended", tmp_path / "marks")))
        now = time.time()
        # The task of a process that is gone: stored, still working, carried nowhere.
        await standby.tasks.store.insert(StoredTask(
            task_id="orphan", owner="local", tool="run_now", run_id=run["run_id"], status="working",
            created_at=now, updated_at=now, expires_at=now + 3600))
        assert (await tasks_get(at_standby, "orphan"))["status"] == "working"  # its process may still record it
        standby.tasks.store.clock = lambda: time.time() + ORPHANED_AFTER + 1
        followed = await tasks_get(at_standby, "orphan")
    assert followed["status"] == "completed"
    assert followed["result"]["structuredContent"]["run_id"] == run["run_id"]
    assert followed["result"]["isError"] is False
