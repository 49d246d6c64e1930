"""The MCP SDK adapter: the only module that uses parts of `mcp` (2.x) beyond its public API.

- `resources/subscribe`, `resources/unsubscribe` and `logging/setLevel` for handshake-era clients:
  `MCPServer` does not serve them, and the SDK's advice for re-providing spec methods that the
  2026-07-28 revision removed is the low-level `Server.add_request_handler`, reached through
  `MCPServer._lowlevel_server`.
- The connection (per client) behind a request context: `ServerSession._connection`.
- Advertising `resources.listChanged` to handshake-era clients: the low-level server's
  `create_initialization_options` is given `NotificationOptions(resources_changed=True)`.
- Output schemas published in a compact form: the tool manager's registered tools
  (`MCPServer._tool_manager`, `fn_metadata.output_schema`).

`check_mcp_sdk()` checks all of these; a test runs it, so that an SDK upgrade that changes them
fails with a message naming what changed. The supported range is pinned in pyproject.toml.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from mcp import types
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import MCPServer
from mcp.server.session import ServerSession

from .._versions import require_version

__all__ = [
    "SUPPORTED",
    "add_request_handler",
    "advertise_resource_list_changed",
    "check_mcp_sdk",
    "connection_of",
    "map_output_schemas",
]

SUPPORTED = ((2, 3), (3, 0))  # [lowest, first unsupported) versions of `mcp`, as pinned in pyproject.toml

Handler = Callable[[Any, Any], Awaitable[types.EmptyResult]]


def connection_of(ctx: Any) -> Any:
    """The per-client connection of a request context (`ServerSession` objects are per request)."""
    return ctx.session._connection


def add_request_handler(mcp: MCPServer, method: str, params_type: type[Any], handler: Handler) -> None:
    """Serve a request method that `MCPServer` leaves out (a handshake-era spec method)."""
    mcp._lowlevel_server.add_request_handler(method, params_type, handler)


def advertise_resource_list_changed(mcp: MCPServer) -> None:
    """Tell handshake-era clients (in `initialize`) that `notifications/resources/list_changed` is sent."""
    low = mcp._lowlevel_server
    low.create_initialization_options = functools.partial(  # type: ignore[method-assign]
        low.create_initialization_options, NotificationOptions(resources_changed=True)
    )


def map_output_schemas(mcp: MCPServer, transform: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Replace each registered tool's output schema by `transform(schema)`."""
    for tool in mcp._tool_manager.list_tools():
        if tool.fn_metadata.output_schema is not None:
            tool.fn_metadata.output_schema = transform(tool.fn_metadata.output_schema)


def check_mcp_sdk() -> None:
    """Raise `RuntimeError` naming what changed if the installed `mcp` lacks what this adapter uses."""
    installed = require_version("mcp", SUPPORTED, "mcp-scheduler's SDK adapter")
    probe = MCPServer("probe")

    @probe.tool()
    def typed() -> types.EmptyResult:
        """A tool with an output schema."""
        return types.EmptyResult()

    problems = []
    low = getattr(probe, "_lowlevel_server", None)
    if low is None or not callable(getattr(low, "add_request_handler", None)):
        problems.append("MCPServer._lowlevel_server.add_request_handler")
    elif not callable(getattr(low, "create_initialization_options", None)):
        problems.append("Server.create_initialization_options")
    manager = getattr(probe, "_tool_manager", None)
    tools = manager.list_tools() if manager is not None and hasattr(manager, "list_tools") else []
    if not tools or not hasattr(getattr(tools[0], "fn_metadata", None), "output_schema"):
        problems.append("MCPServer._tool_manager.list_tools()[i].fn_metadata.output_schema")
    if "_connection" not in ServerSession.__init__.__code__.co_names:  # set as self._connection in __init__
        problems.append("ServerSession._connection")
    if problems:
        raise RuntimeError(f"mcp {installed} changed what the SDK adapter relies on: {', '.join(problems)}.")
