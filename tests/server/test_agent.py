"""A pydantic-ai agent (scripted model, no LLM, no network) uses the server over stdio as its toolset."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelMessage, ModelResponse, RetryPromptPart, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from .conftest import run_cli


def as_dict(content: Any) -> dict[str, Any]:
    return content if isinstance(content, dict) else json.loads(str(content))


def scripted(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """schedule_job, then list_jobs, then get_history of the new job, then a text answer naming it."""
    parts = [p for m in messages for p in getattr(m, "parts", [])]
    retries = [p for p in parts if isinstance(p, RetryPromptPart)]
    if retries:  # a tool call failed: say so, and the test fails on the answer
        return ModelResponse(parts=[TextPart(f"tool failed: {retries[-1].content}")])
    returns = {p.tool_name: as_dict(p.content) for p in parts if isinstance(p, ToolReturnPart)}
    if "schedule_job" not in returns:
        assert {"schedule_job", "list_jobs", "get_history"} <= {t.name for t in info.function_tools}
        return ModelResponse(parts=[ToolCallPart("schedule_job", {
            "schedule_type": "cron",
            "schedule": "30 7 * * 1-5",
            "agentool_name": "storage_kv",
            "input_data": {"operation": "set", "key": "greeting", "value": "good morning"},
            "job_name": "Weekday greeting",
        })])
    job_id = returns["schedule_job"]["job_id"]
    if "list_jobs" not in returns:
        return ModelResponse(parts=[ToolCallPart("list_jobs", {})])
    if "get_history" not in returns:
        return ModelResponse(parts=[ToolCallPart("get_history", {"job_id": job_id})])
    listed = [j["job_id"] for j in returns["list_jobs"]["jobs"]]
    runs = returns["get_history"]["count"]
    return ModelResponse(parts=[TextPart(f"Scheduled {job_id} ({returns['schedule_job']['description']}); "
                                         f"jobs now: {', '.join(listed)}; runs so far: {runs}.")])


async def test_an_agent_schedules_lists_and_reads_history_through_the_stdio_server(tmp_path: Path) -> None:
    database = str(tmp_path / "agent.db")
    transport = StdioTransport(
        command=sys.executable, args=["-m", "mcp_scheduler", "--db", database, "--timezone", "UTC"]
    )
    agent = Agent(FunctionModel(scripted), toolsets=[MCPToolset(transport)])

    async with agent:
        result = await agent.run("Every weekday at 7:30, store a greeting.")

    answer = result.output
    assert answer.startswith("Scheduled Weekday_greeting"), answer
    assert "jobs now: Weekday_greeting;" in answer and "runs so far: 0." in answer
    called = [p.tool_name for m in result.all_messages() for p in m.parts if isinstance(p, ToolCallPart)]
    assert called == ["schedule_job", "list_jobs", "get_history"]

    jobs = run_cli("jobs", "--db", database)
    assert jobs.returncode == 0, jobs.stderr
    row = next(line.split() for line in jobs.stdout.splitlines() if line.startswith("Weekday_greeting"))
    assert row[1:3] == ["scheduled", "storage_kv"]
