"""Errors of the connections to other MCP servers (`MCPConnectionPool`) and of the `mcp` AgenTool, and the words
that tell why a connection or a request failed."""

from __future__ import annotations

import asyncio
import http
from typing import TYPE_CHECKING, Any

import anyio

from ...errors import AgenToolInputError, clip
from ...untrusted import quote
from ..errors import ToolkitError

if TYPE_CHECKING:
    from .servers import MCPServerSpec

__all__ = [
    "MCPArgumentsError",
    "MCPServerConfigError",
    "MCPServerUnavailableError",
    "MCPToolCallError",
    "MCPToolNotFoundError",
    "MCPToolTimeoutError",
    "connection_lost",
    "describe",
    "http_status",
    "is_connection_closed",
    "leaf",
    "sentence",
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


# The wording of failures: what the SDK or httpx2 raised, told as a sentence for the user.


def leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)] or list(exc.exceptions)
        exc = inner[0]
    return exc


def http_status(url: str | None, status: int) -> str:
    """`URL answered HTTP status phrase`, with a hint for the statuses a servers file can fix."""
    try:
        reason = http.HTTPStatus(status).phrase  # the server's own phrase is its text, not ours
    except ValueError:
        reason = ""
    hints = {
        401: ": check its Authorization header in the servers file",
        403: ": check its Authorization header in the servers file",
        404: ": check the URL's path (often /mcp; /sse for SSE)",
    }
    return f"{clip(url)} answered HTTP {status} {reason}".rstrip() + hints.get(status, "")


def describe(
    failure: BaseException, spec: MCPServerSpec, http_error: tuple[int, str] | None = None, server: str = "the server"
) -> str:
    """Why a connection to `server` failed, from what the SDK (or httpx2) raised: a phrase for the user."""
    exc = leaf(failure)
    origin = f"MCP server {server!r}"
    if http_error is not None and not isinstance(exc, TimeoutError):
        return http_status(spec.url, http_error[0])

    if isinstance(exc, TimeoutError):
        return str(exc) or "it did not answer in time"
    if spec.transport == "stdio":
        if isinstance(exc, FileNotFoundError):
            return (
                f"its command {clip(spec.command)} was not found: install it, or give its full path as 'command' "
                "in the servers file"
            )
        if isinstance(exc, PermissionError):
            return f"its command {clip(spec.command)} cannot be run: permission denied"
        if is_connection_closed(exc):
            return "its process exited (or closed its output) before answering"
    else:
        import httpx2

        if isinstance(exc, httpx2.ConnectError):
            return f"connecting to {clip(spec.url)} failed ({exc}): check that the server runs and the URL is right"
        if isinstance(exc, httpx2.HTTPStatusError):
            return http_status(spec.url, exc.response.status_code)
        if isinstance(exc, httpx2.TimeoutException):
            return f"{clip(spec.url)} did not answer in time ({type(exc).__name__})"
        if isinstance(exc, httpx2.HTTPError):
            return f"the HTTP request to {clip(spec.url)} failed: {type(exc).__name__}: {exc}"
        if is_connection_closed(exc):
            return f"{clip(spec.url)} closed the connection"
    from mcp.shared.exceptions import MCPError

    if isinstance(exc, MCPError):
        said = quote(exc.error.message, origin, what="error text", limit=500)
        return f"it answered with MCP error {exc.error.code}; {said}"
    return f"{type(exc).__name__}; {quote(str(exc), origin, what='error text', limit=500)}"


def sentence(text: str) -> str:
    """`text` ending as a sentence."""
    return text if text.endswith((".", "?", "!")) else f"{text}."


def is_connection_closed(exc: BaseException) -> bool:
    """True for the SDK's MCP error that says the connection closed."""
    from mcp.shared.exceptions import MCPError
    from mcp.types import CONNECTION_CLOSED

    return isinstance(exc, MCPError) and exc.error.code == CONNECTION_CLOSED


def connection_lost(exc: BaseException) -> bool:
    """True when a request failed because the connection broke (not because the server refused it)."""
    exc = leaf(exc)
    return is_connection_closed(exc) or isinstance(
        exc, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream
    )
