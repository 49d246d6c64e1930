from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import AgenToolInjector, get_injector
from mcp_scheduler import (
    SchedulerRuntime,
    SchedulerService,
    ServiceConfig,
    close_scheduler_agent,
    create_scheduler_agent,
    get_scheduler_service,
)
from mcp_scheduler.clocks import Clock
from tests.scheduler import _support

RuntimeFactory = Callable[..., Awaitable[SchedulerRuntime]]
ServiceFactory = Callable[..., Awaitable[SchedulerService]]


@pytest.fixture
def injector() -> Iterator[AgenToolInjector]:
    """The test's own injector, active while it runs: the stand-in AgenTools register there, and the
    runtimes of the test run on it."""
    own = AgenToolInjector()
    with own.activate():
        yield own


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "scheduler.db")


@pytest.fixture
def echo(injector: AgenToolInjector) -> _support.Calls:
    return _support.register_echo()


@pytest.fixture
def fail(injector: AgenToolInjector) -> _support.Calls:
    return _support.register_fail()


@pytest.fixture
def slow(injector: AgenToolInjector) -> Iterator[_support.Slow]:
    control = _support.register_slow()
    yield control
    control.release.set()


@pytest.fixture
async def make_runtime(db_path: str, injector: AgenToolInjector) -> AsyncIterator[RuntimeFactory]:
    """Create (and by default open) runtimes on a real SQLite file; all are closed at teardown."""
    runtimes: list[SchedulerRuntime] = []

    async def factory(
        *, open: bool = True, database: str | None = None, clock: Clock | None = None, **config: Any
    ) -> SchedulerRuntime:
        config.setdefault("timezone", "UTC")
        config.setdefault("flush_delay", 0.01)
        runtime = SchedulerRuntime(ServiceConfig(database=database or db_path, **config), injector=injector,
                                   clock=clock)
        runtimes.append(runtime)
        if open:
            await runtime.open()
        return runtime

    yield factory
    for runtime in reversed(runtimes):
        await runtime.close()


@pytest.fixture
def make_service(make_runtime: RuntimeFactory) -> ServiceFactory:
    """Like `make_runtime`, returning the runtime's scheduler service."""

    async def factory(**options: Any) -> SchedulerService:
        return (await make_runtime(**options)).service

    return factory


@pytest.fixture
async def service(make_service: ServiceFactory) -> SchedulerService:
    return await make_service()


@pytest.fixture
def recorder(service: SchedulerService) -> _support.EventRecorder:
    return _support.EventRecorder(service.events)


@pytest.fixture
async def scheduler_agent(db_path: str, injector: AgenToolInjector) -> AsyncIterator[_support.EventRecorder]:
    """The `scheduler` AgenTool on a SQLite file, opened; yields a recorder of its events."""
    create_scheduler_agent(db_path, timezone="UTC")
    await get_injector().run("scheduler", {"operation": "status"})  # opens the service
    recorder = _support.EventRecorder(get_scheduler_service().events)
    yield recorder
    await close_scheduler_agent()
