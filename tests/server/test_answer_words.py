"""Inputs a user gets right the first time (issue 22 items 4 and 5), through a real MCP client: what may not work
is a warning in schedule_job's and update_job's answer, a misspelt zone, job kind or input field is answered with
the nearest real one, and what a model reads says "job kind" (AgenTool stays the Python API's word)."""

from __future__ import annotations

import json

from mcp import Client

from .conftest import LOG_INPUT, error_text, hourly, structured

DAILY = {"schedule_type": "cron", "schedule": "0 9 * * *", "agentool_name": "logging", "input_data": LOG_INPUT}


async def test_a_fixed_offset_zone_is_accepted_with_a_warning_that_it_has_no_daylight_saving_time(
    client: Client,
) -> None:
    answer = structured(await client.call_tool("schedule_job", {**DAILY, "job_id": "est", "timezone": "EST"}))

    (warning,) = answer["warnings"]
    assert "'EST' is a fixed UTC-05:00 all year, with no daylight saving time" in warning
    assert "'America/New_York'" in warning
    plain = structured(await client.call_tool("schedule_job", {**DAILY, "job_id": "ny",
                                                                "timezone": "America/New_York"}))
    assert "warnings" not in plain


async def test_a_preview_in_a_fixed_offset_zone_says_so_in_its_note(client: Client) -> None:
    preview = structured(await client.call_tool("preview_schedule", {"schedule_type": "cron", "schedule": "0 9 * * *",
                                                                     "timezone": "Etc/GMT+5"}))

    assert "'Etc/GMT+5' is a fixed UTC-05:00 all year" in preview["note"]


async def test_update_job_warns_about_the_zone_it_was_given(client: Client) -> None:
    structured(await client.call_tool("schedule_job", hourly("h")))

    answer = structured(await client.call_tool("update_job", {"job_id": "h", "schedule_type": "cron",
                                                              "schedule": "0 9 * * *", "timezone": "MST"}))

    assert any("'MST' is a fixed UTC-07:00" in w for w in answer["warnings"])


async def test_an_http_job_to_a_host_that_does_not_resolve_is_accepted_with_a_warning(client: Client) -> None:
    arguments = {**DAILY, "job_id": "offline", "agentool_name": "http",
                 "input_data": {"operation": "request", "url": "https://reports.example.invalid/daily"}}

    answer = structured(await client.call_tool("schedule_job", arguments))

    (warning,) = answer["warnings"]
    assert "'reports.example.invalid' does not resolve" in warning and "Accepted anyway" in warning
    assert answer["state"] == "scheduled"


async def test_misspelt_names_are_answered_with_the_nearest_real_one(client: Client) -> None:
    zone = error_text(await client.call_tool("schedule_job", {**DAILY, "timezone": "Asia/Kolkatta"}))
    kind = error_text(await client.call_tool("schedule_job", {**DAILY, "agentool_name": "loging"}))
    field = error_text(await client.call_tool("schedule_job", {**DAILY, "input_data": {"operation": "log",
                                                                                       "mesage": "hi"}}))
    operation = error_text(await client.call_tool("run_now", {"agentool_name": "logging",
                                                              "input_data": {"operation": "lg", "message": "hi"}}))

    assert "Unknown time zone 'Asia/Kolkatta' (not an IANA name): did you mean 'Asia/Kolkata'?" in zone
    assert "Unknown job kind 'loging' (agentool_name). Did you mean 'logging'?" in kind
    assert "mesage: Extra inputs are not permitted. Did you mean 'message'?" in field
    assert "Unknown operation 'lg'. Did you mean 'log'?" in operation
    for message in (kind, field, operation):
        assert "AgenTool" not in message, message


async def test_a_misspelt_tool_is_answered_with_the_nearest_tool_and_the_list(client: Client) -> None:
    result = await client.call_tool("list_job", {})

    message = error_text(result)
    assert message.startswith("Unknown tool 'list_job'. Did you mean 'list_jobs'? Tools: schedule_job, ")
    assert "show_schedule." in message


async def test_what_a_model_reads_before_its_first_call_says_job_kind(client: Client) -> None:
    tools = [tool.model_dump(mode="json", by_alias=True, exclude_none=True)
             for tool in (await client.list_tools()).tools]
    text = json.dumps(tools)

    assert "AgenTool" not in text
    assert "job kind" in text
