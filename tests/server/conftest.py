"""Fixtures and helpers for the MCP server tests: real clients, real SQLite files, real subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mcp_scheduler import SchedulerRuntime
from mcp_scheduler.server import SchedulerServer, build_server
from mcp_scheduler.settings import Settings
from tests._net import free_port, read_token, stop, wait_until_listening

from ._issuer import Issuer

MODES = ["auto", "legacy"]
"""`auto` ends up on the 2026-07-28 era against this server; `legacy` forces the initialize handshake."""

WAIT = 10.0
"""Upper bound for any awaited event (they normally arrive within milliseconds)."""

LOG_INPUT = {"operation": "log", "level": "INFO", "message": "hello from a job"}


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    """A real OAuth authorization server on 127.0.0.1 (`_issuer.py`) for the module's tests."""
    found = Issuer()
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def db_file(tmp_path: Path) -> str:
    return str(tmp_path / "s.db")


ServerFactory = Callable[..., SchedulerServer]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    """Build servers, each over a runtime of its own on `database`; the runtimes are closed at teardown. They ask
    no confirmations unless given `confirm=True`."""
    runtimes: list[SchedulerRuntime] = []

    def factory(database: str, **options: Any) -> SchedulerServer:
        options.setdefault("confirm", False)  # as the servers the session starts (tests/conftest.py)
        settings = Settings(database=database, timezone="UTC", discover_entry_points=False, **options)
        runtime = SchedulerRuntime(settings.service_config(), toolkit_config=settings.toolkit_config())
        runtimes.append(runtime)
        return build_server(runtime, settings)

    yield factory
    for runtime in reversed(runtimes):
        await runtime.close()


@pytest.fixture
def server(make_server: ServerFactory, db_file: str) -> MCPServer:
    return make_server(db_file)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@contextlib.asynccontextmanager
async def hosted(client: Client) -> AsyncIterator[Client]:
    """Enter and exit `client` in one task of its own.

    pytest-asyncio runs a fixture's setup and teardown in different tasks, which anyio's cancel
    scopes inside the client do not allow.
    """
    ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
    done = asyncio.Event()

    async def hold() -> None:
        try:
            async with client as entered:
                ready.set_result(entered)
                await done.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    task = asyncio.create_task(hold())
    try:
        yield await asyncio.wait_for(ready, WAIT)
    finally:
        done.set()
        await asyncio.wait_for(task, WAIT)


@pytest.fixture
async def client(server: MCPServer, mode: str) -> AsyncIterator[Client]:
    async with hosted(Client(server, mode=mode)) as c:
        yield c


def structured(result: Any) -> dict[str, Any]:
    """The structured content of a successful tool result."""
    assert not result.is_error, result.content[0].text if result.content else result
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: Any) -> str:
    """The message of a failed tool result."""
    assert result.is_error, f"expected an error, got {result.structured_content}"
    return " ".join(getattr(block, "text", "") for block in result.content)


def resource_json(result: Any) -> Any:
    (content,) = result.contents
    assert content.mime_type == "application/json"
    return json.loads(content.text)


def once_now(job_id: str, **extra: Any) -> dict[str, Any]:
    """schedule_job arguments for a job that fires at once and runs the `logging` AgenTool."""
    return {
        "schedule_type": "once",
        "schedule": "now",
        "agentool_name": "logging",
        "input_data": LOG_INPUT,
        "job_id": job_id,
        **extra,
    }


def hourly(job_id: str, agentool_name: str = "logging", **extra: Any) -> dict[str, Any]:
    """schedule_job arguments for a job that will not fire during a test."""
    data = LOG_INPUT if agentool_name == "logging" else {"operation": "set", "key": job_id, "value": 1}
    return {
        "schedule_type": "interval",
        "schedule": "1 hour",
        "agentool_name": agentool_name,
        "input_data": data,
        "job_id": job_id,
        **extra,
    }


class Inbox:
    """Collects what a client receives (message_handler / logging_callback) and waits for it, event-driven."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def put(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    async def message_handler(self, message: Any) -> None:
        self.put(message)

    async def logging_callback(self, params: Any) -> None:
        self.put(params)

    def matching(self, predicate: Callable[[Any], bool]) -> list[Any]:
        return [item for item in self.items if predicate(item)]

    async def wait_for(self, predicate: Callable[[Any], bool], within: float = WAIT) -> Any:
        """The first received item matching `predicate` (already received or still to come)."""

        async def find() -> Any:
            while True:
                for item in self.items:
                    if predicate(item):
                        return item
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(find(), within)


def updated(uri: str) -> Callable[[Any], bool]:
    """Matches a handshake-era notifications/resources/updated for `uri`."""
    return lambda m: getattr(m, "method", None) == "notifications/resources/updated" and str(m.params.uri) == uri


def list_changed(m: Any) -> bool:
    return getattr(m, "method", None) == "notifications/resources/list_changed"


async def next_event(subscription: Any, predicate: Callable[[Any], bool], within: float = WAIT) -> Any:
    """The next event of a `Client.listen` stream matching `predicate`."""

    async def find() -> Any:
        async for event in subscription:
            if predicate(event):
                return event
        raise AssertionError("the subscription stream ended")

    return await asyncio.wait_for(find(), within)


# ---------------------------------------------------------------------- subprocesses


def scheduler_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mcp_scheduler", *args]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `python -m mcp_scheduler ARGS` to completion."""
    # A table is cut to $COLUMNS when set (pytest-xdist's workers have it): these tests read whole cells.
    full_env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | (env or {})
    return subprocess.run(scheduler_command(*args), capture_output=True, text=True, timeout=timeout, env=full_env)


@dataclass
class HttpServer:
    port: int
    database: str
    process: subprocess.Popen[bytes]
    token: str
    """The bearer token the server generated into its --token-file (or the first --auth-token given)."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def http_server(tmp_dir: Path, *args: str) -> Iterator[HttpServer]:
    """`python -m mcp_scheduler ARGS --port P --db F --timezone UTC --token-file T` running until the block ends.

    Without --auth-token in ARGS the server generates its token into `tmp_dir/token` (the default path of
    a real server, in a folder of the test's own).
    """
    port = free_port()
    database = str(tmp_dir / "server.db")
    token_file = tmp_dir / "token"
    log = (tmp_dir / "server.log").open("wb")
    process = subprocess.Popen(
        scheduler_command(*args, "--port", str(port), "--db", database, "--timezone", "UTC",
                          "--token-file", str(token_file)),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        wait_until_listening(process, port, log=str(tmp_dir / "server.log"))
        token = args[args.index("--auth-token") + 1] if "--auth-token" in args else read_token(token_file)
        yield HttpServer(port, database, process, token)
    finally:
        stop(process)
        log.close()
