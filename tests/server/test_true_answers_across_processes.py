"""Every answer is true after the call, with real processes (issue 22 "Answers an agent can trust", item 1): a
runner (`--allow-shell echo`) and a standby (no shell) are two `mcp-scheduler --transport http` servers (started as
the address policy's are) on one database, a SQLite file or PostgreSQL; each tool is called through a real MCP
client, `run` is a real CLI process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests._net import authorized
from tests.server.conftest import Inbox, error_text, hosted, run_cli, structured, updated
from tests.server.test_address_policy_across_processes import TOKEN, Server, serving

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")


@contextlib.asynccontextmanager
async def connect(server: Server, **options: Any) -> AsyncIterator[Client]:
    async with hosted(Client(authorized(server.url, TOKEN), **options)) as client:
        yield client


@dataclass
class Pair:
    database: str
    runner: Server
    standby: Server
    at_runner: Client
    at_standby: Client


@pytest.fixture(params=["sqlite", "postgres"])
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pair]:
    database = str(tmp_path / "shared.db")
    if request.param == "postgres":
        database = str(request.getfixturevalue("postgres_url"))
    with serving(tmp_path, "runner", database, "127.0.0.1", "--allow-shell", "echo") as runner:
        async with connect(runner) as at_runner:
            # Asked first: it holds the runner lease before the standby opens the database.
            assert structured(await at_runner.call_tool("scheduler_status", {}))["role"] == "runner"
            with serving(tmp_path, "standby", database, "127.0.0.1") as standby:
                async with connect(standby) as at_standby:
                    yield Pair(database, runner, standby, at_runner, at_standby)


def kv_job(job_id: str, schedule: str = "1 hour") -> dict[str, Any]:
    return {"job_id": job_id, "schedule_type": "interval", "schedule": schedule, "agentool_name": "storage_kv",
            "input_data": {"operation": "set", "key": job_id, "value": 1}}


async def listed_ids(client: Client) -> list[str]:
    return [job["job_id"] for job in structured(await client.call_tool("list_jobs", {}))["jobs"]]


async def last_run(client: Client, job_id: str) -> tuple[datetime | None, str | None]:
    """get_job's last run time (get_job answers to the second) and status."""
    job = structured(await client.call_tool("get_job", {"job_id": job_id}))["job"]
    at = job.get("last_run_at")
    return (None if at is None else datetime.fromisoformat(at)), job.get("last_status")


def to_second(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(microsecond=0)


async def test_a_standby_says_the_jobs_run_in_the_runner_beside_it(pair: Pair) -> None:
    status = structured(await pair.at_standby.call_tool("scheduler_status", {}))

    assert (status["role"], status["running"], status["state"]) == ("standby", True, "running")
    assert f"pid {pair.runner.process.pid} on " in status["runner"]


async def standby_status(pair: Pair, running: bool) -> dict[str, Any]:
    """The standby's scheduler_status once it says `running` (on PostgreSQL it reads the lease row with its attempts at
    the lease, every 0.5 s; on SQLite it reads the lease file when asked): at most 5 s."""
    deadline = asyncio.get_running_loop().time() + 5
    while (status := structured(await pair.at_standby.call_tool("scheduler_status", {})))["running"] != running:
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.05)
    return status


async def test_a_standby_and_the_status_command_say_the_runner_was_stopped_until_it_is_started(pair: Pair) -> None:
    stopped = structured(await pair.at_runner.call_tool("stop_scheduler", {}))
    status = await standby_status(pair, running=False)

    assert (status["role"], status["state"]) == ("standby", stopped["state"]) == ("standby", "paused")
    assert f"pid {pair.runner.process.pid} on " in status["runner"]
    assert "stopped with stop_scheduler since" in status["runner"]
    told = await asyncio.to_thread(run_cli, "status", "--db", pair.database)
    assert told.returncode == 0 and "stopped with stop_scheduler since" in told.stdout, told.stdout + told.stderr

    structured(await pair.at_runner.call_tool("start_scheduler", {}))
    status = await standby_status(pair, running=True)

    assert status["state"] == "running" and "stopped" not in status["runner"]
    told = await asyncio.to_thread(run_cli, "status", "--db", pair.database)
    assert told.returncode == 0 and "stopped" not in told.stdout, told.stdout


async def test_a_cancel_answers_cancelled_and_no_list_shows_the_job_right_after(pair: Pair) -> None:
    for job_id in ("kept", "by-standby", "by-runner"):
        structured(await pair.at_runner.call_tool("schedule_job", kv_job(job_id)))
    assert await listed_ids(pair.at_standby) == ["kept", "by-standby", "by-runner"]

    answer = structured(await pair.at_standby.call_tool("cancel_job", {"job_id": "by-standby"}))
    assert answer["state"] == "cancelled" and "next_run" not in answer
    assert await listed_ids(pair.at_runner) == ["kept", "by-runner"]

    answer = structured(await pair.at_runner.call_tool("cancel_job", {"job_id": "by-runner"}))
    assert answer["state"] == "cancelled" and "next_run" not in answer
    assert await listed_ids(pair.at_standby) == ["kept"]
    assert "not found" in error_text(await pair.at_standby.call_tool("get_job", {"job_id": "by-runner"}))


async def test_run_now_on_a_standby_runs_in_the_runner_with_its_flags_and_is_the_last_run_everywhere(
    pair: Pair,
) -> None:
    structured(await pair.at_runner.call_tool("schedule_job", {
        "job_id": "greet", "schedule_type": "interval", "schedule": "1 hour", "agentool_name": "shell",
        "input_data": {"operation": "run", "argv": ["echo", "hello"]},
    }))

    # The standby has no --allow-shell: run here, the job would fail with "disabled".
    record = structured(await pair.at_standby.call_tool("run_now", {"job_id": "greet"}))

    assert record["status"] == "success"
    for client in (pair.at_standby, pair.at_runner):
        assert await last_run(client, "greet") == (to_second(record["started_at"]), "success")


async def test_a_cli_run_is_the_last_run_on_the_runner_and_the_standby(pair: Pair) -> None:
    structured(await pair.at_runner.call_tool("schedule_job", kv_job("by-hand")))

    ran = await asyncio.to_thread(run_cli, "run", "by-hand", "--db", pair.database, "--json")

    assert ran.returncode == 0, ran.stderr
    [history] = structured(await pair.at_runner.call_tool("get_history", {"job_id": "by-hand"}))["runs"]
    assert history["trigger"] == "run_now" and json.loads(ran.stdout)["run_id"] == history["run_id"]
    for client in (pair.at_standby, pair.at_runner):
        last_at, last_status = await last_run(client, "by-hand")
        assert last_status == "success" and last_at is not None
        assert last_at == to_second(history["started_at"])
        [summary] = structured(await client.call_tool("list_jobs", {}))["jobs"]
        assert summary["last_status"] == "success"


async def test_a_standby_lists_the_next_run_the_runner_moved_to(pair: Pair) -> None:
    uri, inbox = "scheduler://jobs/often/history", Inbox()
    async with connect(pair.runner, mode="legacy", message_handler=inbox.message_handler) as watcher:
        await watcher.subscribe_resource(uri)
        structured(await pair.at_runner.call_tool("schedule_job", kv_job("often", "1s")))
        while len(done := structured(await pair.at_runner.call_tool(
                "get_history", {"job_id": "often", "status": "success"}))["runs"]) < 2:
            inbox.items.clear()
            await inbox.wait_for(updated(uri))  # a run started or ended (the next fire is a second away)

    [shown] = structured(await pair.at_standby.call_tool("list_jobs", {}))["jobs"]

    # The first run's time is past by now: a stale view would still show it as the next run.
    assert datetime.fromisoformat(shown["next_run"]) > datetime.fromisoformat(done[-1]["scheduled_time"])
    assert "refreshed_at" not in structured(await pair.at_standby.call_tool("list_jobs", {}))
