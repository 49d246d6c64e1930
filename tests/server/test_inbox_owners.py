"""The inbox per owner (issue 24 item 4): a principal without scheduler:admin reads and acknowledges only the
messages about its own jobs; messages about no job (or another's) are the admins'. In-process with two principals
(`acting_as`), and through a real `mcp-scheduler --transport http` with two named tokens."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from agentool_bridge.toolkits.inbox import post_to_inbox
from mcp_scheduler import SchedulerInput
from mcp_scheduler.principals import READ, RUN, WRITE, Principal, acting_as
from mcp_scheduler.server import SchedulerServer
from mcp_scheduler.server.inbox import read_inbox
from tests._net import authorized
from tests.server.conftest import LOG_INPUT, Inbox, ServerFactory, hosted, http_server, resource_json, structured

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

ALICE = Principal("token:alice", "alice-client", frozenset({READ, WRITE, RUN}))
BOB = Principal("token:bob", "bob-client", frozenset({READ, WRITE, RUN}))
ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN = "inbox-admin-T0ken", "inbox-alice-T0ken", "inbox-bob-T0ken"


def job(job_id: str, **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "schedule_type": "interval", "schedule": "1 hour", "agentool_name": "logging",
            "input_data": LOG_INPUT, **extra}


def ids(page: Any) -> list[str | None]:
    return [message.job_id for message in page.messages]


async def test_a_principal_reads_and_acknowledges_only_the_messages_of_its_own_jobs(
    make_server: ServerFactory, db_file: str
) -> None:
    server = make_server(db_file)
    assert isinstance(server, SchedulerServer)
    async with server.use() as runtime:
        for principal, job_id in ((ALICE, "alices"), (BOB, "bobs")):
            with acting_as(principal):
                await runtime.service.schedule(SchedulerInput(operation="schedule", **job(job_id)))
        queues = runtime.queues
        posted = {
            name: post_to_inbox(queues, f"about {name}", job_id=name) for name in ("alices", "bobs", "gone", None)
        }

        with acting_as(ALICE):
            alices = read_inbox(runtime)
            refused = read_inbox(runtime, ack_ids=[posted["bobs"], posted[None], posted["gone"]])
        with acting_as(BOB):
            bobs = read_inbox(runtime, acknowledge=True)
        everyone = read_inbox(runtime)  # as local: an admin

        assert ids(alices) == ["alices"] and alices.remaining == 1
        assert refused.acknowledged == 0 and refused.remaining == 1  # others' messages are left alone
        assert ids(bobs) == ["bobs"] and bobs.acknowledged == 1 and bobs.remaining == 0
        assert ids(everyone) == ["alices", "gone", None] and everyone.remaining == 3
        with acting_as(ALICE):
            mine = read_inbox(runtime, ack_ids=[posted["alices"]])
        assert mine.acknowledged == 1 and mine.remaining == 0
        assert ids(read_inbox(runtime)) == ["gone", None]


@contextlib.asynccontextmanager
async def connect(url: str, token: str) -> AsyncIterator[Client]:
    async with hosted(Client(authorized(url, token))) as client:
        yield client


async def inbox(client: Client, **arguments: Any) -> dict[str, Any]:
    return structured(await client.call_tool("read_inbox", arguments))


async def test_two_named_tokens_read_only_their_jobs_messages_over_http(tmp_path: Path) -> None:
    tokens = ("--auth-token", ADMIN_TOKEN, "--auth-token", f"alice:read+write+run:{ALICE_TOKEN}",
              "--auth-token", f"bob:read+write+run:{BOB_TOKEN}")
    with http_server(tmp_path, "--transport", "http", *tokens) as running:
        url = f"{running.base}/mcp"
        async with connect(url, ALICE_TOKEN) as alice, connect(url, BOB_TOKEN) as bob, \
                connect(url, ADMIN_TOKEN) as admin:
            for client, job_id in ((alice, "alices"), (bob, "bobs")):
                structured(await client.call_tool("schedule_job", job(job_id, result_queue="inbox")))
                structured(await client.call_tool("run_now", {"job_id": job_id}))  # its result goes to the inbox

            alices = await inbox(alice)
            listed = resource_json(await alice.read_resource("scheduler://inbox"))
            refused = await inbox(bob, ack_ids=[m["id"] for m in alices["messages"]])
            both = await inbox(admin)
            taken = await inbox(bob, acknowledge=True)
            left = await inbox(admin)

    assert [m["job_id"] for m in alices["messages"]] == ["alices"] and alices["remaining"] == 1
    assert [m["job_id"] for m in listed["messages"]] == ["alices"] and listed["unread"] == 1
    assert refused["acknowledged"] == 0 and refused["remaining"] == 1
    assert [m["job_id"] for m in both["messages"]] == ["alices", "bobs"] and both["remaining"] == 2
    assert [m["job_id"] for m in taken["messages"]] == ["bobs"] and taken["acknowledged"] == 1
    assert [m["job_id"] for m in left["messages"]] == ["alices"]


def about(job_id: str) -> Any:
    return lambda p: p.logger == "mcp_scheduler.inbox" and isinstance(p.data, dict) and p.data.get("job_id") == job_id


async def test_a_session_is_told_of_inbox_messages_about_its_principal_s_jobs_alone(tmp_path: Path) -> None:
    tokens = ("--auth-token", f"alice:read+write+run:{ALICE_TOKEN}", "--auth-token", f"bob:read+write+run:{BOB_TOKEN}")
    alice_logs, bob_logs = Inbox(), Inbox()
    with http_server(tmp_path, "--transport", "http", *tokens) as running:
        url = f"{running.base}/mcp"
        async with hosted(Client(authorized(url, ALICE_TOKEN), mode="legacy",
                                 logging_callback=alice_logs.logging_callback)) as alice, \
                hosted(Client(authorized(url, BOB_TOKEN), mode="legacy",
                              logging_callback=bob_logs.logging_callback)) as bob:
            structured(await alice.call_tool("schedule_job", job("alices", result_queue="inbox")))
            structured(await bob.call_tool("schedule_job", job("bobs", result_queue="inbox")))
            structured(await alice.call_tool("run_now", {"job_id": "alices"}))
            structured(await bob.call_tool("run_now", {"job_id": "bobs"}))
            await bob_logs.wait_for(about("bobs"))  # told after alice's message, which one task delivers first
            structured(await alice.call_tool("run_now", {"job_id": "alices"}))
            await alice_logs.wait_for(lambda p: len(alice_logs.matching(about("alices"))) >= 2)

    assert not bob_logs.matching(about("alices")) and not alice_logs.matching(about("bobs"))
