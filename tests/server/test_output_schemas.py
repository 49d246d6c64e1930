"""Output schemas are published compact and portable, and accept every value pydantic's accept.

Compact: no $ref, titles, descriptions or defaults; objects nested in a result are `{"type": "object"}`.
Portable: no type arrays (`["string", "null"]`) and no untyped values, which the MCP Inspector flags.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Literal

import pytest
from jsonschema import Draft202012Validator
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

from mcp_scheduler.models import JobInfo, RunRecord
from mcp_scheduler.server._params import compact_schema

from .conftest import structured
from .test_in_memory import TOOL_PARAMETERS


def valid(schema: dict[str, Any], instance: Any) -> bool:
    return Draft202012Validator(schema).is_valid(instance)


def _subschemas(node: Any) -> list[dict[str, Any]]:
    """`node` and every schema inside it (properties, items, anyOf branches)."""
    if not isinstance(node, dict):
        return []
    found = [node]
    for name in ("properties",):
        for sub in node.get(name, {}).values():
            found += _subschemas(sub)
    found += _subschemas(node.get("items"))
    for branch in node.get("anyOf", []):
        found += _subschemas(branch)
    return found


async def test_every_published_output_schema_is_compact_and_portable(server: MCPServer) -> None:
    from mcp import Client

    async with Client(server) as client:
        tools = (await client.list_tools()).tools

    assert len(tools) == len(TOOL_PARAMETERS)
    for tool in tools:
        if tool.name == "show_schedule":  # text for the model; its structured content is the dashboard page's alone
            continue
        assert tool.output_schema is not None, tool.name
        text = json.dumps(tool.output_schema)
        assert "$ref" not in text and "$defs" not in text, tool.name
        Draft202012Validator.check_schema(tool.output_schema)
        for node in _subschemas(tool.output_schema):
            assert not isinstance(node.get("type"), list), (tool.name, node)  # the Inspector's type-union warning
            assert {"type", "enum", "anyOf"} & node.keys(), (tool.name, node)  # its untyped-schema warning
            assert not {"title", "description", "default"} & node.keys(), (tool.name, node)


async def test_real_results_validate_against_the_published_schemas(server: MCPServer) -> None:
    from mcp import Client

    job = {
        "job_id": "compact",
        "schedule_type": "cron",
        "schedule": "0 9 * * 1-5",
        "agentool_name": "storage_kv",
        "input_data": {"operation": "set", "key": "k", "value": "v"},
    }
    async with Client(server) as client:
        schemas = {t.name: t.output_schema for t in (await client.list_tools()).tools}
        results = {
            "schedule_job": structured(await client.call_tool("schedule_job", job)),
            "run_now": structured(await client.call_tool("run_now", {"job_id": "compact"})),
            "list_jobs": structured(await client.call_tool("list_jobs", {})),
            "get_job": structured(await client.call_tool("get_job", {"job_id": "compact"})),
            "get_history": structured(await client.call_tool("get_history", {"job_id": "compact"})),
        }
    for name, result in results.items():
        assert valid(schemas[name], result), name  # the client validated too; this makes it explicit
    broken = copy.deepcopy(results["schedule_job"])
    broken["state"] = "sleeping"
    assert not valid(schemas["schedule_job"], broken)
    assert not valid(schemas["get_job"], {**results["get_job"], "recent_history": "none"})
    assert not valid(schemas["list_jobs"], {**results["list_jobs"], "total": "ten"})
    assert "job_name" not in results["schedule_job"]  # null fields of a summary are left out, not null


class _Color(BaseModel):
    name: Literal["red", "green"]
    shade: Literal["light", "dark"] | None = None


class _Sample(BaseModel):
    count: int
    label: str | None = None
    tags: list[str] | None = None
    job: JobInfo
    runs: list[RunRecord]
    color: _Color | None = None
    colors: list[_Color] = []


def _sample() -> dict[str, Any]:
    job = {
        "job_id": "j",
        "agentool_name": "a",
        "input_data": {},
        "schedule_type": "once",
        "schedule": "now",
        "timezone": "UTC",
        "description": "once",
        "state": "scheduled",
        "max_instances": 1,
        "misfire_grace_time": None,
        "coalesce": True,
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    run = {"run_id": "r", "job_id": "j", "agentool_name": "a", "trigger": "run_now", "status": "success"}
    return {"count": 1, "label": None, "tags": ["x"], "job": job, "runs": [run], "color": {"name": "red"}}


def _variants() -> list[tuple[str, Any]]:
    base = _sample()
    cases: list[tuple[str, Any]] = [("as is", base)]

    def change(label: str, path: list[Any], value: Any) -> None:
        instance = copy.deepcopy(base)
        target = instance
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        cases.append((label, instance))

    change("null where optional", ["tags"], None)
    change("null where required", ["count"], None)
    change("wrong type where optional", ["label"], 3)
    change("wrong item type", ["tags"], [1])
    change("bad enum in a nested model", ["job", "state"], "sleeping")
    change("null for a required enum", ["job", "state"], None)
    change("null for an optional enum", ["color", "shade"], None)
    change("bad optional enum", ["color", "shade"], "pale")
    change("null for a nested optional model", ["color"], None)
    change("bad nested optional model", ["color"], {"name": "blue"})
    change("bad item of a model list", ["runs"], [{"run_id": "r"}])
    change("null for a nullable number in a list item", ["runs", 0, "duration_ms"], None)
    change("string for a nullable number in a list item", ["runs", 0, "duration_ms"], "slow")
    return cases


# Variants that break an object nested in the result: the compact schema leaves those objects untyped inside.
NESTED = {"bad enum in a nested model", "null for a required enum", "bad optional enum", "bad nested optional model",
          "bad item of a model list", "string for a nullable number in a list item"}


@pytest.mark.parametrize(("label", "instance"), _variants(), ids=[label for label, _ in _variants()])
def test_compact_schema_accepts_what_the_original_accepts(label: str, instance: Any) -> None:
    original = _Sample.model_json_schema(mode="serialization")
    compact = compact_schema(original)

    assert "$ref" not in json.dumps(compact)
    if label in NESTED:
        assert valid(compact, instance)
        assert not valid(original, instance)
    else:
        assert valid(compact, instance) == valid(original, instance)


def test_the_variants_include_both_verdicts() -> None:
    original = _Sample.model_json_schema(mode="serialization")
    verdicts = {valid(original, instance) for _, instance in _variants()}
    assert verdicts == {True, False}


class _Node(BaseModel):
    value: int
    children: list[_Node] = []


def test_a_recursive_model_keeps_its_definitions_and_still_validates() -> None:
    compact = compact_schema(_Node.model_json_schema(), output=False)

    assert "$defs" in compact
    assert valid(compact, {"value": 1, "children": [{"value": 2, "children": []}]})
    assert not valid(compact, {"value": 1, "children": [{"value": "two"}]})
