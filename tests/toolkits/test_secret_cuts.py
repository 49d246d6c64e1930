"""Redaction runs before any cut: no prefix or suffix of a secret survives where a toolkit shortens a text.

Real jobs through a scheduler runtime: `http` against a local HTTP server that quotes what it was sent,
`shell` running a real program, `mcp` calling a real MCP server over stdio.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import AgenToolInjector
from agentool_bridge.toolkits.config import ToolkitConfig
from mcp_scheduler import JobExecutionError, RunRecord, SchedulerInput, SchedulerRuntime, ServiceConfig
from tests.toolkits._http_server import LocalServer, serve_http

PYTHON = sys.executable
SERVER = Path(__file__).with_name("mcp_test_server.py")
# 305 characters, none repeated in a way that a piece of it could come from elsewhere.
LONG = "".join(f"{n:03d}q" for n in range(77))[:305]
HUGE = "".join(f"{n:04d}z" for n in range(600))  # 3,000 characters: longer than any error snippet
SHORT = "k9"
ENVIRON = {"LONG_TOKEN": LONG, "HUGE_TOKEN": HUGE, "SHORT_TOKEN": SHORT}


@pytest.fixture(scope="module")
def web() -> Iterator[LocalServer]:
    with serve_http() as running:
        yield running


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[SchedulerRuntime]:
    servers = tmp_path / "servers.json"
    servers.write_text(json.dumps({"mcpServers": {"local": {"command": PYTHON, "args": [str(SERVER)]}}}))
    config = ServiceConfig(database=str(tmp_path / "s.sqlite"), timezone="UTC", environ=ENVIRON,
                           secrets=tuple(ENVIRON))
    toolkits = ToolkitConfig(shell_executables=(PYTHON,), servers_file=str(servers))
    async with SchedulerRuntime(config, injector=AgenToolInjector(), toolkit_config=toolkits) as rt:
        yield rt


async def run(rt: SchedulerRuntime, agentool: str, input_data: dict[str, Any]) -> RunRecord:
    return await rt.service.run_now(SchedulerInput(operation="run_now", agentool_name=agentool, input_data=input_data))


async def failure(rt: SchedulerRuntime, agentool: str, input_data: dict[str, Any]) -> tuple[str, str]:
    """The error a failing run raised, and its record in the history, as text."""
    with pytest.raises(JobExecutionError) as caught:
        await run(rt, agentool, input_data)
    [record] = await rt.service.get_history(agentool_name=agentool)
    return str(caught.value), record.model_dump_json()


def pieces(secret: str, size: int = 12) -> list[str]:
    """Every run of `size` characters of `secret`: none may appear in what a run shows."""
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def assert_no_piece(secret: str, *texts: str) -> None:
    for text in texts:
        leaked = [piece for piece in pieces(secret) if piece in text]
        assert not leaked, f"{len(leaked)} pieces of the secret leaked, the first: {leaked[0]!r}"


async def test_a_long_secret_echoed_in_an_error_status_body_is_not_cut_into_the_snippet(
    runtime: SchedulerRuntime, web: LocalServer
) -> None:
    message, recorded = await failure(runtime, "http", {
        "operation": "request", "url": f"{web.url}/reflect/401", "headers": {"X-Reflect": "!env:LONG_TOKEN"},
    })

    assert "returned 401" in message and "!env:LONG_TOKEN" in message
    assert_no_piece(LONG, message, recorded)


async def test_a_secret_across_max_response_bytes_is_not_cut_into_the_body(
    runtime: SchedulerRuntime, web: LocalServer
) -> None:
    record = await run(runtime, "http", {
        "operation": "request", "url": f"{web.url}/reflect/200", "query": {"prefix": "x" * 100},
        "headers": {"X-Reflect": "!env:LONG_TOKEN"}, "max_response_bytes": 150,
    })

    data = record.result["data"]
    assert data["truncated"] is True and data["bytes"] == 150
    assert data["body"]["content"].startswith("x" * 100 + "!env:LONG_TOKEN")
    assert_no_piece(LONG, record.model_dump_json())


async def test_a_secret_shorter_than_four_characters_is_redacted_too(
    runtime: SchedulerRuntime, web: LocalServer
) -> None:
    record = await run(runtime, "http", {
        "operation": "request", "url": f"{web.url}/reflect/200", "query": {"prefix": "value="},
        "headers": {"X-Reflect": "!env:SHORT_TOKEN"},
    })

    assert record.result["data"]["body"]["content"] == "value=!env:SHORT_TOKEN"


async def test_a_secret_across_the_cut_of_shell_output_is_not_cut_into_it(runtime: SchedulerRuntime) -> None:
    script = "import sys; sys.stdout.write('x' * 100 + sys.argv[1] + 'y' * 100)"
    record = await run(runtime, "shell", {
        "operation": "run", "argv": [PYTHON, "-c", script, "!env:LONG_TOKEN"], "max_output_bytes": 150,
    })

    data = record.result["data"]
    assert data["stdout_truncated"] is True and data["stdout"]["content"].startswith("x" * 100 + "!env:LONG_TOKEN")
    assert_no_piece(LONG, record.model_dump_json())


async def test_a_secret_across_the_start_of_the_quoted_stderr_tail_is_not_cut_into_it(
    runtime: SchedulerRuntime,
) -> None:
    script = "import sys; sys.stderr.write(sys.argv[1] + 'y' * 400); sys.exit(3)"
    message, recorded = await failure(runtime, "shell", {
        "operation": "run", "argv": [PYTHON, "-c", script, "!env:LONG_TOKEN"],
    })

    assert "exited with code 3" in message and "y" * 400 in message
    assert_no_piece(LONG, message, recorded)


async def test_a_secret_across_the_cut_of_an_mcp_tool_error_is_not_cut_into_it(runtime: SchedulerRuntime) -> None:
    message, recorded = await failure(runtime, "mcp", {
        "operation": "call_tool", "server": "local", "tool": "fail", "arguments": {"reason": "!env:HUGE_TOKEN"},
    })

    assert "failed !env:HUGE_TOKEN" in message
    assert_no_piece(HUGE, message, recorded)
