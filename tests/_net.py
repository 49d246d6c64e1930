"""Network helpers shared by the tests that start real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
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


class CuttableProxy:
    """A TCP proxy on a thread of its own (the client under test may block its loop on a synchronous connect), to
    cut a server off as an outage would: `cut()` closes every connection through it and refuses new ones
    (accepted, then closed at once) until `mend()`."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cuttable-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.down = False
        self.port = 0

    def __enter__(self) -> CuttableProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def cut(self) -> None:
        self._call(self._cut())

    def mend(self) -> None:
        self.down = False

    async def _cut(self) -> None:
        self.down = True
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _close(self) -> None:
        await self._cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            sink.close()
            self._writers.discard(sink)
