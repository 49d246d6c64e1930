"""Hostile input: refused with an error that says what to fix, quoted back short, and nothing changes.

Queue names have one grammar (MCP schema and AgenTool model alike); blank schedules and AgenTool
names are errors, not assertions; numbers are bounded; unknown arguments are refused; leap-second
and POSIX zone variants are refused; a stdio line the SDK cannot parse gets a JSON-RPC error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from agentool_bridge.errors import clip, describe_errors
from mcp_scheduler.models import SchedulerInput

from .conftest import LOG_INPUT, error_text, hourly, structured

ROOT = Path(__file__).resolve().parents[2]
CRON = {"schedule_type": "cron", "schedule": "0 9 * * *", "agentool_name": "logging", "input_data": LOG_INPUT}
HUGE = "x" * 1_000_000


async def job_ids(client: Client) -> list[str]:
    page = structured(await client.call_tool("list_jobs", {"limit": 1000}))
    return [j["job_id"] for j in page["jobs"]]


async def refused(client: Client, tool: str, arguments: dict[str, Any], *fragments: str) -> str:
    """Call `tool`; it must fail with every fragment in its message, and no job may appear or go."""
    before = await job_ids(client)
    result = await client.call_tool(tool, arguments)
    message = error_text(result)
    assert "Internal error" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message[:2000])
    assert await job_ids(client) == before
    return message


# ---------------------------------------------------------------------- queue names


BAD_QUEUE_NAMES = ["", " ", "   ", "\t", "a\nb", "results\n", "bad\x00name", "\x7f", "a b", "-leading", "q" * 201,
                   "\u202eevil", "caf\u00e9"]


@pytest.mark.parametrize("field", ["result_queue", "error_queue"])
async def test_queue_names_that_no_one_could_read_are_refused(client: Client, field: str) -> None:
    for index, name in enumerate(BAD_QUEUE_NAMES):
        await refused(client, "schedule_job", hourly(f"q{index}", **{field: name}), field)
        await refused(client, "run_now", {"agentool_name": "logging", "input_data": LOG_INPUT, field: name}, field)


async def test_queue_names_of_the_grammar_are_accepted(client: Client) -> None:
    for index, name in enumerate(["results", "R2", "team.reports/errors", "a:b@c-d_e", "q" * 200]):
        structured(await client.call_tool("schedule_job", hourly(f"ok{index}", result_queue=name)))
        job = structured(await client.call_tool("get_job", {"job_id": f"ok{index}"}))["job"]
        assert job["result_queue"] == name


async def test_the_queue_grammar_is_published_in_the_tool_schema(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    for tool in ("schedule_job", "run_now"):
        field = tools[tool].input_schema["properties"]["result_queue"]
        schema = json.dumps(field)
        assert "pattern" in schema and "[A-Za-z0-9]" in schema, field


@pytest.mark.parametrize("name", BAD_QUEUE_NAMES)
def test_the_agentool_model_refuses_the_same_queue_names(name: str) -> None:
    with pytest.raises(ValidationError, match="queue name|result_queue"):
        SchedulerInput(operation="schedule", **CRON, result_queue=name)


# ---------------------------------------------------------------------- blanks, bounds, ids, zones


async def test_blank_schedules_and_agentool_names_are_clear_errors(client: Client) -> None:
    for blank in ("", "  "):
        await refused(client, "schedule_job", {**CRON, "schedule": blank}, "schedule must not be empty")
        await refused(client, "schedule_job", {**CRON, "agentool_name": blank}, "agentool_name must not be empty")
        await refused(client, "preview_schedule", {"schedule_type": "cron", "schedule": blank},
                      "schedule must not be empty")
        await refused(client, "run_now", {"agentool_name": blank, "input_data": LOG_INPUT},
                      "agentool_name must not be empty")


async def test_huge_grace_times_and_timeouts_are_refused_not_overflowed(client: Client) -> None:
    for value in (10**11, 10**30, 366 * 24 * 3600 + 1):
        await refused(client, "schedule_job", {**CRON, "job_id": "mg", "misfire_grace_time": value},
                      "misfire_grace_time", "less than or equal to 31622400")
    for value in (1e11, 1e300, 30 * 24 * 3600 + 1):
        await refused(client, "schedule_job", {**CRON, "job_id": "to", "timeout": value},
                      "timeout", "less than or equal to 2592000")
        await refused(client, "run_now", {"agentool_name": "logging", "input_data": LOG_INPUT, "timeout": value},
                      "timeout")
    structured(await client.call_tool("schedule_job", {**CRON, "job_id": "edge", "misfire_grace_time":
                                                       366 * 24 * 3600, "timeout": 30 * 24 * 3600}))
    job = structured(await client.call_tool("get_job", {"job_id": "edge"}))["job"]
    assert job["misfire_grace_time"] == 366 * 24 * 3600


async def test_job_ids_with_a_trailing_newline_are_refused(client: Client) -> None:
    await refused(client, "schedule_job", {**CRON, "job_id": "nl\n"}, "job_id must start with a letter or digit")
    await refused(client, "get_job", {"job_id": "nl\n"}, "job_id must start with a letter or digit")


@pytest.mark.parametrize("zone", ["right/UTC", "posix/UTC", "right/Europe/Berlin", "POSIX/Europe/Berlin"])
async def test_leap_second_and_posix_zone_variants_are_refused(client: Client, zone: str) -> None:
    await refused(client, "schedule_job", {**CRON, "job_id": "z", "timezone": zone}, "Unknown time zone", "IANA")
    await refused(client, "preview_schedule", {"schedule_type": "cron", "schedule": "0 9 * * *", "timezone": zone},
                  "Unknown time zone")


# ---------------------------------------------------------------------- unknown arguments


async def test_an_unknown_argument_is_refused_naming_it_and_the_closest_known_one(client: Client) -> None:
    message = await refused(client, "schedule_job", {**CRON, "job_id": "typo", "timezon": "Europe/Berlin"},
                            "Unknown argument 'timezon'", "'timezone'")
    assert "schedule_job takes:" in message
    await refused(client, "list_jobs", {"stat": "paused"}, "Unknown argument 'stat'", "'state'")
    await refused(client, "scheduler_status", {"verbose": True}, "Unknown argument 'verbose'")
    many = {f"extra{i}": i for i in range(5000)}
    message = await refused(client, "get_job", {"job_id": "x", **many}, "Unknown arguments", "and 4995 more")
    assert len(message) < 2000


async def test_every_tool_schema_is_closed(client: Client) -> None:
    for tool in (await client.list_tools()).tools:
        assert tool.input_schema.get("additionalProperties") is False, tool.name


# ---------------------------------------------------------------------- nothing huge comes back


HUGE_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("schedule_job", {**CRON, "timezone": HUGE}),
    ("schedule_job", {**CRON, "schedule": HUGE}),
    ("schedule_job", {**CRON, "agentool_name": HUGE}),
    ("schedule_job", {**CRON, "job_id": HUGE}),
    ("schedule_job", {**CRON, "result_queue": HUGE}),
    ("schedule_job", {**CRON, "input_data": {"operation": HUGE[:60_000]}}),
    ("schedule_job", {**CRON, "input_data": {"operation": "log", "level": HUGE[:60_000], "message": "m"}}),
    ("schedule_job", {**CRON, HUGE: 1}),
    ("run_now", {"agentool_name": "logging", "input_data": {"operation": "log", "message": HUGE[:60_000],
                                                            "level": HUGE[:1000]}}),
    ("list_jobs", {"cursor": HUGE}),
    ("get_job", {"job_id": HUGE}),
    ("get_history", {"job_id": "x", "status": HUGE}),
    ("preview_schedule", {"schedule_type": "once", "schedule": "in " + HUGE[:190]}),
    ("read_queue", {"queue_name": HUGE}),
]


async def test_errors_never_echo_huge_inputs_back(client: Client) -> None:
    for tool, arguments in HUGE_CALLS:
        message = await refused(client, tool, arguments)
        assert len(message) < 2000, (tool, len(message), message[:300])


def test_clip_keeps_the_start_of_a_value_and_says_how_long_it_was() -> None:
    assert clip("short") == "'short'"
    clipped = clip("y" * 10_000)
    assert clipped.startswith("'yyy") and clipped.endswith("(10000 characters)") and len(clipped) < 250
    assert clip("\ud800") == "'\\ud800'"
    listed = describe_errors([{"loc": ("a",), "msg": "m" * 5000}] * 50)
    assert len(listed) < 10_000 and listed.endswith("and 40 more problem(s)")


async def test_lone_surrogates_are_refused_or_stored_but_never_crash(client: Client) -> None:
    for index, value in enumerate(["\ud800", "a\udfffb", "\udc80" * 3]):
        for arguments in (
            {**CRON, "job_id": f"s{index}", "job_name": value},
            {**CRON, "job_id": f"t{index}", "input_data": {**LOG_INPUT, "message": value}},
            {**CRON, "job_id": f"u{index}", "timezone": value},
            {**CRON, "job_id": f"v{index}", "schedule": value},
        ):
            result = await client.call_tool("schedule_job", arguments)
            if result.is_error:
                assert "Internal error" not in error_text(result)
    structured(await client.call_tool("list_jobs", {}))


# ---------------------------------------------------------------------- stdio: lines the SDK cannot parse


def test_a_stdio_message_nested_too_deep_gets_a_json_rpc_error_and_the_server_goes_on(tmp_path: Path) -> None:
    deep = "[" * 5000 + "]" * 5000
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_jobs","arguments":{"x":' + deep + "}}}",
        "this is not json",
        '{"jsonrpc":"2.0","id":"three","method":"tools/call","params":' + "[" * 300 + "]" * 300 + "}",
        {"jsonrpc": "2.0", "id": 4, "method": 5},
        "",
        {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "scheduler_status", "arguments": {}}},
    ]
    stdin = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    done = subprocess.run(
        [sys.executable, "-m", "mcp_scheduler", "--db", str(tmp_path / "s.db"), "--timezone", "UTC"],
        input=stdin.encode(), capture_output=True, timeout=60, cwd=ROOT,
    )
    answers = [json.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]
    by_id = {a.get("id"): a for a in answers}

    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert by_id[2]["error"]["code"] == -32700 and "nested deeper than 200 levels" in by_id[2]["error"]["message"]
    assert by_id["three"]["error"]["code"] == -32700
    assert by_id[4]["error"]["code"] == -32600
    assert by_id[None]["error"]["code"] == -32700  # the line that is not JSON at all
    assert "result" in by_id[5] and not by_id[5]["result"].get("isError")
    assert len(answers) == 6  # initialize, the four errors and status: the blank line gets no answer


# ---------------------------------------------------------------------- the README's AgenTool example


def readme_blocks(heading: str) -> list[str]:
    """The ```python blocks of the README section under `heading`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]


RUN_BLOCKS = """
import ast, asyncio, json, sys
from mcp_scheduler import close_scheduler_agent

async def main() -> None:
    for block in json.loads(sys.argv[1]):
        code = compile(block, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        namespace = {}
        result = eval(code, namespace)
        if asyncio.iscoroutine(result):
            await result
        if "result" in namespace:
            print("RESULT", json.dumps(namespace["result"].data, default=str))
    await close_scheduler_agent()

asyncio.run(main())
"""


def test_the_readme_scheduler_as_an_agentool_examples_run_as_written(tmp_path: Path) -> None:
    blocks = readme_blocks("## The scheduler as an AgenTool")
    assert len(blocks) == 2 and "create_scheduler_agent(" in blocks[0]
    done = subprocess.run([sys.executable, "-c", RUN_BLOCKS, json.dumps(blocks)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})

    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    data = json.loads(line.removeprefix("RESULT "))
    assert data["job_id"] == "hourly_metrics" and data["next_run"]
    assert (tmp_path / "jobs.sqlite").exists() and (tmp_path / "team.sqlite").exists()



# ---------------------------------------------------------------------- found by tests/reliability/test_fuzz.py


async def test_a_one_off_time_before_year_1_in_utc_is_a_clear_error(client: Client) -> None:
    for tool, extra in (("preview_schedule", {}), ("schedule_job", {"agentool_name": "logging",
                                                                   "input_data": LOG_INPUT, "job_id": "early"})):
        await refused(client, tool, {"schedule_type": "once", "schedule": "0001-01-01T00:00:00+14:00", **extra},
                      "one-off time", "outside the years 1970 to 9000")


async def test_an_over_long_resource_uri_is_refused_without_quoting_it_back(client: Client) -> None:
    for uri in ("scheduler://jobs/" + HUGE[:100_000], "scheduler://" + HUGE[:5000], "scheduler://queues/" + "q" * 3000):
        with pytest.raises(MCPError) as caught:
            await client.read_resource(uri)
        assert len(str(caught.value)) < 2000 and "refused: at most 2048" in str(caught.value)
    with pytest.raises(MCPError, match="Unknown resource"):
        await client.read_resource("scheduler://nothing-here")


async def test_get_run_of_an_id_no_run_can_have_is_not_found(client: Client) -> None:
    # With a run in the store, SQLite matches the id's pattern against it (a 120,000-byte one was an internal error).
    assert not (await client.call_tool("run_now", {"agentool_name": "logging", "input_data": LOG_INPUT})).is_error
    for run_id in ("é" * 60_000, "x%_" * 10, "../etc", "a" * 65):
        result = await client.call_tool("get_run", {"run_id": run_id})
        assert result.is_error and "not found" in result.content[0].text.lower(), result.content
