"""What a model reads before its first call: the tools/list answer stays short and speaks for each tool alone."""

from __future__ import annotations

import json
import re
from typing import Any

from mcp import Client

from mcp_scheduler.server.tools import TOOL_ORDER

from .conftest import error_text

TOOLS_LIST_BUDGET = 20_000
"""Most characters of the tools/list answer with every tool of the server (project issue 13)."""

# Wording that belongs to another operation or to the Python API, not to the tool it describes.
FOREIGN_WORDING = re.compile(
    r"For 'schedule'|get_history /|preview:|'list' operation|backfill:|get_history:|[^.]\.\.(?!\.)"  # or a stray ..
)


async def listed(client: Client) -> list[dict[str, Any]]:
    """The tools as the client receives them (by alias, without None)."""
    tools = (await client.list_tools()).tools
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]


def keywords(node: Any, in_properties: bool = False) -> list[tuple[str, Any]]:
    """Every (keyword, value) in a schema; the names under `properties` are field names, not keywords."""
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if not in_properties:
                found.append((key, value))
            found += keywords(value, in_properties=key == "properties" and not in_properties)
    elif isinstance(node, list):
        for item in node:
            found += keywords(item)
    return found


async def test_the_tools_list_answer_fits_the_budget(client: Client) -> None:
    tools = await listed(client)
    size = len(json.dumps(tools))

    assert len(tools) == 17
    assert size <= TOOLS_LIST_BUDGET, f"tools/list is {size} characters; the budget is {TOOLS_LIST_BUDGET}"


async def test_tools_are_listed_scheduling_first_in_the_declared_order(client: Client) -> None:
    names = [tool["name"] for tool in await listed(client)]

    assert names == list(TOOL_ORDER)
    assert names[0] == "schedule_job"


async def test_no_schema_repeats_a_title(client: Client) -> None:
    for tool in await listed(client):
        for schema in ("inputSchema", "outputSchema"):
            titled = [value for key, value in keywords(tool.get(schema, {})) if key == "title"]
            assert not titled, (tool["name"], schema, titled)


async def test_every_parameter_is_described_for_its_tool_only(client: Client) -> None:
    for tool in await listed(client):
        assert not FOREIGN_WORDING.search(tool["description"]), (tool["name"], tool["description"])
        for name, schema in tool["inputSchema"].get("properties", {}).items():
            texts = [value for key, value in keywords(schema) if key == "description"]
            assert texts and texts[0], (tool["name"], name)
            for text in texts:
                assert not FOREIGN_WORDING.search(text), (tool["name"], name, text)


async def test_schema_mistakes_name_the_argument_the_problem_and_a_right_value(client: Client) -> None:
    cron = {"schedule_type": "cron", "schedule": "0 9 * * *", "agentool_name": "logging"}
    weekly = error_text(await client.call_tool("schedule_job", {**cron, "schedule_type": "weekly",
                                                               "input_data": {"operation": "log", "message": "m"}}))
    as_text = error_text(await client.call_tool("schedule_job", {**cron, "input_data": "log hello"}))

    assert 'schedule_type: "weekly" is not one of' in weekly and 'e.g. schedule_type="cron"' in weekly
    assert "input_data must be a JSON object, not a string" in as_text
    assert 'e.g. input_data={"operation": "log", "message": "hi"}' in as_text
    for message in (weekly, as_text):
        assert "errors.pydantic.dev" not in message and "https://" not in message


async def test_run_now_without_arguments_says_job_id_alone_would_do(client: Client) -> None:
    message = error_text(await client.call_tool("run_now", {}))

    assert "job_id alone" in message and "agentool_name and input_data" in message


async def test_an_unknown_operation_in_input_data_reads_without_a_stray_full_stop(client: Client) -> None:
    arguments = {"schedule_type": "cron", "schedule": "0 9 * * *", "agentool_name": "logging",
                 "input_data": {"operation": "shout"}}
    message = error_text(await client.call_tool("schedule_job", arguments))

    assert "Unknown operation 'shout'" in message and not FOREIGN_WORDING.search(message), message


async def test_a_missing_job_points_to_list_jobs(client: Client) -> None:
    message = error_text(await client.call_tool("get_job", {"job_id": "ghost"}))

    assert "list_jobs" in message and "'list' operation" not in message
