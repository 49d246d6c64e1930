"""Notifications about jobs per owner (issue 24 item 4), through a real `mcp-scheduler --transport http` with named
tokens: a session whose principal lacks scheduler:admin is told nothing about another principal's jobs (their
resources updated, the job list changed, their runs, the inbox messages they post) although it subscribed to all of
them, in both protocol eras; it is still told of its own, an admin of every one; a subscription to another's job is
answered as one to a job that does not exist."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.subscriptions import ResourcesListChanged, ResourceUpdated

from tests._net import authorized
from tests.server.conftest import WAIT, Inbox, hosted, hourly, http_server, list_changed, structured, updated

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

ROOT_TOKEN, ALICE_TOKEN, BOB_TOKEN = "notify-root-T0ken", "notify-alice-T0ken", "notify-bob-T0ken"
TOKENS = ("--auth-token", f"root:admin:{ROOT_TOKEN}", "--auth-token", f"alice:read+write+run:{ALICE_TOKEN}",
          "--auth-token", f"bob:read+write+run:{BOB_TOKEN}")
ALICES = ("scheduler://jobs/alices", "scheduler://jobs/alices/history")
BOBS = ("scheduler://jobs/bobs", "scheduler://jobs/bobs/history")
SHARED = ("scheduler://jobs", "scheduler://inbox", "scheduler://queues", "scheduler://queues/inbox")
URIS = [*ALICES, *BOBS, *SHARED, "scheduler://jobs/nobodys"]  # the last: a job that never exists


@contextlib.asynccontextmanager
async def connect(url: str, token: str, **options: Any) -> AsyncIterator[Client]:
    async with hosted(Client(authorized(url, token), **options)) as client:
        yield client


async def bob_changes_and_runs_his_job(bob: Client) -> None:
    """Every change a job can have, and runs that post to the inbox; `bobs` exists already."""
    structured(await bob.call_tool("run_now", {"job_id": "bobs"}))
    structured(await bob.call_tool("update_job", {"job_id": "bobs", "schedule_type": "interval",
                                                  "schedule": "2 hours"}))
    structured(await bob.call_tool("pause_job", {"job_id": "bobs"}))
    structured(await bob.call_tool("resume_job", {"job_id": "bobs"}))
    structured(await bob.call_tool("run_now", {"job_id": "bobs"}))
    structured(await bob.call_tool("cancel_job", {"job_id": "bobs"}))


def about_bob(item: Any) -> bool:
    return "bobs" in json.dumps(getattr(item, "params", item), default=str)


# ---------------------------------------------------------------------- handshake era


def after(inbox: Inbox, seen: int, predicate: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """`predicate`, for the items `inbox` received after its first `seen`."""
    return lambda m: predicate(m) and any(item is m for item in inbox.items[seen:])


def update_of(uris: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda m: any(updated(uri)(m) for uri in uris)


async def test_a_handshake_session_is_told_only_of_the_jobs_its_principal_may_see(tmp_path: Path) -> None:
    notes = {name: Inbox() for name in ("alice", "bob", "root")}
    logs = {name: Inbox() for name in ("alice", "bob", "root")}

    def legacy(name: str) -> dict[str, Any]:
        return {"mode": "legacy", "message_handler": notes[name].message_handler,
                "logging_callback": logs[name].logging_callback}

    with http_server(tmp_path, "--transport", "http", *TOKENS) as running:
        url = f"{running.base}/mcp"
        async with connect(url, ALICE_TOKEN, **legacy("alice")) as alice, \
                connect(url, BOB_TOKEN, **legacy("bob")) as bob, connect(url, ROOT_TOKEN, **legacy("root")) as root:
            for client in (alice, root):
                for uri in URIS:
                    await client.subscribe_resource(uri)  # bob's, and no one's, taken alike
            await bob.subscribe_resource("scheduler://jobs/bobs")
            structured(await alice.call_tool("schedule_job", hourly("alices")))
            await notes["alice"].wait_for(updated("scheduler://jobs/alices"))  # the last of that change's
            seen = len(notes["alice"].items)

            structured(await bob.call_tool("schedule_job", hourly("bobs", result_queue="inbox")))
            await bob_changes_and_runs_his_job(bob)
            await notes["bob"].wait_for(updated("scheduler://jobs/bobs"))
            # One task tells every session in order: had bob's changes reached alice, they would come before this.
            structured(await alice.call_tool("run_now", {"job_id": "alices"}))
            barrier = await notes["alice"].wait_for(after(notes["alice"], seen, updated(ALICES[1])))
            structured(await alice.call_tool("cancel_job", {"job_id": "alices"}))  # her own job gone: told
            await notes["alice"].wait_for(after(notes["alice"], seen, list_changed))
            await notes["root"].wait_for(after(notes["root"], 0, update_of(ALICES[1:])))
            await notes["root"].wait_for(lambda m: len(notes["root"].matching(list_changed)) >= 2)

    alices = notes["alice"].items[seen:]
    before_barrier = alices[:next(i for i, m in enumerate(alices) if m is barrier) + 1]
    assert before_barrier and all(update_of(ALICES)(m) for m in before_barrier), before_barrier
    assert not any(about_bob(m) for m in notes["alice"].items)
    assert not notes["alice"].matching(update_of(SHARED[1:]))  # bob's inbox messages: not hers
    assert not logs["alice"].matching(about_bob) and logs["root"].matching(about_bob)  # the inbox's log messages
    root = notes["root"]
    for uri in (*BOBS, *SHARED, *ALICES):
        assert root.matching(updated(uri)), uri
    assert not root.matching(updated("scheduler://jobs/nobodys"))


# ---------------------------------------------------------------------- 2026-07-28 era


async def collect(subscription: Any, got: list[Any], until: Callable[[Any], bool]) -> None:
    """Append a listen stream's events to `got` up to the first one matching `until`."""

    async def find() -> None:
        async for event in subscription:
            got.append(event)
            if until(event):
                return
        raise AssertionError("the subscription stream ended")

    await asyncio.wait_for(find(), WAIT)


def event_for(*uris: str) -> Callable[[Any], bool]:
    return lambda e: isinstance(e, ResourceUpdated) and e.uri in uris


async def test_a_listen_stream_is_told_only_of_the_jobs_its_principal_may_see(tmp_path: Path) -> None:
    alices_events: list[Any] = []
    roots_events: list[Any] = []
    with http_server(tmp_path, "--transport", "http", *TOKENS) as running:
        url = f"{running.base}/mcp"
        async with connect(url, ALICE_TOKEN) as alice, connect(url, BOB_TOKEN) as bob, \
                connect(url, ROOT_TOKEN) as root:
            structured(await bob.call_tool("schedule_job", hourly("bobs", result_queue="inbox")))
            async with alice.listen(resource_subscriptions=URIS, resources_list_changed=True) as alices, \
                    root.listen(resource_subscriptions=URIS, resources_list_changed=True) as roots:
                honored = alices.honored.resource_subscriptions  # bob's existing job as the one no one has
                structured(await alice.call_tool("schedule_job", hourly("alices")))
                await collect(alices, [], event_for(ALICES[0]))

                await bob_changes_and_runs_his_job(bob)
                structured(await alice.call_tool("run_now", {"job_id": "alices"}))
                await collect(alices, alices_events, event_for(ALICES[1]))
                structured(await alice.call_tool("cancel_job", {"job_id": "alices"}))
                await collect(alices, alices_events, lambda e: isinstance(e, ResourcesListChanged))
                await collect(roots, roots_events, event_for(ALICES[1]))  # bob's changes were told before

    assert honored == URIS
    until_run = alices_events[:next(i for i, e in enumerate(alices_events) if event_for(ALICES[1])(e)) + 1]
    assert all(event_for(*ALICES)(e) for e in until_run), until_run
    assert not any(event_for(*BOBS, *SHARED[1:])(e) for e in alices_events)
    told_root = {e.uri for e in roots_events if isinstance(e, ResourceUpdated)}
    assert set(BOBS) | set(SHARED) | {ALICES[1]} <= told_root
    assert "scheduler://jobs/nobodys" not in told_root
    assert any(isinstance(e, ResourcesListChanged) for e in roots_events)  # (one while unread: the client dedups)
