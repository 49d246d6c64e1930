"""What a connection to an MCP server is opened with and listens through: the server's resolved `env` and
`headers`, the tail of a stdio server's stderr, and a read stream that reports the end of the connection.

A stdio server's stderr is logged (logger `agentool_bridge.toolkits.mcp.transports`, INFO, one record per
line, its `!env:` values replaced by their references) and its last lines go into the error when it exits.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from ...errors import clip_text
from ...secrets import Secrets, redact

__all__ = ["Resolved", "StderrTail", "WatchedReadStream"]

logger = logging.getLogger(__name__)

_STDERR_LINES = 20


@dataclass(frozen=True)
class Resolved:
    """A server's `env` and `headers` with their `!env:` values read, and what was read (to redact)."""

    env: dict[str, str]
    headers: dict[str, str]
    secrets: Secrets = field(default_factory=dict)


class StderrTail(asyncio.Protocol):
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


class WatchedReadStream:
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

    def __aiter__(self) -> WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._inner.__anext__()
        except (StopAsyncIteration, anyio.EndOfStream, anyio.ClosedResourceError):
            self._on_end()
            raise

    async def __aenter__(self) -> WatchedReadStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        result: bool | None = await self._inner.__aexit__(*exc_info)
        return result

    def __getattr__(self, name: str) -> Any:  # `last_context` and whatever else the SDK looks for
        return getattr(self._inner, name)
