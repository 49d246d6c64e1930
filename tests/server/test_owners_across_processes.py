"""Owners and the audit log with real processes (issue 24 item 4): two `mcp-scheduler --transport http` servers on
one PostgreSQL store, each accepting an admin token and two named non-admin static tokens (`NAME:SCOPES:TOKEN`).
Alice works through one server, Bob through the other: neither sees or changes the other's jobs, the admin sees
both, the audit log (resource and `mcp-scheduler audit`) lists every change of the session in order."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests._net import authorized
from tests.server.conftest import error_text, hosted, resource_json, run_cli, structured
from tests.server.test_address_policy_across_processes import TOKEN, Server, serving

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

ALICE, BOB = "alice-T0ken_2461", "bob-T0ken_9135"
NAMED = ("--auth-token", f"alice:read+write+run:{ALICE}", "--auth-token", f"bob:read+write+run:{BOB}")


@contextlib.asynccontextmanager
async def connect(server: Server, token: str) -> AsyncIterator[Client]:
    async with hosted(Client(authorized(server.url, token))) as client:
        yield client


def kv_job(job_id: str) -> dict[str, Any]:
    return {"job_id": job_id, "schedule_type": "interval", "schedule": "1 hour", "agentool_name": "storage_kv",
            "input_data": {"operation": "set", "key": job_id, "value": 1}}


async def ids(client: Client) -> set[str]:
    return {job["job_id"] for job in structured(await client.call_tool("list_jobs", {}))["jobs"]}


async def test_two_principals_on_one_postgresql_store_do_not_see_each_others_jobs_and_the_audit_lists_all(
    tmp_path: Path, postgres_url: str
) -> None:
    with serving(tmp_path, "one", postgres_url, "127.0.0.1", *NAMED) as one, \
            serving(tmp_path, "two", postgres_url, "127.0.0.1", *NAMED) as two:
        async with connect(one, ALICE) as alice, connect(two, BOB) as bob, connect(two, TOKEN) as admin:
            structured(await alice.call_tool("schedule_job", kv_job("alices")))
            structured(await bob.call_tool("schedule_job", kv_job("bobs")))
            assert await ids(alice) == {"alices"}
            assert await ids(bob) == {"bobs"}
            for tool in ("get_job", "pause_job", "cancel_job", "run_now"):
                assert "not found" in error_text(await bob.call_tool(tool, {"job_id": "alices"})).lower()
            structured(await bob.call_tool("pause_job", {"job_id": "bobs"}))
            structured(await alice.call_tool("run_now", {"job_id": "alices"}))
            assert await ids(admin) == {"alices", "bobs"}
            structured(await admin.call_tool("cancel_job", {"job_id": "bobs"}))
            assert await ids(bob) == set()

            page = resource_json(await admin.read_resource("scheduler://audit"))
            session = [(e["subject"], e["operation"], e["job_id"]) for e in page["entries"]]
            admin_subject = session[-1][0]
            assert session == [
                ("token:alice", "create", "alices"), ("token:bob", "create", "bobs"), ("token:bob", "pause", "bobs"),
                ("token:alice", "run_now", "alices"), (admin_subject, "cancel", "bobs"),
            ]
            assert admin_subject.startswith("token:") and admin_subject not in ("token:alice", "token:bob")
            own = resource_json(await alice.read_resource("scheduler://audit"))
            assert [e["operation"] for e in own["entries"]] == ["create", "run_now"]

    printed = run_cli("audit", "--db", postgres_url, "--json")
    assert printed.returncode == 0, printed.stderr
    assert [(e["subject"], e["operation"]) for e in json.loads(printed.stdout)] == [(s, o) for s, o, _ in session]
    table = run_cli("audit", "--db", postgres_url, "--job", "alices")
    assert table.returncode == 0 and "token:alice" in table.stdout and "bobs" not in table.stdout


@pytest.mark.parametrize(("value", "subject", "scopes", "token"), [
    ("alice:read+write:s3cret", "token:alice", {"scheduler:read", "scheduler:write"}, "s3cret"),
    ("ops:admin:a:b:c", "token:ops", {"scheduler:admin"}, "a:b:c"),
    ("plain-token", None, {"scheduler:admin"}, "plain-token"),
    ("x:nonsense:tok", None, {"scheduler:admin"}, "x:nonsense:tok"),  # not a named form: a plain token with colons
])
async def test_a_named_static_token_is_its_own_principal_with_its_scopes(
    value: str, subject: str | None, scopes: set[str], token: str
) -> None:
    from mcp_scheduler.server.auth import StaticTokenVerifier

    verifier = StaticTokenVerifier([value, "other"])
    accepted = await verifier.verify_token(token)
    assert accepted is not None and set(accepted.scopes) == scopes
    assert accepted.subject == subject if subject else accepted.subject.startswith("token:")
    assert await verifier.verify_token(value if value != token else "nope") is None
