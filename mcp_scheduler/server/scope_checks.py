"""The scopes each MCP request needs: a tool call its tool's (`Tool.needs`, by its arguments and the kind of the
stored job they name, as the acting principal sees it), reading resources, prompts and completions, and following
changes, `scheduler:read`.

One answer for the tool path (tooling.py), the middleware below (other requests) and the HTTP transport's step-up
challenge (step_up.py), which refuses a request before it reaches the server when its token lacks a scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST

from ..errors import MissingScopeError
from ..principals import READ
from .auth import principal_of
from .tooling import Need, Needs, missing

__all__ = ["METHOD_SCOPES", "RequestScopes"]

METHOD_SCOPES = {
    "resources/read": READ,
    "resources/subscribe": READ,
    "prompts/get": READ,
    "completion/complete": READ,
    "subscriptions/listen": READ,
}
"""Requests refused without their scope. Listing tools, resources and prompts is not: a client learns what there is
before it knows which scopes to ask for."""


class RequestScopes:
    """What each request needs, given each tool's needs by name (`Tool.needs`)."""

    def __init__(self, tools: Mapping[str, Needs]) -> None:
        self.tools = dict(tools)

    async def needs(self, method: Any, params: Any) -> list[Need]:
        """The scopes a request of `method` with `params` (as sent) needs, for the acting principal (a stored job
        it may not see adds nothing); none for a tool this server does not have or arguments that are not an object
        (the server refuses those as they are)."""
        if method == "tools/call":
            name = params.get("name") if isinstance(params, Mapping) else None
            arguments = params.get("arguments", {}) if isinstance(params, Mapping) else None
            tool = self.tools.get(name) if isinstance(name, str) else None
            if tool is None or not isinstance(arguments, Mapping | None):
                return []
            return await tool(arguments or {})
        scope = METHOD_SCOPES.get(method) if isinstance(method, str) else None
        return [] if scope is None else [(scope, method)]

    async def check_methods(self, ctx: Any, call_next: Any) -> Any:
        """Server middleware: refuse a request of `METHOD_SCOPES` whose token does not grant its scope (tool calls
        are refused by their tools, as tool errors)."""
        if ctx.method != "tools/call":
            for scope, what in missing(principal_of(None), await self.needs(ctx.method, ctx.params))[:1]:
                # JSON-RPC has no "forbidden": the data names OAuth's error, as the HTTP transport's 403 does.
                raise MCPError(INVALID_REQUEST, str(MissingScopeError(scope, what)),
                               {"error": "insufficient_scope", "scope": scope})
        return await call_next(ctx)
