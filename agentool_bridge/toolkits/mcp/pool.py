"""`MCPConnectionPool`: client connections to the MCP servers of a servers file, used by the `mcp` and `agent`
toolkits, and the retry of a request whose connection broke.

One connection per server (`Connection`), opened on first use, shared by concurrent calls, reused across runs
and closed after `idle_timeout` seconds without use. `!env:NAME` values of `env` and `headers` are read from
`environ` when a connection opens; they never appear in results or errors: the pool replaces them by their
`!env:NAME` reference. Errors quote what a server said (its error messages, its stderr) as untrusted text
(see `agentool_bridge.untrusted`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from ...errors import clip
from ...secrets import SecretNotSetError, Secrets, redact, resolve_env
from ...untrusted import quote
from .connection import Connection
from .errors import (
    MCPServerConfigError,
    MCPServerUnavailableError,
    MCPToolCallError,
    MCPToolTimeoutError,
    connection_lost,
    http_status,
    leaf,
)
from .servers import MCPServerSpec, ServersFile
from .transports import Resolved

if TYPE_CHECKING:
    from mcp import Client
    from mcp.types import CallToolResult, Tool

    from .servers import MCPConnections

__all__ = ["DEFAULT_CALL_TIMEOUT", "DEFAULT_CONNECT_TIMEOUT", "DEFAULT_IDLE_TIMEOUT", "MCPConnectionPool"]

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT = 300.0
"""Seconds a connection may stay unused before it is closed."""
DEFAULT_CONNECT_TIMEOUT = 30.0
"""Seconds a server has to start (or accept the connection) and complete the MCP handshake."""
DEFAULT_CALL_TIMEOUT = 60.0
"""Seconds a request (a tool call, the tool listing) may take when the caller gives no timeout."""

_MAX_LIST_PAGES = 100
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")

_T = TypeVar("_T")


def _never_reached(conn: Connection) -> bool:
    """True when the broken connection's requests cannot have reached the server (the connection was refused)."""
    if conn.session_lost:
        return True
    if conn.failure is None or conn.spec.transport == "stdio":
        return False
    import httpx2

    return isinstance(leaf(conn.failure), httpx2.ConnectError)


def _check_headers(server: str, headers: Mapping[str, str], where: str) -> None:
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise MCPServerConfigError(
                f"MCP server {server!r}: header name {clip(name)} is malformed: a header name is letters, digits "
                f"and !#$%&'*+-.^_`|~ only. Fix 'headers' in {where} and restart."
            )
        if not _HEADER_VALUE.fullmatch(value):
            raise MCPServerConfigError(
                f"MCP server {server!r}: the value of header {name!r} is malformed: it holds a line break, another "
                f"control character or a non-ASCII character. Fix 'headers' in {where} (or the environment "
                "variable it names) and restart."
            )


class MCPConnectionPool:
    """Open client connections to the MCP servers of a servers file (implements `MCPConnections`).

    A connection opens on the first request to its server and is reused by later ones (concurrent requests
    share it); it closes after `idle_timeout` seconds unused, when its server goes away (it reopens on the
    next request), or on `aclose()`. `connect_timeout` bounds starting a server (or reaching its URL) and the
    MCP handshake; `call_timeout` is the default time a request may take. `!env:NAME` values of a server's
    `env` and `headers` are read from `environ` (default: this process's environment) when it connects.

    Errors: `UnknownServerError` (not in the servers file), `MCPServerConfigError` (its entry cannot be used
    as written), `MCPServerUnavailableError` (it cannot be reached, or the connection broke during a request),
    `MCPToolTimeoutError` (no answer in time), `MCPToolCallError` (the server answered with an MCP error).
    A tool result with `is_error` is returned, not raised. Use it in one event loop at a time.
    """

    def __init__(
        self,
        servers: ServersFile,
        *,
        environ: Mapping[str, str] | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
    ) -> None:
        self.servers = servers
        self.environ: Mapping[str, str] = environ if environ is not None else os.environ
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.call_timeout = call_timeout
        self._connections: dict[str, Connection] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def check_server(self, server: str) -> None:
        """Raise `UnknownServerError` if `server` is not declared, `MCPServerConfigError` if its entry cannot be
        used as written (an `!env:` variable not set, a malformed header). Opens nothing."""
        self._resolve(server, self.servers.get(server))

    def is_connected(self, server: str) -> bool:
        """True while a connection to `server` is open."""
        conn = self._connections.get(server)
        return conn is not None and conn.client is not None and conn.usable

    async def wait_closed(self, server: str) -> None:
        """Wait until the connection to `server` (if there is one) has closed, by idleness, failure or `aclose`."""
        conn = self._connections.get(server)
        if conn is not None:
            await conn.done.wait()

    async def list_tools(self, server: str, *, time_limit: float | None = None) -> list[Tool]:
        """The tools of `server`, every page of them.

        `time_limit` bounds the wait for the connection and the listing itself (default: `connect_timeout`,
        then `call_timeout`); a caller that stops waiting for a connection nobody else waits for closes it.
        """
        limit = self.call_timeout if time_limit is None else time_limit

        async def send(client: Client) -> list[Tool]:
            tools: list[Tool] = []
            cursor: str | None = None
            with anyio.fail_after(limit):
                for _ in range(_MAX_LIST_PAGES):
                    page = await client.list_tools(cursor=cursor)
                    tools.extend(page.tools)
                    cursor = page.next_cursor
                    if cursor is None:
                        break
            return tools

        tools, _ = await self._request(
            server,
            "the tool listing (tools/list)",
            send,
            connect_wait=self.connect_timeout if time_limit is None else time_limit,
            limit=limit,
            repeatable=True,
        )
        return tools

    async def call_tool(
        self, server: str, tool: str, arguments: dict[str, Any], *, time_limit: float | None = None
    ) -> CallToolResult:
        """Call `tool` of `server` with `arguments`; the result as the server sent it (`is_error` included),
        except that the resolved `!env:` values of the server's entry are replaced by their references.

        `time_limit`: seconds the call may take (default `call_timeout`); the wait for a connection is bounded
        by `connect_timeout`. A call whose connection breaks is not sent again (the tool may have run) unless
        the server cannot have received it (connection refused, session forgotten by a restarted server).
        """
        limit = self.call_timeout if time_limit is None else time_limit

        async def send(client: Client) -> CallToolResult:
            with anyio.fail_after(limit + 1.0):  # a backstop: the SDK's read timeout should come first
                return await client.call_tool(tool, arguments, read_timeout_seconds=limit)

        result, secrets = await self._request(
            server, f"the call of tool {tool!r}", send, connect_wait=self.connect_timeout, limit=limit, repeatable=False
        )
        if not secrets:
            return result
        from mcp.types import CallToolResult

        dumped = result.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return CallToolResult.model_validate(redact(dumped, secrets))

    async def aclose(self) -> None:
        """Close every connection and wait until they are closed. Later requests open new ones."""
        await self._close_all()
        if self._closing:  # closings that `close()` started
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    async def _close_all(self) -> None:
        connections = list(self._connections.values())
        self._connections.clear()
        loop = asyncio.get_running_loop()
        mine = [conn for conn in connections if conn.loop is loop]
        for conn in mine:
            conn.closed_by_pool = True
            conn.stop()
        for conn in mine:
            await conn.done.wait()

    def close(self) -> None:
        """Start closing every connection without waiting (for synchronous callers such as `AgenTool.on_close`).

        Outside a running event loop, connections cannot be closed: await `aclose()` before the loop ends.
        """
        if not self._connections:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            logger.warning(
                "MCP connections to %s were not closed: close the pool with `await aclose()` in its event loop",
                ", ".join(sorted(self._connections)),
            )
            return
        task = loop.create_task(self._close_all(), context=contextvars.Context())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # ------------------------------------------------------------------ internals

    def _resolve(self, server: str, spec: MCPServerSpec) -> Resolved:
        where = self.servers.path or "the servers file"
        try:
            env, env_secrets = resolve_env(dict(spec.env), self.environ)
            headers, header_secrets = resolve_env(dict(spec.headers), self.environ)
        except SecretNotSetError as exc:
            raise MCPServerConfigError(f"MCP server {server!r} of {where} cannot be used: {exc}") from exc
        _check_headers(server, headers, where)
        return Resolved(env=env, headers=headers, secrets={**env_secrets, **header_secrets})

    def _forget(self, conn: Connection) -> None:
        if self._connections.get(conn.name) is conn:
            del self._connections[conn.name]

    async def _acquire(self, server: str, wait: float) -> Connection:
        """An open connection to `server`, opened now if needed; `wait`: how long this caller waits for it."""
        spec = self.servers.get(server)
        conn = self._connections.get(server)
        if conn is not None and (not conn.usable or conn.loop is not asyncio.get_running_loop()):
            self._forget(conn)
            conn = None
        if conn is None:
            resolved = self._resolve(server, spec)
            conn = Connection(
                server,
                spec,
                resolved,
                connect_timeout=self.connect_timeout,
                idle_timeout=self.idle_timeout,
                on_done=self._forget,
            )
            self._connections[server] = conn
        if not conn.ready.is_set():
            conn.waiters += 1
            try:
                with anyio.move_on_after(wait):
                    await conn.ready.wait()
            finally:
                conn.waiters -= 1
            if not conn.ready.is_set():
                if conn.waiters == 0:  # nobody else waits: do not leave it opening
                    conn.stop()
                    with anyio.CancelScope(shield=True):
                        await conn.done.wait()
                raise MCPServerUnavailableError(
                    f"MCP server {server!r} ({conn.where()}) did not complete the MCP handshake within "
                    f"{wait:g} s."
                )
        if conn.client is None:
            raise MCPServerUnavailableError(
                f"MCP server {server!r} ({conn.where()}) is unavailable: {conn.why()}"
            )
        return conn

    async def _request(
        self,
        server: str,
        what: str,
        send: Callable[[Client], Awaitable[_T]],
        *,
        connect_wait: float,
        limit: float,
        repeatable: bool,
    ) -> tuple[_T, Secrets]:
        """Send one request on the server's connection; once more on a new connection if it broke and either
        the request is `repeatable` or it cannot have reached the server. Returns the answer and the server's
        resolved `!env:` values (to redact)."""
        from mcp.shared.exceptions import MCPError
        from mcp.types import REQUEST_TIMEOUT

        for attempt in (1, 2):
            conn = await self._acquire(server, connect_wait)
            client = conn.client
            assert client is not None
            conn.users += 1
            conn.http_error = None
            lost: Exception
            try:
                return await send(client), conn.secrets
            except TimeoutError as exc:
                raise MCPToolTimeoutError(
                    f"MCP server {server!r} did not answer {what} within {limit:g} s."
                ) from exc
            except MCPError as exc:
                if exc.error.code == REQUEST_TIMEOUT:
                    raise MCPToolTimeoutError(
                        f"MCP server {server!r} did not answer {what} within {limit:g} s."
                    ) from exc
                if conn.spec.transport != "stdio" and conn.http_error is not None and conn.http_error[0] == 404:
                    conn.session_lost = True  # answered 404 for a session it no longer knows: reconnect
                    lost = exc
                elif not connection_lost(exc):
                    said = quote(str(redact(exc.error.message, conn.secrets)), f"MCP server {server!r}",
                                 what="error text", limit=2000)
                    status = f" ({http_status(conn.spec.url, conn.http_error[0])})" if conn.http_error else ""
                    raise MCPToolCallError(
                        f"MCP server {server!r} answered {what} with error {exc.error.code}{status}; {said}"
                    ) from exc
                else:
                    lost = exc
            except Exception as exc:
                if not connection_lost(exc):
                    raise
                lost = exc
            finally:
                conn.users -= 1
                conn.last_used = time.monotonic()
            if conn.closed_by_pool:
                raise MCPServerUnavailableError(
                    f"The connection to MCP server {server!r} was closed during {what}: the scheduler is closing."
                ) from lost
            conn.stop()
            with anyio.CancelScope(shield=True):
                await conn.done.wait()
            if attempt == 1 and (repeatable or _never_reached(conn)):
                logger.info("The connection to MCP server %r broke (%s); reconnecting", server, conn.why())
                continue
            tail = "" if repeatable else " The tool may or may not have run."
            raise MCPServerUnavailableError(
                f"The connection to MCP server {server!r} ({conn.where()}) was lost during {what}: "
                f"{conn.why()}{tail}"
            ) from lost
        raise AssertionError("unreachable")


if TYPE_CHECKING:

    def _implements_the_protocol(pool: MCPConnectionPool) -> MCPConnections:
        return pool  # mypy checks here that the pool is an `MCPConnections`
