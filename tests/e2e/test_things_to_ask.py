"""The README's "Things to ask your agent", end to end.

A pydantic-ai agent whose model is scripted (a FunctionModel that makes the tool calls a model would
make for each request) talks to a real `mcp-scheduler` process over stdio. The jobs it creates reach a
real HTTP server on 127.0.0.1, run `cp` under `--allow-shell`, and run an agent prompt on pydantic-ai's
offline `test` model; results and failures land in the user's inbox.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelMessage, ModelResponse, RetryPromptPart, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from tests.toolkits._http_server import LocalServer, serve_http

Returns = list[tuple[str, Any]]
"""What the tools answered so far in this conversation: (tool name, result, or the error text)."""
Step = tuple[str, Callable[[Returns], dict[str, Any]]]


def content(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def scripted(steps: list[Step], answer: Callable[[Returns], str], *, may_fail: set[str] = frozenset()) -> FunctionModel:
    """A model that calls `steps` in order (each builds its arguments from the answers so far), then
    answers with `answer(...)`. A tool error ends the conversation with that error, unless the tool is in
    `may_fail` (a run that is meant to fail)."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns: Returns = []
        for part in (p for m in messages for p in getattr(m, "parts", [])):
            if isinstance(part, ToolReturnPart):
                returns.append((part.tool_name, content(part.content)))
            elif isinstance(part, RetryPromptPart) and part.tool_name:
                if part.tool_name not in may_fail:
                    return ModelResponse(parts=[TextPart(f"tool {part.tool_name} failed: {part.content}")])
                returns.append((part.tool_name, str(part.content)))
        if len(returns) < len(steps):
            tool, arguments = steps[len(returns)]
            assert tool in {t.name for t in info.function_tools}, tool
            return ModelResponse(parts=[ToolCallPart(tool, arguments(returns))])
        return ModelResponse(parts=[TextPart(answer(returns))])

    return FunctionModel(respond)


def last(returns: Returns, tool: str) -> Any:
    return next(result for name, result in reversed(returns) if name == tool)


@dataclass
class World:
    """What the conversations run against: the scheduler's tools, a local HTTP server, files to back up."""

    tools: MCPToolset
    http: LocalServer
    tmp: Path

    async def ask(self, model: FunctionModel, request: str) -> str:
        agent = Agent(model, toolsets=[self.tools])
        result = await agent.run(request)
        return str(result.output)


@pytest.fixture
def http() -> Iterator[LocalServer]:
    with serve_http() as server:
        yield server


@pytest.fixture
async def world(tmp_path: Path, http: LocalServer) -> AsyncIterator[World]:
    transport = StdioTransport(
        command=sys.executable,
        args=["-m", "mcp_scheduler", "--db", str(tmp_path / "s.sqlite"), "--timezone", "UTC", "--model", "test",
              "--allow-shell", "cp"],
    )
    tools = MCPToolset(transport, max_retries=1)
    async with tools:
        yield World(tools, http, tmp_path)


def job_id_of(returns: Returns) -> str:
    return str(last(returns, "schedule_job")["job_id"])


async def test_the_five_requests_of_the_readme(world: World) -> None:
    # 1. "Remind me every weekday at 9 am to check the build."
    reminder = scripted(
        [
            ("schedule_job", lambda r: {
                "schedule_type": "cron", "schedule": "0 9 * * 1-5", "agentool_name": "notify",
                "input_data": {"operation": "inbox", "title": "Check the build", "message": "Time to check the build."},
                "job_name": "Build reminder",
            }),
            ("run_now", lambda r: {"job_id": job_id_of(r)}),
            ("read_inbox", lambda r: {"acknowledge": True}),
        ],
        lambda r: f"Done: {last(r, 'schedule_job')['description']}. Your inbox now shows: "
        + "; ".join(m["title"] for m in last(r, "read_inbox")["messages"]),
    )
    answer = await world.ask(reminder, "Remind me every weekday at 9 am to check the build.")
    assert answer == "Done: At 09:00, Monday through Friday (UTC). Your inbox now shows: Check the build", answer

    # 2. "Every 10 minutes fetch a health URL and tell me if it fails."
    health_url = f"{world.http.url}/status/503"
    health = scripted(
        [
            ("schedule_job", lambda r: {
                "schedule_type": "interval", "schedule": "10 minutes", "agentool_name": "http",
                "input_data": {"operation": "request", "url": health_url}, "job_name": "Health check",
                "error_queue": "inbox",
            }),
            ("run_now", lambda r: {"job_id": job_id_of(r)}),
            ("read_inbox", lambda r: {"acknowledge": True}),
        ],
        lambda r: "Checking every 10 minutes; failures go to your inbox. First check: "
        + " | ".join(f"{m['title']}: {m['untrusted']['content']}" for m in last(r, "read_inbox")["messages"]),
        may_fail={"run_now"},
    )
    answer = await world.ask(health, f"Every 10 minutes fetch {health_url} and tell me if it fails.")
    assert "First check: Health check: error: GET http://127.0.0.1:" in answer and "returned 503" in answer, answer

    # 3. "Run this agent prompt every morning."
    morning = scripted(
        [
            ("schedule_job", lambda r: {
                "schedule_type": "cron", "schedule": "0 8 * * *", "agentool_name": "agent",
                "input_data": {"operation": "run", "prompt": "Summarise yesterday's build failures in 3 lines."},
                "job_name": "Morning summary", "result_queue": "inbox",
            }),
            ("run_now", lambda r: {"job_id": job_id_of(r)}),
            ("read_inbox", lambda r: {"acknowledge": True}),
        ],
        lambda r: f"Scheduled ({last(r, 'schedule_job')['description']}); today's answer: "
        + last(r, "run_now")["result"]["data"]["output"]["content"],
    )
    answer = await world.ask(morning, "Run 'Summarise yesterday's build failures in 3 lines' every morning at 8.")
    assert answer.startswith("Scheduled (At 08:00 (UTC)); today's answer: "), answer

    # 4. "Back up this file nightly."
    source, backup = world.tmp / "notes.txt", world.tmp / "notes.txt.bak"
    source.write_text("precious notes\n")
    nightly = scripted(
        [
            ("schedule_job", lambda r: {
                "schedule_type": "cron", "schedule": "0 2 * * *", "agentool_name": "shell",
                "input_data": {"operation": "run", "argv": ["cp", str(source), str(backup)]},
                "job_name": "Backup notes", "error_queue": "inbox",
            }),
            ("run_now", lambda r: {"job_id": job_id_of(r)}),
        ],
        lambda r: f"Backing up nightly ({last(r, 'schedule_job')['description']}); first copy: "
        f"{last(r, 'run_now')['status']}",
    )
    answer = await world.ask(nightly, f"Back up {source} nightly.")
    assert answer == "Backing up nightly (At 02:00 (UTC)); first copy: success", answer
    assert backup.read_text() == "precious notes\n"

    # 5. "What ran in the last hour and what failed?"
    review = scripted(
        [
            ("get_history", lambda r: {"since": "1h"}),
            ("get_history", lambda r: {"since": "1h", "status": "error"}),
        ],
        lambda r: f"{r[0][1]['count']} runs in the last hour; failed: "
        + ", ".join(sorted({run["job_id"] for run in r[1][1]["runs"]})),
    )
    answer = await world.ask(review, "What ran in the last hour and what failed?")
    assert answer == "4 runs in the last hour; failed: Health_check", answer
