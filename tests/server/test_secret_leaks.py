"""A secret a job resolves with `!env:NAME` reaches the request it is for, never a store or a reader.

Each test runs a real job through a real MCP client (in memory) on a real SQLite file, then reads back
what the job stored through the tools and resources a model uses, and the database itself.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from tests.toolkits._http_server import LocalServer, serve_http

from .conftest import ServerFactory, hosted, resource_json, structured

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

NAME = "SS_JOB_TOKEN"
VALUE = "tok-9f3a/b+c=d e"  # base64-ish, with characters that URL and JSON encodings change
REF = f"!env:{NAME}"


@pytest.fixture
def allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, VALUE)


@pytest.fixture
def server(make_server: ServerFactory, db_file: str, allowed: None) -> MCPServer:
    return make_server(db_file, secrets=(NAME,))


@pytest.fixture
async def client(server: MCPServer) -> Any:
    async with hosted(Client(server)) as c:
        yield c


@pytest.fixture(scope="module")
def web() -> Iterator[LocalServer]:
    with serve_http() as running:
        yield running


def stored(db_file: str) -> str:
    """Every row of every table of the database, as text."""
    with sqlite3.connect(db_file) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [r for table in tables for r in conn.execute(f"SELECT * FROM {table}").fetchall()]
    return json.dumps(rows, default=str, ensure_ascii=False)


async def run(client: Client, agentool: str, input_data: dict[str, Any]) -> dict[str, Any]:
    return structured(await client.call_tool("run_now", {"agentool_name": agentool, "input_data": input_data}))


def assert_hidden(*texts: str) -> None:
    for text in texts:
        assert VALUE not in text
        assert "tok-9f3a" not in text  # nor any piece of it


async def test_a_notify_message_is_stored_in_the_inbox_as_its_reference(client: Client, db_file: str) -> None:
    await run(client, "notify", {"operation": "inbox", "title": REF, "message": REF})

    page = structured(await client.call_tool("read_inbox", {}))
    [message] = page["messages"]
    assert message["message"] == REF and message["title"] == REF
    resource = resource_json(await client.read_resource("scheduler://inbox"))
    assert_hidden(json.dumps(page), json.dumps(resource), stored(db_file))


async def test_a_webhook_gets_the_value_and_the_inbox_copy_keeps_the_reference(
    client: Client, db_file: str, web: LocalServer
) -> None:
    await run(client, "notify", {"operation": "webhook", "url": f"{web.url}/hook/title", "title": REF,
                                 "message": "deployed"})

    [received] = web.received_at("/hook/title")
    assert json.loads(received["body"])["title"] == VALUE  # what goes out carries the value: it is what it is for
    page = structured(await client.call_tool("read_inbox", {}))
    assert [m["title"] for m in page["messages"]] == [REF]
    assert_hidden(json.dumps(page), stored(db_file))


async def test_a_queue_message_is_stored_as_its_reference(client: Client, db_file: str) -> None:
    await run(client, "queue", {"operation": "enqueue", "queue_name": "jobs", "message": {"token": REF, "n": 1}})

    page = structured(await client.call_tool("read_queue", {"queue_name": "jobs"}))
    assert [m["message"] for m in page["messages"]] == [{"token": REF, "n": 1}]
    resource = resource_json(await client.read_resource("scheduler://queues/jobs"))
    peeked = await run(client, "queue", {"operation": "peek", "queue_name": "jobs"})
    assert_hidden(json.dumps(page), json.dumps(resource), json.dumps(peeked), stored(db_file))


async def test_a_kv_value_is_stored_as_its_reference(client: Client, db_file: str) -> None:
    await run(client, "storage_kv", {"operation": "set", "key": "creds", "value": {"api": REF}})

    got = await run(client, "storage_kv", {"operation": "get", "key": "creds"})

    assert got["result"]["data"]["value"] == {"api": REF}
    assert_hidden(json.dumps(got), stored(db_file))


async def test_a_secret_used_as_a_key_or_a_queue_name_is_stored_and_listed_as_its_reference(
    client: Client, db_file: str
) -> None:
    await run(client, "storage_kv", {"operation": "set", "key": REF, "value": 1})
    await run(client, "queue", {"operation": "enqueue", "queue_name": REF, "message": {"n": 1}})

    got = await run(client, "storage_kv", {"operation": "get", "key": REF})  # the same reference finds it again
    keys = await run(client, "storage_kv", {"operation": "keys", "pattern": "*"})
    queues = await run(client, "queue", {"operation": "list_queues"})
    listing = resource_json(await client.read_resource("scheduler://queues"))

    assert got["result"]["data"]["value"] == 1
    assert keys["result"]["data"]["keys"] == [REF]
    assert REF in json.dumps(queues)
    assert_hidden(json.dumps(got), json.dumps(keys), json.dumps(queues), json.dumps(listing), stored(db_file))


async def test_a_log_record_is_written_with_the_reference(client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    await run(client, "logging", {"operation": "log", "level": "WARNING", "message": REF, "logger_name": "job",
                                  "data": {"token": REF}})

    written = capsys.readouterr().err
    assert f"[job] {REF}" in written and json.dumps({"token": REF}) in written
    assert_hidden(written)


async def test_a_secret_sent_in_an_http_query_does_not_come_back_in_the_result_url(
    client: Client, db_file: str, web: LocalServer
) -> None:
    outcome = await run(client, "http", {"operation": "request", "url": f"{web.url}/echo/query",
                                         "query": {"key": REF}})

    [received] = web.received_at("/echo/query")
    assert received["query"] == {"key": VALUE}
    history = structured(await client.call_tool("get_history", {"agentool_name": "http"}))
    assert REF in outcome["result"]["data"]["url"]
    assert_hidden(json.dumps(outcome), json.dumps(history), stored(db_file))

