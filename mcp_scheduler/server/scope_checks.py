"""The scope each MCP request other than a tool call needs (tools carry theirs on `Tool`): reading resources,
prompts and completions, and following changes, need `scheduler:read`."""

from __future__ import annotations

from typing import Any

from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST

from ..errors import MissingScopeError
from ..principals import READ
from .auth import principal_of

__all__ = ["METHOD_SCOPES", "check_method_scopes"]

METHOD_SCOPES = {
    "resources/read": READ,
    "resources/subscribe": READ,
    "prompts/get": READ,
    "completion/complete": READ,
    "subscriptions/listen": READ,
}
"""Requests refused without their scope. Listing tools, resources and prompts is not: a client learns what there is
before it knows which scopes to ask for."""


async def check_method_scopes(ctx: Any, call_next: Any) -> Any:
    """Server middleware: refuse a request of `METHOD_SCOPES` whose token does not grant its scope."""
    scope = METHOD_SCOPES.get(ctx.method)
    if scope is not None and not principal_of(None).has(scope):
        # JSON-RPC has no "forbidden": the data names OAuth's error, as a 403 of the HTTP layer would.
        raise MCPError(INVALID_REQUEST, str(MissingScopeError(scope, ctx.method)),
                       {"error": "insufficient_scope", "scope": scope})
    return await call_next(ctx)
