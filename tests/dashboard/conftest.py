"""Fixtures of the dashboard tests: a server over a real SQLite store with a job kind that fails, and a schedule
with a bit of everything (jobs with next runs, a paused job, a success, a failure with a pending retry)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from pydantic import Field

from agentool_bridge import BaseOperationInput, RoutingConfig, register_agentool
from mcp_scheduler import RunEvent, SchedulerInput, SchedulerRuntime
from mcp_scheduler.events import SchedulerEvent
from mcp_scheduler.server import SchedulerServer
from tests.server.conftest import HttpServer, ServerFactory, db_file, http_server, make_server  # noqa: F401

from ._browser import McpThread, launched_browser

WAIT = 10.0
TOKEN = "dashboard-test-token"
"""The --auth-token of the HTTP servers the dashboard tests start (a plain token: every scope, every job)."""
READER = "dashboard-reader-token"
"""A named token of the module's server that may only read (principal token:reader)."""
WRITER = "dashboard-writer-token"
"""A named token of the module's server that may read, write and run (principal token:writer), not admin."""
LOG_INPUT = {"operation": "log", "level": "INFO", "message": "hello from a job"}


class BoomInput(BaseOperationInput):
    """Always fails."""

    operation: str = Field(description="Anything.")


def explode(operation: str) -> None:
    raise RuntimeError("the disk is on fire")


def add_failing_kind(runtime: SchedulerRuntime) -> None:
    """A job kind `boom` whose runs fail with 'the disk is on fire'."""
    register_agentool(
        "boom", BoomInput, RoutingConfig(operation_map={"go": ("explode", None)}), [explode], registry=runtime.registry
    )


async def wait_for_event(runtime: SchedulerRuntime, predicate: Callable[[SchedulerEvent], bool]) -> SchedulerEvent:
    """The next event of `runtime` matching `predicate` (within WAIT seconds)."""
    found: asyncio.Future[SchedulerEvent] = asyncio.get_running_loop().create_future()

    def listen(event: SchedulerEvent) -> None:
        if predicate(event) and not found.done():
            found.set_result(event)

    unsubscribe = runtime.events.subscribe(listen)
    try:
        return await asyncio.wait_for(found, WAIT)
    finally:
        unsubscribe()


def finished(job_id: str) -> Callable[[SchedulerEvent], bool]:
    return lambda e: isinstance(e, RunEvent) and e.kind == "finished" and e.job_id == job_id


def request(operation: str, **fields: Any) -> SchedulerInput:
    return SchedulerInput(operation=operation, **fields)  # type: ignore[arg-type]


async def fill(runtime: SchedulerRuntime) -> None:
    """Jobs `nightly` (cron) and `hourly` (paused by hand); a run of `hourly` that succeeded; job `flaky` whose
    fire failed, with its retry pending in an hour."""
    svc = runtime.service
    await svc.schedule(
        request(
            "schedule",
            job_id="nightly",
            job_name="Nightly report",
            schedule_type="cron",
            schedule="0 3 * * *",
            agentool_name="logging",
            input_data=LOG_INPUT,
        )
    )
    await svc.schedule(
        request(
            "schedule",
            job_id="hourly",
            schedule_type="interval",
            schedule="1 hour",
            agentool_name="logging",
            input_data=LOG_INPUT,
        )
    )
    await svc.run_now(request("run_now", job_id="hourly"))
    await svc.pause("hourly")
    failed = asyncio.ensure_future(wait_for_event(runtime, finished("flaky")))
    await asyncio.sleep(0)  # the listener is subscribed before the job can fire
    await svc.schedule(
        request(
            "schedule",
            job_id="flaky",
            schedule_type="once",
            schedule="now",
            agentool_name="boom",
            input_data={"operation": "go"},
            policy={"max_attempts": 2, "retry_delay": 3600},
        )
    )
    await failed


@pytest.fixture
async def filled(make_server: ServerFactory, db_file: str) -> AsyncIterator[SchedulerServer]:  # noqa: F811
    """An open server (the `boom` kind added) whose schedule `fill` made."""
    server = make_server(db_file)
    add_failing_kind(server.runtime)
    async with server.use() as runtime:
        await fill(runtime)
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium for the module (scripts/browser.sh installs it when missing)."""
    yield from launched_browser()


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """`mcp-scheduler --transport http` for the module (bearer token `TOKEN`)."""
    with http_server(tmp_path_factory.mktemp("http"), "--transport", "http", "--auth-token", TOKEN,
                     "--auth-token", f"reader:read:{READER}", "--auth-token", f"writer:read+write+run:{WRITER}",
                     ) as running:
        yield running


@pytest.fixture(scope="module")
def mcp(http: HttpServer) -> Iterator[McpThread]:
    """A real MCP client of that server (in a thread: the browser tests are synchronous)."""
    client = McpThread(f"{http.base}/mcp", TOKEN)
    yield client
    client.close()
