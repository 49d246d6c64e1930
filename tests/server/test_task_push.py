"""Task statuses pushed as `notifications/tasks` on `subscriptions/listen` streams (issue 24 item 1, SEP-2663): real
`mcp-scheduler --transport http` servers on one SQLite file, clients speaking the wire format (raw JSON-RPC of the
2026-07-28 era over streamable HTTP). A stream that asks for a task (`notifications.taskIds`) gets its states in
order, as `tasks/get` gives them; another principal's stream and a stream that did not ask get none; a stream on the
other server gets them too (from the store); a client that did not declare the extension is refused with -32021."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest

from tests._net import MCP_HEADERS, bearer
from tests.server.conftest import LOG_INPUT
from tests.server.test_address_policy_across_processes import TOKEN, Server, serving
from tests.server.test_tasks_across_processes import ALICE, SLEEPER, TASKS, WAIT, Pair, call, run_now

ACKNOWLEDGED = "notifications/subscriptions/acknowledged"
SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("task-push")
    database = tmp / "shared.db"
    with serving(tmp, "runner", database, "127.0.0.1", *SLEEPER) as runner:
        status = call(runner, "tools/call", {"name": "scheduler_status", "arguments": {}})
        assert status["result"]["structuredContent"]["role"] == "runner"  # asked first: it holds the lease
        with serving(tmp, "standby", database, "127.0.0.1", *SLEEPER) as standby:
            yield Pair(runner, standby, database, tmp / "marks")


class Stream:
    """The frames of one listen stream (its SSE events' JSON-RPC messages), read as they come."""

    def __init__(self, response: httpx2.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self) -> dict[str, Any]:
        async def frame() -> dict[str, Any]:
            data: list[str] = []
            async for line in self._lines:
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    found: dict[str, Any] = json.loads("\n".join(data))
                    return found
            raise AssertionError("the listen stream ended")

        return await asyncio.wait_for(frame(), WAIT)

    async def until(self, method: str) -> list[dict[str, Any]]:
        """The frames up to and including the first of `method`."""
        frames = [await self.next()]
        while frames[-1].get("method") != method:
            frames.append(await self.next())
        return frames


@contextlib.asynccontextmanager
async def listening(
    server: Server, notifications: dict[str, Any], *, token: str = TOKEN, tasks: bool = True
) -> AsyncIterator[Stream]:
    """A `subscriptions/listen` stream on `server`, from a client that declares the tasks extension (or not)."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}} if tasks else {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-listener", "version": "0"},
    }
    body = {"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
            "params": {"notifications": notifications, "_meta": meta}}
    headers = MCP_HEADERS | {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "subscriptions/listen"} | bearer(token)
    async with (
        httpx2.AsyncClient(timeout=WAIT) as http,
        http.stream("POST", server.url, json=body, headers=headers) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream"), response.headers
        yield Stream(response)


def statuses(frames: list[dict[str, Any]]) -> list[str]:
    return [f["params"]["status"] for f in frames if f.get("method") == "notifications/tasks"]


def as_tasks_get(server: Server, task_id: str) -> dict[str, Any]:
    """The task as `tasks/get` answers it, without what only a result carries."""
    task = call(server, "tasks/get", {"taskId": task_id})["result"]
    return {k: v for k, v in task.items() if k not in ("resultType", "_meta")}


async def test_a_task_is_pushed_working_then_completed_to_the_stream_that_asked_for_it_and_no_other(
    pair: Pair,
) -> None:
    task = run_now(pair.runner, 2, "pushed", pair.marks)
    task_id = task["taskId"]
    async with (
        listening(pair.runner, {"taskIds": [task_id, "no-such-task"]}) as asker,
        listening(pair.runner, {"taskIds": [task_id], "resourcesListChanged": True}, token=ALICE) as alice,
        listening(pair.runner, {"resourcesListChanged": True}) as not_asking,
    ):
        ack = await asker.next()
        assert ack["method"] == ACKNOWLEDGED
        assert ack["params"]["notifications"] == {"taskIds": [task_id]}  # the unknown task is not honored
        assert ack["params"]["_meta"][SUBSCRIPTION_ID] == "listen-1"
        working, completed = await asker.next(), await asker.next()
        assert statuses([working, completed]) == ["working", "completed"], (working, completed)
        assert working["params"]["taskId"] == completed["params"]["taskId"] == task_id
        assert completed["params"]["_meta"][SUBSCRIPTION_ID] == "listen-1"
        assert completed["params"]["result"]["structuredContent"]["status"] == "success"
        pushed = {k: v for k, v in completed["params"].items() if k != "_meta"}
        assert pushed == as_tasks_get(pair.runner, task_id)

        # Once the task has ended, a change both other streams asked for: what they were sent before it is all.
        job = {"job_id": "alices-barrier", "schedule_type": "interval", "schedule": "1 hour",
               "agentool_name": "logging", "input_data": LOG_INPUT}
        assert "error" not in call(pair.runner, "tools/call", {"name": "schedule_job", "arguments": job}, token=ALICE)
        alices = await alice.until("notifications/resources/list_changed")
        assert alices[0]["method"] == ACKNOWLEDGED and alices[0]["params"]["notifications"] == {
            "resourcesListChanged": True}  # another principal's task is not honored
        assert statuses(alices) == [], alices
        others = await not_asking.until("notifications/resources/list_changed")
        assert statuses(others) == [], others


async def test_a_stream_on_the_other_server_follows_the_task_from_the_store(pair: Pair) -> None:
    task = run_now(pair.runner, 2, "followed-elsewhere", pair.marks)
    async with listening(pair.standby, {"taskIds": [task["taskId"]]}) as elsewhere:
        ack, working, completed = await elsewhere.next(), await elsewhere.next(), await elsewhere.next()
        assert ack["params"]["notifications"] == {"taskIds": [task["taskId"]]}
        assert statuses([working, completed]) == ["working", "completed"]
        assert completed["params"]["result"]["structuredContent"]["status"] == "success"

    # A stream opened once the task has ended is sent its end, once.
    async with listening(pair.standby, {"taskIds": [task["taskId"]], "resourcesListChanged": True}) as late:
        frames = [await late.next(), await late.next()]
        assert statuses(frames) == ["completed"]
        call(pair.standby, "tools/call", {"name": "schedule_job", "arguments": {
            "job_id": "late-barrier", "schedule_type": "interval", "schedule": "1 hour", "agentool_name": "logging",
            "input_data": LOG_INPUT}})
        assert statuses(await late.until("notifications/resources/list_changed")) == []


def test_asking_for_task_statuses_without_declaring_the_extension_is_refused(pair: Pair) -> None:
    task = run_now(pair.runner, 0, "undeclared", pair.marks)
    answer = call(pair.runner, "subscriptions/listen", {"notifications": {"taskIds": [task["taskId"]]}}, tasks=False)
    assert answer["error"]["code"] == -32021, answer
    assert answer["error"]["data"] == {"requiredCapabilities": {"extensions": {TASKS: {}}}}


async def test_a_task_cancelled_from_the_other_server_is_pushed_cancelled(pair: Pair) -> None:
    task = run_now(pair.runner, 60, "pushed-cancel", pair.marks)
    async with listening(pair.runner, {"taskIds": [task["taskId"]]}) as stream:
        ack, working = await stream.next(), await stream.next()
        assert statuses([ack, working]) == ["working"]
        assert call(pair.standby, "tasks/cancel", {"taskId": task["taskId"]})["result"]["resultType"] == "complete"
        cancelled = await stream.next()
        assert statuses([cancelled]) == ["cancelled"]
        assert cancelled["params"]["result"]["isError"] is True
