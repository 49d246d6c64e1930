"""Every answer is true after the call, on the runner and on a standby of one store (SQLite and PostgreSQL):
issue 22 "Answers an agent can trust", item 1. Two services in one test process, each with its own connections and
lease as two processes would have (tests/server/test_true_answers_across_processes.py has real servers)."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_scheduler import SchedulerService
from mcp_scheduler.models import SchedulerInput
from tests.scheduler._support import Calls, EventRecorder, finished, request


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, db_path: str) -> str:
    return db_path if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


async def _pair(make_service: Any, database: str) -> tuple[SchedulerService, SchedulerService]:
    runner: SchedulerService = await make_service(database=database)
    standby: SchedulerService = await make_service(database=database)
    assert runner.is_runner and not standby.is_runner
    return runner, standby


@pytest.mark.parametrize("where", ["runner", "standby"])
async def test_cancel_answers_that_the_job_is_cancelled_with_no_next_run(
    database: str, make_service: Any, echo: Calls, where: str
) -> None:
    runner, standby = await _pair(make_service, database)
    await runner.schedule(request("doomed"))
    service = runner if where == "runner" else standby

    answer = await service.cancel("doomed")

    assert answer.state == "cancelled"
    assert answer.next_run is None and answer.next_runs == []


async def test_a_standby_says_the_runner_beside_it_runs_the_jobs(database: str, make_service: Any) -> None:
    runner, standby = await _pair(make_service, database)

    status = standby.status()

    assert status.role == "standby"
    assert status.running and status.state == "running"
    assert status.runner is not None and status.runner != "this process"


async def test_a_list_on_a_standby_right_after_a_cancel_on_the_runner_leaves_the_job_out(
    database: str, make_service: Any, echo: Calls
) -> None:
    runner, standby = await _pair(make_service, database)
    await runner.schedule(request("kept"))
    await runner.schedule(request("gone"))
    await standby.get_job("gone")

    await runner.cancel("gone")
    await standby.catch_up()
    jobs, total = standby.list_jobs()

    assert [j.job_id for j in jobs] == ["kept"] and total == 1


async def test_a_list_on_a_standby_shows_the_next_run_the_runner_moved_to(
    database: str, make_service: Any, echo: Calls
) -> None:
    runner, standby = await _pair(make_service, database)
    at_runner = EventRecorder(runner.events)
    await runner.schedule(request("often", "interval", "1s"))
    await at_runner.wait_for(finished("often", "success"), count=2)

    await standby.catch_up()
    [shown], _ = standby.list_jobs()
    [truth], _ = runner.list_jobs()

    assert shown.next_run == truth.next_run


async def test_run_now_on_a_standby_is_the_last_run_everywhere(
    database: str, make_service: Any, echo: Calls
) -> None:
    runner, standby = await _pair(make_service, database)
    await runner.schedule(request("manual"))

    record = await standby.run_now(SchedulerInput(operation="run_now", job_id="manual"))

    for service in (standby, runner):
        job, _ = await service.get_job("manual")
        assert (job.last_run_at, job.last_status) == (record.started_at, "success")
        await service.catch_up()
        [listed], _ = service.list_jobs()
        assert listed.last_status == "success"


async def test_a_list_that_cannot_read_the_store_says_when_its_jobs_were_last_read(
    db_path: str, make_service: Any, echo: Calls
) -> None:
    runner, standby = await _pair(make_service, db_path)
    await runner.schedule(request("kept"))
    assert await standby.catch_up() is None  # read now: nothing stale to tell

    await standby._store.close()  # every read of the store fails until it is opened again
    read_at = standby._replication.synced_at  # the last read that worked (the follower's, or the catch-up's)
    assert read_at is not None
    try:
        stale_since = await standby.catch_up()
    finally:
        await standby._store.open()

    assert stale_since == read_at
    assert [j.job_id for j in standby.list_jobs()[0]] == ["kept"]  # as last read
    assert await standby.catch_up() is None
