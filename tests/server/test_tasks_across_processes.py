"""Runs as tasks with real processes (issue 24 item 1, "Done when"): two `mcp-scheduler --transport http` servers on
one SQLite file, a client speaking the tasks extension's wire format (raw JSON-RPC of the 2026-07-28 era). A 10 s
run_now answers a task at once, which `tasks/get` on the other server follows to `completed`; another one is
cancelled mid-run from the other server (its run recorded `cancelled`), both ways round."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests._net import MCP_HEADERS, bearer, eventually
from tests.reliability._support import marks, runs
from tests.server.conftest import LOG_INPUT
from tests.server.test_address_policy_across_processes import TOKEN, Server, serving

TASKS = "io.modelcontextprotocol/tasks"
ALICE = "alice-T0ken_5521"  # a principal without admin: sees only its own runs and tasks
SLEEPER = ("--toolkit", "tests.reliability._support:create_sleeper", "--auth-token", f"alice:read+write+run:{ALICE}")
WAIT = 30.0


@dataclass
class Pair:
    runner: Server
    standby: Server
    database: Path
    marks: Path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("tasks")
    database = tmp / "shared.db"
    with serving(tmp, "runner", database, "127.0.0.1", *SLEEPER) as runner:
        # Asked first: it holds the runner lease before the other opens the file.
        assert (
            call(runner, "tools/call", {"name": "scheduler_status", "arguments": {}})["result"]["structuredContent"][
                "role"
            ]
            == "runner"
        )
        with serving(tmp, "standby", database, "127.0.0.1", *SLEEPER) as standby:
            yield Pair(runner, standby, database, tmp / "marks")


def call(
    server: Server, method: str, params: dict[str, Any], *, tasks: bool = True, token: str = TOKEN
) -> dict[str, Any]:
    """One JSON-RPC request of the 2026-07-28 era, from a client that declares the tasks extension (or not)."""
    capabilities = {"extensions": {TASKS: {}}} if tasks else {}
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-tasks", "version": "0"},
    }
    name = params.get("name")
    headers = (
        MCP_HEADERS
        | {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
        | ({"Mcp-Name": name} if name else {})
        | bearer(token)
    )
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}
    answer = httpx2.post(server.url, json=body, headers=headers, timeout=WAIT)
    if answer.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in answer.text.splitlines() if line.startswith("data:")]
        return next(m for m in map(json.loads, filter(None, data)) if "id" in m)
    found: dict[str, Any] = answer.json()
    return found


def run_now(server: Server, seconds: float, token: str, path: Path) -> dict[str, Any]:
    arguments = {
        "agentool_name": "sleeper",
        "input_data": {"operation": "sleep", "seconds": seconds, "token": token, "path": str(path), "mark_cut": True},
    }
    answer = call(server, "tools/call", {"name": "run_now", "arguments": arguments})
    task: dict[str, Any] = answer["result"]
    assert task["resultType"] == "task" and task["status"] == "working", answer
    return task


async def followed(server: Server, task_id: str) -> dict[str, Any]:
    """tasks/get on `server` until the task ends."""

    async def poll() -> dict[str, Any]:
        while True:
            task: dict[str, Any] = (await asyncio.to_thread(call, server, "tasks/get", {"taskId": task_id}))["result"]
            if task["status"] != "working":
                return task
            await asyncio.sleep(task["pollIntervalMs"] / 1000 / 10)  # a tenth of what the server asks: a quick test

    return await asyncio.wait_for(poll(), WAIT)


def cancel(server: Server, task_id: str) -> None:
    answer = call(server, "tasks/cancel", {"taskId": task_id})
    assert answer["result"]["resultType"] == "complete", answer


async def recorded(pair: Pair, run_id: str, status: str) -> dict[str, Any]:
    """The run's record once it says `status` (the history is written a moment after the run ends)."""

    def record() -> dict[str, Any]:
        return next((r for r in runs(pair.database) if r["run_id"] == run_id), {})

    await eventually(lambda: record().get("status") == status, within=WAIT, what=f"run {run_id} recorded {status}")
    return record()


def run_id_of(task: dict[str, Any]) -> str:
    return str(task["statusMessage"].split()[1])  # "run <id> in progress ..."


async def test_a_10_s_run_now_is_a_task_at_once_that_the_other_server_follows_to_completed_and_cancels_another(
    pair: Pair,
) -> None:
    slow = run_now(pair.runner, 10, "slow", pair.marks)
    assert ("slow", "end") not in marks(pair.marks)  # answered at once, the run goes on
    assert {"taskId", "createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs"} <= set(slow)
    doomed = run_now(pair.runner, 60, "doomed", pair.marks)
    await eventually(lambda: ("doomed", "start") in marks(pair.marks), within=WAIT, what="the doomed run's start")

    assert call(pair.standby, "tasks/get", {"taskId": slow["taskId"]})["result"]["status"] == "working"
    cancel(pair.standby, doomed["taskId"])
    cancelled = await followed(pair.standby, doomed["taskId"])
    assert cancelled["status"] == "cancelled" and cancelled["result"]["isError"] is True
    assert ("doomed", "cut") in marks(pair.marks) and ("doomed", "end") not in marks(pair.marks)
    stopped = await recorded(pair, run_id_of(doomed), "cancelled")
    assert "its task was cancelled" in stopped["note"]

    completed = await followed(pair.standby, slow["taskId"])
    assert completed["status"] == "completed", completed
    assert completed["result"]["structuredContent"]["status"] == "success"
    assert ("slow", "end") in marks(pair.marks)
    await recorded(pair, run_id_of(slow), "success")


async def test_a_run_started_on_the_standby_is_cancelled_from_the_runner(pair: Pair) -> None:
    # An AgenTool run once (no job) runs where it was asked: the standby finds its cancelled task in the store.
    doomed = run_now(pair.standby, 60, "doomed-on-standby", pair.marks)
    await eventually(lambda: ("doomed-on-standby", "start") in marks(pair.marks), within=WAIT, what="the run's start")
    cancel(pair.runner, doomed["taskId"])
    cancelled = await followed(pair.runner, doomed["taskId"])
    assert cancelled["status"] == "cancelled"
    assert ("doomed-on-standby", "cut") in marks(pair.marks)
    await recorded(pair, run_id_of(doomed), "cancelled")


def test_a_client_without_the_extension_waits_for_the_plain_result(pair: Pair) -> None:
    arguments = {
        "agentool_name": "sleeper",
        "input_data": {"operation": "sleep", "seconds": 0, "token": "plain", "path": str(pair.marks)},
    }
    answer = call(pair.standby, "tools/call", {"name": "run_now", "arguments": arguments}, tasks=False)
    assert "resultType" not in answer["result"] or answer["result"]["resultType"] != "task"
    assert answer["result"]["structuredContent"]["status"] == "success"


def test_get_run_reads_a_run_by_id_on_any_server_and_only_its_owners(pair: Pair) -> None:
    def get_run(server: Server, run_id: str, token: str = TOKEN) -> dict[str, Any]:
        return call(server, "tools/call", {"name": "get_run", "arguments": {"run_id": run_id}}, token=token)["result"]

    # Her own job's run (a non-admin sees the runs of its jobs; the sleeper would need a scope of its kind).
    job = {
        "job_id": "alices",
        "schedule_type": "interval",
        "schedule": "1 hour",
        "agentool_name": "logging",
        "input_data": LOG_INPUT,
    }
    assert "error" not in call(pair.standby, "tools/call", {"name": "schedule_job", "arguments": job}, token=ALICE)
    asked = {"name": "run_now", "arguments": {"job_id": "alices"}}
    alices = call(pair.standby, "tools/call", asked, tasks=False, token=ALICE)
    run_id = alices["result"]["structuredContent"]["run_id"]
    assert get_run(pair.runner, run_id, ALICE)["structuredContent"]["run"]["status"] == "success"
    assert get_run(pair.runner, run_id)["structuredContent"]["run"]["status"] == "success"  # the admin reads all

    admins = run_now(pair.runner, 0, "admins", pair.marks)
    refused = get_run(pair.standby, run_id_of(admins), ALICE)
    assert refused["isError"] and "not found" in refused["content"][0]["text"]
    hidden = call(pair.standby, "tasks/get", {"taskId": admins["taskId"]}, token=ALICE)
    assert "No task" in hidden["error"]["message"]
