"""The operator's quotas, at the service: jobs per store, the shortest interval, runs in flight per job and
in all, and the inbox; and cancel_job, update_job and stop_scheduler stopping the runs in flight.

Each quota is set small here (`max_jobs=3`, not 10,000 jobs). Runs that must be in progress use the
`forever` AgenTool, which sets an event when it starts and then waits until it is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field

from agentool_bridge import AgenToolInjector, BaseOperationInput, RoutingConfig, register_agentool
from agentool_bridge.toolkits.config import ToolkitConfig
from agentool_bridge.toolkits.inbox import INBOX_QUEUE, post_to_inbox
from mcp_scheduler import SchedulerInput, SchedulerRuntime, SchedulerService, ServiceConfig
from mcp_scheduler.errors import InvalidJobInputError, InvalidScheduleError, JobExecutionError, SchedulerError
from mcp_scheduler.policies import PolicyInput
from mcp_scheduler.timestamps import utcnow
from tests._net import eventually
from tests.scheduler._support import Calls, EventRecorder, finished, request, started

WAIT = 10.0
FOREVER = {"operation": "wait"}


class ForeverInput(BaseOperationInput):
    """Starts, says so, and waits until it is cancelled."""

    operation: Literal["wait"] = Field(description="Wait until cancelled.")


@dataclass
class Forever:
    """Control of the `forever` AgenTool: `started` is set by each run; `cancelled` counts the cancelled ones."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    runs: int = 0
    cancelled: int = 0

    async def wait_started(self, count: int = 1) -> None:
        await eventually(lambda: self.runs >= count, within=WAIT, what=f"{count} run(s) of forever started")


@pytest.fixture
def forever(injector: AgenToolInjector) -> Forever:
    control = Forever()

    async def wait(operation: str) -> dict[str, Any]:
        control.runs += 1
        control.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            control.cancelled += 1
            raise
        raise AssertionError("unreachable")

    register_agentool("forever", ForeverInput, RoutingConfig(operation_map={"wait": ("wait", None)}), [wait])
    return control


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, db_path: str) -> str:
    """SQLite, and PostgreSQL: the quotas counted in the store hold on both."""
    return db_path if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


def hourly(job_id: str, **extra: Any) -> SchedulerInput:
    return request(job_id, "interval", "1 hour", **extra)


def forever_job(job_id: str, **extra: Any) -> SchedulerInput:
    return request(job_id, "interval", "1 hour", "forever", FOREVER, **extra)


def fire(service: SchedulerService, job_id: str, when: datetime | None = None) -> asyncio.Task[None]:
    """A fire of `job_id`, handed to the executor as the engine's dispatch does."""
    return asyncio.create_task(service._runs.admission.on_due(job_id, [when or utcnow()]))


def stored_runs(database: str, job_id: str) -> list[tuple[str, str | None]]:
    """(status, note) of a job's runs as committed in the SQLite file, read on a connection of the test's own."""
    import json

    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT status, record FROM scheduler_runs WHERE job_id = ? ORDER BY seq", (job_id,))
        found = [(status, json.loads(record).get("note")) for status, record in rows.fetchall()]
    conn.close()
    return found


# ---------------------------------------------------------------------- max_jobs


async def test_scheduling_beyond_max_jobs_is_refused_with_the_count_the_limit_and_the_flag(
    make_service: Any, echo: Calls
) -> None:
    service: SchedulerService = await make_service(max_jobs=3)
    for n in range(3):
        await service.schedule(hourly(f"j{n}"))

    with pytest.raises(SchedulerError) as refused:
        await service.schedule(hourly("one-too-many"))

    text = str(refused.value)
    assert "3 jobs" in text and "--max-jobs" in text and "cancel" in text and "completed" in text
    assert isinstance(refused.value, RuntimeError)
    assert service.list_jobs()[1] == 3  # nothing of the refused job was kept
    assert await service._store.load_job("one-too-many") is None


async def test_replacing_or_keeping_an_existing_job_at_the_limit_is_not_a_new_job(
    make_service: Any, echo: Calls
) -> None:
    service: SchedulerService = await make_service(max_jobs=2)
    await service.schedule(hourly("a"))
    await service.schedule(hourly("b"))

    kept = await service.schedule(hourly("a", if_exists="keep"))
    replaced = await service.schedule(request("b", "interval", "2 hours", if_exists="replace"))

    assert kept.job_id == "a" and replaced.description == "every 2 hours"
    await service.cancel("a")
    await service.schedule(hourly("c"))  # a cancelled job frees its place


async def test_completed_jobs_count_until_they_are_cancelled(make_service: Any, echo: Calls) -> None:
    service: SchedulerService = await make_service(max_jobs=1)
    recorder = EventRecorder(service.events)
    await service.schedule(request("done", "once", "now"))
    await recorder.wait_for(finished("done", "success"))
    assert service.list_jobs(include_completed=True)[0][0].state == "completed"

    with pytest.raises(SchedulerError, match="--max-jobs"):
        await service.schedule(hourly("next"))
    await service.cancel("done")
    await service.schedule(hourly("next"))


async def test_the_job_limit_is_counted_in_the_store_shared_by_processes(
    database: str, make_service: Any, echo: Calls
) -> None:
    runner: SchedulerService = await make_service(database=database, max_jobs=3)
    standby: SchedulerService = await make_service(database=database, max_jobs=3)
    assert runner.is_runner and not standby.is_runner
    await runner.schedule(hourly("r1"))
    await runner.schedule(hourly("r2"))
    await standby.schedule(hourly("s1"))

    for service in (runner, standby):
        with pytest.raises(SchedulerError, match=r"3 jobs.*--max-jobs"):
            await service.schedule(hourly(f"late-{id(service)}"))


async def test_inserts_racing_from_two_stores_never_pass_the_limit(database: str) -> None:
    from mcp_scheduler.errors import QuotaExceededError
    from mcp_scheduler.jobs import Job, JobDefinition
    from mcp_scheduler.schedules import parse_schedule
    from mcp_scheduler.store import store_for

    schedule = parse_schedule("interval", "1 hour", "UTC")
    stores = [store_for(database), store_for(database)]
    for store in stores:
        await store.open()
    try:
        async def insert(store: Any, n: int) -> bool:
            job = Job(JobDefinition(job_id=f"j{n}", agentool_name="echo", schedule=schedule, created_at=utcnow()))
            try:
                await store.insert_jobs([job], max_jobs=5)
            except QuotaExceededError:
                return False
            return True

        accepted = await asyncio.gather(*(insert(stores[n % 2], n) for n in range(12)))
        assert sum(accepted) == 5
        assert len([j async for page in stores[0].load_jobs() for j in page]) == 5
    finally:
        for store in stores:
            await store.close()


# ---------------------------------------------------------------------- min_interval


async def test_an_interval_below_the_minimum_is_refused_at_schedule_update_and_preview(
    make_service: Any, echo: Calls
) -> None:
    service: SchedulerService = await make_service(min_interval=5.0)

    with pytest.raises(InvalidScheduleError) as refused:
        await service.schedule(request("fast", "interval", "2 seconds"))
    assert "5 s" in str(refused.value) and "--min-interval" in str(refused.value)
    with pytest.raises(InvalidScheduleError, match="--min-interval"):
        service.preview("interval", "1 second")

    await service.schedule(request("ok", "interval", "5 seconds"))  # the minimum itself is allowed
    with pytest.raises(InvalidScheduleError, match="--min-interval"):
        await service.update(SchedulerInput(operation="update", job_id="ok", schedule="3s"))
    [job], _ = service.list_jobs()
    assert job.schedule == "5 seconds"


async def test_the_default_minimum_is_one_second(service: SchedulerService, echo: Calls) -> None:
    with pytest.raises(InvalidScheduleError, match=r"1 s.*--min-interval"):
        await service.schedule(request("fast", "interval", "0.2 seconds"))
    assert service.list_jobs()[1] == 0


@pytest.mark.parametrize(
    ("cron", "allowed"),
    [
        ("*/2 * * * * *", False),  # every 2 s
        ("0,3 * * * * *", False),  # 3 s apart within each minute
        ("0,58 * * * * *", False),  # 2 s apart across the minute
        ("*/10 * * * * *", True),
        ("* * * * *", True),  # 5 fields: a minute apart
    ],
)
async def test_a_cron_schedule_whose_fires_come_closer_than_the_minimum_is_refused(
    make_service: Any, echo: Calls, cron: str, allowed: bool
) -> None:
    service: SchedulerService = await make_service(min_interval=5.0)
    if allowed:
        await service.schedule(request("c", "cron", cron))
        service.preview("cron", cron)
        return
    with pytest.raises(InvalidScheduleError, match=r"5 s.*--min-interval"):
        await service.schedule(request("c", "cron", cron))
    with pytest.raises(InvalidScheduleError, match="--min-interval"):
        service.preview("cron", cron)


@pytest.mark.parametrize(
    "cron", ["*/2 * * * * *", "0,58 * * * * *", "5,10 */20 3 * * *", "*/15 1,2 * * *", "0 0,23 * * *",
             "7 */7 * * *", "0 9 * * 1-5", "30 2 * * *", "0 0 12,13 * * *", "59 59 23 * * *"],
)
def test_the_shortest_gap_of_a_cron_schedule_is_that_of_its_fire_times(cron: str) -> None:
    from datetime import UTC

    from mcp_scheduler.schedules import parse_schedule

    now = datetime(2026, 6, 1, tzinfo=UTC)
    schedule = parse_schedule("cron", cron, "UTC", now=now)
    times = schedule.next_fire_times(3000, now)

    assert schedule.shortest_gap() == min((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False))


# ---------------------------------------------------------------------- max_runs_per_job


async def test_max_instances_above_the_per_job_limit_is_refused(make_service: Any, echo: Calls) -> None:
    service: SchedulerService = await make_service(max_runs_per_job=3)

    with pytest.raises(InvalidJobInputError) as refused:
        await service.schedule(hourly("wide", max_instances=4))
    assert "3" in str(refused.value) and "--max-runs-per-job" in str(refused.value)
    await service.schedule(hourly("ok", max_instances=3))
    with pytest.raises(InvalidJobInputError, match="--max-runs-per-job"):
        await service.update(SchedulerInput(operation="update", job_id="ok", max_instances=5))


async def test_allow_all_runs_no_more_of_a_job_at_once_than_the_per_job_limit(
    make_service: Any, forever: Forever
) -> None:
    service: SchedulerService = await make_service(max_runs_per_job=3)
    recorder = EventRecorder(service.events)
    await service.schedule(forever_job("pile", policy=PolicyInput(overlap="allow_all")))
    t0 = utcnow()

    fires = [fire(service, "pile", t0 + timedelta(seconds=n)) for n in range(5)]
    skipped = await recorder.wait_for(finished("pile", "skipped"), count=2)
    await forever.wait_started(3)
    await recorder.wait_for(started("pile"), count=3)

    assert forever.runs == 3 and service._runs.running["pile"] == 3
    note = skipped[0].record.note or ""  # type: ignore[union-attr]
    assert "3 runs" in note and "--max-runs-per-job" in note
    info, _ = await service.get_job("pile")
    assert "up to 3 at a time" in info.policy_description
    await service.cancel("pile")
    await asyncio.wait_for(asyncio.gather(*fires), WAIT)


async def test_a_backfill_runs_no_more_of_a_job_at_once_than_the_per_job_limit(
    make_runtime: Any, forever: Forever
) -> None:
    first: SchedulerRuntime = await make_runtime(max_runs_per_job=5)
    await first.service.schedule(forever_job("wide", max_instances=5))
    await first.close()  # the operator lowers the limit below the job's max_instances
    service = (await make_runtime(max_runs_per_job=2)).service
    recorder = EventRecorder(service.events)

    summary = await service.backfill("wide", "5h", overlap="allow_all")
    await forever.wait_started(2)
    await service._history.flush()

    assert summary.count == 5
    assert len(recorder.runs("wide", "started")) == 2 and forever.runs == 2
    await service.cancel("wide")


async def test_run_now_is_refused_when_the_job_has_as_many_runs_in_flight_as_it_may(
    make_service: Any, forever: Forever
) -> None:
    service: SchedulerService = await make_service(max_runs_per_job=1)
    await service.schedule(forever_job("busy"))
    running = fire(service, "busy")
    await forever.wait_started()

    with pytest.raises(SchedulerError) as refused:
        await asyncio.wait_for(service.run_now(SchedulerInput(operation="run_now", job_id="busy")), WAIT)

    assert "--max-runs-per-job" in str(refused.value) and forever.runs == 1
    await service.cancel("busy")
    await asyncio.wait_for(running, WAIT)


# ---------------------------------------------------------------------- max_concurrent_runs


async def test_run_now_takes_one_of_the_scheduler_s_run_slots(
    make_service: Any, forever: Forever, echo: Calls
) -> None:
    service: SchedulerService = await make_service(max_concurrent_runs=1)
    await service.schedule(forever_job("hog"))
    running = fire(service, "hog")
    await forever.wait_started()

    with pytest.raises(SchedulerError) as refused:
        await asyncio.wait_for(service.run_now(SchedulerInput(
            operation="run_now", agentool_name="echo", input_data={"operation": "echo", "text": "x"})), WAIT)

    assert "--max-concurrent-runs" in str(refused.value) and echo.inputs == []
    await service.cancel("hog")
    await asyncio.wait_for(running, WAIT)
    record = await service.run_now(SchedulerInput(
        operation="run_now", agentool_name="echo", input_data={"operation": "echo", "text": "x"}))
    assert record.status == "success"


async def test_backfill_runs_wait_for_one_of_the_scheduler_s_run_slots(
    make_service: Any, forever: Forever, echo: Calls
) -> None:
    service: SchedulerService = await make_service(max_concurrent_runs=1)
    recorder = EventRecorder(service.events)
    await service.schedule(forever_job("hog"))
    await service.schedule(request("past", "interval", "1 hour"))
    running = fire(service, "hog")
    await forever.wait_started()

    summary = await service.backfill("past", "3h")
    await service._history.flush()
    assert summary.count == 3 and echo.inputs == []  # waiting for the slot the forever run holds

    await service.cancel("hog")
    await recorder.wait_for(finished("past", "success"), count=3)
    await asyncio.wait_for(running, WAIT)


# ---------------------------------------------------------------------- inbox_limit


def notify(message: str) -> SchedulerInput:
    return SchedulerInput(operation="run_now", agentool_name="notify",
                          input_data={"operation": "inbox", "message": message})


async def test_posting_beyond_the_inbox_limit_is_refused_until_messages_are_read(make_runtime: Any) -> None:
    runtime: SchedulerRuntime = await make_runtime(inbox_limit=3)
    for n in range(3):
        await runtime.service.run_now(notify(f"m{n}"))

    with pytest.raises(JobExecutionError) as refused:
        await runtime.service.run_now(notify("one too many"))

    text = str(refused.value)
    assert "holds 3 unread messages" in text and "--inbox-limit" in text and "acknowledge" in text
    [record] = await runtime.service.get_history(status="error", limit=1)
    assert record.error is not None and "--inbox-limit" in record.error.message
    queues = runtime.queues
    assert queues.counts(INBOX_QUEUE).size == 3
    [first] = queues.peek(INBOX_QUEUE, 1)
    queues.remove(INBOX_QUEUE, [first.message_id])
    await runtime.service.run_now(notify("room again"))
    assert queues.counts(INBOX_QUEUE).size == 3


async def test_the_inbox_limit_holds_across_processes_on_one_database(database: str, make_runtime: Any) -> None:
    one: SchedulerRuntime = await make_runtime(database=database, inbox_limit=2)
    two: SchedulerRuntime = await make_runtime(database=database, inbox_limit=2)
    post_to_inbox(one.queues, "from one")
    post_to_inbox(two.queues, "from two")

    for runtime in (one, two):
        with pytest.raises(Exception, match="--inbox-limit"):
            post_to_inbox(runtime.queues, "no room")
    assert one.queues.counts(INBOX_QUEUE).size == 2


async def test_a_queue_limit_is_counted_in_the_database_for_every_store_on_it(database: str) -> None:
    from agentool_bridge.toolkits import QueueFullError, QueueStore

    one, two = QueueStore(database), QueueStore(database)
    try:
        for store in (one, two):
            store.set_limit("work", 2, flag="--some-flag", advice="take some first")
        one.enqueue("work", {"n": 1})
        two.enqueue("work", {"n": 2})

        with pytest.raises(QueueFullError, match=r"Queue 'work' holds 2 messages, its limit \(--some-flag\): take"):
            one.enqueue("work", {"n": 3})
        one.enqueue("elsewhere", {"n": 3})  # other queues have no limit
        assert two.take("work") is not None
        two.enqueue("work", {"n": 4})
        assert one.counts("work").size == 2
    finally:
        one.close()
        two.close()


async def test_a_result_for_a_full_inbox_is_noted_on_the_run(make_runtime: Any, echo: Calls) -> None:
    runtime: SchedulerRuntime = await make_runtime(inbox_limit=1)
    post_to_inbox(runtime.queues, "already there")

    record = await runtime.service.run_now(SchedulerInput(
        operation="run_now", agentool_name="echo", input_data={"operation": "echo", "text": "x"},
        result_queue="inbox"))

    assert record.status == "success"
    [stored] = await runtime.service.get_history(record.job_id)
    assert "--inbox-limit" in (stored.note or "")


async def test_the_pause_message_for_a_full_inbox_is_logged_and_the_job_still_pauses(
    make_runtime: Any, fail: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    runtime: SchedulerRuntime = await make_runtime(inbox_limit=1)
    post_to_inbox(runtime.queues, "already there")
    service = runtime.service
    recorder = EventRecorder(service.events)
    await service.schedule(request("failing", "interval", "1 hour", "fail", {"operation": "fail"},
                                   policy=PolicyInput(pause_after_failures=1)))

    with caplog.at_level(logging.WARNING, logger="mcp_scheduler"):
        await asyncio.wait_for(fire(service, "failing"), WAIT)
        await recorder.wait_for(lambda e: getattr(e, "kind", None) == "paused")

    assert (await service.get_job("failing"))[0].state == "paused"
    assert any("could not post to the inbox" in r.getMessage() and "--inbox-limit" in r.getMessage()
               for r in caplog.records)
    assert runtime.queues.counts(INBOX_QUEUE).size == 1


# ---------------------------------------------------------------------- stopping runs in flight


async def test_cancel_job_stops_its_run_in_progress_and_answers_once_the_run_is_recorded(
    make_service: Any, db_path: str, forever: Forever
) -> None:
    service: SchedulerService = await make_service()
    await service.schedule(forever_job("long"))
    running = fire(service, "long")
    await forever.wait_started()

    await asyncio.wait_for(service.cancel("long"), WAIT)

    assert forever.cancelled == 1
    assert stored_runs(db_path, "long") == [("cancelled", "the job was cancelled while this run was in progress")]
    await asyncio.wait_for(running, WAIT)
    [record] = await service.get_history("long")
    assert record.status == "cancelled" and record.finished_at is not None


async def test_cancel_job_stops_a_run_under_its_own_timeout_as_cancelled(
    make_service: Any, db_path: str, forever: Forever
) -> None:
    service: SchedulerService = await make_service()
    await service.schedule(forever_job("timed", timeout=300))
    running = fire(service, "timed")
    await forever.wait_started()

    await asyncio.wait_for(service.cancel("timed"), WAIT)

    assert stored_runs(db_path, "timed") == [("cancelled", "the job was cancelled while this run was in progress")]
    await asyncio.wait_for(running, WAIT)


async def test_cancel_job_stops_a_run_now_of_the_job(make_service: Any, forever: Forever) -> None:
    service: SchedulerService = await make_service()
    await service.schedule(forever_job("manual"))
    call = asyncio.create_task(service.run_now(SchedulerInput(operation="run_now", job_id="manual")))
    await forever.wait_started()

    await asyncio.wait_for(service.cancel("manual"), WAIT)

    with pytest.raises(JobExecutionError, match="cancelled while this run was in progress"):
        await asyncio.wait_for(call, WAIT)
    assert forever.cancelled == 1


async def test_cancel_job_drops_the_fires_waiting_behind_its_run(
    make_service: Any, db_path: str, forever: Forever
) -> None:
    service: SchedulerService = await make_service()
    await service.schedule(forever_job("queued", policy=PolicyInput(overlap="buffer_all")))
    t0 = utcnow()
    fires = [fire(service, "queued", t0), fire(service, "queued", t0 + timedelta(seconds=1))]
    await forever.wait_started()
    await eventually(lambda: len(getattr(service._runs.lanes.lanes.get("queued"), "waiting", ())) == 1, within=WAIT)

    await asyncio.wait_for(service.cancel("queued"), WAIT)
    await asyncio.wait_for(asyncio.gather(*fires), WAIT)
    await service._history.flush()

    assert forever.runs == 1 and forever.cancelled == 1  # the buffered fire never ran
    assert sorted(status for status, _ in stored_runs(db_path, "queued")) == ["cancelled", "missed"]


async def test_cancel_job_stops_a_retry_in_progress(make_service: Any, db_path: str, forever: Forever) -> None:
    service: SchedulerService = await make_service()
    recorder = EventRecorder(service.events)
    calls = {"n": 0}

    async def flaky(operation: str) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first attempt fails")
        forever.runs += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            forever.cancelled += 1
            raise
        raise AssertionError("unreachable")

    register_agentool("flaky", ForeverInput, RoutingConfig(operation_map={"wait": ("flaky", None)}), [flaky])
    await service.schedule(request("retried", "interval", "1 hour", "flaky", FOREVER,
                                   policy=PolicyInput(max_attempts=3, retry_delay=0.05)))
    await asyncio.wait_for(fire(service, "retried"), WAIT)
    await recorder.wait_for(finished("retried", "error"))
    await forever.wait_started()  # the second attempt, a retry

    await asyncio.wait_for(service.cancel("retried"), WAIT)

    assert forever.cancelled == 1 and calls["n"] == 2
    assert [status for status, _ in stored_runs(db_path, "retried")] == ["error", "cancelled"]


async def test_update_job_stops_its_runs_in_progress(make_service: Any, db_path: str, forever: Forever) -> None:
    service: SchedulerService = await make_service()
    await service.schedule(forever_job("changing"))
    running = fire(service, "changing")
    await forever.wait_started()

    info = await asyncio.wait_for(
        service.update(SchedulerInput(operation="update", job_id="changing", job_name="renamed")), WAIT)

    assert info.job_name == "renamed" and forever.cancelled == 1
    assert stored_runs(db_path, "changing") == [("cancelled", "the job was updated while this run was in progress")]
    await asyncio.wait_for(running, WAIT)
    assert (await service.get_job("changing"))[0].state == "scheduled"


async def test_stop_scheduler_stops_every_run_in_progress(make_service: Any, db_path: str, forever: Forever) -> None:
    service: SchedulerService = await make_service()
    for job_id in ("a", "b"):
        await service.schedule(forever_job(job_id))
    fires = [fire(service, "a"), fire(service, "b")]
    await forever.wait_started(2)

    status = await asyncio.wait_for(service.stop(), WAIT)

    assert status.running is False and status.runs_in_progress == 0 and forever.cancelled == 2
    note = "the scheduler was stopped (stop_scheduler) while this run was in progress"
    assert stored_runs(db_path, "a") == stored_runs(db_path, "b") == [("cancelled", note)]
    await asyncio.wait_for(asyncio.gather(*fires), WAIT)
    await service.start()
    assert (await service.get_job("a"))[0].state == "scheduled"


async def test_a_cancel_on_a_standby_stops_the_run_in_the_runner(
    database: str, make_service: Any, forever: Forever
) -> None:
    runner: SchedulerService = await make_service(database=database)
    standby: SchedulerService = await make_service(database=database)
    assert runner.is_runner and not standby.is_runner
    at_runner = EventRecorder(runner.events)
    await standby.schedule(request("remote", "once", "now", "forever", FOREVER))
    await at_runner.wait_for(started("remote"))

    await standby.cancel("remote")

    [record] = await at_runner.wait_for(finished("remote", "cancelled"), within=WAIT)
    assert record.record.note == "the job was cancelled while this run was in progress"  # type: ignore[union-attr]
    assert forever.cancelled == 1


async def test_an_update_on_a_standby_stops_the_run_in_the_runner(
    database: str, make_service: Any, forever: Forever
) -> None:
    runner: SchedulerService = await make_service(database=database)
    standby: SchedulerService = await make_service(database=database)
    at_runner = EventRecorder(runner.events)
    await runner.schedule(forever_job("remote"))
    running = fire(runner, "remote")
    await forever.wait_started()

    await eventually(lambda: "remote" in standby.job_ids(), within=WAIT)
    await standby.update(SchedulerInput(operation="update", job_id="remote", job_name="renamed"))

    [record] = await at_runner.wait_for(finished("remote", "cancelled"), within=WAIT)
    assert record.record.note == "the job was updated while this run was in progress"  # type: ignore[union-attr]
    await asyncio.wait_for(running, WAIT)


def _has_exited(pid: int, within: float = WAIT) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], within)
    finally:
        os.close(fd)
    return bool(readable)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open (Linux)")
async def test_cancel_job_kills_the_process_of_a_shell_run(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    config = ServiceConfig(database=str(tmp_path / "s.sqlite"), timezone="UTC")
    async with SchedulerRuntime(config, injector=AgenToolInjector(),
                                toolkit_config=ToolkitConfig(shell_executables=(sys.executable,))) as runtime:
        service = runtime.service
        await service.schedule(request("sleeper", "interval", "1 hour", "shell",
                                       {"operation": "run", "argv": [sys.executable, "-c", code]}))
        running = fire(service, "sleeper")
        await eventually(lambda: pid_file.exists() and pid_file.read_text() != "", within=WAIT)
        pid = int(pid_file.read_text())

        await asyncio.wait_for(service.cancel("sleeper"), WAIT)

        assert _has_exited(pid, within=0)  # gone by the time cancel_job answered
        [record] = await service.get_history("sleeper")
        assert record.status == "cancelled"
        await asyncio.wait_for(running, WAIT)
