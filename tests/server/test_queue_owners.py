"""Queues per owner (issue 24 item 4), through a real `mcp-scheduler --transport http` with named tokens: a
principal without scheduler:admin reads, takes, lists and is told of its own queues alone, under the names it gave;
its jobs' result queues and the `queue` kind in its runs are its own; an admin's job keeps the shared names, and an
admin sees every queue by its stored name."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.subscriptions import ResourceUpdated

from tests._net import authorized
from tests.server.conftest import (
    LOG_INPUT,
    Inbox,
    error_text,
    hosted,
    http_server,
    next_event,
    resource_json,
    structured,
    updated,
)

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

ROOT_TOKEN, ALICE_TOKEN, BOB_TOKEN = "queues-root-T0ken", "queues-alice-T0ken", "queues-bob-T0ken"
TOKENS = ("--auth-token", f"root:admin:{ROOT_TOKEN}", "--auth-token", f"alice:read+write+run:{ALICE_TOKEN}",
          "--auth-token", f"bob:read+write+run:{BOB_TOKEN}")
ALICES_RESULTS = "~token:alice/results"


def job(job_id: str, agentool_name: str = "logging", input_data: Any = None, **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "schedule_type": "interval", "schedule": "1 hour", "agentool_name": agentool_name,
            "input_data": LOG_INPUT if input_data is None else input_data, **extra}


def enqueue(queue_name: str, message: Any) -> dict[str, Any]:
    return {"operation": "enqueue", "queue_name": queue_name, "message": message}


@contextlib.asynccontextmanager
async def connect(url: str, token: str, **options: Any) -> AsyncIterator[Client]:
    async with hosted(Client(authorized(url, token), **options)) as client:
        yield client


async def read(client: Client, queue_name: str, mode: str = "peek") -> dict[str, Any]:
    return structured(await client.call_tool("read_queue", {"queue_name": queue_name, "mode": mode}))


async def listed(client: Client) -> dict[str, int]:
    queues = resource_json(await client.read_resource("scheduler://queues"))["queues"]
    return {q["queue_name"]: q["size"] for q in queues}


async def ran(client: Client, job_id: str, *kind: Any, **schedule: Any) -> None:
    structured(await client.call_tool("schedule_job", job(job_id, *kind, **schedule)))
    structured(await client.call_tool("run_now", {"job_id": job_id}))


def job_ids(page: dict[str, Any]) -> list[str]:
    return [m["message"].get("job_id") for m in page["messages"]]


async def test_each_principal_reads_takes_and_lists_its_own_queues_and_an_admin_all(tmp_path: Path) -> None:
    with http_server(tmp_path, "--transport", "http", *TOKENS) as running:
        url = f"{running.base}/mcp"
        async with connect(url, ALICE_TOKEN) as alice, connect(url, BOB_TOKEN) as bob, \
                connect(url, ROOT_TOKEN) as root:
            await ran(alice, "alices", result_queue="results")
            await ran(alice, "alices-notes", "queue", enqueue("notes", {"from": "alice"}))
            await ran(root, "roots", result_queue="results")  # an admin's job: the shared "results"
            forged = error_text(await alice.call_tool("run_now", {
                "agentool_name": "queue", "input_data": enqueue("~token:bob/inbox2", "forged")}))

            bobs_list = await listed(bob)
            bob_peeks, bob_takes = await read(bob, "results"), await read(bob, "results", "take")
            bob_reaches = error_text(await bob.call_tool("read_queue", {"queue_name": ALICES_RESULTS}))
            with pytest.raises(Exception, match="another principal's queues"):
                await bob.read_resource(f"scheduler://queues/{ALICES_RESULTS}")

            alices_list = await listed(alice)
            alices = await read(alice, "results")
            roots_list = await listed(root)
            roots, roots_view_of_alices = await read(root, "results"), await read(root, ALICES_RESULTS)
            alices_notes, left = await read(alice, "notes", "take"), await read(alice, "results")

    assert "another principal's queues" in forged
    assert bobs_list == {}
    assert bob_peeks["messages"] == [] and bob_peeks["remaining"] == 0 and bob_takes["messages"] == []
    assert "another principal's queues" in bob_reaches
    assert alices_list == {"results": 1, "notes": 1}
    assert alices["queue_name"] == "results" and job_ids(alices) == ["alices"]
    assert [m["message"] for m in alices_notes["messages"]] == [{"from": "alice"}]
    assert roots_list["results"] == 1 and roots_list[ALICES_RESULTS] == 1 and roots_list["~token:alice/notes"] == 1
    assert not any(name.startswith("~token:bob/") for name in roots_list)  # the forged enqueue wrote nothing
    assert job_ids(roots) == ["roots"] and job_ids(roots_view_of_alices) == ["alices"]
    assert job_ids(left) == ["alices"]  # bob's take took nothing of hers


def queue_log(name: str) -> Any:
    return lambda p: getattr(p, "logger", None) == f"mcp_scheduler.queue.{name}"


async def test_a_handshake_session_is_told_of_its_own_queues_alone(tmp_path: Path) -> None:
    said = {name: (Inbox(), Inbox()) for name in ("alice", "bob", "root")}  # (notifications, log messages)

    def legacy(name: str) -> dict[str, Any]:
        notes, logs = said[name]
        return {"mode": "legacy", "message_handler": notes.message_handler, "logging_callback": logs.logging_callback}

    with http_server(tmp_path, "--transport", "http", *TOKENS) as running:
        url = f"{running.base}/mcp"
        async with connect(url, ALICE_TOKEN, **legacy("alice")) as alice, \
                connect(url, BOB_TOKEN, **legacy("bob")) as bob, connect(url, ROOT_TOKEN, **legacy("root")) as root:
            for client in (alice, bob):
                for uri in ("scheduler://queues/results", "scheduler://queues", "scheduler://queues/mine"):
                    await client.subscribe_resource(uri)
            await root.subscribe_resource(f"scheduler://queues/{ALICES_RESULTS}")

            await ran(alice, "alices", result_queue="results")
            await said["alice"][0].wait_for(updated("scheduler://queues/results"))
            told = await said["alice"][1].wait_for(queue_log("results"))
            await said["root"][0].wait_for(updated(f"scheduler://queues/{ALICES_RESULTS}"))
            roots = await said["root"][1].wait_for(queue_log(ALICES_RESULTS))
            await ran(bob, "bobs", result_queue="mine")  # told after alice's message: one task delivers in order
            await said["bob"][1].wait_for(queue_log("mine"))

    bob_notes, bob_logs = said["bob"]
    assert told.data["queue_name"] == "results" and told.data["message"]["job_id"] == "alices"
    assert roots.data["queue_name"] == ALICES_RESULTS
    assert bob_notes.matching(updated("scheduler://queues/mine")) and bob_notes.matching(updated("scheduler://queues"))
    assert not bob_notes.matching(updated("scheduler://queues/results"))
    assert len(bob_notes.matching(updated("scheduler://queues"))) == 1 and len(bob_logs.items) == 1
    assert not said["alice"][1].matching(queue_log("mine"))


async def test_a_listen_stream_is_told_of_its_principal_s_queues_alone(tmp_path: Path) -> None:
    uris = ["scheduler://queues/results", "scheduler://queues", "scheduler://queues/mine"]
    with http_server(tmp_path, "--transport", "http", *TOKENS) as running:
        url = f"{running.base}/mcp"
        async with connect(url, ALICE_TOKEN) as alice, connect(url, BOB_TOKEN) as bob, \
                alice.listen(resource_subscriptions=uris) as alices, bob.listen(resource_subscriptions=uris) as bobs:
            await ran(alice, "alices", result_queue="results")
            first = await next_event(alices, lambda e: isinstance(e, ResourceUpdated))
            await ran(bob, "bobs", result_queue="mine")
            bobs_first = await next_event(bobs, lambda e: isinstance(e, ResourceUpdated))

    assert first.uri == "scheduler://queues/results"
    # Alice's message was published before bob's job ran: had it reached bob's stream, it would come first.
    assert bobs_first.uri == "scheduler://queues/mine"
