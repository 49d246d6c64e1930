"""`mcp-scheduler run | pause | resume | cancel | jobs | history` from a terminal, beside a running server.

The server is a real `mcp-scheduler --transport http` process on a SQLite file; each command is a real
`python -m mcp_scheduler ...` process; what the server did is read back through its MCP tools.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from mcp import Client

from mcp_scheduler import SchedulerRuntime, ServiceConfig
from mcp_scheduler.models import SchedulerInput
from tests._net import authorized
from tests.server.conftest import WAIT, HttpServer, hosted, hourly, http_server, run_cli, structured

MISSING_KEY = {"operation": "get", "key": "never-set"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    with http_server(tmp_path_factory.mktemp("cli-actions"), "--transport", "http") as running:
        yield running


@pytest.fixture
async def client(server: HttpServer) -> AsyncIterator[Client]:
    async with hosted(Client(authorized(f"{server.base}/mcp", server.token))) as c:
        yield c


async def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m mcp_scheduler ARGS` in a thread, so that this test's event loop (and its client) keeps going."""
    return await asyncio.to_thread(run_cli, *args)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until the server shows what another process changed (no event crosses the processes)."""
    for _ in range(int(WAIT / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {WAIT} s")


def rows(stdout: str) -> list[list[str]]:
    """The rows of a printed table (header, rule and footer left out), cells split on 2+ spaces."""
    return [re.split(r"\s{2,}", line) for line in stdout.splitlines()[2:] if "; times in " not in line]


def table(stdout: str) -> dict[str, list[str]]:
    """The rows of a printed jobs table by job id."""
    return {cells[0]: cells for cells in rows(stdout)}


async def state_of(client: Client, job_id: str) -> str:
    return str(structured(await client.call_tool("get_job", {"job_id": job_id}))["job"]["state"])


async def test_pause_resume_and_cancel_reach_the_running_server(server: HttpServer, client: Client) -> None:
    structured(await client.call_tool("schedule_job", hourly("tick")))

    paused = await cli("pause", "tick", "--db", server.database)
    assert paused.returncode == 0, paused.stderr
    assert table(paused.stdout)["tick"][1] == "paused"
    assert f"pid {server.process.pid} " in paused.stderr  # it acted as a standby of the server

    async def server_shows(state: str) -> bool:
        return await state_of(client, "tick") == state

    await until(lambda: server_shows("paused"), "the server pausing tick")

    resumed = await cli("resume", "tick", "--db", server.database)
    assert resumed.returncode == 0, resumed.stderr
    assert table(resumed.stdout)["tick"][1] == "scheduled"
    await until(lambda: server_shows("scheduled"), "the server resuming tick")

    cancelled = await cli("cancel", "tick", "--db", server.database)
    assert cancelled.returncode == 0, cancelled.stderr

    async def gone() -> bool:
        listed = structured(await client.call_tool("list_jobs", {"limit": 100}))
        return "tick" not in [job["job_id"] for job in listed["jobs"]]

    await until(gone, "the server dropping tick")
    again = await cli("pause", "tick", "--db", server.database)
    assert again.returncode == 3 and "no job 'tick'" in again.stderr and again.stdout == ""


async def test_run_is_done_by_the_server_and_prints_its_run_or_fails_with_exit_1_and_history_filters_across_jobs(
    server: HttpServer, client: Client
) -> None:
    structured(await client.call_tool("schedule_job", hourly("counter", "storage_kv")))
    structured(await client.call_tool("schedule_job", hourly("broken", "storage_kv", input_data=MISSING_KEY)))

    ok = await cli("run", "counter", "--db", server.database)
    assert ok.returncode == 0, ok.stderr
    [run] = rows(ok.stdout)
    assert run[1:4] == ["counter", "run_now", "success"]
    assert run[-1] == "Created key 'counter'."  # the result's summary, not its JSON
    assert "success" in ok.stderr
    as_json = await cli("run", "counter", "--db", server.database, "--json")
    assert as_json.returncode == 0, as_json.stderr
    record = json.loads(as_json.stdout)
    assert record["status"] == "success" and record["result"]["success"] is True  # the raw result, for scripts

    async def server_saw_the_run() -> bool:  # the server ran it: its own bookkeeping has the run
        job = structured(await client.call_tool("get_job", {"job_id": "counter"}))["job"]
        return bool(job.get("last_status") == "success" and job.get("last_run_at"))

    await until(server_saw_the_run, "the server's bookkeeping of the run")

    failed = await cli("run", "broken", "--db", server.database)
    assert failed.returncode == 1
    assert "error" in failed.stderr and "never-set" in failed.stderr and failed.stdout == ""
    assert "…" not in failed.stderr  # the whole error, also when stderr is not a terminal

    errors = await cli("history", "--status", "error", "--since", "1h", "--db", server.database)
    assert errors.returncode == 0, errors.stderr
    failures = rows(errors.stdout)
    assert [row[1:4] for row in failures] == [["broken", "run_now", "error"]]
    assert "KeyNotFoundError" in failures[0][-1]

    recent = await cli("history", "--since", "1h", "--db", server.database)
    assert {row[1] for row in rows(recent.stdout)} >= {"counter", "broken"}
    future = await cli("history", "--since", "2999-01-01T00:00", "--db", server.database)
    assert future.returncode == 0 and rows(future.stdout) == []
    nonsense = await cli("history", "--since", "last tuesday", "--db", server.database)
    assert nonsense.returncode == 2 and "--since 'last tuesday' is neither a time nor a duration" in nonsense.stderr

    jobs = await cli("jobs", "--db", server.database)
    assert jobs.returncode == 0, jobs.stderr
    shown = table(jobs.stdout)
    assert shown["counter"][1:4] == ["scheduled", "storage_kv", "every 1 hour"]
    assert shown["broken"][1:3] == ["scheduled", "storage_kv"]

    missing = await cli("run", "ghost", "--db", server.database)
    assert missing.returncode == 3 and "no job 'ghost'" in missing.stderr


async def test_without_a_server_run_runs_nothing_and_says_how_to_start_one_and_pause_fires_no_other_job(
    tmp_path: Path,
) -> None:
    database = str(tmp_path / "idle.db")
    config = ServiceConfig(database=database, timezone="UTC", start_paused=True)
    async with SchedulerRuntime(config) as runtime:  # leaves a job due now, unfired
        await runtime.service.schedule(SchedulerInput(
            operation="schedule", job_id="due", schedule_type="once", schedule="now", agentool_name="logging",
            input_data={"operation": "log", "level": "INFO", "message": "fired"},
        ))
        await runtime.service.schedule(SchedulerInput(
            operation="schedule", job_id="other", schedule_type="interval", schedule="1 hour",
            agentool_name="storage_kv", input_data={"operation": "set", "key": "k", "value": 1},
        ))

    ran = await cli("run", "other", "--db", database)
    assert ran.returncode == 1 and ran.stdout == ""
    assert "no process runs the jobs of" in ran.stderr and "mcp-scheduler runner --db" in ran.stderr
    paused = await cli("pause", "other", "--db", database)
    assert paused.returncode == 0, paused.stderr
    assert "fired" not in paused.stderr  # the due job's logging record would show here

    history = await cli("history", "--db", database)
    assert rows(history.stdout) == []  # nothing ran, and no request was left behind
    jobs = table((await cli("jobs", "--db", database)).stdout)
    assert jobs["due"][1] == "scheduled" and jobs["due"][-1] == "-"
    assert jobs["other"][1] == "paused" and jobs["other"][-1] == "-"


async def test_jobs_and_history_read_a_postgres_database(postgres_url: str) -> None:
    config = ServiceConfig(database=postgres_url, timezone="UTC")
    async with SchedulerRuntime(config) as runtime:  # the runner: the command below is its standby
        service = runtime.service
        await service.schedule(SchedulerInput(
            operation="schedule", job_id="pg-job", schedule_type="cron", schedule="0 9 * * 1-5",
            agentool_name="storage_kv", input_data={"operation": "set", "key": "k", "value": 1},
        ))
        await service.run_now(SchedulerInput(operation="run_now", job_id="pg-job"))

        jobs = await cli("jobs", "--db", postgres_url)
        assert jobs.returncode == 0, jobs.stderr
        row = table(jobs.stdout)["pg-job"]
        assert row[1] == "scheduled" and row[3].startswith("At 09:00") and row[-1] == "success"

        history = await cli("history", "pg-job", "--db", postgres_url, "--status", "success")
        assert history.returncode == 0, history.stderr
        assert [r[1:3] for r in rows(history.stdout)] == [["run_now", "success"]]

        ran = await cli("run", "pg-job", "--db", postgres_url)  # the runtime above runs it, asked through the store
        assert ran.returncode == 0, ran.stderr
        assert [r[1:4] for r in rows(ran.stdout)] == [["pg-job", "run_now", "success"]]
        assert len(await service.get_history("pg-job", limit=10)) == 2

        paused = await cli("pause", "pg-job", "--db", postgres_url)
        assert paused.returncode == 0, paused.stderr

        async def followed() -> bool:
            return (await service.get_job("pg-job"))[0].state == "paused"

        await until(followed, "the runner following the pause")


def test_help_documents_the_exit_codes() -> None:
    shown = subprocess.run([sys.executable, "-m", "mcp_scheduler", "--help"], capture_output=True, text=True)
    assert shown.returncode == 0
    assert "exit codes:" in shown.stdout and "3  no job with that JOB_ID" in shown.stdout
    for command in ("run", "pause", "resume", "cancel", "--since", "--status"):
        assert command in shown.stdout


def test_an_action_without_a_job_id_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli("resume", "--db", str(tmp_path / "x.db"))
    assert done.returncode == 2 and "give a JOB_ID" in done.stderr

