"""The `mcp` AgenTool and its connection pool, against a real MCP server (tests/toolkits/mcp_test_server.py)
run as a subprocess over stdio and over streamable HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp as mcp_sdk
import pytest
from mcp.types import ImageContent, TextContent, Tool

from agentool_bridge import AgenToolInjector
from agentool_bridge.toolkits import (
    MCPArgumentsError,
    MCPConnectionPool,
    MCPServerConfigError,
    MCPServerUnavailableError,
    MCPToolkit,
    MCPToolTimeoutError,
    ToolkitConfig,
    ToolkitOutput,
)
from agentool_bridge.toolkits.mcp import ServersFile, ServersFileError, UnknownServerError
from agentool_bridge.toolkits.mcp.tools import _content_json, check_arguments
from mcp_scheduler import SchedulerInput, ServiceConfig
from mcp_scheduler.cli import parse_settings
from mcp_scheduler.errors import InvalidJobInputError, JobExecutionError
from mcp_scheduler.runtime import SchedulerRuntime
from tests._net import free_port, stop, wait_until_listening

SERVER = Path(__file__).with_name("mcp_test_server.py")
SECRET = "server-secret-7731"
TOKEN = "Bearer token-4242-abcd"
ENVIRON = {"MCP_TEST_SECRET": SECRET, "MCP_TEST_TOKEN": TOKEN, "MCP_TEST_BROKEN": "one\r\nX-Injected: two"}
TOOLS = {"add", "echo", "fail", "pid", "env", "trace_context", "read_text"}


@pytest.fixture(scope="module")
def http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test server over streamable HTTP, started once for this module."""
    port = free_port()
    log = tmp_path_factory.mktemp("mcp-http") / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--http", str(port)], stdout=subprocess.DEVNULL, stderr=sink
        )
    try:
        wait_until_listening(proc, port, log=str(log))
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(proc)


def servers_json(http_url: str, **more: dict[str, Any]) -> dict[str, Any]:
    return {
        "mcpServers": {
            "local": {
                "command": sys.executable,
                "args": [str(SERVER)],
                "env": {"SERVER_SECRET": "!env:MCP_TEST_SECRET"},
            },
            "web": {"url": http_url, "headers": {"Authorization": "!env:MCP_TEST_TOKEN"}},
            "down": {"url": f"http://127.0.0.1:{free_port()}/mcp"},
            "broken": {"url": http_url, "headers": {"X-Key": "!env:MCP_TEST_BROKEN"}},
            "unset": {"url": http_url, "headers": {"X-Key": "!env:MCP_TEST_UNSET"}},
            **more,
        }
    }


def new_pool(http_url: str, **options: Any) -> MCPConnectionPool:
    return MCPConnectionPool(ServersFile.model_validate(servers_json(http_url)), environ=ENVIRON, **options)


@pytest.fixture
async def pool(http_url: str) -> AsyncIterator[MCPConnectionPool]:
    own = new_pool(http_url)
    try:
        yield own
    finally:
        await own.aclose()


@pytest.fixture
def mcp(pool: MCPConnectionPool, injector: AgenToolInjector) -> AgenToolInjector:
    """The injector with the `mcp` AgenTool over `pool` registered."""
    injector.registry.register(MCPToolkit(pool).agentool())
    return injector


async def run(injector: AgenToolInjector, data: dict[str, Any]) -> dict[str, Any]:
    output = await injector.run("mcp", data)
    assert isinstance(output, ToolkitOutput) and output.data is not None
    return output.data


async def pid_of(pool: MCPConnectionPool, server: str = "local") -> int:
    result = await pool.call_tool(server, "pid", {})
    assert result.structured_content is not None
    return int(result.structured_content["result"])


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ---------------------------------------------------------------------------- the AgenTool in process


@pytest.mark.parametrize("server", ["local", "web"])
async def test_list_tools_gives_each_tool_and_call_tool_its_result(mcp: AgenToolInjector, server: str) -> None:
    listing = await run(mcp, {"operation": "list_tools", "server": server})
    data = await run(mcp, {"operation": "call_tool", "server": server, "tool": "add", "arguments": {"a": 2, "b": 3}})

    tools = {tool["name"]: tool for tool in listing["tools"]["content"]}
    assert set(tools) == TOOLS and listing["count"] == len(TOOLS)
    assert tools["add"]["description"] == "Add two integers."
    assert tools["add"]["input_schema"]["required"] == ["a", "b"]

    assert data["is_error"] is False
    assert data["structured_content"]["content"] == {"result": 5}
    assert data["text"]["content"] == "5"
    assert data["content"]["content"] == [{"type": "text", "text": "5"}]


async def test_arguments_are_checked_against_the_remote_schema_before_the_call(mcp: AgenToolInjector) -> None:
    with pytest.raises(MCPArgumentsError) as caught:
        await run(mcp, {"operation": "call_tool", "server": "web", "tool": "add", "arguments": {"a": "two"}})

    assert caught.value.fields == ["arguments.a", "arguments.b"]
    assert "arguments.a: must be of type integer (got string)" in str(caught.value)


async def test_closing_the_agentool_closes_its_connections(mcp: AgenToolInjector, pool: MCPConnectionPool) -> None:
    await run(mcp, {"operation": "list_tools", "server": "web"})
    assert pool.is_connected("web")

    mcp.registry.unregister("mcp")  # synchronous: the connections close in the background

    with anyio.fail_after(10):
        await pool.wait_closed("web")
    assert not pool.is_connected("web")


# ---------------------------------------------------------------------------- the pool


async def test_a_connection_is_shared_reused_and_reopened_after_idleness_or_a_crash(http_url: str) -> None:
    pool = new_pool(http_url, idle_timeout=0.5)
    try:
        first, second = await asyncio.gather(pid_of(pool), pid_of(pool))
        assert first == second == await pid_of(pool)
        assert pool.is_connected("local")

        with anyio.fail_after(10):
            await pool.wait_closed("local")  # idle for 0.5 s
        assert not pool.is_connected("local")
        assert not is_running(first)

        again = await pid_of(pool)
        assert again != first
        os.kill(again, signal.SIGKILL)
        with anyio.fail_after(10):
            await pool.wait_closed("local")  # the server went away

        last = await pid_of(pool)
        assert last not in (first, again)
    finally:
        await pool.aclose()
    assert not is_running(last)


async def test_a_call_after_a_legacy_http_server_restarted_opens_a_new_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The handshake era (most servers of today): a restarted server answers 404 for the old session id.
    monkeypatch.setattr(mcp_sdk, "Client", functools.partial(mcp_sdk.Client, mode="legacy"))
    port = free_port()

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, str(SERVER), "--http", str(port)], stderr=subprocess.DEVNULL)
        wait_until_listening(proc, port)
        return proc

    proc = start()
    servers = ServersFile.model_validate({"mcpServers": {"web": {"url": f"http://127.0.0.1:{port}/mcp"}}})
    pool = MCPConnectionPool(servers, environ={})
    try:
        before = await pid_of(pool, "web")
        stop(proc)
        proc = start()

        assert await pid_of(pool, "web") == proc.pid != before
    finally:
        await pool.aclose()
        stop(proc)


async def test_unreachable_servers_are_errors_naming_the_server_and_why(tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections (in the kernel) and never answers
    crash = "import sys; sys.stderr.write('cannot open the database\\n'); sys.exit(3)"
    servers = ServersFile.model_validate(
        {
            "mcpServers": {
                "missing": {"command": str(tmp_path / "no-such-server")},
                "crashing": {"command": sys.executable, "args": ["-c", crash]},
                "refusing": {"url": f"http://127.0.0.1:{free_port()}/mcp"},
                "silent": {"url": f"http://127.0.0.1:{silent.getsockname()[1]}/mcp"},
            }
        }
    )
    pool = MCPConnectionPool(servers, environ={}, connect_timeout=0.5)
    try:
        expected = {
            "missing": "was not found",
            "crashing": "exited (or closed its output) before answering. The last lines it wrote to stderr: "
            "untrusted stderr from MCP server 'crashing': \"cannot open the database\"",
            "refusing": "failed (All connection attempts failed)",
            "silent": "did not complete the MCP handshake within 0.5 s",
        }
        for name, why in expected.items():
            with pytest.raises(MCPServerUnavailableError, match=f"MCP server '{name}'") as caught:
                await pool.list_tools(name)
            assert why in str(caught.value)
            assert not pool.is_connected(name)
        with pytest.raises(UnknownServerError, match="Declared servers: crashing, missing, refusing, silent"):
            await pool.list_tools("elsewhere")
    finally:
        await pool.aclose()
        silent.close()


async def test_a_header_from_the_environment_is_sent_and_never_echoed_in_errors() -> None:
    requests: list[bytes] = []

    async def unauthorized(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(unauthorized, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    servers = ServersFile.model_validate(
        {"mcpServers": {"guarded": {"url": f"http://127.0.0.1:{port}/mcp", "headers": {"Authorization": "!env:TOK"}}}}
    )
    pool = MCPConnectionPool(servers, environ={"TOK": TOKEN})
    try:
        with pytest.raises(MCPServerUnavailableError) as caught:
            await pool.list_tools("guarded")
    finally:
        await pool.aclose()
        listener.close()
    assert f"authorization: {TOKEN}".lower() in requests[0].decode().lower()
    assert "answered HTTP 401 Unauthorized: check its Authorization header in the servers file" in str(caught.value)
    assert TOKEN not in str(caught.value)


async def test_a_malformed_or_unset_header_value_is_a_config_error_before_connecting(http_url: str) -> None:
    pool = new_pool(http_url)
    with pytest.raises(MCPServerConfigError, match="the value of header 'X-Key' is malformed") as caught:
        await pool.list_tools("broken")
    assert "X-Injected" not in str(caught.value)
    pool.environ = {}
    with pytest.raises(MCPServerConfigError, match="MCP_TEST_TOKEN is not set"):
        await pool.list_tools("web")
    assert not pool.is_connected("web")


async def test_a_call_that_takes_longer_than_its_time_limit_is_a_timeout_error(pool: MCPConnectionPool) -> None:
    with pytest.raises(MCPToolTimeoutError, match="did not answer the call of tool 'add' within 0.001 s"):
        await pool.call_tool("web", "add", {"a": 1, "b": 2}, time_limit=0.001)

    result = await pool.call_tool("web", "add", {"a": 1, "b": 2})  # the connection is still good
    assert result.structured_content == {"result": 3}


def test_arguments_that_do_not_fit_name_each_argument_without_echoing_its_value() -> None:
    tool = Tool(
        name="search",
        input_schema={
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1},
                "mode": {"enum": ["fast", "exact"]},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    )

    with pytest.raises(MCPArgumentsError) as caught:
        check_arguments("web", tool, {"limit": 0, "mode": "hunter2-secret", "extra": 1})

    assert sorted(caught.value.fields) == ["arguments", "arguments.limit", "arguments.mode", "arguments.query"]
    message = str(caught.value)
    assert "arguments.limit: must be >= 1" in message
    assert "arguments.query: is required" in message
    assert "arguments: unexpected argument(s): 'extra'" in message
    assert "hunter2-secret" not in message
    check_arguments("web", tool, {"query": "cats", "limit": 3})  # fits: no error


def test_a_misspelt_argument_of_a_remote_tool_gets_the_nearest_one() -> None:
    tool = Tool(name="search", input_schema={"type": "object", "properties": {"query": {"type": "string"}},
                                             "additionalProperties": False})

    with pytest.raises(MCPArgumentsError, match=r"unexpected argument\(s\): 'querry' \(did you mean 'query'\?\)"):
        check_arguments("web", tool, {"querry": "cats"})


def test_large_images_in_a_result_are_summarized_and_text_is_kept() -> None:
    image = ImageContent(type="image", data="A" * 10_000, mime_type="image/png")

    summary = _content_json(image)

    assert summary["size_bytes"] == 7500
    assert summary["data"] == "<7500 bytes of base64 data left out>"
    assert summary["mimeType"] == "image/png"
    assert _content_json(TextContent(type="text", text="x" * 10_000))["text"] == "x" * 10_000


# ---------------------------------------------------------------------------- through the scheduler


@pytest.fixture
async def runtime(tmp_path: Path, http_url: str) -> AsyncIterator[SchedulerRuntime]:
    servers = tmp_path / "servers.json"
    servers.write_text(json.dumps(servers_json(http_url)))
    config = ServiceConfig(database=str(tmp_path / "s.sqlite"), environ=ENVIRON)
    async with SchedulerRuntime(config, toolkit_config=ToolkitConfig(servers_file=str(servers))) as rt:
        yield rt


async def schedule(rt: SchedulerRuntime, input_data: dict[str, Any], job_id: str = "mcp-job") -> None:
    await rt.service.schedule(
        SchedulerInput(
            operation="schedule",
            job_id=job_id,
            schedule_type="interval",
            schedule="1 hour",
            agentool_name="mcp",
            input_data=input_data,
        )
    )


async def run_job(rt: SchedulerRuntime, job_id: str = "mcp-job") -> Any:
    record = await rt.service.run_now(SchedulerInput(operation="run_now", job_id=job_id))
    return record.result


async def test_a_jobs_runs_reuse_one_server_process_which_gets_its_env_and_stops_with_the_scheduler(
    tmp_path: Path, http_url: str
) -> None:
    servers = tmp_path / "servers.json"
    servers.write_text(json.dumps(servers_json(http_url)))
    config = ServiceConfig(database=str(tmp_path / "s.sqlite"), environ=ENVIRON)
    async with SchedulerRuntime(config, toolkit_config=ToolkitConfig(servers_file=str(servers))) as rt:
        await schedule(rt, {"operation": "call_tool", "server": "local", "tool": "pid"})
        first = await run_job(rt)
        second = await run_job(rt)
        pid = first["data"]["structured_content"]["content"]["result"]
        environ = await anyio.Path(f"/proc/{pid}/environ").read_bytes()
        env = await rt.service.run_now(
            SchedulerInput(
                operation="run_now",
                agentool_name="mcp",
                input_data={"operation": "call_tool", "server": "local", "tool": "env",
                            "arguments": {"name": "SERVER_SECRET"}},
            )
        )
        history = await rt.service.get_history(env.job_id)

    assert second["data"]["structured_content"]["content"]["result"] == pid
    assert not is_running(pid)
    assert f"SERVER_SECRET={SECRET}".encode() in environ
    assert history[0].result["data"]["text"]["content"] == "!env:MCP_TEST_SECRET"
    assert SECRET not in history[0].model_dump_json()


async def test_a_tool_that_reports_an_error_is_a_recorded_run_error(runtime: SchedulerRuntime) -> None:
    await schedule(
        runtime, {"operation": "call_tool", "server": "web", "tool": "fail", "arguments": {"reason": "on purpose"}}
    )

    with pytest.raises(JobExecutionError, match="failed on purpose"):
        await run_job(runtime)

    [record] = await runtime.service.get_history("mcp-job")
    assert record.status == "error" and record.error is not None
    assert record.error.type == "MCPToolCallError"
    assert record.error.message.startswith(
        "Tool 'fail' of MCP server 'web' reported an error; untrusted error text from MCP server 'web': "
        '"Error executing tool fail: failed on purpose"'
    )


async def test_schedule_refuses_unknown_servers_and_tools_bad_arguments_and_bad_headers(
    runtime: SchedulerRuntime,
) -> None:
    refusals: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"server": "nowhere", "tool": "add"}, UnknownServerError, "MCP server 'nowhere' is not declared"),
        ({"server": "web", "tool": "nope"}, LookupError,
         r"has no tool 'nope'. Its tools \(untrusted names\): \"add\", \"echo\", \"env\", \"fail\", \"pid\""),
        ({"server": "web", "tool": "echoo"}, LookupError, r"has no tool 'echoo'. Did you mean \"echo\"\? Its tools"),
        ({"server": "web", "tool": "add", "arguments": {"a": 1}}, InvalidJobInputError, "arguments.b: is required"),
        ({"server": "web"}, InvalidJobInputError, "tool is required for operation 'call_tool'"),
        ({"server": "broken", "tool": "add"}, MCPServerConfigError, "header 'X-Key' is malformed"),
        ({"server": "unset", "tool": "add"}, MCPServerConfigError, "MCP_TEST_UNSET is not set"),
    ]
    for fields, error, message in refusals:
        with pytest.raises(error, match=message):
            await schedule(runtime, {"operation": "call_tool", **fields})
    with pytest.raises(MCPServerConfigError, match="MCP_TEST_UNSET is not set"):
        await schedule(runtime, {"operation": "list_tools", "server": "unset"})

    jobs, total = runtime.service.list_jobs()
    assert (jobs, total) == ([], 0)


async def test_a_server_unreachable_at_schedule_time_is_accepted_and_its_runs_fail_naming_it(
    runtime: SchedulerRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    await schedule(runtime, {"operation": "call_tool", "server": "down", "tool": "add", "arguments": {"a": 1}})
    assert "Accepting an mcp job although its server does not answer now" in caplog.text

    with pytest.raises(JobExecutionError):
        await run_job(runtime)

    [record] = await runtime.service.get_history("mcp-job")
    assert record.error is not None and record.error.type == "MCPServerUnavailableError"
    assert record.error.message.startswith("MCP server 'down' (http://127.0.0.1:")


async def test_mcp_is_there_without_a_servers_file_and_says_how_to_declare_servers(tmp_path: Path) -> None:
    async with SchedulerRuntime(ServiceConfig(database=str(tmp_path / "s.sqlite"))) as rt:
        assert rt.registry.exists("mcp")
        with pytest.raises(UnknownServerError, match=r"Declared servers: none\. Add it to the servers file given with"):
            await schedule(rt, {"operation": "list_tools", "server": "files"})


def test_an_invalid_servers_file_stops_the_server_from_starting(tmp_path: Path) -> None:
    bad = tmp_path / "servers.json"
    bad.write_text('{"mcpServers": {"files": {"args": ["x"]}}}')
    _, settings = parse_settings(["--servers", str(bad), "--db", str(tmp_path / "s.sqlite")])

    with pytest.raises(ServersFileError, match=r"servers\.json is invalid: .*give either 'command'"):
        SchedulerRuntime(settings.service_config(), toolkit_config=settings.toolkit_config())
