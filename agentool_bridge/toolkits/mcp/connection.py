"""`Connection`: one client connection to one MCP server, owned by a background task from opening to closing.

The task enters the MCP SDK's `Client` (stdio for a `command`, streamable HTTP for a `url`, SSE for
`"type": "sse"`) and waits; callers send their requests through the entered client. The SDK's cancel scopes
are thus entered and exited in that one task, whoever calls and whoever closes. A stdio server starts with
the SDK's default environment (HOME, LOGNAME, PATH, SHELL, TERM and USER of the scheduler's own process, as
Claude Desktop passes) plus the entry's `env`, in the entry's `cwd`.

The SDK (`mcp.client`, `httpx2`) is imported only when a connection opens.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from ...errors import clip_text
from ...redaction import revealing
from ...secrets import redact
from ...untrusted import quote
from .errors import describe, sentence
from .servers import MCPServerSpec
from .transports import Resolved, StderrTail, WatchedReadStream

if TYPE_CHECKING:
    from mcp import Client

__all__ = ["Connection"]

logger = logging.getLogger(__name__)

_HTTP_TIMEOUT = 30.0
_HTTP_READ_TIMEOUT = 300.0  # as the SDK's own HTTP client: a server may hold a response stream open
_STDERR_EOF_WAIT = 1.0  # for the last lines of a server that exited; its children may hold stderr open longer


def _consume(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # seen, so asyncio does not log it as never retrieved; _run records failures


class Connection:
    """One client connection to one server, owned by a background task from opening to closing."""

    def __init__(
        self,
        name: str,
        spec: MCPServerSpec,
        resolved: Resolved,
        *,
        connect_timeout: float,
        idle_timeout: float,
        on_done: Callable[[Connection], None],
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
        self._stderr: StderrTail | None = None
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
        """A pipe for the server's stderr, read by `StderrTail`; returns the end the server writes to."""
        read_fd, write_fd = os.pipe()
        reader = os.fdopen(read_fd, "rb", buffering=0)
        tail = self._stderr = StderrTail(self.name, self.secrets)
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
            yield WatchedReadStream(read_stream, self._on_end), write_stream

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
            with revealing(self.secrets):  # what describe quotes of the server's secrets comes out whole as references
                reason = describe(self.failure, self.spec, self.http_error, self.name)
        reason = str(redact(sentence(reason), self.secrets))
        if self._stderr is not None and self._stderr.lines:
            tail = str(redact(self._stderr.tail(), self.secrets))
            origin = f"MCP server {self.name!r}"
            reason += f" The last lines it wrote to stderr: {quote(tail, origin, what='stderr', limit=2000, tail=True)}"
        return reason
