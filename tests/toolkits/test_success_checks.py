"""Success checks: real jobs of the http, mcp, agent and shell kinds, against a local HTTP server, the MCP test
server over stdio and a FunctionModel; a run whose result fails its job's check is recorded `error` naming the
check, and reaches the error queue and the inbox; a check that does not fit the job's kind is refused."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from agentool_bridge import AgenToolInjector
from agentool_bridge.toolkits import AgentToolkit
from agentool_bridge.toolkits.config import ToolkitConfig
from mcp_scheduler import (
    InvalidJobInputError,
    JobExecutionError,
    RunRecord,
    SchedulerInput,
    SchedulerRuntime,
    ServiceConfig,
)
from mcp_scheduler.runs.checks import CHECK_FAILED
from tests.toolkits._http_server import LocalServer, serve_http

PYTHON = sys.executable
SERVER = Path(__file__).with_name("mcp_test_server.py")


@pytest.fixture(scope="module")
def web() -> Iterator[LocalServer]:
    with serve_http() as running:
        yield running


def calling(tool: str | None) -> FunctionModel:
    """A model that calls `tool` of the test server once (None: no tool), then answers."""

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        done = [p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]
        if tool is None or done:
            return ModelResponse(parts=[TextPart("done")])
        return ModelResponse(parts=[ToolCallPart(tool, {"a": 2, "b": 3} if tool.endswith("add") else {})])

    return FunctionModel(model)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[SchedulerRuntime]:
    servers = tmp_path / "servers.json"
    servers.write_text(json.dumps({"mcpServers": {"calc": {"command": PYTHON, "args": [str(SERVER)]}}}))
    toolkits = ToolkitConfig(shell_executables=(PYTHON,), servers_file=str(servers))
    config = ServiceConfig(database=str(tmp_path / "s.sqlite"), timezone="UTC")
    async with SchedulerRuntime(config, injector=AgenToolInjector(), toolkit_config=toolkits) as rt:
        models = {"adds": calling("calc__add"), "quiet": calling(None), "fails": calling("calc__fail")}
        rt.registry.register(AgentToolkit(toolkits, connections=rt.mcp_connections, models=models).agentool())
        yield rt


async def schedule(rt: SchedulerRuntime, job_id: str, kind: str, input_data: dict[str, Any],
                   success: dict[str, Any], **fields: Any) -> None:
    await rt.service.schedule(SchedulerInput(
        operation="schedule", job_id=job_id, schedule_type="interval", schedule="1 hour", agentool_name=kind,
        input_data=input_data, success=success, **fields,
    ))


async def ran(rt: SchedulerRuntime, job_id: str) -> RunRecord:
    """The record of one run_now of the job, whether it succeeded or failed."""
    try:
        await rt.service.run_now(SchedulerInput(operation="run_now", job_id=job_id))
    except JobExecutionError:
        pass
    [record] = await rt.service.get_history(job_id=job_id)
    return record


def get(url: str) -> dict[str, Any]:
    return {"operation": "request", "url": url}


async def test_an_http_run_that_fails_its_status_check_is_an_error_in_the_error_queue(
    runtime: SchedulerRuntime, web: LocalServer
) -> None:
    await schedule(runtime, "created", "http", get(f"{web.url}/json"), {"status": [201]}, error_queue="errors")

    record = await ran(runtime, "created")

    assert record.status == "error" and record.error is not None
    assert record.error.type == CHECK_FAILED
    assert record.error.message == "success check status failed: the response was 200, not one of 201"
    assert record.summary == "success check status failed"
    assert record.result["data"]["status"] == 200  # what came back stays readable
    [message] = runtime.queues.peek("errors")
    assert message.message["status"] == "error" and message.message["error_type"] == CHECK_FAILED
    job, _ = await runtime.service.get_job("created")
    assert job.last_status == "error" and job.success is not None and job.success.status == (201,)


async def test_an_http_run_that_passes_its_checks_is_a_success(runtime: SchedulerRuntime, web: LocalServer) -> None:
    checks = {"status": [200, 204], "json": {"path": "$.hello", "equals": "world"}, "contains": "world",
              "not_contains": "error"}
    await schedule(runtime, "hello", "http", get(f"{web.url}/json"), checks, error_queue="errors")

    record = await ran(runtime, "hello")

    assert record.status == "success" and record.error is None
    assert runtime.queues.peek("errors") == []


@pytest.mark.parametrize(("check", "said"), [
    ({"json": {"path": "$.n", "equals": True}}, 'success check json failed: $.n is untrusted value from the http '
     'result: "1", not true'),
    ({"json": {"path": "/missing/0", "equals": 1}}, "success check json failed: /missing/0 is not in the result"),
    ({"contains": "planet"}, "success check contains failed: the result does not contain 'planet'"),
    ({"not_contains": "world"}, "success check not_contains failed: the result contains 'world'"),
])
async def test_each_text_and_json_check_fails_on_what_the_result_says(
    runtime: SchedulerRuntime, web: LocalServer, check: dict[str, Any], said: str
) -> None:
    await schedule(runtime, "json", "http", get(f"{web.url}/json"), check)

    record = await ran(runtime, "json")

    assert record.status == "error" and record.error is not None and record.error.message == said


async def test_a_failed_check_goes_to_the_inbox(runtime: SchedulerRuntime, web: LocalServer) -> None:
    await schedule(runtime, "to-inbox", "http", get(f"{web.url}/text"), {"contains": "nothing like it"},
                   error_queue="inbox")

    await ran(runtime, "to-inbox")

    [message] = runtime.queues.peek("inbox")
    assert message.message["level"] == "error" and "to-inbox: error" in message.message["title"]
    assert f"ended with status error ({CHECK_FAILED})" in message.message["message"]
    assert message.message["untrusted"]["content"] == (
        "success check contains failed: the result does not contain 'nothing like it'"
    )


async def test_a_check_that_does_not_fit_the_kind_is_refused_naming_what_fits(runtime: SchedulerRuntime) -> None:
    shell = {"operation": "run", "argv": [PYTHON, "-c", "print('ok')"]}
    with pytest.raises(InvalidJobInputError) as caught:
        await schedule(runtime, "shell-status", "shell", shell, {"status": [200]})

    assert str(caught.value) == (
        "success check status does not fit job kind 'shell' (status fits http jobs): for this kind use json, "
        "contains, not_contains."
    )
    assert runtime.service.list_jobs()[1] == 0
    await schedule(runtime, "shell-ok", "shell", shell, {"contains": "ok"})
    with pytest.raises(InvalidJobInputError, match="tools_used fits agent jobs"):
        await runtime.service.update(SchedulerInput(operation="update", job_id="shell-ok",
                                                    success={"tools_used": True}))
    assert (await ran(runtime, "shell-ok")).status == "success"


async def test_update_replaces_the_checks_and_an_empty_object_removes_them(
    runtime: SchedulerRuntime, web: LocalServer
) -> None:
    await schedule(runtime, "changing", "http", get(f"{web.url}/json"), {"status": [500]})
    await runtime.service.update(SchedulerInput(operation="update", job_id="changing", success={}))

    job, _ = await runtime.service.get_job("changing")

    assert job.success is None
    assert (await ran(runtime, "changing")).status == "success"


async def test_mcp_and_agent_checks(runtime: SchedulerRuntime) -> None:
    call = {"operation": "call_tool", "server": "calc", "tool": "add", "arguments": {"a": 2, "b": 3}}
    await schedule(runtime, "adds", "mcp", call, {"no_error": True, "json": {"path": "$.result", "equals": 5}})
    await schedule(runtime, "adds-wrong", "mcp", call, {"json": {"path": "$.result", "equals": 6}})

    def agent(model: str) -> dict[str, Any]:
        return {"operation": "run", "prompt": "2 + 3?", "model": model, "servers": ["calc"]}

    await schedule(runtime, "used", "agent", agent("adds"), {"tools_used": ["calc.add"], "no_error": True})
    await schedule(runtime, "unused", "agent", agent("quiet"), {"tools_used": True})
    await schedule(runtime, "wrong-tool", "agent", agent("adds"), {"tools_used": ["pid"]})
    await schedule(runtime, "tool-failed", "agent", agent("fails"), {"no_error": True})

    assert (await ran(runtime, "adds")).status == "success"
    assert (await ran(runtime, "used")).status == "success"
    said = {job: (await ran(runtime, job)).error for job in ("adds-wrong", "unused", "wrong-tool", "tool-failed")}
    assert {job: error.message if error else None for job, error in said.items()} == {
        "adds-wrong": "success check json failed: $.result is untrusted value from the mcp result: \"5\", not 6",
        "unused": "success check tools_used failed: the model called no tool",
        "wrong-tool": "success check tools_used failed: the model did not call pid",
        "tool-failed": "success check no_error failed: tool call(s) of calc__fail answered with isError",
    }
