"""The `agent` AgenTool: pydantic-ai's TestModel and FunctionModel (no network) stand in for the LLM; the tools
come from the real MCP test server (over stdio, or in memory where only the MCP semantics matter)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult, Tool
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from agentool_bridge import AgenToolInjector
from agentool_bridge.toolkits import AgentModelError, AgentRunError, AgentToolkit, ToolkitConfig
from agentool_bridge.toolkits.mcp import ServersFile, UnknownServerError
from mcp_scheduler import InvalidJobInputError, SchedulerInput, SchedulerRuntime, ServiceConfig
from tests.toolkits.mcp_test_server import server as test_server

ROOT = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = Path(__file__).with_name("mcp_test_server.py")
SERVERS = ServersFile.model_validate(
    {"mcpServers": {"calc": {"command": sys.executable, "args": [str(SERVER_SCRIPT)]}}}
).model_copy(update={"path": "servers.json"})
TOTAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"total": {"type": "integer"}, "note": {"type": "string"}},
    "required": ["total"],
}


class ServerConnections:
    """`MCPConnections` over the MCP test server: a fresh stdio process per call (as the servers file says),
    or the same server in memory."""

    def __init__(self, *, stdio: bool) -> None:
        self.servers = SERVERS
        self.stdio = stdio
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    @asynccontextmanager
    async def _client(self, server: str) -> AsyncIterator[Client]:
        spec = self.servers.get(server)
        assert spec.command is not None
        target = StdioServerParameters(command=spec.command, args=list(spec.args)) if self.stdio else test_server
        async with Client(target) as client:
            yield client

    async def list_tools(self, server: str) -> list[Tool]:
        async with self._client(server) as client:
            return list((await client.list_tools()).tools)

    async def call_tool(self, server: str, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        self.calls.append((server, tool, arguments))
        async with self._client(server) as client:
            return await client.call_tool(tool, arguments)

    async def aclose(self) -> None:
        return None


def returns(messages: list[ModelMessage]) -> list[ToolReturnPart]:
    """Every tool result (or output retry) the model has been sent so far."""
    return [p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]


def scripted(first: ToolCallPart, answer: Callable[[ToolReturnPart], str]) -> tuple[FunctionModel, list[AgentInfo]]:
    """A model that makes one tool call, then answers from its result; it also keeps what it was offered."""
    seen: list[AgentInfo] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(info)
        done = returns(messages)
        return ModelResponse(parts=[TextPart(answer(done[-1]))] if done else [first])

    return FunctionModel(model), seen


def register(injector: AgenToolInjector, **kwargs: Any) -> AgentToolkit:
    toolkit = AgentToolkit(**kwargs)
    injector.register(toolkit.agentool())
    return toolkit


async def test_a_test_model_run_returns_the_output_and_the_token_usage(injector: AgenToolInjector) -> None:
    register(injector)

    out = await injector.run("agent", {"operation": "run", "prompt": "Say hello.", "model": "test"})

    data = out.data
    assert data["output"]["content"] == "success (no tool calls)"
    assert data["model"] == "test"
    usage = data["usage"]
    assert usage["requests"] == 1 and usage["tool_calls"] == 0
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert data["tool_calls"]["content"] == [] and data["messages"] == 2
    json.dumps(out.model_dump())  # all of it is JSON


async def test_the_test_model_calls_no_tool_of_the_servers(injector: AgenToolInjector) -> None:
    connections = ServerConnections(stdio=False)
    register(injector, connections=connections)

    out = await injector.run("agent", {"operation": "run", "prompt": "Try.", "model": "test", "servers": ["calc"]})

    assert out.data["tool_calls"]["content"] == [] and connections.calls == []
    assert out.data["output"]["content"] == "success (no tool calls)"


async def test_the_model_adds_with_a_tool_of_a_real_mcp_server_over_stdio(injector: AgenToolInjector) -> None:
    model, seen = scripted(ToolCallPart("calc__add", {"a": 2, "b": 3}), lambda r: f"The sum is {r.content}.")
    connections = ServerConnections(stdio=True)
    register(injector, connections=connections, models={"scripted": model})

    out = await injector.run("agent", {"operation": "run", "prompt": "What is 2 + 3?", "model": "scripted",
                                       "servers": ["calc"], "instructions": "Use the tools."})

    data = out.data
    assert data["output"]["content"] == "The sum is 5."
    assert data["tool_calls"]["content"] == [
        {"tool": "calc__add", "server": "calc", "name": "add", "args": {"a": 2, "b": 3}, "result": "5",
         "is_error": False}
    ]
    assert data["usage"]["requests"] == 2 and data["usage"]["tool_calls"] == 1
    assert connections.calls == [("calc", "add", {"a": 2, "b": 3})]
    offered = {tool.name: tool for tool in seen[0].function_tools}
    assert set(offered) == {"calc__add", "calc__echo", "calc__fail", "calc__pid", "calc__env", "calc__trace_context",
                            "calc__read_text"}
    assert set(offered["calc__add"].parameters_json_schema["properties"]) == {"a", "b"}
    assert offered["calc__add"].description == "Add two integers."
    assert seen[0].instructions == "Use the tools."


async def test_a_remote_tool_error_goes_back_to_the_model(injector: AgenToolInjector) -> None:
    model, _ = scripted(
        ToolCallPart("calc__fail", {"reason": "on purpose"}), lambda r: f"{r.outcome}: {r.content}"
    )
    register(injector, connections=ServerConnections(stdio=False), models={"scripted": model})

    out = await injector.run(
        "agent", {"operation": "run", "prompt": "Try it.", "model": "scripted", "servers": ["calc"]}
    )

    assert out.data["output"]["content"] == "failed: Error executing tool fail: failed on purpose"
    [call] = out.data["tool_calls"]["content"]
    assert call["tool"] == "calc__fail" and call["is_error"] is True
    assert "failed on purpose" in call["result"]


def structured(answers: list[dict[str, Any]]) -> tuple[FunctionModel, list[ModelMessage]]:
    """A model that answers through the output tool, one answer per request (the last one repeated)."""
    history: list[ModelMessage] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        history[:] = messages
        [output_tool] = info.output_tools
        assert output_tool.parameters_json_schema == TOTAL_SCHEMA
        attempt = sum(1 for m in messages if isinstance(m, ModelResponse))
        return ModelResponse(parts=[ToolCallPart(output_tool.name, answers[min(attempt, len(answers) - 1)])])

    return FunctionModel(model), history


async def test_the_output_is_the_json_object_that_matches_output_schema(injector: AgenToolInjector) -> None:
    model, history = structured([{"total": "five"}, {"total": 5, "note": "2 + 3"}])
    register(injector, models={"scripted": model})

    out = await injector.run("agent", {"operation": "run", "prompt": "Add 2 and 3.", "model": "scripted",
                                       "output_schema": TOTAL_SCHEMA})

    assert out.data["output"]["content"] == {"total": 5, "note": "2 + 3"}
    [retry] = returns(history)
    assert retry.outcome == "retried"
    assert "total: 'five' is not of type 'integer'" in str(retry.content)


async def test_an_answer_that_never_matches_output_schema_fails_the_run(injector: AgenToolInjector) -> None:
    model, _ = structured([{"total": "five"}])
    register(injector, models={"scripted": model})

    with pytest.raises(AgentRunError, match=r"did not match output_schema after 3 attempt.*'five' is not of type"):
        await injector.run("agent", {"operation": "run", "prompt": "Add.", "model": "scripted",
                                     "output_schema": TOTAL_SCHEMA})


async def test_reaching_max_requests_fails_the_run(injector: AgenToolInjector) -> None:
    def forever(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[ToolCallPart("calc__echo", {"text": "again"})])

    register(injector, connections=ServerConnections(stdio=False), models={"loop": FunctionModel(forever)})

    with pytest.raises(AgentRunError, match=r"usage limit .*raise max_requests \(now 2\)"):
        await injector.run("agent", {"operation": "run", "prompt": "Loop.", "model": "loop", "servers": ["calc"],
                                     "max_requests": 2})


async def test_named_models_win_over_model_names(injector: AgenToolInjector) -> None:
    register(injector, models={"test": FunctionModel(lambda messages, info: ModelResponse(parts=[TextPart("mine")]))})

    out = await injector.run("agent", {"operation": "run", "prompt": "Who are you?", "model": "test"})

    assert out.data["output"]["content"] == "mine"


@asynccontextmanager
async def runtime(tmp_path: Path, config: ToolkitConfig, **toolkit: Any) -> AsyncIterator[SchedulerRuntime]:
    """A scheduler on tmp_path; with toolkit arguments its `agent` AgenTool is replaced by one built with them."""
    async with SchedulerRuntime(ServiceConfig(database=str(tmp_path / "s.sqlite")), toolkit_config=config) as rt:
        if toolkit:
            rt.registry.register(AgentToolkit(config, **toolkit).agentool())
        yield rt


def schedule(input_data: dict[str, Any]) -> SchedulerInput:
    return SchedulerInput(operation="schedule", job_id="ask", agentool_name="agent", schedule_type="interval",
                          schedule="1h", input_data={"operation": "run", "prompt": "Hi.", **input_data})


RECURSIVE = {
    "type": "object",
    "properties": {"node": {"$ref": "#/$defs/Node"}},
    "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
}
REFUSALS: list[tuple[str, dict[str, Any], bool, type[Exception], str]] = [
    ("no model", {}, False, AgentModelError, "start the scheduler with --model"),
    ("unknown model", {"model": "nowhere:model-x"}, False, AgentModelError, "'nowhere:model-x' cannot be used"),
    ("provider without key or SDK", {"model": "anthropic:claude-sonnet-4-5"}, False, AgentModelError,
     r"ANTHROPIC_API_KEY|pydantic-ai-slim\[anthropic\]"),
    ("no servers here", {"model": "test", "servers": ["calc"]}, False, UnknownServerError, "--servers"),
    ("undeclared server", {"model": "test", "servers": ["web"]}, True, UnknownServerError, "Declared servers: calc"),
    ("schema of a string", {"model": "test", "output_schema": {"type": "string"}}, False, InvalidJobInputError,
     "must describe a JSON object"),
    ("invalid schema", {"model": "test", "output_schema": {"type": "object", "properties": {"n": {"type": 5}}}},
     False, InvalidJobInputError, "not a valid JSON schema at properties/n/type"),
    ("recursive schema", {"model": "test", "output_schema": RECURSIVE}, False, InvalidJobInputError,
     "cannot be used for structured output"),
]


@pytest.mark.parametrize(("case", "input_data", "with_servers", "error", "message"), REFUSALS,
                         ids=[case[0] for case in REFUSALS])
async def test_a_job_the_agent_cannot_run_is_refused_when_scheduled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, input_data: dict[str, Any], with_servers: bool,
    error: type[Exception], message: str,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    toolkit = {"connections": ServerConnections(stdio=False)} if with_servers else {}
    async with runtime(tmp_path, ToolkitConfig(), **toolkit) as rt:
        with pytest.raises(error) as raised:
            await rt.service.schedule(schedule(input_data))

        assert re.search(message, str(raised.value)), str(raised.value)
        assert rt.service.job_ids() == []


async def test_a_job_with_declared_servers_is_scheduled(tmp_path: Path) -> None:
    async with runtime(tmp_path, ToolkitConfig(model="test"), connections=ServerConnections(stdio=False)) as rt:
        info = await rt.service.schedule(schedule({"servers": ["calc"], "output_schema": TOTAL_SCHEMA}))

        assert info.job_id == "ask" and rt.service.job_ids() == ["ask"]


async def test_a_scheduled_run_with_the_default_model_is_recorded_with_its_usage(tmp_path: Path) -> None:
    async with runtime(tmp_path, ToolkitConfig(model="test")) as rt:
        await rt.service.schedule(schedule({"instructions": "Be brief."}))
        await rt.service.run_now(SchedulerInput(operation="run_now", job_id="ask"))

        [record] = await rt.service.get_history("ask")

    assert record.status == "success"
    data = record.result["data"]
    assert data["model"] == "test" and data["output"]["content"] == "success (no tool calls)"
    assert data["usage"]["requests"] == 1 and data["usage"]["total_tokens"] > 0


def test_building_a_runtime_does_not_import_pydantic_ai(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from mcp_scheduler.runtime import SchedulerRuntime\n"
        "from mcp_scheduler import ServiceConfig\n"
        "from agentool_bridge.toolkits import ToolkitConfig\n"
        f"rt = SchedulerRuntime(ServiceConfig(database={str(tmp_path / 's.sqlite')!r}), "
        "toolkit_config=ToolkitConfig(model='test'))\n"
        "assert rt.registry.exists('agent')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic_ai', 'jsonschema')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


async def test_agent_and_mcp_jobs_share_the_runtimes_connection_to_a_real_server(tmp_path: Path) -> None:
    servers = tmp_path / "servers.json"
    servers.write_text(json.dumps({"mcpServers": {"calc": {"command": sys.executable, "args": [str(SERVER_SCRIPT)]}}}))
    config = ToolkitConfig(servers_file=str(servers))
    model, _ = scripted(ToolCallPart("calc__pid", {}), lambda r: f"pid {r.content}")
    async with SchedulerRuntime(ServiceConfig(database=str(tmp_path / "s.sqlite")), toolkit_config=config) as rt:
        shared = AgentToolkit(config, connections=rt.mcp_connections, models={"scripted": model})
        rt.registry.register(shared.agentool())
        asked = await rt.service.run_now(SchedulerInput(
            operation="run_now", agentool_name="agent",
            input_data={"operation": "run", "prompt": "Which pid?", "model": "scripted", "servers": ["calc"]},
        ))
        called = await rt.service.run_now(SchedulerInput(
            operation="run_now", agentool_name="mcp",
            input_data={"operation": "call_tool", "server": "calc", "tool": "pid"},
        ))

    assert asked.result["data"]["output"]["content"] == f"pid {called.result['data']['text']['content']}"
