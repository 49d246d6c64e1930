"""The PostgreSQL runner lease against a real server: one holder, named to the others; claims; fencing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from mcp_scheduler import SchedulerService
from mcp_scheduler.postgres_lease import PostgresLease
from tests.scheduler._support import Calls, EventRecorder, finished, request


@pytest.fixture
async def leases(postgres_url: str) -> AsyncIterator[tuple[PostgresLease, PostgresLease]]:
    first, second = PostgresLease(postgres_url, lease_time=4), PostgresLease(postgres_url, lease_time=4)
    yield first, second
    await first.release()
    await second.release()


async def test_one_process_holds_the_lease_and_the_others_are_told_who(
    leases: tuple[PostgresLease, PostgresLease],
) -> None:
    first, second = leases
    assert await first.try_acquire() is True
    assert await second.try_acquire() is False
    assert "mcp-scheduler pid" in second.holder() and "since" in second.holder()
    assert await first.keep() is True and await second.keep() is False

    await first.release()
    assert await second.try_acquire() is True and second.holder() == "this process"


async def test_processes_starting_together_on_a_fresh_schema_all_join_and_one_holds_the_lease(
    postgres_url: str,
) -> None:
    """Replicas started at once (a service manager, an orchestrator) each create the lease's tables if missing."""
    together = [PostgresLease(postgres_url, lease_time=4) for _ in range(6)]
    try:
        acquired = await asyncio.gather(*(lease.try_acquire() for lease in together))
    finally:
        for lease in together:
            await lease.release()
    assert sorted(acquired) == [False] * 5 + [True]


async def test_a_fire_is_claimed_once_and_only_by_the_holder(leases: tuple[PostgresLease, PostgresLease]) -> None:
    first, second = leases
    await first.try_acquire()
    when = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    assert await second.claim("job", when) is False  # not the holder
    assert await first.claim("job", when) is True
    assert await first.claim("job", when) is False  # claimed before
    assert await first.claim("job", when.replace(minute=1)) is True


async def test_a_runner_whose_session_is_gone_stops_and_cannot_claim(
    leases: tuple[PostgresLease, PostgresLease], postgres_url: str
) -> None:
    first, second = leases
    await first.try_acquire()
    pid = first.session_pid
    assert pid is not None
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    assert await first.keep() is False  # the caller stops firing
    assert await first.claim("job", datetime.now(UTC)) is False
    assert await second.try_acquire() is True  # the server freed the lock with the session


async def test_a_lease_time_under_two_seconds_is_refused(postgres_url: str) -> None:
    with pytest.raises(ValueError, match="at least 2 seconds"):
        PostgresLease(postgres_url, lease_time=1)


async def test_a_fire_claimed_by_a_runner_that_died_before_starting_it_is_recorded_missed_not_run(
    postgres_url: str, make_service: Any, echo: Calls
) -> None:
    runner: SchedulerService = await make_service(database=postgres_url)
    recorder = EventRecorder(runner.events)
    when = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        # what a runner killed between its claim and the commit of the run's start leaves behind
        await conn.execute(
            "INSERT INTO scheduler_claims (job_id, scheduled_time) VALUES (%s, %s)", ("claimed", when)
        )
    await runner.schedule(request("claimed", "once", when.isoformat()))

    [event] = await recorder.wait_for(finished("claimed"), within=10)
    record = event.record  # type: ignore[union-attr]
    assert record.status == "missed" and "claimed by the previous runner" in (record.note or "")
    assert echo.inputs == []


async def test_fires_claimed_together_are_each_granted_once(leases: tuple[PostgresLease, PostgresLease]) -> None:
    first, _ = leases
    await first.try_acquire()
    base = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    fires = [(f"job-{i % 50}", base + timedelta(seconds=i // 50)) for i in range(200)]

    granted = await asyncio.gather(*(first.claim(job_id, when) for job_id, when in fires + fires[:20]))

    assert granted[:200] == [True] * 200 and granted[200:] == [False] * 20


async def test_old_claims_are_deleted(leases: tuple[PostgresLease, PostgresLease], postgres_url: str) -> None:
    first, _ = leases
    await first.try_acquire()
    now = datetime.now(UTC)
    assert await first.claim("recent", now)
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO scheduler_claims (job_id, scheduled_time, claimed_at) VALUES (%s, %s, %s)",
            ("old", now - timedelta(days=30), now - timedelta(days=30)),
        )

    assert await first.prune_claims() == 1
    assert await first.claim("old", now - timedelta(days=30)) is True  # its claim is gone
    assert await first.claim("recent", now) is False
