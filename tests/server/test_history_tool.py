"""get_history over MCP: every job's runs in one call, and failed runs in brief: the error's type, message and where it
failed in the job's terms, without the traceback and its server paths (the history resource keeps it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client
from pydantic import Field

import mcp_scheduler
from agentool_bridge import BaseOperationInput, RoutingConfig, register_agentool
from mcp_scheduler.server.briefs import FAILED_HISTORY_BUDGET, FAILED_RUN_BUDGET, answer_size

from .conftest import LOG_INPUT, ServerFactory, error_text, resource_json, structured

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")


class DeepInput(BaseOperationInput):
    """Fails ten calls deep."""

    operation: str = Field(description="Anything.")


def deep(operation: str, depth: int = 30) -> None:
    if depth == 0:
        raise RuntimeError("broken at the bottom: " + "why " * 200)
    deep(operation, depth - 1)


async def test_what_ran_in_the_last_hour_and_what_failed_takes_one_call_each(
    make_server: ServerFactory, db_file: str
) -> None:
    server = make_server(db_file)
    register_agentool("deep", DeepInput, RoutingConfig(operation_map={"go": ("deep", None)}), [deep],
                      registry=server.runtime.registry)
    async with Client(server) as client:
        await client.call_tool("run_now", {"job_id": "logger", "agentool_name": "logging", "input_data": LOG_INPUT})
        failed = await client.call_tool("run_now", {"job_id": "deep-job", "agentool_name": "deep",
                                                    "input_data": {"operation": "go"}})
        assert "broken at the bottom" in error_text(failed)

        recent = structured(await client.call_tool("get_history", {"since": "1h"}))
        listed = await client.call_tool("get_history", {"since": "1h", "status": "error"})
        failures = structured(listed)
        whole = resource_json(await client.read_resource("scheduler://jobs/deep-job/history"))

    assert [r["job_id"] for r in recent["runs"]] == ["deep-job", "logger"] and recent["job_id"] is None
    (failure,) = failures["runs"]
    error = failure["error"]
    assert error["type"] == "RuntimeError" and error["message"].startswith("broken at the bottom: why")
    assert len(error["message"]) < 400 and "(822 characters)" in error["message"]  # the history has it whole
    assert error["where"] == "operation 'go' of job kind 'deep'; traceback: scheduler://jobs/deep-job/history"
    assert "traceback" not in error or error["traceback"] is None
    shown = json.dumps(failures)
    assert SERVER_PATH not in shown and "File \"" not in shown
    assert len(json.dumps(failure)) <= FAILED_RUN_BUDGET and answer_size(listed) <= FAILED_HISTORY_BUDGET
    full = whole["runs"][0]["error"]["traceback"]
    assert full.count('  File "') > 3 and "broken at the bottom" in full


SERVER_PATH = str(Path(mcp_scheduler.__file__).parent.parent)
"""Where the server's code is: a tool answer names none of its files."""
