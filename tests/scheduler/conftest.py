from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import get_injector
from mcp_scheduler import (
    SchedulerService,
    ServiceConfig,
    close_scheduler_agent,
    create_scheduler_agent,
    get_scheduler_service,
)
from tests.scheduler import _support

ServiceFactory = Callable[..., Awaitable[SchedulerService]]


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    """Every test starts and ends with no AgenTools registered."""
    get_injector().clear()
    yield
    get_injector().clear()


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "scheduler.db")


@pytest.fixture
def echo() -> _support.Calls:
    return _support.register_echo()


@pytest.fixture
def fail() -> _support.Calls:
    return _support.register_fail()


@pytest.fixture
def slow() -> Iterator[_support.Slow]:
    control = _support.register_slow()
    yield control
    control.release.set()


@pytest.fixture
async def make_service(db_path: str) -> AsyncIterator[ServiceFactory]:
    """Create (and by default open) services on a real SQLite file; all are closed at teardown."""
    services: list[SchedulerService] = []

    async def factory(*, open: bool = True, database: str | None = None, **config: Any) -> SchedulerService:
        config.setdefault("timezone", "UTC")
        config.setdefault("flush_delay", 0.01)
        service = SchedulerService(ServiceConfig(database=database or db_path, **config))
        services.append(service)
        if open:
            await service.open()
        return service

    yield factory
    for service in reversed(services):
        await service.close()


@pytest.fixture
async def service(make_service: ServiceFactory) -> SchedulerService:
    return await make_service()


@pytest.fixture
def recorder(service: SchedulerService) -> _support.EventRecorder:
    return _support.EventRecorder(service.events)


@pytest.fixture
async def scheduler_agent(db_path: str) -> AsyncIterator[_support.EventRecorder]:
    """The `scheduler` AgenTool on a SQLite file, opened; yields a recorder of its events."""
    create_scheduler_agent(db_path, timezone="UTC")
    await get_injector().run("scheduler", {"operation": "status"})  # opens the service
    recorder = _support.EventRecorder(get_scheduler_service().events)
    yield recorder
    await close_scheduler_agent()
