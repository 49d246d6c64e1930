"""A pydantic-ai agent that schedules, inspects and cancels jobs through the MCP server (over stdio).

By default the model is scripted (`FunctionModel`): no LLM and no network, so the example always
runs. Pass `--model openai:gpt-4o` (or any pydantic-ai model name, with its API key set) to let a
real model drive the same tools.

    python examples/pydantic_ai_agent.py --db /tmp/agent-demo.sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

TASK = (
    "Every weekday at 9:00 Berlin time, log 'standup reminder'. Show me the job, then cancel it again."
)

# The tool calls a model would make for TASK, in order.
SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("preview_schedule", {"schedule_type": "cron", "schedule": "0 9 * * 1-5", "timezone": "Europe/Berlin"}),
    (
        "schedule_job",
        {
            "job_id": "standup-reminder",
            "job_name": "Standup reminder",
            "schedule_type": "cron",
            "schedule": "0 9 * * 1-5",
            "timezone": "Europe/Berlin",
            "agentool_name": "logging",
            "input_data": {"operation": "log", "level": "INFO", "message": "standup reminder"},
        },
    ),
    ("get_job", {"job_id": "standup-reminder"}),
    ("run_now", {"job_id": "standup-reminder"}),
    ("get_history", {"job_id": "standup-reminder"}),
    ("cancel_job", {"job_id": "standup-reminder"}),
]


def scripted_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Call the SCRIPT's tools one by one, then summarise what the tools answered."""
    returns = [p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]
    if len(returns) < len(SCRIPT):
        name, args = SCRIPT[len(returns)]
        return ModelResponse(parts=[ToolCallPart(name, args)])
    by_tool = {p.tool_name: p.content for p in returns}
    preview = by_tool["preview_schedule"]
    job = by_tool["get_job"]
    history = by_tool["get_history"]
    summary = {
        "schedule": preview["description"] if isinstance(preview, dict) else str(preview),
        "job_id": job["job"]["job_id"] if isinstance(job, dict) else str(job),
        "next_runs": job["job"]["next_runs"] if isinstance(job, dict) else [],
        "runs": [r["status"] for r in history["runs"]] if isinstance(history, dict) else [],
        "cancelled": True,
    }
    return ModelResponse(parts=[TextPart(json.dumps(summary))])


def build_agent(db: str, model: str | None) -> Agent[None, str]:
    server = MCPToolset(
        StdioTransport(command=sys.executable, args=["-m", "mcp_scheduler", "--db", db, "--log-level", "WARNING"])
    )
    return Agent(model or FunctionModel(scripted_model), toolsets=[server])


async def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file of the scheduler")
    parser.add_argument("--model", default=None, help="pydantic-ai model name; default: the scripted model")
    args = parser.parse_args(argv)
    agent = build_agent(args.db, args.model)
    async with agent:
        result = await agent.run(TASK)
    print(result.output)
    return result.output


if __name__ == "__main__":
    asyncio.run(main())
