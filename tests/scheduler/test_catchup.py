"""Catch-up policies: which of the fires missed while the scheduler was down run when it is back.

APScheduler takes no injected clock, so the downtime is made as it happens: a closed scheduler's
database is edited so that the job's next run time lies 60 hours back (a weekend off), then a
scheduler opens it. The fires the engine then hands over are those of the job's real schedule.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp_scheduler import SchedulerRuntime, SchedulerService
from mcp_scheduler.models import RunRecord
from mcp_scheduler.policies import BUFFER_LIMIT, PolicyInput
from mcp_scheduler.schedules import parse_schedule
from mcp_scheduler.timestamps import utcnow
from tests._net import eventually
from tests.scheduler._support import Calls, EventRecorder, finished, request, set_stored_next_run

WEEKDAY_HOURLY = "0 * * * 1-5"


def _weekend_off(expression: str = WEEKDAY_HOURLY, down: timedelta = timedelta(hours=60)) -> list[datetime]:
    """The fires of a UTC cron schedule missed by a scheduler down for `down` until now, oldest first."""
    schedule = parse_schedule("cron", expression, "UTC")
    now = utcnow()
    missed: list[datetime] = []
    following = schedule.next_fire_time(None, now - down)
    while following is not None and following <= now:
        missed.append(following.astimezone(UTC))
        following = schedule.next_fire_time(following, now)
    return missed


def _fires(record: RunRecord) -> int:
    """How many fires a not-run record stands for (fires of one minute share one record)."""
    match = re.match(r"(\d+) fires (missed|skipped) from", record.note or "")
    return int(match[1]) if match else 1


async def _job_down_over_a_weekend(make_runtime: Any, db_path: str, catchup: str, **extra: Any) -> list[datetime]:
    first: SchedulerRuntime = await make_runtime()
    await first.service.schedule(request("weekday", "cron", WEEKDAY_HOURLY,
                                         policy=PolicyInput(catchup=catchup, catchup_window="3 days"),  # type: ignore[arg-type]
                                         **extra))
    await first.close()
    missed = _weekend_off()
    set_stored_next_run(db_path, "weekday", missed[0])
    return missed


async def _reopen(make_runtime: Any, **config: Any) -> tuple[SchedulerRuntime, EventRecorder]:
    runtime: SchedulerRuntime = await make_runtime(open=False, **config)
    recorder = EventRecorder(runtime.service.events)
    await runtime.open()
    return runtime, recorder


async def _all_records(make_runtime: Any, runtime: SchedulerRuntime) -> list[RunRecord]:
    """Every record of the job, once the runtime is closed."""
    await runtime.close()
    reader: SchedulerRuntime = await make_runtime(start_paused=True)
    return await reader.service.get_history("weekday", limit=1000)


async def _next_run(make_runtime: Any) -> datetime:
    reader: SchedulerRuntime = await make_runtime()  # a standby: it reads what the runner stored
    job, _ = await reader.service.get_job("weekday")
    assert job.next_run is not None
    return job.next_run


async def test_catchup_latest_runs_the_newest_missed_fire_once_and_records_the_others_as_coalesced(
    make_runtime: Any, db_path: str, echo: Calls
) -> None:
    # coalesce=False would catch up every fire: the policy says latest.
    missed = await _job_down_over_a_weekend(make_runtime, db_path, "latest", coalesce=False)
    runtime, recorder = await _reopen(make_runtime)
    await recorder.wait_for(finished("weekday", "success"))

    records = await _all_records(make_runtime, runtime)
    [ran] = [r for r in records if r.status == "success"]
    assert (ran.scheduled_time, ran.trigger) == (missed[-1], "catch_up")
    not_run = [r for r in records if r.status == "missed"]
    assert sum(map(_fires, not_run)) == len(missed) - 1
    assert all("coalesced" in (r.note or "") for r in not_run)
    assert len(echo.inputs) == 1


async def test_catchup_all_runs_every_missed_fire_in_order(
    make_runtime: Any, db_path: str, echo: Calls
) -> None:
    # coalesce=True (the default) would run one: the policy says all.
    missed = await _job_down_over_a_weekend(make_runtime, db_path, "all")
    assert 1 < len(missed) <= BUFFER_LIMIT
    runtime, recorder = await _reopen(make_runtime)
    await recorder.wait_for(finished("weekday", "success"), count=len(missed))

    records = await _all_records(make_runtime, runtime)
    ran = sorted((r for r in records if r.status == "success"), key=lambda r: r.started_at or utcnow())
    assert [r.scheduled_time for r in ran] == missed  # each once, oldest first
    assert {r.trigger for r in ran} == {"catch_up"}
    assert len(echo.inputs) == len(missed)


async def test_catchup_none_runs_no_missed_fire_and_records_each_as_missed(
    make_runtime: Any, db_path: str, echo: Calls
) -> None:
    missed = await _job_down_over_a_weekend(make_runtime, db_path, "none")
    runtime, recorder = await _reopen(make_runtime)
    await recorder.wait_for(finished("weekday", "missed"))

    records = await _all_records(make_runtime, runtime)
    assert {r.status for r in records} == {"missed"}
    assert sum(map(_fires, records)) == len(missed)
    assert all("catchup: none" in (r.note or "") for r in records)
    assert echo.inputs == []
    assert await _next_run(make_runtime) > utcnow()  # the schedule goes on from now


async def test_catchup_all_runs_at_most_the_buffer_limit_and_records_the_older_fires_as_missed(
    make_runtime: Any, db_path: str, echo: Calls
) -> None:
    first: SchedulerRuntime = await make_runtime()
    await first.service.schedule(request("weekday", "interval", "1 minute",
                                         policy=PolicyInput(catchup="all", catchup_window="1 day")))
    await first.close()
    due = utcnow().replace(microsecond=0) - timedelta(minutes=BUFFER_LIMIT + 20, seconds=30)
    set_stored_next_run(db_path, "weekday", due)
    # Every record kept: the missed ones are written before the runs, which would push them out of the default 100.
    runtime, recorder = await _reopen(make_runtime, history_limit=1000)
    await recorder.wait_for(finished("weekday", "success"), count=BUFFER_LIMIT, within=20)

    records = await _all_records(make_runtime, runtime)
    ran = sorted(r.scheduled_time for r in records if r.status == "success" and r.scheduled_time is not None)
    missed = [r for r in records if r.status == "missed"]
    assert len(ran) == BUFFER_LIMIT and len(echo.inputs) == BUFFER_LIMIT
    # Due every minute from BUFFER_LIMIT + 20.5 minutes ago: BUFFER_LIMIT + 21 fires, the oldest 21 missed.
    assert sum(map(_fires, missed)) == 21
    assert all(r.scheduled_time is not None and r.scheduled_time < ran[0] for r in missed)  # the older ones
    assert all(f"latest {BUFFER_LIMIT} missed fires" in (r.note or "") for r in missed)


async def test_a_standby_that_takes_over_catches_up_by_the_policy(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    runner: SchedulerService = await make_service()
    standby: SchedulerService = await make_service()
    assert runner.is_runner and not standby.is_runner
    # coalesce=True (the default) would run one: the policy says all.
    await runner.schedule(request("weekday", "cron", WEEKDAY_HOURLY,
                                  policy=PolicyInput(catchup="all", catchup_window="3 days")))
    await eventually(lambda: "weekday" in standby.job_ids(), within=5, what="the standby seeing the job")
    # As if the runner had been down since Saturday (it would not fire this job before Monday anyway).
    missed = _weekend_off()
    set_stored_next_run(db_path, "weekday", missed[0])
    at_standby = EventRecorder(standby.events)
    await runner.close()

    await eventually(lambda: standby.is_runner, within=5, what="the standby taking over")
    await at_standby.wait_for(finished("weekday", "success"), count=len(missed), within=10)
    history = await standby.get_history("weekday", limit=1000)
    ran = sorted((r for r in history if r.status == "success"), key=lambda r: r.started_at or utcnow())
    assert [r.scheduled_time for r in ran] == missed
    assert len(echo.inputs) == len(missed)
