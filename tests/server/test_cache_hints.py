"""The 2026-07-28 cache hints: what changes only with a restart may be kept for minutes, what jobs and runs change
is stale at once, and only the job kinds may be shared between callers."""

from __future__ import annotations

from mcp import Client
from mcp.server.mcpserver import MCPServer

from mcp_scheduler.server.cache_hints import STATIC_TTL_MS


async def test_resources_and_lists_carry_the_hints_that_fit_them(server: MCPServer) -> None:
    async with Client(server) as c:  # the 2026-07-28 era: answers carry hints
        kinds = await c.read_resource("scheduler://agentools")
        changing = [
            await c.read_resource(uri)
            for uri in ("scheduler://jobs", "scheduler://status", "scheduler://inbox", "scheduler://queues")
        ]
        tools, prompts, templates = await c.list_tools(), await c.list_prompts(), await c.list_resource_templates()
        resources = await c.list_resources()

    assert (kinds.ttl_ms, kinds.cache_scope) == (STATIC_TTL_MS, "public")
    assert {(r.ttl_ms, r.cache_scope) for r in changing} == {(0, "private")}
    assert {(r.ttl_ms, r.cache_scope) for r in (tools, prompts, templates)} == {(STATIC_TTL_MS, "private")}
    assert (resources.ttl_ms, resources.cache_scope) == (0, "private")  # jobs change it (list_changed)
