"""Scheduler events reach clients: resources/updated, list_changed and log messages, in both eras."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.client.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import METHOD_NOT_FOUND

from .conftest import Inbox, error_text, hourly, list_changed, next_event, once_now, structured, updated

# Subscriptions, logging/setLevel and log messages are the handshake era's (deprecated at 2026-07-28).
pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

MISSING_KEY = {"operation": "get", "key": "never-set"}  # storage_kv fails at run time: the key does not exist


def legacy(server: MCPServer, inbox: Inbox, logs: Inbox | None = None) -> Client:
    return Client(
        server,
        mode="legacy",
        message_handler=inbox.message_handler,
        logging_callback=logs.logging_callback if logs else None,
    )


def log_from(queue_name: str, level: str) -> Any:
    return lambda p: p.level == level and p.logger == f"mcp_scheduler.queue.{queue_name}"


def event_for(uri: str) -> Any:
    return lambda e: isinstance(e, ResourceUpdated) and e.uri == uri


# ---------------------------------------------------------------------- a job fires


async def test_a_fired_job_notifies_handshake_subscribers_of_its_job_and_history(server: MCPServer) -> None:
    inbox = Inbox()
    async with legacy(server, inbox) as c:
        await c.subscribe_resource("scheduler://jobs/fire-1")
        await c.subscribe_resource("scheduler://jobs/fire-1/history")

        structured(await c.call_tool("schedule_job", once_now("fire-1")))

        await inbox.wait_for(updated("scheduler://jobs/fire-1/history"))
        await inbox.wait_for(updated("scheduler://jobs/fire-1"))
        history = structured(await c.call_tool("get_history", {"job_id": "fire-1"}))
        assert [r["status"] for r in history["runs"]] == ["success"]
        # only subscribed URIs are sent (scheduler://jobs changed too, before the run)
        assert not inbox.matching(updated("scheduler://jobs"))


async def test_a_fired_job_notifies_modern_listeners_of_its_job_and_history(server: MCPServer) -> None:
    uris = ["scheduler://jobs/fire-2", "scheduler://jobs/fire-2/history"]
    async with Client(server) as c, c.listen(resource_subscriptions=uris) as subscription:
        assert subscription.honored.resource_subscriptions == uris

        structured(await c.call_tool("schedule_job", once_now("fire-2")))

        seen: set[str] = set()
        while seen != set(uris):
            event = await next_event(subscription, lambda e: isinstance(e, ResourceUpdated))
            assert event.uri in uris
            seen.add(event.uri)
        history = structured(await c.call_tool("get_history", {"job_id": "fire-2"}))
        assert [r["status"] for r in history["runs"]] == ["success"]


# ---------------------------------------------------------------------- queues


async def test_a_result_queue_message_is_a_resource_update_and_an_info_log(server: MCPServer) -> None:
    inbox, logs = Inbox(), Inbox()
    async with legacy(server, inbox, logs) as c:
        await c.subscribe_resource("scheduler://queues/results")

        structured(await c.call_tool("schedule_job", once_now("reporter", result_queue="results")))

        await inbox.wait_for(updated("scheduler://queues/results"))
        log = await logs.wait_for(log_from("results", "info"))
        assert log.data["queue_name"] == "results"
        assert log.data["message"]["job_id"] == "reporter" and log.data["message"]["status"] == "success"
        queued = structured(await c.call_tool("read_queue", {"queue_name": "results"}))
        assert [m["message_id"] for m in queued["messages"]] == [log.data["message_id"]]


async def test_a_result_queue_message_is_a_resource_update_for_modern_listeners(server: MCPServer) -> None:
    uri = "scheduler://queues/modern-results"
    async with Client(server) as c, c.listen(resource_subscriptions=[uri]) as subscription:
        structured(await c.call_tool("schedule_job", once_now("modern-reporter", result_queue="modern-results")))

        await next_event(subscription, event_for(uri))
        queued = structured(await c.call_tool("read_queue", {"queue_name": "modern-results"}))
        assert queued["messages"][0]["message"]["job_id"] == "modern-reporter"


async def test_an_error_queue_message_is_an_error_log(server: MCPServer) -> None:
    inbox, logs = Inbox(), Inbox()
    async with legacy(server, inbox, logs) as c:
        await c.subscribe_resource("scheduler://queues/failures")
        job = {**once_now("doomed", error_queue="failures"), "agentool_name": "storage_kv", "input_data": MISSING_KEY}

        structured(await c.call_tool("schedule_job", job))

        log = await logs.wait_for(log_from("failures", "error"))
        assert log.data["message"]["job_id"] == "doomed" and log.data["message"]["status"] == "error"
        assert "never-set" in log.data["message"]["error"]
        await inbox.wait_for(updated("scheduler://queues/failures"))
        assert not logs.matching(lambda p: p.level == "info")


async def test_set_level_error_suppresses_info_logs_but_not_error_logs(server: MCPServer) -> None:
    inbox, logs = Inbox(), Inbox()
    async with legacy(server, inbox, logs) as c:
        await c.set_logging_level("error")

        structured(await c.call_tool("schedule_job", hourly("fine", "storage_kv", result_queue="quiet")))
        failing = {**hourly("broken", "storage_kv", error_queue="loud"), "input_data": MISSING_KEY}
        structured(await c.call_tool("schedule_job", failing))

        structured(await c.call_tool("run_now", {"job_id": "fine"}))
        assert "never-set" in error_text(await c.call_tool("run_now", {"job_id": "broken"}))

        # queue events are delivered in order: had the info one been sent, it would have come first
        await logs.wait_for(log_from("loud", "error"))
        assert not logs.matching(log_from("quiet", "info"))
        assert structured(await c.call_tool("read_queue", {"queue_name": "quiet"}))["remaining"] == 1


# ---------------------------------------------------------------------- list changes and unsubscribe


async def test_schedule_and_cancel_send_list_changed_to_handshake_clients(server: MCPServer) -> None:
    inbox = Inbox()
    async with legacy(server, inbox) as c:
        structured(await c.call_tool("schedule_job", hourly("listed")))
        await inbox.wait_for(list_changed)

        inbox.items.clear()
        structured(await c.call_tool("cancel_job", {"job_id": "listed"}))
        await inbox.wait_for(list_changed)

        inbox.items.clear()
        structured(await c.call_tool("list_jobs", {}))
        structured(await c.call_tool("schedule_job", hourly("again")))
        await inbox.wait_for(list_changed)


async def test_schedule_and_cancel_send_list_changed_to_modern_listeners(server: MCPServer) -> None:
    def changed(e: Any) -> bool:
        return isinstance(e, ResourcesListChanged)

    async with Client(server) as c, c.listen(resources_list_changed=True) as subscription:
        assert subscription.honored.resources_list_changed is True

        structured(await c.call_tool("schedule_job", hourly("listed")))
        await next_event(subscription, changed)

        structured(await c.call_tool("cancel_job", {"job_id": "listed"}))
        await next_event(subscription, changed)


async def test_unsubscribe_stops_updates_for_that_uri_only(server: MCPServer) -> None:
    inbox = Inbox()
    a, b = "scheduler://jobs/job-a/history", "scheduler://jobs/job-b/history"
    async with legacy(server, inbox) as c:
        for job_id in ("job-a", "job-b"):
            structured(await c.call_tool("schedule_job", hourly(job_id)))
        await c.subscribe_resource(a)
        await c.subscribe_resource(b)
        structured(await c.call_tool("run_now", {"job_id": "job-a"}))
        await inbox.wait_for(updated(a))

        await c.unsubscribe_resource(a)
        inbox.items.clear()
        structured(await c.call_tool("run_now", {"job_id": "job-a"}))
        structured(await c.call_tool("run_now", {"job_id": "job-b"}))

        await inbox.wait_for(updated(b))  # sent after any update of job-a's run would have been
        assert not inbox.matching(updated(a))


# ---------------------------------------------------------------------- session tracking


async def test_a_closed_handshake_client_is_dropped_from_the_tracked_sessions(server: MCPServer) -> None:
    sessions = server.notifier.sessions
    staying_inbox = Inbox()
    async with legacy(server, staying_inbox) as staying:
        await staying.subscribe_resource("scheduler://jobs/after-close/history")
        assert len(sessions) == 1

        async with legacy(server, Inbox()) as leaving:
            await leaving.list_tools()
            assert len(sessions) == 2
        assert len(sessions) == 1

        # the remaining client still gets its notifications
        structured(await staying.call_tool("schedule_job", once_now("after-close")))
        await staying_inbox.wait_for(updated("scheduler://jobs/after-close/history"))
    assert len(sessions) == 0


async def test_modern_clients_are_not_tracked_as_handshake_sessions(server: MCPServer) -> None:
    sessions = server.notifier.sessions
    async with Client(server) as c:
        structured(await c.call_tool("list_jobs", {}))
        assert c.protocol_version == "2026-07-28"
        assert len(sessions) == 0


async def test_modern_clients_are_pointed_to_listen_instead_of_subscribe(server: MCPServer) -> None:
    async with Client(server) as c:
        with pytest.raises(MCPError) as caught:
            await c.subscribe_resource("scheduler://jobs")
        assert caught.value.code == METHOD_NOT_FOUND
        structured(await c.call_tool("list_jobs", {}))  # the connection is still fine
