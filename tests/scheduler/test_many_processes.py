"""Several schedulers on one database (a SQLite file, or PostgreSQL): one runner fires, the standbys
serve the same jobs, and changes made anywhere take effect everywhere. (Two services in one test
process: each has its own connections and its own lease, as two processes would; tests/reliability
kills real ones.) Every answer is true after the call, on the runner and on a standby (issue 22, item 1;
tests/server/test_true_answers_across_processes.py has real servers)."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_scheduler import JobEvent, JobExistsError, SchedulerInput, SchedulerService
from mcp_scheduler.jobs import Job
from mcp_scheduler.store import Bookkeeping, store_for
from mcp_scheduler.timestamps import utcnow
from tests._net import eventually
from tests.scheduler._support import Calls, EventRecorder, finished, request


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, db_path: str) -> str:
    """The shared database (a PostgreSQL schema outlives the runtimes on it, whatever the fixture order)."""
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


# ---------------------------------------------------------------------------- answers true after the call (issue 22)


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
