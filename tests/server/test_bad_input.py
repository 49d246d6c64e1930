"""Every tool rejects bad arguments with an error that says what to fix, and changes nothing."""

from __future__ import annotations

from typing import Any

from mcp import Client

from .conftest import LOG_INPUT, error_text, hourly, structured

CRON = {"schedule_type": "cron", "schedule": "0 9 * * *", "agentool_name": "logging", "input_data": LOG_INPUT}

BAD_CALLS: list[tuple[str, dict[str, Any], list[str]]] = [
    # (tool, arguments, fragments the error message must contain)
    ("schedule_job", {**CRON, "schedule": "0 9 * *"}, ["Invalid cron expression", "expected 5 fields"]),
    ("schedule_job", {**CRON, "schedule": "61 * * * *"}, ["Invalid cron expression"]),
    ("schedule_job", {**CRON, "schedule_type": "interval", "schedule": "every banana"}, ["Invalid interval"]),
    ("schedule_job", {**CRON, "schedule_type": "weekly"},
     ["schedule_type", '"weekly" is not one of', "'cron', 'interval' or 'once'", 'e.g. schedule_type="cron"']),
    ("schedule_job", {**CRON, "agentool_name": "no_such_tool"}, ["Unknown job kind 'no_such_tool'", "logging"]),
    ("schedule_job", {**CRON, "input_data": {"operation": "log"}}, ["does not fit job kind 'logging'", "message"]),
    ("schedule_job", {**CRON, "input_data": {"operation": "shout"}}, ["Unknown operation 'shout'", "log"]),
    ("schedule_job", {**CRON, "input_data": "log hello"},
     ["input_data must be a JSON object, not a string", 'e.g. input_data={"operation": "log"']),
    ("schedule_job", {k: v for k, v in CRON.items() if k != "schedule"}, ["schedule is required", "e.g. schedule="]),
    ("schedule_job", {k: v for k, v in CRON.items() if k != "agentool_name"},
     ["agentool_name is required", 'e.g. agentool_name="logging"']),
    ("schedule_job", {**CRON, "policy": {"retries": 3}}, ["policy.retries is not a known field", "max_attempts"]),
    ("schedule_job", {**CRON, "policy": {"overlap": "sometimes"}}, ["policy.overlap", "'buffer_one'"]),
    ("schedule_job", {**CRON, "timezone": "Mars/Olympus"}, ["Unknown time zone 'Mars/Olympus'", "IANA"]),
    ("schedule_job", {**CRON, "job_id": "a/b"}, ["job_id", "letters, digits"]),
    ("schedule_job", {**CRON, "job_id": "existing"}, ["'existing' already exists"]),
    ("schedule_job", {**CRON, "max_instances": 0}, ["max_instances", "greater than or equal to 1"]),
    ("schedule_job", {**CRON, "timeout": -1}, ["timeout", "greater than 0"]),
    ("cancel_job", {"job_id": "ghost"}, ["'ghost' not found", "list_jobs"]),
    ("cancel_job", {}, ["job_id is required", 'e.g. job_id="']),
    ("cancel_job", {"job_id": "a/b"}, ["job_id must start with a letter or digit"]),
    ("pause_job", {"job_id": "ghost"}, ["'ghost' not found"]),
    ("resume_job", {"job_id": "ghost"}, ["'ghost' not found"]),
    ("get_job", {"job_id": "ghost"}, ["'ghost' not found"]),
    ("get_job", {"job_id": "jobs/ghost"}, ["job_id must start with a letter or digit"]),
    ("get_history", {"job_id": "ghost"}, ["'ghost' not found"]),
    ("get_history", {"job_id": "existing", "status": "exploded"}, ["status", "'success'"]),
    ("get_history", {"job_id": "existing", "limit": 0}, ["limit", "greater than or equal to 1"]),
    ("run_now", {}, ["job_id alone", "agentool_name and input_data"]),
    ("run_now", {"job_id": "ghost"}, ["'ghost' not found"]),
    ("run_now", {"agentool_name": "no_such_tool", "input_data": {}}, ["Unknown job kind 'no_such_tool'"]),
    ("run_now", {"agentool_name": "logging", "input_data": {"operation": "log"}}, ["message"]),
    ("run_now", {"job_id": "x/y", "agentool_name": "logging", "input_data": LOG_INPUT}, ["job_id must start"]),
    ("list_jobs", {"cursor": "page-two"}, ["Invalid cursor 'page-two'", "next_cursor"]),
    ("list_jobs", {"cursor": "-2"}, ["Invalid cursor '-2'"]),
    ("list_jobs", {"state": "running"}, ["state", "'scheduled', 'paused' or 'completed'"]),
    ("list_jobs", {"limit": 0}, ["limit", "greater than or equal to 1"]),
    ("preview_schedule", {"schedule_type": "cron", "schedule": "every day"}, ["Invalid cron expression"]),
    ("preview_schedule", {"schedule_type": "once", "schedule": "next blue moon"},
     ["Invalid one-off time", "in 10 minutes"]),
    ("preview_schedule", {"schedule_type": "cron", "schedule": "0 9 * * *", "timezone": "Nowhere"},
     ["Unknown time zone 'Nowhere'"]),
    ("preview_schedule", {"schedule": "0 9 * * *"}, ["schedule_type is required", 'e.g. schedule_type="cron"']),
    ("preview_schedule", {"schedule_type": "cron", "schedule": "0 9 * * *", "count": 500}, ["count"]),
    ("read_queue", {"queue_name": ""}, ["queue_name", "at least 1 character"]),
    ("read_queue", {"queue_name": "q", "mode": "drain"}, ["mode", "'peek' or 'take'"]),
    ("read_queue", {"queue_name": "q", "count": 0}, ["count", "greater than or equal to 1"]),
    ("read_queue", {"queue_name": "bad\nname"}, ["queue_name"]),
    ("read_inbox", {"count": 0}, ["count", "greater than or equal to 1"]),
    ("read_inbox", {"ack_ids": [""]}, ["ack_ids", "at least 1 character"]),
    ("read_inbox", {"ack_ids": ["bad\nid"]}, ["message_id", "control characters"]),
    ("run_now", {"agentool_name": "shell", "input_data": {"operation": "run", "argv": ["echo", "hi"]}},
     ["shell job kind is disabled", "--allow-shell"]),
]


async def job_ids(client: Client) -> list[str]:
    page = structured(await client.call_tool("list_jobs", {"limit": 1000}))
    return [j["job_id"] for j in page["jobs"]]


async def test_every_bad_call_is_an_error_that_says_what_to_fix_and_changes_nothing(client: Client) -> None:
    structured(await client.call_tool("schedule_job", hourly("existing")))
    problems: list[str] = []

    for tool, arguments, fragments in BAD_CALLS:
        result = await client.call_tool(tool, arguments)
        if not result.is_error:
            problems.append(f"{tool}({arguments}) succeeded: {result.structured_content}")
            continue
        message = error_text(result)
        missing = [f for f in fragments if f not in message]
        if missing:
            problems.append(f"{tool}({arguments}): {missing} not in {message!r}")
        if "pydantic" in message or "https://" in message:  # pydantic's error links mean nothing to the model
            problems.append(f"{tool}({arguments}): a library link in {message!r}")
        if (ids := await job_ids(client)) != ["existing"]:
            problems.append(f"{tool}({arguments}) changed the jobs to {ids}")

    assert not problems, "\n".join(problems)


async def test_the_server_keeps_answering_after_bad_calls(client: Client) -> None:
    structured(await client.call_tool("schedule_job", hourly("existing")))
    for tool, arguments, _ in BAD_CALLS:
        assert (await client.call_tool(tool, arguments)).is_error

    unknown = await client.call_tool("no_such_tool", {})
    assert "Unknown tool 'no_such_tool'." in error_text(unknown)

    job = structured(await client.call_tool("schedule_job", hourly("after-errors")))
    assert job["state"] == "scheduled"
    assert await job_ids(client) == ["existing", "after-errors"]
    assert structured(await client.call_tool("scheduler_status", {}))["jobs_count"] == 2
