"""The 2026-07-28 cache hints (`ttlMs`, `cacheScope`): how long a client may keep an answer, and whether a shared
cache may serve it to others.

What changes only when the server restarts (its tools, prompts, resource templates, the job kinds and their schemas)
may be kept for a few minutes; what jobs and runs change (the status, jobs, history, queues, the inbox, and the
resource list, whose changes are announced) is stale at once. Only the job kinds are the same for every caller
("public"); the rest may depend on who asks. Handshake-era answers carry no hints (the SDK leaves them out).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server.caching import CacheableMethod, CacheHint

__all__ = ["LIST_HINTS", "RESOURCE_HINTS", "STATIC_TTL_MS", "resource_cache_hints"]

STATIC_TTL_MS = 300_000
"""How long a client may keep what changes only with a restart: 5 minutes."""

LIST_HINTS: Mapping[CacheableMethod, CacheHint] = {
    "server/discover": CacheHint(STATIC_TTL_MS, "private"),
    "tools/list": CacheHint(STATIC_TTL_MS, "private"),
    "prompts/list": CacheHint(STATIC_TTL_MS, "private"),
    "resources/templates/list": CacheHint(STATIC_TTL_MS, "private"),
    "resources/list": CacheHint(0, "private"),
    "resources/read": CacheHint(0, "private"),
}
"""The hint of each cacheable method's answers (`MCPServer(cache_hints=...)`); resources/read per URI below."""

RESOURCE_HINTS: Mapping[str, CacheHint] = {
    "scheduler://agentools": CacheHint(STATIC_TTL_MS, "public"),
}
"""Resources whose hint is not resources/read's: the job kinds and their input schemas."""


async def resource_cache_hints(ctx: Any, call_next: Any) -> Any:
    """Middleware: give a resources/read answer the hint of its URI (on 2026-07-28 answers, which carry hints)."""
    result = await call_next(ctx)
    if ctx.method != "resources/read" or not isinstance(result, dict) or "ttlMs" not in result:
        return result
    uri = ctx.params.get("uri") if isinstance(ctx.params, Mapping) else None
    hint = RESOURCE_HINTS.get(uri) if isinstance(uri, str) else None
    if hint is None:
        return result
    return {**result, "ttlMs": hint.ttl_ms, "cacheScope": hint.scope}
