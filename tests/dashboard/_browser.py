"""What the browser tests share: Debian's Chromium through Playwright (installed by scripts/browser.sh), a real MCP
client in a thread of its own (for sync tests and for the test host page of the MCP App), and where screenshots go."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from tests._net import authorized

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "browser.sh"
ARTIFACTS = REPO / ".artifacts"
"""Screenshots (git-ignored)."""

WAIT = 15.0
WAIT_MS = int(WAIT * 1000)


def chromium_path() -> str:
    """Debian's Chromium, installed by scripts/browser.sh when absent; skips the test with the script's reason when
    it cannot be had."""
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=900, check=False)
    lines = done.stdout.split()
    if done.returncode != 0 or not lines:
        pytest.skip(f"no Chromium: scripts/browser.sh said: {done.stderr.strip()[-1000:]}")
    return lines[0]


def launched_browser() -> Iterator[Any]:
    """A headless Chromium for a module (Playwright's sync API; no browser download)."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium refuses its sandbox as root (the tests here run as root).
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as .artifacts/NAME.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class McpThread:
    """A real MCP client over streamable HTTP, open in an event loop of its own thread, called synchronously."""

    def __init__(self, url: str, token: str, *, apps: bool = False) -> None:
        self._url, self._token, self._apps = url, token, apps
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mcp-client", daemon=True)
        self._thread.start()
        self._ready: Future[Client] = Future()
        self._done: asyncio.Event | None = None
        self._held = asyncio.run_coroutine_threadsafe(self._hold(), self._loop)
        self.client = self._ready.result(WAIT)

    async def _hold(self) -> None:
        self._done = asyncio.Event()
        extensions = [advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})] if self._apps else None
        try:
            async with Client(authorized(self._url, self._token), extensions=extensions) as client:
                self._ready.set_result(client)
                await self._done.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def run(self, coroutine: Any) -> Any:
        """The value of `coroutine` (a call on `self.client`), run in the client's loop."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(WAIT)

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> Any:
        """`tools/call`; raises on a tool error."""
        result = self.run(self.client.call_tool(name, arguments or {}))
        assert not result.is_error, result.content
        return result

    def close(self) -> None:
        if self._done is not None:
            self._loop.call_soon_threadsafe(self._done.set)
        try:
            self._held.result(WAIT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(WAIT)
            self._loop.close()
