"""What a model reads: the tools/list answer stays short and speaks for each tool alone, and the answers it reads
most (list_agentools, get_job, get_history, read_inbox) keep within their budgets with realistic data (a failed
run's: test_history_tool)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from agentool_bridge import BaseOperationInput, RoutingConfig, register_agentool
from agentool_bridge.toolkits.inbox import post_to_inbox
from mcp_scheduler.server.briefs import AGENTOOLS_BUDGET, GET_JOB_BUDGET, RECENT_RUNS, answer_size
from mcp_scheduler.server.outputs import PAGE_BYTES
from mcp_scheduler.server.tools import TOOL_ORDER

from .conftest import ServerFactory, error_text, resource_json, structured

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

    assert len(tools) == 19  # the scheduler's tools and show_schedule
    assert size <= TOOLS_LIST_BUDGET, f"tools/list is {size} characters; the budget is {TOOLS_LIST_BUDGET}"


async def test_tools_are_listed_scheduling_first_in_the_declared_order(client: Client) -> None:
    names = [tool["name"] for tool in await listed(client)]

    assert names == [*TOOL_ORDER, "show_schedule"]  # the dashboard last
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


class BulkyInput(BaseOperationInput):
    """Returns 3 KB."""

    operation: str = Field(description="Anything.")


def bulky(operation: str) -> dict[str, str]:
    return {"report": "line of a long report\n" * 140}


async def test_list_agentools_lists_every_job_kind_in_one_line_within_its_budget(client: Client) -> None:
    result = await client.call_tool("list_agentools", {})
    kinds = structured(result)["agentools"]

    assert [kind["name"] for kind in kinds] == BUILT_IN_KINDS
    assert answer_size(result) <= AGENTOOLS_BUDGET, answer_size(result)
    http = kinds[BUILT_IN_KINDS.index("http")]
    assert http["operations"] == ["request"] and "url*" in http["fields"].split(", ")
    assert all("input_schema" not in kind and "\n" not in kind["description"] for kind in kinds)
    assert "list_agentools(name=...)" in structured(result)["more"]


async def test_list_agentools_with_a_name_has_that_kinds_whole_input_schema_and_names_the_nearest_kind(
    client: Client,
) -> None:
    (http,) = structured(await client.call_tool("list_agentools", {"name": "http"}))["agentools"]
    misspelt = error_text(await client.call_tool("list_agentools", {"name": "htp"}))

    assert "url" in http["input_schema"]["properties"] and http["examples"]
    assert not [value for key, value in keywords(http["input_schema"]) if key in ("title", "$ref")]
    for kind in BUILT_IN_KINDS:  # one kind whole fits the catalog's budget too
        whole = await client.call_tool("list_agentools", {"name": kind})
        assert answer_size(whole) <= AGENTOOLS_BUDGET, (kind, answer_size(whole))
    assert "There is no job kind 'htp'. Did you mean 'http'?" in misspelt and "storage_kv" in misspelt


async def test_get_job_of_a_job_with_a_long_input_and_runs_fits_its_budget(client: Client) -> None:
    long_input = {"operation": "log", "level": "INFO", "message": "a long note to log " * 300, "logger_name": "x"}
    job = {"schedule_type": "cron", "schedule": "0 9 * * 1-5", "agentool_name": "logging", "input_data": long_input,
           "job_id": "weekday-report", "job_name": "Weekday report", "timezone": "Europe/Berlin"}
    structured(await client.call_tool("schedule_job", job))
    for _ in range(4):
        structured(await client.call_tool("run_now", {"job_id": "weekday-report"}))

    result = await client.call_tool("get_job", {"job_id": "weekday-report"})
    detail = structured(result)

    assert answer_size(result) <= GET_JOB_BUDGET, (answer_size(result), result.content[0].text)
    assert len(detail["recent_history"]) == RECENT_RUNS and len(detail["job"]["next_runs"]) == 3
    assert detail["recent_history"][0]["summary"] == "Logged INFO record to stderr."
    assert detail["job"]["input_clipped"] == "whole in scheduler://jobs/weekday-report"
    whole = resource_json(await client.read_resource("scheduler://jobs/weekday-report"))
    assert whole["job"]["input_data"] == long_input


async def test_get_history_pages_by_size_as_well_as_count(make_server: ServerFactory, db_file: str) -> None:
    server = make_server(db_file, answer_bytes=10_000)
    register_agentool("bulky", BulkyInput, RoutingConfig(operation_map={"go": ("bulky", None)}), [bulky],
                      registry=server.runtime.registry)
    async with Client(server) as client:
        for _ in range(8):
            structured(await client.call_tool("run_now", {"job_id": "bulky-job", "agentool_name": "bulky",
                                                          "input_data": {"operation": "go"}}))
        first = structured(await client.call_tool("get_history", {"job_id": "bulky-job"}))
        rest = structured(await client.call_tool("get_history", {"job_id": "bulky-job",
                                                                 "until": first["next_until"]}))

    assert 1 <= first["count"] < 8 and len(json.dumps(first["runs"])) <= 10_000 + 4_000
    assert "next_until" not in rest or rest["count"] < 8 - first["count"]
    assert {r["run_id"] for r in first["runs"]}.isdisjoint(r["run_id"] for r in rest["runs"])


@pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")  # a post is logged to legacy clients
async def test_read_inbox_of_a_hundred_long_messages_answers_a_page_of_them(
    server: MCPServer, client: Client
) -> None:
    for n in range(100):
        post_to_inbox(server.runtime.queues, f"report {n}: " + "x" * 5000, job_id="reports")

    result = await client.call_tool("read_inbox", {"count": 100})
    page = structured(result)

    assert 1 <= len(page["messages"]) < 100 and page["not_shown"] == 100 - len(page["messages"])
    assert answer_size(result) <= 2 * PAGE_BYTES + 4_000, answer_size(result)


BUILT_IN_KINDS = ["agent", "http", "logging", "mcp", "notify", "queue", "shell", "storage_kv"]
