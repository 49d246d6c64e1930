"""`python -m mcp_scheduler` over stdio (a real subprocess), and the human commands `jobs` and `history`."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.subscriptions import ResourceUpdated

from mcp_scheduler.cli import parse_settings
from mcp_scheduler.cli import serve as serving
from mcp_scheduler.settings import Settings

from .conftest import (
    LOG_INPUT,
    WAIT,
    Inbox,
    ServerFactory,
    hourly,
    next_event,
    once_now,
    run_cli,
    structured,
    updated,
)
from .test_in_memory import TOOL_PARAMETERS

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")


def stdio(database: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_scheduler", "--db", database, "--timezone", "UTC"]
    )


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_stdio_session_schedules_a_job_sees_it_run_and_cancels_it(tmp_path: Path, mode: str) -> None:
    database = str(tmp_path / "stdio.db")
    history_uri = "scheduler://jobs/stdio-job/history"
    inbox = Inbox()
    async with Client(stdio(database), mode=mode, message_handler=inbox.message_handler) as c:
        tools = {t.name for t in (await c.list_tools()).tools}
        assert len(tools) == len(TOOL_PARAMETERS) and {"schedule_job", "get_job", "cancel_job"} <= tools
        structured(await c.call_tool("schedule_job", hourly("stdio-job")))  # fires on run_now only

        if mode == "legacy":
            assert c.protocol_version != "2026-07-28"
            await c.subscribe_resource(history_uri)
            structured(await c.call_tool("schedule_job", once_now("stdio-once")))
            structured(await c.call_tool("run_now", {"job_id": "stdio-job"}))
            await inbox.wait_for(updated(history_uri))
        else:
            assert c.protocol_version == "2026-07-28"
            async with c.listen(resource_subscriptions=[history_uri]) as subscription:
                structured(await c.call_tool("schedule_job", once_now("stdio-once")))
                structured(await c.call_tool("run_now", {"job_id": "stdio-job"}))
                await next_event(subscription, lambda e: isinstance(e, ResourceUpdated) and e.uri == history_uri)

        history = structured(await c.call_tool("get_history", {"job_id": "stdio-job"}))
        assert [(r["status"], r["trigger"]) for r in history["runs"]] == [("success", "run_now")]
        detail = structured(await c.call_tool("get_job", {"job_id": "stdio-job"}))
        assert detail["job"]["last_status"] == "success" and detail["recent_history"][0]["status"] == "success"

        cancelled = structured(await c.call_tool("cancel_job", {"job_id": "stdio-job"}))
        assert cancelled["job_id"] == "stdio-job"
        remaining = structured(await c.call_tool("list_jobs", {}))
        assert "stdio-job" not in [j["job_id"] for j in remaining["jobs"]]


async def test_stdio_stdout_carries_nothing_but_json_rpc(tmp_path: Path) -> None:
    """Even while an AgenTool logs, the server writes only JSON-RPC messages to stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mcp_scheduler", "--db", str(tmp_path / "raw.db"), "--timezone", "UTC",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin and process.stdout and process.stderr
    requests: list[dict[str, Any]] = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "run_now", "arguments": {"agentool_name": "logging", "input_data": LOG_INPUT}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "schedule_job", "arguments": once_now("raw-once")}},
    ]
    lines: list[bytes] = []
    try:
        for request in requests:
            process.stdin.write(json.dumps(request).encode() + b"\n")
        await process.stdin.drain()
        answered: set[int] = set()
        while answered != {1, 2, 3}:
            line = await asyncio.wait_for(process.stdout.readline(), WAIT)
            assert line, "stdout closed early"
            lines.append(line)
            message = json.loads(line)
            if "id" in message:
                answered.add(message["id"])
        process.stdin.close()
        rest, stderr = await asyncio.wait_for(process.communicate(), WAIT)
        lines += rest.splitlines(keepends=True)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 0
    for line in lines:
        message = json.loads(line)
        assert message["jsonrpc"] == "2.0"
    responses = {m["id"]: m for m in map(json.loads, lines) if "id" in m}
    assert responses[2]["result"]["structuredContent"]["status"] == "success"
    assert responses[3]["result"]["structuredContent"]["job_id"] == "raw-once"
    assert b"hello from a job" in stderr  # the logging AgenTool wrote its record, to stderr


def test_help_exits_zero_and_names_the_commands() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    assert "serve" in done.stdout and "jobs" in done.stdout and "history" in done.stdout
    assert "MCP_SCHEDULER_" in done.stdout


# ---------------------------------------------------------------------- human commands


@pytest.fixture(scope="module")
def used_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database that a stdio session filled: an hourly job run by hand, and a one-time job that ran."""
    database = str(tmp_path_factory.mktemp("cli") / "used.db")

    async def session() -> None:
        inbox = Inbox()
        async with Client(stdio(database), mode="legacy", message_handler=inbox.message_handler) as c:
            await c.subscribe_resource("scheduler://jobs/nightly-once/history")
            structured(await c.call_tool("schedule_job", hourly("hourly-kv", "storage_kv")))
            structured(await c.call_tool("run_now", {"job_id": "hourly-kv"}))
            structured(await c.call_tool("schedule_job", once_now("nightly-once")))
            await inbox.wait_for(updated("scheduler://jobs/nightly-once/history"))

    asyncio.run(session())
    yield database


def test_jobs_prints_a_table_of_the_jobs(used_database: str) -> None:
    done = run_cli("jobs", "--db", used_database)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["JOB", "STATE", "KIND"]
    rows = {line.split()[0]: line.split() for line in lines[2:-1]}
    assert rows["hourly-kv"][1:3] == ["scheduled", "storage_kv"]
    assert rows["nightly-once"][1:3] == ["completed", "logging"]
    assert rows["nightly-once"][-1] == "success"
    assert lines[-1].startswith("2 of 2 job(s); times in ")


def test_history_prints_a_table_of_a_jobs_runs(used_database: str) -> None:
    by_hand = run_cli("history", "hourly-kv", "--db", used_database)
    scheduled = run_cli("history", "nightly-once", "--db", used_database)

    assert by_hand.returncode == 0 and scheduled.returncode == 0
    assert by_hand.stdout.splitlines()[0].split()[:3] == ["WHEN", "TRIGGER", "STATUS"]
    # WHEN is a date, a time and the job's zone: cells are apart by two spaces or more
    assert re.split(r"\s{2,}", by_hand.stdout.splitlines()[2])[1:3] == ["run_now", "success"]
    assert re.split(r"\s{2,}", scheduled.stdout.splitlines()[2])[1:3] == ["schedule", "success"]
    assert len(scheduled.stdout.splitlines()) == 4  # header, rule, one run, footer
    assert scheduled.stdout.splitlines()[-1].startswith("1 run(s) of job nightly-once")


def test_history_of_an_unknown_job_exits_3(used_database: str) -> None:
    done = run_cli("history", "ghost", "--db", used_database)

    assert done.returncode == 3
    assert "no job 'ghost'" in done.stderr
    assert done.stdout == ""


def test_history_without_a_job_id_lists_the_runs_of_every_job(used_database: str) -> None:
    done = run_cli("history", "--db", used_database)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split()[:2] == ["WHEN", "JOB"]
    assert {re.split(r"\s{2,}", line)[1] for line in done.stdout.splitlines()[2:-1]} == {"hourly-kv", "nightly-once"}


def test_jobs_reads_the_database_named_by_mcp_scheduler_db(used_database: str) -> None:
    done = run_cli("jobs", env={"MCP_SCHEDULER_DB": used_database})

    assert done.returncode == 0, done.stderr
    assert "hourly-kv" in done.stdout and "nightly-once" in done.stdout


def test_jobs_on_a_missing_or_foreign_database_exits_1_with_a_message(tmp_path: Path) -> None:
    missing = run_cli("jobs", "--db", str(tmp_path / "nothing.db"))
    assert missing.returncode == 1 and "No scheduler database" in missing.stderr

    foreign = tmp_path / "foreign.db"
    foreign.write_bytes(b"")
    done = run_cli("jobs", "--db", str(foreign))
    assert done.returncode == 1 and "not a scheduler database" in done.stderr and "Traceback" not in done.stderr
    assert foreign.read_bytes() == b""  # nothing was created in it


async def test_jobs_reads_a_database_whose_path_has_uri_characters(make_server: ServerFactory, tmp_path: Path) -> None:
    folder = tmp_path / "odd #1 100%?"
    folder.mkdir()
    database = str(folder / "s.db")
    async with Client(make_server(database)) as c:
        structured(await c.call_tool("schedule_job", hourly("odd-path-job")))

    done = run_cli("jobs", "--db", database)

    assert done.returncode == 0, done.stderr
    assert "odd-path-job" in done.stdout


def test_parse_settings_reads_mcp_scheduler_environment_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MCP_SCHEDULER_DB", str(tmp_path / "env.db"))
    monkeypatch.setenv("MCP_SCHEDULER_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("MCP_SCHEDULER_AUTH_TOKEN", "one, two")
    monkeypatch.setenv("MCP_SCHEDULER_TRANSPORT", "http")
    monkeypatch.setenv("MCP_SCHEDULER_PORT", "9123")

    args, settings = parse_settings([])

    assert args.command == "serve"
    assert settings.database == str(tmp_path / "env.db")
    assert settings.timezone == "Europe/Berlin"
    assert settings.auth_tokens == ("one", "two")
    assert settings.transport == "http" and settings.port == 9123


def test_flags_win_over_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MCP_SCHEDULER_DB", str(tmp_path / "env.db"))
    monkeypatch.setenv("MCP_SCHEDULER_TIMEZONE", "Europe/Berlin")
    monkeypatch.chdir(tmp_path)

    _, settings = parse_settings(["--db", "flag.db", "--timezone", "Asia/Tokyo"])

    assert settings.database == os.path.join(str(tmp_path), "flag.db")
    assert settings.timezone == "Asia/Tokyo"


def test_without_db_flag_or_variable_the_user_data_directory_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_SCHEDULER_DB", raising=False)
    monkeypatch.delenv("MCP_SCHEDULER_TIMEZONE", raising=False)

    _, settings = parse_settings(["jobs"])

    assert settings.database is not None
    assert settings.database.endswith(os.path.join("mcp-scheduler", "scheduler.sqlite"))
    assert settings.timezone is None


async def test_a_stdio_server_closes_its_databases_when_the_client_leaves(tmp_path: Path) -> None:
    database = tmp_path / "tidy.db"
    kv_set = {"operation": "set", "key": "k", "value": "v"}
    async with Client(stdio(str(database)), mode="legacy") as c:
        run = structured(
            await c.call_tool("run_now", {"agentool_name": "storage_kv", "input_data": kv_set, "result_queue": "out"})
        )
        assert run["status"] == "success"
        assert "tidy.db-wal" in os.listdir(tmp_path)  # the scheduler and the toolkits write through the WAL

    # every connection was closed (the toolkits' too), so SQLite checkpointed and removed its WAL files
    assert sorted(os.listdir(tmp_path)) == ["tidy.db", "tidy.db.lock"]
    history = run_cli("history", run["job_id"], "--db", str(database))
    assert history.returncode == 0 and "success" in history.stdout  # the run's record was written before


async def test_serving_freezes_the_objects_loaded_at_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[tuple[int, bool]] = []

    async def transport(mcp: Any, settings: Settings, stopping: Any, *listeners: Any) -> bool:  # serve()'s transport
        seen.append((gc.get_freeze_count(), mcp.runtime.is_open))
        return False

    monkeypatch.setattr(serving, "_serve_transport", transport)
    gc.unfreeze()
    try:
        await serving.serve(Settings(database=str(tmp_path / "s.db"), timezone="UTC", discover_entry_points=False))
    finally:
        gc.unfreeze()

    [(frozen, was_open)] = seen
    assert was_open and frozen > 0


async def test_two_stdio_servers_on_the_default_database_both_serve_and_a_job_fires_once(tmp_path: Path) -> None:
    # Claude Desktop and Claude Code side by side: each starts `mcp-scheduler` with no --db.
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    default = StdioServerParameters(command=sys.executable, args=["-m", "mcp_scheduler", "--timezone", "UTC"], env=env)
    inbox = Inbox()
    async with Client(default, mode="legacy") as desktop, Client(
        default, mode="legacy", message_handler=inbox.message_handler
    ) as code:
        assert len((await desktop.list_tools()).tools) == len((await code.list_tools()).tools) > 0
        roles = {structured(await c.call_tool("scheduler_status", {}))["role"] for c in (desktop, code)}
        assert roles == {"runner", "standby"}
        status = structured(await code.call_tool("scheduler_status", {}))
        assert status["database"] == str(tmp_path / "data" / "mcp-scheduler" / "scheduler.sqlite")

        await code.subscribe_resource("scheduler://jobs/side-by-side/history")
        structured(await desktop.call_tool("schedule_job", once_now("side-by-side")))
        seen = structured(await code.call_tool("get_job", {"job_id": "side-by-side"}))
        assert seen["job"]["agentool_name"] == "logging"

        await inbox.wait_for(updated("scheduler://jobs/side-by-side/history"))
        runs = structured(await code.call_tool("get_history", {"job_id": "side-by-side"}))["runs"]
        assert [r["status"] for r in runs] == ["success"]
        assert structured(await desktop.call_tool("get_history", {"job_id": "side-by-side"}))["runs"] == runs
