"""Errors of the connections to other MCP servers (`MCPConnectionPool`) and of the `mcp` AgenTool."""

from __future__ import annotations

from typing import Any

from ..errors import AgenToolInputError
from .errors import ToolkitError

__all__ = [
    "MCPArgumentsError",
    "MCPServerConfigError",
    "MCPServerUnavailableError",
    "MCPToolCallError",
    "MCPToolNotFoundError",
    "MCPToolTimeoutError",
]


class MCPServerUnavailableError(ToolkitError, ConnectionError):
    """An MCP server of the servers file cannot be reached: its program does not start or exits, its URL
    refuses the connection or answers with an HTTP error, it does not answer in time, or the connection
    was lost during a call."""


class MCPServerConfigError(ToolkitError, ValueError):
    """A server's entry in the servers file cannot be used as written: an `!env:NAME` of its `env` or
    `headers` is not set in the scheduler's environment, or a header name or value is malformed."""


class MCPToolNotFoundError(ToolkitError, LookupError):
    """The MCP server has no tool of that name; the message lists the tools it has."""


class MCPToolCallError(ToolkitError, RuntimeError):
    """The MCP server answered a request with an error: a tool result with `isError`, or a JSON-RPC error."""


class MCPToolTimeoutError(ToolkitError, TimeoutError):
    """The MCP server did not answer a tool call (or the tool listing) within the timeout."""


class MCPArgumentsError(ToolkitError, AgenToolInputError):
    """The arguments of a tool call do not fit the remote tool's input schema.

    `errors` has one entry per problem, located at `arguments.<name>` (the fields of the `mcp` input), so a
    scheduler can tell which argument is wrong (and let `!ref:` values, resolved only at run time, pass).
    """

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        AgenToolInputError.__init__(self, message, errors)
