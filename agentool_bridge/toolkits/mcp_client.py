"""Client connections to the MCP servers of a servers file: `MCPConnectionPool`, used by the `mcp` and `agent` toolkits.

One connection per server, opened on first use with the MCP SDK's `Client` (stdio for a `command`,
streamable HTTP for a `url`, SSE for `"type": "sse"`), shared by concurrent calls, reused across runs and
closed after `idle_timeout` seconds without use. Each connection lives in a background task of its own,
which enters the SDK client and waits; callers send their requests through the entered client. The SDK's
cancel scopes are thus entered and exited in that one task, whoever calls and whoever closes.

A stdio server starts with the SDK's default environment (HOME, LOGNAME, PATH, SHELL, TERM and USER of the
scheduler's own process, as Claude Desktop passes) plus the entry's `env`, in the entry's `cwd`. Its
stderr is logged (logger `agentool_bridge.toolkits.mcp_client`, INFO) and its last lines go into the error
when it exits. `!env:NAME` values of `env` and `headers` are read from `environ` when a connection opens;
they never appear in results or errors: the pool replaces them by their `!env:NAME` reference. Errors quote
what a server said (its error messages, its stderr) as untrusted text (see `agentool_bridge.untrusted`).

The SDK (`mcp.client`, `httpx2`) is imported only when a first connection opens.
"""

from __future__ import annotations

import asyncio
import contextvars
import http
import logging
import math
import os
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import anyio

from ..errors import clip, clip_text
from ..redaction import revealing
from ..secrets import SecretNotSetError, Secrets, redact, resolve_env
from ..untrusted import quote
from .mcp_errors import (
    MCPServerConfigError,
    MCPServerUnavailableError,
    MCPToolCallError,
    MCPToolTimeoutError,
)
from .servers import MCPServerSpec, ServersFile

if TYPE_CHECKING:
    from mcp import Client
    from mcp.types import CallToolResult, Tool

    from .servers import MCPConnections

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "MCPConnectionPool",
    "MCPServerConfigError",
    "MCPServerUnavailableError",
]

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT = 300.0
"""Seconds a connection may stay unused before it is closed."""
DEFAULT_CONNECT_TIMEOUT = 30.0
"""Seconds a server has to start (or accept the connection) and complete the MCP handshake."""
DEFAULT_CALL_TIMEOUT = 60.0
"""Seconds a request (a tool call, the tool listing) may take when the caller gives no timeout."""

_HTTP_TIMEOUT = 30.0
_HTTP_READ_TIMEOUT = 300.0  # as the SDK's own HTTP client: a server may hold a response stream open
_STDERR_LINES = 20
_STDERR_EOF_WAIT = 1.0  # for the last lines of a server that exited; its children may hold stderr open longer
_MAX_LIST_PAGES = 100
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Resolved:
    """A server's `env` and `headers` with their `!env:` values read, and what was read (to redact)."""

    env: dict[str, str]
    headers: dict[str, str]
    secrets: Secrets = field(default_factory=dict)


class _StderrTail(asyncio.Protocol):
    """Reads a stdio server's stderr: logs each line and keeps the last ones for error messages."""

    def __init__(self, server: str, secrets: Secrets) -> None:
        self._server = server
        self._secrets = secrets
        self._partial = b""
        self.lines: deque[str] = deque(maxlen=_STDERR_LINES)
        self.closed = asyncio.Event()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._line(line)
        if len(self._partial) > 8192:
            self._line(self._partial)
            self._partial = b""

    def connection_lost(self, exc: Exception | None) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = b""
        self.closed.set()

    def _line(self, raw: bytes) -> None:
        text = redact(raw.decode("utf-8", "replace").rstrip("\r"), self._secrets)
        if text.strip():
            self.lines.append(clip_text(text, 500))
            logger.info("[%s] %s", self._server, text)

    def tail(self) -> str:
        return "\n".join(self.lines)


class _WatchedReadStream:
    """A transport's read stream that reports its end (the server exited or closed the connection)."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._on_end()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._inner.__anext__()
        except (StopAsyncIteration, anyio.EndOfStream, anyio.ClosedResourceError):
            self._on_end()
            raise

    async def __aenter__(self) -> _WatchedReadStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        result: bool | None = await self._inner.__aexit__(*exc_info)
        return result

    def __getattr__(self, name: str) -> Any:  # `last_context` and whatever else the SDK looks for
        return getattr(self._inner, name)


def _consume(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # seen, so asyncio does not log it as never retrieved; _run records failures


class _Connection:
    """One client connection to one server, owned by a background task from opening to closing."""

    def __init__(
        self,
        name: str,
        spec: MCPServerSpec,
        resolved: _Resolved,
        *,
        connect_timeout: float,
        idle_timeout: float,
        on_done: Callable[[_Connection], None],
    ) -> None:
        self.name = name
        self.spec = spec
        self.secrets = resolved.secrets
        self._resolved = resolved
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._on_done = on_done
        self.loop = asyncio.get_running_loop()
        self.ready = anyio.Event()  # set once open, or once it failed to open
        self.done = anyio.Event()  # set once closed (the process stopped, the HTTP client closed)
        self._wake = anyio.Event()  # set to stop waiting: closing, or the server went away
        self._scope = anyio.CancelScope()
        self.client: Client | None = None
        self.failure: BaseException | None = None
        self.ended = False
        self.stopping = False
        self.closed_by_pool = False  # by aclose()/close(), as opposed to dropped for being broken or idle
        self.session_lost = False  # an HTTP server forgot the session (it restarted): requests were not run
        self.users = 0
        self.waiters = 0
        self.last_used = time.monotonic()
        self.http_error: tuple[int, str] | None = None  # the SDK turns most HTTP errors into a bare -32603
        self._stderr: _StderrTail | None = None
        # A context of its own: not the run (or the injector) of whichever job happened to open it.
        self.task = self.loop.create_task(self._run(), name=f"mcp-server-{name}", context=contextvars.Context())
        self.task.add_done_callback(_consume)

    @property
    def usable(self) -> bool:
        """Open (or opening) and not going away."""
        return not (self.stopping or self.ended or self.done.is_set())

    def stop(self) -> None:
        """Close the connection (or give up opening it); `done` is set once it is closed."""
        self.stopping = True
        self._wake.set()
        if not self.ready.is_set():
            self._scope.cancel()

    def _on_end(self) -> None:
        self.ended = True
        self._wake.set()

    async def _run(self) -> None:
        try:
            with self._scope:
                self._scope.deadline = anyio.current_time() + self._connect_timeout
                async with AsyncExitStack() as stack:
                    client = await self._open(stack)
                    self._scope.deadline = math.inf
                    self.client = client
                    self.ready.set()
                    try:
                        await self._serve()
                    finally:
                        self.client = None
            if self._scope.cancelled_caught and not self.ready.is_set() and not self.stopping:
                self.failure = TimeoutError(
                    f"it did not complete the MCP handshake within {self._connect_timeout:g} s"
                )
        except Exception as exc:
            self.failure = exc
        finally:
            self.client = None
            if self.failure is not None and self._stderr is not None and not self._stderr.closed.is_set():
                with anyio.CancelScope(shield=True), anyio.move_on_after(_STDERR_EOF_WAIT):
                    await self._stderr.closed.wait()
            if self._stderr is not None and self._stderr.transport is not None:
                self._stderr.transport.close()
            self.ready.set()
            self.done.set()
            self._on_done(self)

    async def _serve(self) -> None:
        """Wait until the connection is to close: asked to, the server went away, or unused for idle_timeout."""
        while not (self.stopping or self.ended):
            idle = time.monotonic() - self.last_used
            if self.users == 0 and self.waiters == 0 and idle >= self._idle_timeout:
                logger.info("Closing the connection to MCP server %r: unused for %.0f s", self.name, idle)
                return
            wait = self._idle_timeout - idle if self.users == 0 else self._idle_timeout
            with anyio.move_on_after(max(wait, 0.001)):
                await self._wake.wait()

    async def _open(self, stack: AsyncExitStack) -> Client:
        from mcp import Client

        spec = self.spec
        if spec.transport == "stdio":
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            params = StdioServerParameters(
                command=spec.command or "", args=list(spec.args), env=self._resolved.env or None, cwd=spec.cwd
            )
            errlog = await self._stderr_pipe()
            try:
                client = Client(self._watch(stdio_client(params, errlog=errlog)))
                return await stack.enter_async_context(client)
            finally:
                errlog.close()  # the server holds its own copy; ours would keep the pipe from ever ending
        import httpx2

        async def note_errors(response: httpx2.Response) -> None:
            if response.status_code >= 400 and response.request.method == "POST":  # not the optional GET stream
                self.http_error = (response.status_code, response.reason_phrase)

        def http_client(
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            return httpx2.AsyncClient(
                headers=headers,
                timeout=timeout or httpx2.Timeout(_HTTP_TIMEOUT, read=_HTTP_READ_TIMEOUT),
                auth=auth,
                event_hooks={"response": [note_errors]},
            )

        url = spec.url or ""
        if spec.transport == "sse":
            from mcp.client.sse import sse_client

            transport: AbstractAsyncContextManager[Any] = sse_client(
                url,
                headers=self._resolved.headers or None,
                timeout=_HTTP_TIMEOUT,
                sse_read_timeout=_HTTP_READ_TIMEOUT,
                httpx_client_factory=http_client,
            )
        else:
            from mcp.client.streamable_http import streamable_http_client

            http = await stack.enter_async_context(http_client(self._resolved.headers))
            transport = streamable_http_client(url, http_client=http)
        return await stack.enter_async_context(Client(self._watch(transport)))

    async def _stderr_pipe(self) -> TextIO:
        """A pipe for the server's stderr, read by `_StderrTail`; returns the end the server writes to."""
        read_fd, write_fd = os.pipe()
        reader = os.fdopen(read_fd, "rb", buffering=0)
        tail = self._stderr = _StderrTail(self.name, self.secrets)
        try:
            await self.loop.connect_read_pipe(lambda: tail, reader)
        except BaseException:
            reader.close()
            os.close(write_fd)
            raise
        return os.fdopen(write_fd, "w")

    @asynccontextmanager
    async def _watch(self, transport: AbstractAsyncContextManager[Any]) -> AsyncIterator[tuple[Any, Any]]:
        async with transport as (read_stream, write_stream):
            yield _WatchedReadStream(read_stream, self._on_end), write_stream

    def where(self) -> str:
        """The command line or URL, for messages."""
        spec = self.spec
        if spec.command is not None:
            return clip_text(" ".join([spec.command, *spec.args]), 200)
        return clip_text(spec.url or "", 200)

    def why(self) -> str:
        """Why the connection failed or ended (a sentence), from what the SDK raised and the server's stderr."""
        if self.failure is None and self.closed_by_pool:
            reason = "its connections were being closed (the scheduler or its mcp toolkit is closing)"
        elif self.failure is None and self.session_lost:
            reason = "it answered HTTP 404 for the session: it no longer knows it (it restarted?)"
        elif self.failure is None and self.ended:
            reason = "its process exited (or closed its output)" if self.spec.transport == "stdio" else "it hung up"
        elif self.failure is None:
            reason = "the connection was closed"
        else:
            with revealing(self.secrets):  # what _describe quotes of the server's secrets comes out whole as references
                reason = _describe(self.failure, self.spec, self.http_error, self.name)
        reason = str(redact(_sentence(reason), self.secrets))
        if self._stderr is not None and self._stderr.lines:
            tail = str(redact(self._stderr.tail(), self.secrets))
            origin = f"MCP server {self.name!r}"
            reason += f" The last lines it wrote to stderr: {quote(tail, origin, what='stderr', limit=2000, tail=True)}"
        return reason


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)] or list(exc.exceptions)
        exc = inner[0]
    return exc


def _http_status(url: str | None, status: int) -> str:
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


def _describe(
    failure: BaseException, spec: MCPServerSpec, http_error: tuple[int, str] | None = None, server: str = "the server"
) -> str:
    exc = _leaf(failure)
    origin = f"MCP server {server!r}"
    if http_error is not None and not isinstance(exc, TimeoutError):
        return _http_status(spec.url, http_error[0])

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
        if _is_connection_closed(exc):
            return "its process exited (or closed its output) before answering"
    else:
        import httpx2

        if isinstance(exc, httpx2.ConnectError):
            return f"connecting to {clip(spec.url)} failed ({exc}): check that the server runs and the URL is right"
        if isinstance(exc, httpx2.HTTPStatusError):
            return _http_status(spec.url, exc.response.status_code)
        if isinstance(exc, httpx2.TimeoutException):
            return f"{clip(spec.url)} did not answer in time ({type(exc).__name__})"
        if isinstance(exc, httpx2.HTTPError):
            return f"the HTTP request to {clip(spec.url)} failed: {type(exc).__name__}: {exc}"
        if _is_connection_closed(exc):
            return f"{clip(spec.url)} closed the connection"
    from mcp.shared.exceptions import MCPError

    if isinstance(exc, MCPError):
        said = quote(exc.error.message, origin, what="error text", limit=500)
        return f"it answered with MCP error {exc.error.code}; {said}"
    return f"{type(exc).__name__}; {quote(str(exc), origin, what='error text', limit=500)}"


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else f"{text}."


def _is_connection_closed(exc: BaseException) -> bool:
    from mcp.shared.exceptions import MCPError
    from mcp.types import CONNECTION_CLOSED

    return isinstance(exc, MCPError) and exc.error.code == CONNECTION_CLOSED


def _connection_lost(exc: BaseException) -> bool:
    """True when a request failed because the connection broke (not because the server refused it)."""
    exc = _leaf(exc)
    return _is_connection_closed(exc) or isinstance(
        exc, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream
    )


def _never_reached(conn: _Connection) -> bool:
    """True when the broken connection's requests cannot have reached the server (the connection was refused)."""
    if conn.session_lost:
        return True
    if conn.failure is None or conn.spec.transport == "stdio":
        return False
    import httpx2

    return isinstance(_leaf(conn.failure), httpx2.ConnectError)


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
        self._connections: dict[str, _Connection] = {}
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

    def _resolve(self, server: str, spec: MCPServerSpec) -> _Resolved:
        where = self.servers.path or "the servers file"
        try:
            env, env_secrets = resolve_env(dict(spec.env), self.environ)
            headers, header_secrets = resolve_env(dict(spec.headers), self.environ)
        except SecretNotSetError as exc:
            raise MCPServerConfigError(f"MCP server {server!r} of {where} cannot be used: {exc}") from exc
        _check_headers(server, headers, where)
        return _Resolved(env=env, headers=headers, secrets={**env_secrets, **header_secrets})

    def _forget(self, conn: _Connection) -> None:
        if self._connections.get(conn.name) is conn:
            del self._connections[conn.name]

    async def _acquire(self, server: str, wait: float) -> _Connection:
        """An open connection to `server`, opened now if needed; `wait`: how long this caller waits for it."""
        spec = self.servers.get(server)
        conn = self._connections.get(server)
        if conn is not None and (not conn.usable or conn.loop is not asyncio.get_running_loop()):
            self._forget(conn)
            conn = None
        if conn is None:
            resolved = self._resolve(server, spec)
            conn = _Connection(
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
                elif not _connection_lost(exc):
                    said = quote(str(redact(exc.error.message, conn.secrets)), f"MCP server {server!r}",
                                 what="error text", limit=2000)
                    status = f" ({_http_status(conn.spec.url, conn.http_error[0])})" if conn.http_error else ""
                    raise MCPToolCallError(
                        f"MCP server {server!r} answered {what} with error {exc.error.code}{status}; {said}"
                    ) from exc
                else:
                    lost = exc
            except Exception as exc:
                if not _connection_lost(exc):
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
