"""The MCP face in memory, in both protocol eras: tools, schemas, resources, prompts and completions."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, PromptReference, ResourceTemplateReference

from mcp_scheduler.models import SchedulerInput
from mcp_scheduler.server._params import compact_schema

from .conftest import LOG_INPUT, ServerFactory, hourly, resource_json, structured

# Queue events become handshake-era log messages, a feature deprecated at 2026-07-28.
pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

TOOL_PARAMETERS: dict[str, tuple[list[str], list[str]]] = {
    # tool: (parameters in order, required parameters)
    "schedule_job": (
        ["schedule_type", "schedule", "agentool_name", "input_data", "job_id", "job_name", "timezone",
         "max_instances", "misfire_grace_time", "coalesce", "timeout", "result_queue", "error_queue", "policy",
         "success", "if_exists", "confirm"],
        ["schedule_type", "schedule", "agentool_name", "input_data"],
    ),
    "cancel_job": (["job_id", "confirm"], ["job_id"]),
    "pause_job": (["job_id"], ["job_id"]),
    "resume_job": (["job_id"], ["job_id"]),
    "run_now": (["job_id", "agentool_name", "input_data", "timeout", "result_queue", "error_queue"], []),
    "list_jobs": (["state", "agentool_name", "cursor", "limit"], []),
    "get_job": (["job_id"], ["job_id"]),
    "get_history": (["job_id", "status", "since", "until", "agentool_name", "limit"], []),
    "get_run": (["run_id"], ["run_id"]),
    "update_job": (
        ["job_id", "schedule_type", "schedule", "timezone", "agentool_name", "input_data", "job_name",
         "max_instances", "misfire_grace_time", "coalesce", "timeout", "result_queue", "error_queue", "policy",
         "success", "confirm"],
        ["job_id"],
    ),
    "scheduler_status": ([], []),
    "start_scheduler": ([], []),
    "stop_scheduler": (["confirm"], []),
    "preview_schedule": (["schedule_type", "schedule", "timezone", "count", "policy"], ["schedule_type", "schedule"]),
    "backfill_job": (["job_id", "since", "until", "backfill_overlap"], ["job_id", "since"]),
    "list_agentools": (["name"], []),
    "read_queue": (["queue_name", "mode", "count"], ["queue_name"]),
    "read_inbox": (["count", "acknowledge", "ack_ids"], []),
    "show_schedule": ([], []),
}
READ_ONLY_TOOLS = {"list_jobs", "get_job", "get_history", "get_run", "scheduler_status", "preview_schedule",
                   "list_agentools", "show_schedule"}
# Tools whose parameters are all SchedulerInput fields (list_jobs, read_queue and read_inbox have their own).
FIELD_TOOLS = ["schedule_job", "cancel_job", "pause_job", "resume_job", "run_now", "get_job", "get_history",
               "preview_schedule", "backfill_job"]


def required_form(model_property: dict[str, Any]) -> dict[str, Any]:
    """A SchedulerInput property (optional, `X | None = None`) as it reads when a tool requires it."""
    prop = {k: v for k, v in model_property.items() if k not in ("anyOf", "default")}
    (variant,) = [v for v in model_property["anyOf"] if v != {"type": "null"}]
    return {**prop, **variant}


async def tools_by_name(client: Client) -> dict[str, Any]:
    return {tool.name: tool for tool in (await client.list_tools()).tools}


# ---------------------------------------------------------------------- listing and schemas


async def test_list_tools_has_all_19_tools_with_flat_parameters(client: Client) -> None:
    tools = await tools_by_name(client)

    assert sorted(tools) == sorted(TOOL_PARAMETERS)
    for name, (parameters, required) in TOOL_PARAMETERS.items():
        schema = tools[name].input_schema
        assert schema["type"] == "object"
        assert list(schema.get("properties", {})) == parameters, name
        assert sorted(schema.get("required", [])) == sorted(required), name
        assert "$defs" not in schema and all("$ref" not in p for p in schema.get("properties", {}).values()), name
        assert tools[name].description


# Parameters whose published schema is shorter than the field's on purpose (still validated as the field says).
OWN_SCHEMAS = {("schedule_job", "policy"), ("schedule_job", "success"), ("preview_schedule", "policy"),
               ("run_now", "timeout")}


@pytest.mark.parametrize("tool_name", FIELD_TOOLS)
async def test_tool_parameters_equal_the_scheduler_input_fields(client: Client, tool_name: str) -> None:
    model = compact_schema(SchedulerInput.model_json_schema(), output=False)["properties"]  # as a tool publishes it
    schema = (await tools_by_name(client))[tool_name].input_schema
    required = set(schema.get("required", []))

    for name, prop in schema.get("properties", {}).items():
        assert prop["description"], name
        if name == "confirm":  # the user's word, not a request field (tests/server/test_confirmation.py)
            assert prop["type"] == "boolean"
            continue
        if (tool_name, name) in OWN_SCHEMAS:
            assert prop["type"] == model[name].get("type", "object"), name
            continue
        expected = required_form(model[name]) if name in required and "anyOf" in model[name] else model[name]
        # The type, bounds and default are the model's; a tool may word the description for itself.
        assert {k: v for k, v in prop.items() if k != "description"} == {
            k: v for k, v in expected.items() if k != "description"
        }, name


async def test_list_jobs_limit_parameter_is_the_scheduler_input_field(client: Client) -> None:
    schema = (await tools_by_name(client))["list_jobs"].input_schema
    field = compact_schema(SchedulerInput.model_json_schema(), output=False)["properties"]["limit"]
    assert {k: v for k, v in schema["properties"]["limit"].items() if k != "description"} == {
        k: v for k, v in field.items() if k != "description"
    }


async def test_tool_annotations_mark_read_only_and_destructive_tools(client: Client) -> None:
    tools = await tools_by_name(client)

    # Hints at the spec's defaults are left out: readOnlyHint false, destructiveHint true (it only counts for a
    # tool that is not read-only), idempotentHint false, openWorldHint true.
    for name, tool in tools.items():
        assert tool.annotations is not None, name
        assert bool(tool.annotations.read_only_hint) is (name in READ_ONLY_TOOLS), name
    assert tools["cancel_job"].annotations.destructive_hint in (None, True)
    assert tools["read_queue"].annotations.destructive_hint in (None, True)
    for name in ("schedule_job", "pause_job", "resume_job", "start_scheduler", "run_now"):
        assert tools[name].annotations.destructive_hint is False, name
    for name in READ_ONLY_TOOLS | {"schedule_job", "cancel_job"}:
        assert tools[name].annotations.open_world_hint is False, name
    assert tools["run_now"].annotations.open_world_hint in (None, True)


async def test_every_tool_has_an_output_schema(client: Client) -> None:
    tools = await tools_by_name(client)
    for name, tool in tools.items():
        if name == "show_schedule":  # text for the model; its structured content is the dashboard page's alone
            assert tool.output_schema is None
            continue
        assert tool.output_schema is not None and tool.output_schema["type"] == "object", name
    assert {"jobs", "total", "next_cursor"} <= set(tools["list_jobs"].output_schema["properties"])
    assert {"job_id", "state", "description", "next_run"} <= set(tools["schedule_job"].output_schema["properties"])


# ---------------------------------------------------------------------- every tool, successfully


async def test_every_tool_can_be_called_successfully(client: Client) -> None:
    called: set[str] = set()

    async def call(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        called.add(name)
        return structured(await client.call_tool(name, arguments or {}))

    preview = await call("preview_schedule", {"schedule_type": "cron", "schedule": "0 9 * * 1-5", "count": 2})
    assert preview["timezone"] == "UTC" and len(preview["next_runs"]) == 2
    assert all(t.endswith("T09:00:00+00:00") for t in preview["next_runs"])

    catalog = await call("list_agentools")
    assert {"logging", "storage_kv", "queue"} <= {a["name"] for a in catalog["agentools"]}

    job = await call("schedule_job", hourly("kv-job", "storage_kv", job_name="KV job"))
    assert job["job_id"] == "kv-job" and job["state"] == "scheduled" and job["next_run"]
    assert set(job) == {"job_id", "job_name", "description", "state", "next_run"}  # a summary; get_job has the rest

    assert (await call("pause_job", {"job_id": "kv-job"}))["state"] == "paused"
    assert (await call("resume_job", {"job_id": "kv-job"}))["state"] == "scheduled"

    run = await call("run_now", {"job_id": "kv-job"})
    assert run["status"] == "success" and run["trigger"] == "run_now" and run["job_id"] == "kv-job"

    detail = await call("get_job", {"job_id": "kv-job"})
    assert detail["job"]["job_name"] == "KV job" and len(detail["job"]["next_runs"]) == 3
    (recent,) = detail["recent_history"]  # in brief, to the second
    assert recent["trigger"] == "run_now" and recent["started_at"][:19] == run["started_at"][:19]

    history = await call("get_history", {"job_id": "kv-job", "status": "success"})
    assert history["count"] == 1 and history["runs"][0]["run_id"] == run["run_id"]
    found = await call("get_run", {"run_id": run["run_id"]})
    assert found["run"]["status"] == "success" and found["run"]["job_id"] == "kv-job"
    missing = await client.call_tool("get_run", {"run_id": "0" * 32})
    assert missing.is_error and "get_history lists the runs" in missing.content[0].text

    page = await call("list_jobs")
    assert [j["job_id"] for j in page["jobs"]] == ["kv-job"]
    assert set(page["jobs"][0]) == {"job_id", "job_name", "description", "state", "next_run", "last_status"}

    updated = await call("update_job", {"job_id": "kv-job", "schedule_type": "cron", "schedule": "0 9 * * 1-5",
                                        "job_name": "KV job, weekdays"})
    assert (updated["job_name"], updated["state"]) == ("KV job, weekdays", "scheduled")
    assert "09:00" in updated["description"]
    assert updated["next_run"].endswith("T09:00:00+00:00")

    stopped = await call("stop_scheduler")
    assert stopped == {"running": False, "state": "paused"}
    status = await call("scheduler_status")
    assert status["running"] is False and status["jobs_count"] == 1 and status["timezone"] == "UTC"
    assert (await call("start_scheduler"))["running"] is True

    await call("run_now", {"agentool_name": "logging", "input_data": LOG_INPUT, "result_queue": "done"})
    peeked = await call("read_queue", {"queue_name": "done"})
    assert peeked["remaining"] == 1 and peeked["messages"][0]["message"]["status"] == "success"

    assert await call("read_inbox") == {"messages": [], "acknowledged": 0, "remaining": 0, "not_shown": 0}

    backfill = await call("backfill_job", {"job_id": "kv-job", "since": "7 days"})  # its weekdays at 09:00
    assert (backfill["count"], backfill["overlap"], backfill["statuses"]) == (5, "buffer_all", None)

    shown = await client.call_tool("show_schedule", {})  # a client without MCP Apps: the schedule as text alone
    called.add("show_schedule")
    assert not shown.is_error and shown.structured_content is None and "- KV job, weekdays" in shown.content[0].text

    cancelled = await call("cancel_job", {"job_id": "kv-job"})
    assert cancelled["job_id"] == "kv-job"
    assert structured(await client.call_tool("list_jobs", {}))["total"] == 0

    assert called == set(TOOL_PARAMETERS)


async def test_list_jobs_pages_through_five_jobs_two_at_a_time(client: Client) -> None:
    ids = [f"job-{i}" for i in range(5)]
    for job_id in ids:
        structured(await client.call_tool("schedule_job", hourly(job_id)))

    pages: list[list[str]] = []
    cursor = None
    while True:
        arguments: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = structured(await client.call_tool("list_jobs", arguments))
        assert page["total"] == 5
        pages.append([j["job_id"] for j in page["jobs"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5, "pagination does not end"

    assert pages == [ids[0:2], ids[2:4], ids[4:5]]
    beyond = structured(await client.call_tool("list_jobs", {"cursor": "10"}))
    assert beyond["jobs"] == [] and beyond["total"] == 5 and beyond["next_cursor"] is None
    filtered = structured(await client.call_tool("list_jobs", {"agentool_name": "logging", "limit": 4, "cursor": "3"}))
    assert [j["job_id"] for j in filtered["jobs"]] == ids[3:5] and filtered["next_cursor"] is None


async def test_list_jobs_filters_by_state_and_agentool(client: Client) -> None:
    structured(await client.call_tool("schedule_job", hourly("log-1")))
    structured(await client.call_tool("schedule_job", hourly("kv-1", "storage_kv")))
    structured(await client.call_tool("schedule_job", hourly("kv-2", "storage_kv")))
    structured(await client.call_tool("pause_job", {"job_id": "kv-2"}))

    def ids(page: dict[str, Any]) -> list[str]:
        return [j["job_id"] for j in page["jobs"]]

    paused = structured(await client.call_tool("list_jobs", {"state": "paused"}))
    assert ids(paused) == ["kv-2"] and paused["total"] == 1
    scheduled = structured(await client.call_tool("list_jobs", {"state": "scheduled"}))
    assert ids(scheduled) == ["log-1", "kv-1"]
    kv = structured(await client.call_tool("list_jobs", {"agentool_name": "storage_kv"}))
    assert ids(kv) == ["kv-1", "kv-2"]
    both = structured(await client.call_tool("list_jobs", {"agentool_name": "storage_kv", "state": "scheduled"}))
    assert ids(both) == ["kv-1"]
    assert structured(await client.call_tool("list_jobs", {"agentool_name": "queue"}))["total"] == 0


async def test_run_now_runs_a_job_by_id_and_an_agentool_by_name(client: Client) -> None:
    kv_input = {"operation": "set", "key": "color", "value": "blue"}
    structured(await client.call_tool("schedule_job", {**hourly("setter", "storage_kv"), "input_data": kv_input}))

    by_job = structured(await client.call_tool("run_now", {"job_id": "setter"}))
    assert by_job["job_id"] == "setter" and by_job["status"] == "success"

    get_color = {"agentool_name": "storage_kv", "input_data": {"operation": "get", "key": "color"}}
    by_name = structured(await client.call_tool("run_now", get_color))
    assert by_name["status"] == "success" and by_name["job_id"].startswith("run_now-")
    assert by_name["result"]["data"]["value"] == "blue"
    # the ad-hoc run is recorded under its own id
    history = structured(await client.call_tool("get_history", {"job_id": by_name["job_id"]}))
    assert [r["run_id"] for r in history["runs"]] == [by_name["run_id"]]


async def test_run_now_reports_progress_to_a_progress_callback(client: Client) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    arguments = {"agentool_name": "logging", "input_data": LOG_INPUT}
    record = structured(await client.call_tool("run_now", arguments, progress_callback=on_progress))

    assert record["status"] == "success"
    assert progress == [(0, 1, "running"), (1, 1, "success")]


async def test_read_queue_peeks_without_removing_and_takes_with_removing(client: Client) -> None:
    for n in range(3):
        data = {"operation": "set", "key": f"k{n}", "value": n}
        arguments = {"agentool_name": "storage_kv", "input_data": data, "result_queue": "results"}
        structured(await client.call_tool("run_now", arguments))

    peeked = structured(await client.call_tool("read_queue", {"queue_name": "results", "mode": "peek", "count": 2}))
    assert peeked["mode"] == "peek" and len(peeked["messages"]) == 2 and peeked["remaining"] == 3
    first_id = peeked["messages"][0]["message_id"]

    taken = structured(await client.call_tool("read_queue", {"queue_name": "results", "mode": "take", "count": 2}))
    assert [m["message_id"] for m in taken["messages"]][0] == first_id
    assert len(taken["messages"]) == 2 and taken["remaining"] == 1
    assert [m["message"]["result"]["data"]["key"] for m in taken["messages"]] == ["k0", "k1"]

    rest = structured(await client.call_tool("read_queue", {"queue_name": "results", "mode": "take"}))
    assert [m["message"]["result"]["data"]["key"] for m in rest["messages"]] == ["k2"] and rest["remaining"] == 0


# ---------------------------------------------------------------------- resources


async def test_resources_and_templates_are_listed(client: Client) -> None:
    resources = {str(r.uri) for r in (await client.list_resources()).resources}
    templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}

    assert resources == {"scheduler://status", "scheduler://jobs", "scheduler://queues", "scheduler://agentools",
                         "scheduler://inbox", "scheduler://audit",
                         "ui://mcp-scheduler/dashboard"}
    assert templates == {
        "scheduler://jobs/{job_id}",
        "scheduler://jobs/{job_id}/history",
        "scheduler://queues/{+queue_name}",
        "scheduler://audit/after/{seq}",
    }


async def test_every_resource_reads_as_json_with_the_current_state(client: Client) -> None:
    structured(await client.call_tool("schedule_job", hourly("res-job", result_queue="res-q")))
    run = structured(await client.call_tool("run_now", {"job_id": "res-job"}))

    status = resource_json(await client.read_resource("scheduler://status"))
    assert status["running"] is True and status["jobs_count"] == 1 and status["timezone"] == "UTC"

    jobs = resource_json(await client.read_resource("scheduler://jobs"))
    assert jobs["total"] == 1 and [j["job_id"] for j in jobs["jobs"]] == ["res-job"]

    job = resource_json(await client.read_resource("scheduler://jobs/res-job"))
    assert job["job"]["job_id"] == "res-job" and job["job"]["result_queue"] == "res-q"
    assert [r["run_id"] for r in job["recent_history"]] == [run["run_id"]]

    history = resource_json(await client.read_resource("scheduler://jobs/res-job/history"))
    assert history["job_id"] == "res-job" and history["count"] == 1
    assert history["runs"][0]["status"] == "success"

    queues = resource_json(await client.read_resource("scheduler://queues"))
    assert {"queue_name": "res-q", "size": 1, "in_flight": 0, "dead_lettered": 0} in queues["queues"]

    queue = resource_json(await client.read_resource("scheduler://queues/res-q"))
    assert queue["queue_name"] == "res-q" and queue["remaining"] == 1
    assert queue["messages"][0]["message"]["run_id"] == run["run_id"]

    agentools = resource_json(await client.read_resource("scheduler://agentools"))
    names = {a["name"] for a in agentools}
    assert {"logging", "storage_kv", "queue"} <= names and "scheduler" not in names
    assert all("input_schema" in a and a["operations"] for a in agentools)


@pytest.mark.parametrize("uri", ["scheduler://jobs/ghost", "scheduler://jobs/ghost/history"])
async def test_reading_an_unknown_job_resource_is_a_not_found_error(client: Client, uri: str) -> None:
    with pytest.raises(MCPError) as caught:
        await client.read_resource(uri)

    assert caught.value.code == INVALID_PARAMS
    assert "'ghost' not found" in caught.value.message


# ---------------------------------------------------------------------- completions and prompts


async def test_completions_offer_job_ids_and_queue_names(client: Client) -> None:
    for job_id in ("alpha", "alpine", "beta"):
        structured(await client.call_tool("schedule_job", hourly(job_id, result_queue=f"{job_id}-out")))
        structured(await client.call_tool("run_now", {"job_id": job_id}))

    for template in ("scheduler://jobs/{job_id}", "scheduler://jobs/{job_id}/history"):
        ref = ResourceTemplateReference(type="ref/resource", uri=template)
        done = await client.complete(ref, {"name": "job_id", "value": "al"})
        assert done.completion.values == ["alpha", "alpine"], template
        everything = await client.complete(ref, {"name": "job_id", "value": ""})
        assert sorted(everything.completion.values) == ["alpha", "alpine", "beta"]

    queues = ResourceTemplateReference(type="ref/resource", uri="scheduler://queues/{+queue_name}")
    done = await client.complete(queues, {"name": "queue_name", "value": "be"})
    assert done.completion.values == ["beta-out"]

    prompt = PromptReference(type="ref/prompt", name="troubleshoot_job")
    assert (await client.complete(prompt, {"name": "job_id", "value": "b"})).completion.values == ["beta"]


@pytest.mark.parametrize(
    "ref",
    [
        ResourceTemplateReference(type="ref/resource", uri="scheduler://nowhere/{job_id}"),
        PromptReference(type="ref/prompt", name="no_such_prompt"),
    ],
)
async def test_completion_for_an_unknown_reference_is_an_empty_list(client: Client, ref: Any) -> None:
    structured(await client.call_tool("schedule_job", hourly("some-job")))

    done = await client.complete(ref, {"name": "job_id", "value": ""})

    assert done.completion.values == []


async def test_prompts_are_listed_with_descriptions_and_arguments(client: Client) -> None:
    prompts = {p.name: p for p in (await client.list_prompts()).prompts}

    assert set(prompts) == {"schedule_from_request", "troubleshoot_job"}
    for prompt in prompts.values():
        assert prompt.description and len(prompt.description) > 20
    assert [(a.name, a.required) for a in prompts["schedule_from_request"].arguments or []] == [
        ("request", True),
        ("timezone", False),
    ]
    assert [(a.name, a.required) for a in prompts["troubleshoot_job"].arguments or []] == [("job_id", True)]


async def test_schedule_from_request_prompt_names_the_request_and_time_zone(client: Client) -> None:
    got = await client.get_prompt(
        "schedule_from_request", {"request": "every weekday at 9, log hello", "timezone": "Europe/Berlin"}
    )

    assert got.description
    text = got.messages[0].content.text
    assert "every weekday at 9, log hello" in text and "'Europe/Berlin'" in text
    assert "preview_schedule" in text and "schedule_job" in text


async def test_troubleshoot_job_prompt_shows_the_job_and_its_runs(client: Client) -> None:
    structured(await client.call_tool("schedule_job", hourly("flaky", "storage_kv")))
    structured(await client.call_tool("run_now", {"job_id": "flaky"}))

    got = await client.get_prompt("troubleshoot_job", {"job_id": "flaky"})

    assert got.description
    text = got.messages[0].content.text
    assert "'flaky'" in text and "storage_kv" in text and ": success" in text


async def test_troubleshoot_job_prompt_for_an_unknown_job_says_not_found(client: Client) -> None:
    with pytest.raises(MCPError) as caught:
        await client.get_prompt("troubleshoot_job", {"job_id": "ghost"})

    assert "'ghost' not found" in caught.value.message


# ---------------------------------------------------------------------- one process-wide service


async def test_sequential_sessions_on_one_file_see_the_same_jobs(
    make_server: ServerFactory, db_file: str, mode: str
) -> None:
    server = make_server(db_file)
    async with Client(server, mode=mode) as first:
        structured(await first.call_tool("schedule_job", hourly("kept")))
        run = structured(await first.call_tool("run_now", {"job_id": "kept"}))

    async with Client(server, mode=mode) as second:
        page = structured(await second.call_tool("list_jobs", {}))
        assert [j["job_id"] for j in page["jobs"]] == ["kept"]
        history = structured(await second.call_tool("get_history", {"job_id": "kept"}))
        assert [r["run_id"] for r in history["runs"]] == [run["run_id"]]

    # a new server on the same file (as after a restart) sees them too
    async with Client(make_server(db_file), mode=mode) as restarted:
        page = structured(await restarted.call_tool("list_jobs", {}))
        assert [j["job_id"] for j in page["jobs"]] == ["kept"]


async def test_concurrent_in_memory_sessions_share_one_scheduler(server: Any) -> None:
    async with Client(server) as modern, Client(server, mode="legacy") as legacy:
        structured(await modern.call_tool("schedule_job", hourly("from-modern")))
        structured(await legacy.call_tool("schedule_job", hourly("from-legacy")))

        for c in (modern, legacy):
            page = structured(await c.call_tool("list_jobs", {}))
            assert [j["job_id"] for j in page["jobs"]] == ["from-modern", "from-legacy"]
        assert server.runtime.service.is_open
    assert not server.runtime.service.is_open
