"""Each run's result in a few words (`summary`): the run record carries its job kind's summary, the inbox posts it
instead of the raw result, and a summary that quotes what a job fetched stays labelled untrusted."""

from __future__ import annotations

import json

import pytest
from mcp import Client
from pydantic import Field

from agentool_bridge import BaseOperationInput, RoutingConfig, register_agentool

from .conftest import ServerFactory, structured

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")


class PlainInput(BaseOperationInput):
    """Returns a bare number."""

    operation: str = Field(description="Anything.")


def plain(operation: str) -> int:
    return 42


async def test_a_run_of_a_built_in_kind_carries_its_summary_and_its_raw_result(client: Client) -> None:
    run = structured(await client.call_tool("run_now", {
        "agentool_name": "storage_kv", "input_data": {"operation": "set", "key": "k", "value": 1}}))
    [listed] = structured(await client.call_tool("get_history", {"job_id": run["job_id"]}))["runs"]

    assert run["summary"] == listed["summary"] == "Created key 'k'."
    assert listed["result"]["data"]["key"] == "k"  # the raw data stays


async def test_a_result_without_words_has_no_summary(make_server: ServerFactory, db_file: str) -> None:
    server = make_server(db_file)
    register_agentool("plain", PlainInput, RoutingConfig(operation_map={"go": ("plain", None)}), [plain],
                      registry=server.runtime.registry)
    async with Client(server) as client:
        run = structured(await client.call_tool("run_now", {"agentool_name": "plain",
                                                            "input_data": {"operation": "go"}}))

    assert run["result"] == 42 and "summary" not in run


async def test_a_result_sent_to_the_inbox_is_its_summary_not_its_json(client: Client) -> None:
    structured(await client.call_tool("run_now", {
        "job_id": "kv", "agentool_name": "storage_kv", "input_data": {"operation": "set", "key": "k", "value": 1},
        "result_queue": "inbox"}))

    [message] = structured(await client.call_tool("read_inbox", {}))["messages"]

    assert message["message"] == "A run of job 'kv' (storage_kv) succeeded: Created key 'k'."
    assert message.get("untrusted") is None and '"success"' not in json.dumps(message)


async def test_an_agent_jobs_inbox_message_is_its_answer_labelled_untrusted(client: Client) -> None:
    structured(await client.call_tool("run_now", {
        "job_id": "ask", "agentool_name": "agent", "result_queue": "inbox",
        "input_data": {"operation": "run", "prompt": "Say hello.", "model": "test"}}))

    [message] = structured(await client.call_tool("read_inbox", {}))["messages"]
    [run] = structured(await client.call_tool("get_history", {"job_id": "ask"}))["runs"]

    assert message["message"].startswith("A run of job 'ask' (agent) succeeded; what it answered is in `untrusted`")
    said = message["untrusted"]
    assert said == {"untrusted": True, "from": "model 'test'", "content": "agent answered: success (no tool calls)"}
    assert run["summary"] == said and '"usage"' not in json.dumps(message)
    assert run["result"]["data"]["usage"]["requests"] == 1  # the raw result stays in the history
