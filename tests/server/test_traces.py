"""Traces of runs, with the OpenTelemetry SDK's in-memory exporter: a run's span links to the `tools/call` that
created its job (whose trace context the client sent in `params._meta`), a run_now is a child of its call, and the
trace context reaches a real HTTP server that a job calls and a real MCP server that a job of the mcp kind calls (in
the request's `params._meta`)."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests._net import eventually
from tests.server.conftest import ServerFactory, hosted, hourly
from tests.toolkits._http_server import LocalServer, serve_http

MCP_TEST_SERVER = Path(__file__).parents[1] / "toolkits" / "mcp_test_server.py"
@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (set once per process, as OpenTelemetry allows), exporting to memory."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    memory.shutdown()


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


@pytest.fixture(scope="module")
def local() -> Iterator[LocalServer]:
    with serve_http() as server:
        yield server


def named(memory: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in memory.get_finished_spans() if s.name == name]


def traceparent_of(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


async def test_a_run_span_links_to_the_call_that_created_the_job_and_its_http_request_carries_the_trace(
    make_server: ServerFactory, db_file: str, spans: InMemorySpanExporter, local: LocalServer
) -> None:
    server = make_server(db_file, http_allow=("127.0.0.1",))
    job: dict[str, Any] = {
        "schedule_type": "once", "schedule": "now", "agentool_name": "http", "job_id": "ping", "job_name": "ping",
        "input_data": {"operation": "request", "method": "GET", "url": f"{local.url}/echo/ping"},
    }
    async with hosted(Client(server)) as client:
        with trace.get_tracer("test-agent").start_as_current_span("agent turn"):
            result = await client.call_tool("schedule_job", job)  # the client sends traceparent in params._meta
        assert not result.is_error, result
        await eventually(lambda: bool(named(spans, "scheduler.run ping")), within=10, what="the run's span")

    (call,) = named(spans, "tools/call schedule_job")
    (run,) = named(spans, "scheduler.run ping")
    (agent,) = named(spans, "agent turn")
    assert call.context.trace_id == agent.context.trace_id  # the server span continues the client's trace
    assert run.context.trace_id != call.context.trace_id  # a scheduled run is a trace of its own ...
    assert run.parent is None
    assert [link.context.span_id for link in run.links] == [call.context.span_id]  # ... linked to its creation
    assert run.links[0].context.trace_id == call.context.trace_id
    attributes = dict(run.attributes or {})
    assert attributes["gen_ai.tool.name"] == "http" and attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["mcp_scheduler.job.id"] == "ping" and attributes["mcp_scheduler.run.trigger"] == "schedule"
    assert attributes["mcp_scheduler.run.status"] == "success" and "error.type" not in attributes

    (request,) = local.received_at("/echo/ping")
    version, trace_id, parent_id, _flags = request["headers"]["traceparent"].split("-")
    assert (trace_id, parent_id) == traceparent_of(run)  # the HTTP server sees the run's span as its parent

    # The creating call's context is stored with the job: it survives a restart.
    conn = sqlite3.connect(db_file)
    try:
        (definition,) = conn.execute("SELECT definition FROM scheduler_jobs WHERE job_id = 'ping'").fetchone()
    finally:
        conn.close()
    assert f"-{call.context.span_id:016x}-" in definition


async def test_a_run_now_is_a_child_of_its_call_and_a_failed_run_says_its_error_type(
    make_server: ServerFactory, db_file: str, spans: InMemorySpanExporter, local: LocalServer
) -> None:
    server = make_server(db_file, http_allow=("127.0.0.1",))
    async with hosted(Client(server)) as client:
        await client.call_tool("schedule_job", hourly("failing", agentool_name="http") | {
            "input_data": {"operation": "request", "method": "GET", "url": f"{local.url}/status/500"}})
        result = await client.call_tool("run_now", {"job_id": "failing"})
        assert result.is_error  # the run failed: the call says so

    (created,) = named(spans, "tools/call schedule_job")
    (call,) = named(spans, "tools/call run_now")
    (run,) = named(spans, "scheduler.run failing")
    assert run.parent is not None and run.parent.span_id == call.context.span_id
    assert [link.context.span_id for link in run.links] == [created.context.span_id]
    attributes = dict(run.attributes or {})
    assert attributes["mcp_scheduler.run.trigger"] == "run_now" and attributes["error.type"] == "HttpStatusError"
    assert run.status.status_code == trace.StatusCode.ERROR


async def test_an_mcp_server_a_job_calls_gets_the_run_s_trace_context_in_the_request_meta(
    make_server: ServerFactory, db_file: str, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    servers = tmp_path / "servers.json"
    local = {"command": sys.executable, "args": [str(MCP_TEST_SERVER)]}
    servers.write_text(json.dumps({"mcpServers": {"local": local}}))
    server = make_server(db_file, servers_file=str(servers))
    async with hosted(Client(server)) as client:
        await client.call_tool("schedule_job", hourly("traced", agentool_name="mcp") | {
            "input_data": {"operation": "call_tool", "server": "local", "tool": "trace_context"}})
        result = await client.call_tool("run_now", {"job_id": "traced"})
    assert not result.is_error, result

    (run,) = named(spans, "scheduler.run traced")
    (sent,) = named(spans, "MCP send tools/call trace_context")  # the SDK's client span, inside the run's
    assert sent.parent is not None and sent.parent.span_id == run.context.span_id
    assert result.structured_content is not None
    seen = result.structured_content["result"]["data"]["structured_content"]["content"]  # what the server got
    version, trace_id, parent_id, _flags = seen["traceparent"].split("-")
    assert version == "00" and (trace_id, parent_id) == traceparent_of(sent) and trace_id == traceparent_of(run)[0]


async def test_a_chained_run_is_a_child_of_the_run_it_follows(
    make_server: ServerFactory, db_file: str, spans: InMemorySpanExporter, local: LocalServer
) -> None:
    server = make_server(db_file, http_allow=("127.0.0.1",))
    get = {"operation": "request", "method": "GET", "url": f"{local.url}/echo/chain"}
    async with hosted(Client(server)) as client:
        await client.call_tool("schedule_job", hourly("head", agentool_name="http") | {"input_data": get})
        await client.call_tool("schedule_job", hourly("tail", agentool_name="http") | {
            "input_data": get, "policy": {"after": {"job": "head"}}})
        result = await client.call_tool("run_now", {"job_id": "head"})
        assert not result.is_error, result
        await eventually(lambda: bool(named(spans, "scheduler.run tail")), within=10, what="the chained run's span")

    (head,) = named(spans, "scheduler.run head")
    (tail,) = named(spans, "scheduler.run tail")
    assert tail.parent is not None and tail.parent.span_id == head.context.span_id  # one trace: the chain
    assert tail.context.trace_id == head.context.trace_id
    assert dict(tail.attributes or {})["mcp_scheduler.run.trigger"] == "chain"
