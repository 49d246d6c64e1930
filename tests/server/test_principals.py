"""The principal of a tool call: who acts (token subject, client name) and with which scopes."""

from __future__ import annotations

import asyncio

from mcp.client import Client
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import Implementation

from mcp_scheduler.principals import ADMIN, LOCAL, READ, Principal, acting, acting_as
from mcp_scheduler.server.auth import StaticTokenVerifier
from mcp_scheduler.server.tooling import READ_ONLY, Tool
from tests.server.conftest import hosted, structured


async def test_acting_is_local_outside_a_call_and_restored_after_a_block_also_in_tasks_started_inside() -> None:
    assert acting() is LOCAL and LOCAL.has(READ) and LOCAL.admin
    reader = Principal("alice", "probe", frozenset({READ}))
    with acting_as(reader):
        assert await asyncio.create_task(asyncio.to_thread(acting)) == reader  # contextvars follow tasks and threads
        assert reader.has(READ) and not reader.has("scheduler:write") and not reader.admin
    assert acting() is LOCAL


async def test_each_static_token_is_a_principal_of_its_own_with_every_scope_and_without_the_token_in_its_name() -> None:
    verifier = StaticTokenVerifier(["first-secret", "second-secret"])
    first, second = await verifier.verify_token("first-secret"), await verifier.verify_token("second-secret")
    assert first is not None and second is not None and await verifier.verify_token("third") is None
    assert first.subject != second.subject and all(t.subject.startswith("token:") for t in (first, second))
    assert "secret" not in first.subject and first.scopes == [ADMIN]


async def test_a_tool_runs_as_the_client_that_called_it() -> None:
    mcp = MCPServer("principals")

    async def whoami(ctx: Context) -> dict[str, object]:
        """Who acts."""
        principal = acting()
        return {"subject": principal.subject, "client": principal.client, "admin": principal.admin}

    Tool(whoami, "Who acts.", READ_ONLY, READ).add_to(mcp)
    for mode in ("auto", "legacy"):
        client = Client(mcp, mode=mode, client_info=Implementation(name="probe-client", version="1.0"))
        async with hosted(client) as c:
            answer = structured(await c.call_tool("whoami", {}))
        # In memory there is no token: the operator (stdio's case), named by its client when the era says who it is.
        assert answer["subject"] == "local" and answer["admin"] is True
        assert answer["client"] in ("probe-client", None)
        if mode == "legacy":
            assert answer["client"] == "probe-client"
    assert acting() is LOCAL
