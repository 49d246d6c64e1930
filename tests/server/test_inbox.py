"""The inbox over MCP: read_inbox (look, acknowledge, ack_ids), the scheduler://inbox resource, the
notifications a post sends in both eras, and what the instructions and the prompt tell the model."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.client.subscriptions import ResourceUpdated
from mcp.server.mcpserver import MCPServer

from agentool_bridge.toolkits import QueueStore
from agentool_bridge.toolkits.inbox import post_to_inbox
from mcp_scheduler.server import SchedulerServer

from .conftest import Inbox, next_event, resource_json, structured, updated

# Subscriptions and log messages are the handshake era's (deprecated at 2026-07-28).
pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

INBOX_URI = "scheduler://inbox"


def post(server: MCPServer, message: str, **extra: Any) -> str:
    assert isinstance(server, SchedulerServer)
    return post_to_inbox(server.runtime.queues, message, **extra)


def inbox_log(level: str | None = None) -> Any:
    return lambda p: getattr(p, "logger", None) == "mcp_scheduler.inbox" and (level is None or p.level == level)


async def test_read_inbox_looks_without_removing_and_acknowledge_removes(server: MCPServer, client: Client) -> None:
    ids = [post(server, f"message {n}", title=f"t{n}", job_id="backup") for n in range(3)]

    look = structured(await client.call_tool("read_inbox", {"count": 2}))
    assert [m["id"] for m in look["messages"]] == ids[:2]
    assert look["acknowledged"] == 0 and look["remaining"] == 3
    first = look["messages"][0]
    assert first["message"] == "message 0" and first["title"] == "t0" and first["level"] == "info"
    assert first["source"] == "notify" and first["job_id"] == "backup" and first["posted_at"]

    taken = structured(await client.call_tool("read_inbox", {"count": 2, "acknowledge": True}))
    assert [m["id"] for m in taken["messages"]] == ids[:2]
    assert taken["acknowledged"] == 2 and taken["remaining"] == 1

    rest = structured(await client.call_tool("read_inbox", {}))
    assert [m["message"] for m in rest["messages"]] == ["message 2"] and rest["remaining"] == 1


async def test_ack_ids_acknowledge_without_reading(server: MCPServer, client: Client) -> None:
    done, kept = post(server, "done"), post(server, "kept")

    acked = structured(await client.call_tool("read_inbox", {"ack_ids": [done, "not-an-id"]}))

    assert acked == {"messages": [], "acknowledged": 1, "remaining": 1, "not_shown": 0}
    left = structured(await client.call_tool("read_inbox", {}))
    assert [m["id"] for m in left["messages"]] == [kept]


async def test_the_inbox_resource_lists_unread_messages_without_removing_them(
    server: MCPServer, client: Client
) -> None:
    assert INBOX_URI in {str(r.uri) for r in (await client.list_resources()).resources}
    post(server, "disk almost full", title="Backups", level="warning", source="scheduler")

    for _ in range(2):
        inbox = resource_json(await client.read_resource(INBOX_URI))
        assert inbox["count"] == 1 and inbox["unread"] == 1
        (message,) = inbox["messages"]
        assert message["message"] == "disk almost full" and message["level"] == "warning"
        assert message["source"] == "scheduler" and message["title"] == "Backups"


async def test_a_post_is_a_resource_update_and_one_log_message_for_handshake_clients(server: MCPServer) -> None:
    inbox, logs = Inbox(), Inbox()
    async with Client(server, mode="legacy", message_handler=inbox.message_handler,
                      logging_callback=logs.logging_callback) as c:
        await c.subscribe_resource(INBOX_URI)

        message_id = post(server, "the backup failed", level="warning", job_id="backup")

        await inbox.wait_for(updated(INBOX_URI))
        log = await logs.wait_for(inbox_log("warning"))
        assert log.data["id"] == message_id and log.data["message"] == "the backup failed"
        assert log.data["job_id"] == "backup"
        # Notifications go out in order: once a later queue's log arrived, a second inbox log would have too.
        assert isinstance(server, SchedulerServer)
        server.runtime.queues.enqueue("later", "x")
        await logs.wait_for(lambda p: p.logger == "mcp_scheduler.queue.later")
        assert [p.logger for p in logs.items if "inbox" in p.logger] == ["mcp_scheduler.inbox"]


async def test_a_post_by_another_process_is_announced_too(server: MCPServer, db_file: str) -> None:
    logs = Inbox()
    async with Client(server, mode="legacy", logging_callback=logs.logging_callback) as c:
        await c.set_logging_level("info")
        other = QueueStore(db_file)  # another process's store on the same database
        try:
            message_id = post_to_inbox(other, "from elsewhere", level="error")
        finally:
            other.close()

        log = await logs.wait_for(inbox_log("error"))
        assert log.data["id"] == message_id and log.data["message"] == "from elsewhere"


async def test_a_post_is_a_resource_update_for_modern_listeners(server: MCPServer) -> None:
    async with Client(server) as c, c.listen(resource_subscriptions=[INBOX_URI]) as subscription:
        assert subscription.honored.resource_subscriptions == [INBOX_URI]

        post(server, "hello from a job")

        await next_event(subscription, lambda e: isinstance(e, ResourceUpdated) and e.uri == INBOX_URI)
        unread = structured(await c.call_tool("read_inbox", {}))
        assert [m["message"] for m in unread["messages"]] == ["hello from a job"]


async def test_the_instructions_point_to_the_inbox_and_name_the_job_kinds(client: Client) -> None:
    instructions = client.instructions or ""

    assert "scheduler://inbox" in instructions and "read_inbox" in instructions
    assert "cannot write into this chat" in instructions
    assert "shell (off on this server)" in instructions and "storage_kv" in instructions


async def test_the_schedule_prompt_sends_reminders_to_the_inbox_and_promises_no_chat_message(
    client: Client,
) -> None:
    prompt = {p.name: p for p in (await client.list_prompts()).prompts}["schedule_from_request"]
    got = await client.get_prompt("schedule_from_request", {"request": "remind me at 5 to call Ada"})
    text = got.messages[0].content.text

    assert "summarise my inbox" not in (prompt.description or "")
    assert "notify" in text and "'inbox'" in text and "read_inbox" in text
    assert "cannot send a message into this chat" in text
    assert "If none can do it" in text
