"""Front-ends and the background runner on real processes: who starts it, when a stdio server becomes a byte
pipe to it (and imports nothing heavy), and when it serves in-process instead."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from mcp_scheduler.cli import parse_settings
from mcp_scheduler.runner_info import FRONT_END_SETTINGS, RunnerInfo
from mcp_scheduler.runner_paths import service_marker_path
from mcp_scheduler.settings import Settings
from mcp_scheduler.status import sqlite_runner
from tests._net import free_port, stop, wait_until_listening
from tests._processes import processes_under
from tests.server.conftest import hourly, structured
from tests.server.test_in_memory import TOOL_PARAMETERS

from .conftest import HEAVY, WAIT, Machine, RawClient, eventually, imported_modules, inbox_messages, runs_of

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")


async def ready_runner(machine: Machine, database: str) -> RunnerInfo:
    """The registration of `database`'s runner once its socket listens."""
    info: RunnerInfo = await eventually(lambda: (i := machine.info(database)) is not None and i.ready and i,
                                        what="the runner listening")
    return info


def server(database: str, env: dict[str, str], *flags: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "mcp_scheduler", "--db", database, *flags],
                                 env=env)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_stdio_server_pipes_its_client_to_the_store_runner_and_imports_nothing_heavy(
    machine: Machine, mode: str
) -> None:
    database = str(machine.home / "jobs.db")
    runner = machine.start("runner", "--db", database, "--timezone", "UTC")
    await ready_runner(machine, database)

    errlog = machine.home / "frontend.err"
    env = {**machine.env, "PYTHONPROFILEIMPORTTIME": "1"}
    with errlog.open("w") as err:
        async with Client(stdio_client(server(database, env, "--timezone", "UTC"), errlog=err), mode=mode) as client:
            assert (client.protocol_version == "2026-07-28") == (mode == "auto")
            tools = {t.name for t in (await client.list_tools()).tools}
            assert len(tools) == len(TOOL_PARAMETERS)
            scheduled = structured(await client.call_tool("schedule_job", hourly("piped")))
            status = structured(await client.call_tool("scheduler_status", {}))
            bad = await client.call_tool("schedule_job", {**hourly("piped-2"), "schedule": "every -5 minutes"})

    assert scheduled["job_id"] == "piped" and bad.is_error
    assert status["role"] == "runner" and status["background_runner"]["pid"] == runner.pid  # answered by the runner
    assert "piped" in machine.run("jobs", "--db", database).stdout  # stored by the runner
    modules = imported_modules(errlog.read_text())
    assert "mcp_scheduler.frontend" in modules
    assert not {m for m in modules if m.split(".")[0] in HEAVY}, "the front-end imported what it must not"


async def test_through_the_pipe_lines_that_are_no_json_rpc_get_the_same_answers_as_over_stdio(
    machine: Machine,
) -> None:
    database = str(machine.home / "jobs.db")
    machine.start("runner", "--db", database)
    await ready_runner(machine, database)
    client = await RawClient.start(machine, "--db", database)
    try:
        await client.initialize()
        garbage = await client.send_line(b"this is not json")
        assert garbage["id"] is None and garbage["error"]["code"] == -32700
        assert "Send one JSON-RPC message (a JSON object) per line" in garbage["error"]["message"]
        truncated = await client.send_line(b'{"jsonrpc": "2.0", "id": 41, "method": "tools/list"')
        assert truncated["id"] == 41 and truncated["error"]["code"] == -32700
        not_rpc = await client.send_line(b'{"id": 42, "hello": "world"}')
        assert not_rpc["id"] == 42 and not_rpc["error"]["code"] == -32600
        assert len((await client.request("tools/list"))["result"]["tools"]) == len(TOOL_PARAMETERS)  # still served
        assert (await client.close())[0] == 0
    finally:
        await client.kill()
    assert "Serving through the background runner" in client.stderr


async def test_a_stdio_server_facing_a_runner_with_other_settings_serves_in_process_as_a_standby(
    machine: Machine,
) -> None:
    database = str(machine.home / "jobs.db")
    runner = machine.start("runner", "--db", database, "--timezone", "UTC", "--max-jobs", "5")
    await ready_runner(machine, database)

    errlog = machine.home / "frontend.err"
    with errlog.open("w") as err:
        async with Client(stdio_client(server(database, machine.env, "--timezone", "UTC"), errlog=err),
                          mode="legacy") as client:
            status = structured(await client.call_tool("scheduler_status", {}))
    assert status["role"] == "standby" and status["background_runner"]["pid"] == runner.pid
    assert "runs with other settings" in errlog.read_text()
    assert machine.runners() == [runner.pid]


async def test_two_stdio_servers_started_at_the_same_moment_end_with_one_runner(machine: Machine) -> None:
    database = str(machine.home / "jobs.db")
    first, second = await asyncio.gather(RawClient.start(machine, "--db", database),
                                         RawClient.start(machine, "--db", database))
    try:
        answers = await asyncio.gather(*(client.initialize() for client in (first, second)))
        assert all("result" in answer for answer in answers)
        listed = await asyncio.gather(*(client.request("tools/list") for client in (first, second)))
        assert all(len(answer["result"]["tools"]) == len(TOOL_PARAMETERS) for answer in listed)

        info = await ready_runner(machine, database)
        await eventually(lambda: machine.runners() == [info.pid], what="one runner left")
        assert info.started_by == "frontend"
        assert (sqlite_runner(database) or {}).get("pid") == info.pid
        statuses = await asyncio.gather(*(client.request("tools/call", {"name": "scheduler_status", "arguments": {}})
                                          for client in (first, second)))
        assert {s["result"]["structuredContent"]["background_runner"]["pid"] for s in statuses} == {info.pid}
        assert [await client.close() for client in (first, second)] == [(0, b""), (0, b"")]
    finally:
        await first.kill()
        await second.kill()


async def test_two_runners_started_at_the_same_moment_leave_one_and_the_other_says_which(machine: Machine) -> None:
    database = str(machine.home / "jobs.db")
    import subprocess

    runners = [machine.start("runner", "--db", database, stderr=subprocess.PIPE) for _ in range(2)]
    info = await ready_runner(machine, database)
    (loser,) = [r for r in runners if r.pid != info.pid]
    _, said = loser.communicate(timeout=WAIT)
    assert loser.returncode == 0
    assert f"already run in pid {info.pid} " in said.decode() and "not starting another runner" in said.decode()
    assert machine.runners() == [info.pid]


async def test_a_stdio_server_exits_when_its_client_closes_stdin_and_leaves_only_the_runner(machine: Machine) -> None:
    database = str(machine.home / "jobs.db")
    client = await RawClient.start(machine, "--db", database)
    try:
        assert "result" in await client.initialize()  # this server started the runner, then piped to it
        info = await ready_runner(machine, database)
        assert info.started_by == "frontend"
        # The last request goes out just before stdin closes: its answer still comes back.
        await client.send({"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": {
            "name": "schedule_job", "arguments": hourly("last-words")}})
        code, rest = await client.close()  # and stdout reaches its end: the runner holds none of its pipes
    finally:
        await client.kill()
    assert code == 0
    assert b'"id":99' in rest and b"last-words" in rest
    assert processes_under(machine.runtime) == [info.pid]  # the front-end is gone, the runner stays for its job


async def test_a_runner_killed_with_sigkill_leaves_a_socket_that_the_next_runner_replaces(machine: Machine) -> None:
    database = str(machine.home / "jobs.db")
    old = machine.start("runner", "--db", database)
    await ready_runner(machine, database)
    old.kill()
    old.wait(timeout=WAIT)
    assert machine.socket(database).exists()  # left behind

    client = await RawClient.start(machine, "--db", database)
    try:
        assert "result" in await client.initialize()
        info = await ready_runner(machine, database)
        assert info.pid != old.pid and info.started_by == "frontend"
        assert len((await client.request("tools/list"))["result"]["tools"]) == len(TOOL_PARAMETERS)
        assert "Removed the socket a runner that died left behind" in machine.log(database)
        assert (await client.close())[0] == 0
    finally:
        await client.kill()


@pytest.mark.parametrize("off", ["flag", "environment"])
async def test_a_server_with_the_background_runner_off_starts_none(machine: Machine, off: str) -> None:
    database = str(machine.home / "jobs.db")
    flags = ["--no-background-runner"] if off == "flag" else []
    env = {**machine.env, **({"MCP_SCHEDULER_NO_BACKGROUND_RUNNER": "1"} if off == "environment" else {})}
    async with Client(server(database, env, *flags), mode="legacy") as client:
        status = structured(await client.call_tool("scheduler_status", {}))
    assert status["role"] == "runner" and status["background_runner"] is None  # the jobs ran in the server itself
    assert machine.runners() == []


async def test_with_a_user_service_installed_a_server_starts_no_runner_and_says_how_to_start_the_service(
    machine: Machine,
) -> None:
    database = str(machine.home / "jobs.db")
    marker = service_marker_path(database)
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    errlog = machine.home / "frontend.err"
    with errlog.open("w") as err:
        async with Client(stdio_client(server(database, machine.env), errlog=err), mode="legacy") as client:
            status = structured(await client.call_tool("scheduler_status", {}))
    assert status["role"] == "runner"  # in-process, as before
    assert machine.runners() == []
    assert "A user service runs the jobs of this database" in errlog.read_text()
    assert "mcp-scheduler service status" in errlog.read_text()


async def test_a_service_its_manager_did_not_start_leaves_the_runner_to_the_front_end(machine: Machine) -> None:
    database = str(machine.home / "jobs.db")
    marker = service_marker_path(database)
    marker.parent.mkdir(parents=True)
    marker.write_text('{"manager": "systemd", "enabled": false}')  # `service install` where systemctl failed
    async with Client(server(database, machine.env), mode="legacy") as client:
        await client.list_tools()
    info = await ready_runner(machine, database)
    assert info.started_by == "frontend"


async def test_an_http_server_starts_the_runner_first_and_its_jobs_outlive_it(machine: Machine) -> None:
    database = str(machine.home / "jobs.db")
    port = free_port()
    log = machine.home / "http.log"
    with log.open("wb") as sink:
        http = machine.start("--transport", "http", "--port", str(port), "--db", database, "--auth-token", "t0ken",
                             stderr=sink)
    try:
        wait_until_listening(http, port, log=str(log), within=WAIT)
        info = await ready_runner(machine, database)  # started before the server listened
        assert info.started_by == "frontend"
        from tests._net import authorized

        async with Client(authorized(f"http://127.0.0.1:{port}/mcp", "t0ken")) as client:
            status = structured(await client.call_tool("scheduler_status", {}))
            assert status["role"] == "standby" and status["background_runner"]["pid"] == info.pid
            structured(await client.call_tool("schedule_job", {
                "job_id": "after-http", "schedule_type": "once", "schedule": "in 4 seconds", "agentool_name": "notify",
                "input_data": {"operation": "inbox", "title": "Later", "message": "The server is gone by now"}}))
    finally:
        assert stop(http) == 0
    runs: list[dict[str, Any]] = await eventually(
        lambda: [r for r in runs_of(database, "after-http") if r["status"] != "running"], what="the job's run")
    assert [r["status"] for r in runs] == ["success"]
    assert [m["title"] for m in inbox_messages(database)] == ["Later"]
    assert machine.runners() == [info.pid]


def test_the_runner_command_of_a_front_end_gives_the_runner_every_setting_that_decides_what_jobs_may_do(
    tmp_path: Path,
) -> None:
    every = Settings(
        database=str(tmp_path / "s.db"), timezone="Europe/Berlin", toolkits=("tests.x:make",), history_limit=7,
        close_timeout=3.5, lease_time=4.0, http_allow=("10.0.0.0/8", "-odd"), servers_file=str(tmp_path / "s.json"),
        model="test:model", shell_executables=("echo", "true"), shell_env=("FOO",), shell_max_processes=3,
        log_dir=str(tmp_path / "logs"), secrets=("API_KEY",), max_jobs=9, min_interval=2.5, max_runs_per_job=2,
        max_concurrent_runs=50, inbox_limit=11, catchup_window="2 hours", answer_bytes=1234, content_chars=99,
        runner_idle_exit=7.5, log_level="DEBUG", protect_managed_jobs=True, confirm=False,
        events_urls=("https://hooks.example/a", "-odd"), events_secret_env="EVENTS_KEY",
    )
    from mcp_scheduler.frontend import runner_argv

    argv = runner_argv(every)
    assert argv[:5] == [sys.executable, "-P", "-m", "mcp_scheduler", "runner"]
    args, parsed = parse_settings(argv[4:])
    assert args.command == "runner" and parsed.started_by == "frontend"
    for name in Settings.__dataclass_fields__:
        if name not in FRONT_END_SETTINGS or name in ("log_level", "runner_idle_exit"):
            assert getattr(parsed, name) == getattr(every, name), name
