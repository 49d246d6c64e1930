"""Network helpers shared by the tests that start real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx2
from mcp.client.streamable_http import streamable_http_client

TEST_TOKEN = "test-bearer-token-of-local-servers"
"""The `--auth-token` of servers started by tests that are about something else than auth."""


MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
"""The headers of a raw streamable HTTP request (what an MCP client sends)."""

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
"""A raw client's `initialize` request (the first message of a session)."""


def bearer(token: str = TEST_TOKEN) -> dict[str, str]:
    """The Authorization header that sends `token`."""
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def authorized(url: str, token: str = TEST_TOKEN) -> AsyncIterator[Any]:
    """A streamable HTTP transport to `url` that sends `token` (`Client(authorized(url))`)."""
    async with (
        httpx2.AsyncClient(headers=bearer(token), timeout=30) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


def read_token(path: Path | str) -> str:
    """The token a server wrote to its `--token-file`."""
    return Path(path).read_text().strip()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_listening(
    process: subprocess.Popen[bytes], port: int, *, within: float = 30.0, log: str = "", host: str = "127.0.0.1"
) -> None:
    """Wait until `process` accepts TCP connections on `host:port`; raise with `log`'s tail if it exits or never does.

    Each miss waits on the process itself (up to 50 ms), so an early exit is seen at once.
    """
    attempts = max(1, int(within / 0.05))
    for _ in range(attempts):
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            try:
                code = process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"the server exited with {code} before listening on port {port}\n{_tail(log)}") from None
    raise RuntimeError(f"nothing listens on port {port} after {within:.0f} s\n{_tail(log)}")


def _tail(path: str) -> str:
    if not path:
        return ""
    try:
        with open(path, errors="replace") as text:
            return text.read()[-4000:]
    except OSError:
        return ""


def stop(process: subprocess.Popen[bytes], *, within: float = 10.0) -> int:
    """Terminate `process` (SIGTERM), kill it if it is still there after `within` seconds; return its exit code."""
    process.terminate()
    try:
        return process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=within)


async def eventually(condition: Callable[[], bool], *, within: float = 20.0, what: str = "the condition") -> None:
    """Wait until `condition()` holds, checking every 20 ms for at most `within` seconds.

    For state that another process writes (a file, a database): there is no event to wait on.
    """
    for _ in range(max(1, int(within / 0.02))):
        if condition():
            return
        await asyncio.sleep(0.02)
    if not condition():
        raise AssertionError(f"{what} did not happen within {within} s")
