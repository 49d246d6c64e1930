"""Several schedulers on one database (a SQLite file, or PostgreSQL): one runner fires, the standbys
serve the same jobs, and changes made anywhere take effect everywhere. (Two services in one test
process: each has its own connections and its own lease, as two processes would; tests/reliability
kills real ones.)"""

from __future__ import annotations

from typing import Any

import pytest

from mcp_scheduler import JobEvent, JobExistsError, SchedulerService
from mcp_scheduler.jobs import Job
from mcp_scheduler.store import Bookkeeping, store_for
from mcp_scheduler.timestamps import utcnow
from tests._net import eventually
from tests.scheduler._support import Calls, EventRecorder, finished, request


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, db_path: str) -> str:
    """The shared database; asked for before make_service, so that its schema outlives the runtimes."""
    return db_path if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


async def _pair(make_service: Any, database: str) -> tuple[SchedulerService, SchedulerService]:
    runner: SchedulerService = await make_service(database=database)
    standby: SchedulerService = await make_service(database=database)
    assert runner.is_runner and not standby.is_runner
    return runner, standby


async def _stored(database: str, job_id: str) -> Job | None:
    store = store_for(database)
    await store.open()
    try:
        return await store.load_job(job_id)
    finally:
        await store.close()


async def _stored_state(database: str, job_id: str) -> str | None:
    job = await _stored(database, job_id)
    return None if job is None else job.state


async def test_a_job_scheduled_on_a_standby_runs_in_the_runner_and_both_hear_of_the_run(
    database: str, make_service: Any, echo: Calls
) -> None:
    runner, standby = await _pair(make_service, database)
    at_runner, at_standby = EventRecorder(runner.events), EventRecorder(standby.events)

    await standby.schedule(request("from-standby", "once", "now"))

    await at_runner.wait_for(finished("from-standby", "success"))
    await at_standby.wait_for(finished("from-standby", "success"))  # read back from the store
    assert len(echo.inputs) == 1
    assert at_runner.job_events("from-standby") == ["added", "completed"]
    [record] = await standby.get_history("from-standby")
    assert record.status == "success"


async def test_a_job_scheduled_on_the_runner_appears_on_the_standby(
    database: str, make_service: Any, echo: Calls
) -> None:
    runner, standby = await _pair(make_service, database)
    at_standby = EventRecorder(standby.events)

    await runner.schedule(request("hourly"))

    await at_standby.wait_for(lambda e: isinstance(e, JobEvent) and e.job_id == "hourly")
    [info], total = standby.list_jobs()
    assert total == 1 and info.job_id == "hourly" and info.next_run is not None
    job, _ = await standby.get_job("hourly")
    assert job.next_run == (await runner.get_job("hourly"))[0].next_run


async def test_pause_resume_and_cancel_on_a_standby_reach_the_runner(
    database: str, make_service: Any, echo: Calls
) -> None:
    runner, standby = await _pair(make_service, database)
    at_runner = EventRecorder(runner.events)
    await runner.schedule(request("every-second", "interval", "1 second"))
    await at_runner.wait_for(finished("every-second", "success"))
    await eventually(lambda: "every-second" in standby.job_ids(), within=5, what="the standby seeing the job")

    await standby.pause("every-second")
    await at_runner.wait_for(lambda e: isinstance(e, JobEvent) and e.kind == "paused")
    assert runner.list_jobs(state="paused")[1] == 1
    runs_when_paused = len(at_runner.runs("every-second", "started"))
    # A batch of the runner written after the pause (it still had the job's last fire to write) keeps it.
    late = store_for(database)
    await late.open()
    await late.write_batch([], [Bookkeeping("every-second", "scheduled", utcnow(), utcnow(), "success")], 100)
    await late.close()
    assert await _stored_state(database, "every-second") == "paused"

    await standby.resume("every-second")
    await at_runner.wait_for(lambda e: isinstance(e, JobEvent) and e.kind == "resumed")
    await at_runner.wait_for(finished("every-second", "success"), count=runs_when_paused + 1)

    await standby.cancel("every-second")
    await at_runner.wait_for(lambda e: isinstance(e, JobEvent) and e.kind == "removed")
    assert "every-second" not in runner.job_ids()
    assert await _stored_state(database, "every-second") is None


async def test_when_the_runner_closes_a_standby_takes_over_and_fires(
    database: str, make_service: Any, echo: Calls
) -> None:
    runner, standby = await _pair(make_service, database)
    await runner.schedule(request("later", "interval", "1 second"))
    await eventually(lambda: "later" in standby.job_ids(), within=5, what="the standby seeing the job")
    await runner.close()

    at_standby = EventRecorder(standby.events)
    await eventually(lambda: standby.is_runner, within=5, what="the standby taking over")
    await at_standby.wait_for(finished("later", "success"), within=5)
    assert standby.status().role == "runner"


async def test_a_job_stored_a_moment_ago_by_another_process_is_found_at_once(
    database: str, make_service: Any, echo: Calls
) -> None:
    runner, standby = await _pair(make_service, database)

    await standby.schedule(request("just-now"))
    # asked before the runner's follower can have seen the change (it looks every 50 ms)
    job, _ = await runner.get_job("just-now")
    assert job.job_id == "just-now"
    assert (await runner.pause("just-now")).state == "paused"


async def test_an_id_another_process_stored_a_moment_ago_is_kept_refused_or_replaced_never_deleted(
    database: str, make_service: Any, echo: Calls
) -> None:
    runner, standby = await _pair(make_service, database)
    await standby.schedule(request("taken", input_data={"operation": "echo", "text": "first"}))

    # asked before the runner's follower can have seen the change: the store's insert finds the id taken
    kept = await runner.schedule(request("taken", input_data={"operation": "echo", "text": "second"}, if_exists="keep"))
    assert kept.input_data == {"operation": "echo", "text": "first"}
    with pytest.raises(JobExistsError):
        await runner.schedule(request("taken", input_data={"operation": "echo", "text": "third"}))
    assert await _stored_state(database, "taken") == "scheduled"  # the other process's job stays stored

    await runner.schedule(request("taken", input_data={"operation": "echo", "text": "fourth"}, if_exists="replace"))
    job, _ = await runner.get_job("taken")
    assert job.input_data == {"operation": "echo", "text": "fourth"}
    stored = await _stored(database, "taken")
    assert stored is not None and stored.definition.input_data == {"operation": "echo", "text": "fourth"}
