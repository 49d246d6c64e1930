"""Two servers on one database (a SQLite file, or PostgreSQL): clients of the standby see the runner's runs
and queue messages as notifications, in both protocol eras, and every tool works there."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.client.subscriptions import ResourceUpdated

from agentool_bridge.toolkits import QueueStore

from .conftest import Inbox, ServerFactory, next_event, once_now, structured, updated

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, db_file: str) -> str:
    """The shared database (a PostgreSQL schema outlives the runtimes on it, whatever the fixture order)."""
    return db_file if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


async def test_a_standby_s_handshake_subscriber_hears_of_a_run_done_by_the_runner(
    database: str, make_server: ServerFactory
) -> None:
    runner, standby = make_server(database), make_server(database)
    inbox = Inbox()
    async with Client(runner) as at_runner:
        assert structured(await at_runner.call_tool("scheduler_status", {}))["role"] == "runner"
        async with Client(standby, mode="legacy", message_handler=inbox.message_handler) as at_standby:
            assert structured(await at_standby.call_tool("scheduler_status", {}))["role"] == "standby"
            await at_standby.subscribe_resource("scheduler://jobs/shared-1/history")

            structured(await at_standby.call_tool("schedule_job", once_now("shared-1")))

            await inbox.wait_for(updated("scheduler://jobs/shared-1/history"))
            history = structured(await at_standby.call_tool("get_history", {"job_id": "shared-1"}))
            assert [r["status"] for r in history["runs"]] == ["success"]
            # it ran in the runner: the runner's client reads the same record
            at_runner_history = structured(await at_runner.call_tool("get_history", {"job_id": "shared-1"}))
            assert at_runner_history["runs"] == history["runs"]


async def test_a_standby_s_modern_listener_hears_of_a_job_scheduled_and_run_through_the_runner(
    database: str, make_server: ServerFactory
) -> None:
    runner, standby = make_server(database), make_server(database)
    uri = "scheduler://jobs/shared-2/history"
    async with Client(runner) as at_runner, Client(standby) as at_standby:
        async with at_standby.listen(resource_subscriptions=[uri]) as subscription:
            structured(await at_runner.call_tool("schedule_job", once_now("shared-2")))

            event = await next_event(subscription, lambda e: isinstance(e, ResourceUpdated) and e.uri == uri)
            assert event.uri == uri
        job = structured(await at_standby.call_tool("get_job", {"job_id": "shared-2"}))
        assert job["job"]["state"] == "completed"


async def test_a_message_the_runner_enqueues_is_announced_to_a_standby_s_clients(
    database: str, make_server: ServerFactory
) -> None:
    runner, standby = make_server(database), make_server(database)
    inbox, logs = Inbox(), Inbox()
    async with Client(runner) as at_runner:
        async with Client(
            standby, mode="legacy", message_handler=inbox.message_handler, logging_callback=logs.logging_callback
        ) as at_standby:
            await at_standby.subscribe_resource("scheduler://queues/shared-results")

            structured(await at_runner.call_tool("schedule_job", once_now("reporter", result_queue="shared-results")))

            await inbox.wait_for(updated("scheduler://queues/shared-results"))
            log = await logs.wait_for(lambda p: p.logger == "mcp_scheduler.queue.shared-results")
            assert log.level == "info" and log.data["message"]["job_id"] == "reporter"
            queued = structured(await at_standby.call_tool("read_queue", {"queue_name": "shared-results"}))
            assert [m["message_id"] for m in queued["messages"]] == [log.data["message_id"]]


async def test_messages_another_process_enqueues_are_announced_at_once(
    database: str, make_server: ServerFactory
) -> None:
    server = make_server(database)
    inbox = Inbox()
    uri = "scheduler://queues/from-outside"
    async with Client(server, mode="legacy", message_handler=inbox.message_handler) as client:
        await client.subscribe_resource(uri)
        elsewhere = QueueStore(database)  # another process's queue store, on the same database
        try:
            sent = []
            # The second message comes after the server's first look at the store: only a notification
            # (PostgreSQL) or data_version (SQLite) tells it, well within the 10 s after which a PostgreSQL
            # follower looks again anyway.
            for n in (1, 2):
                sent.append(elsewhere.enqueue("from-outside", {"n": n}).message_id)
                await inbox.wait_for(lambda _, n=n: len(inbox.matching(updated(uri))) >= n, within=3)
        finally:
            elsewhere.close()
        queued = structured(await client.call_tool("read_queue", {"queue_name": "from-outside"}))
        assert [m["message_id"] for m in queued["messages"]] == sent
