"""Run policies: start_at / end_at bound a job's fires, jitter delays each fire the same way on every replica,
preview_schedule shows a policy's times, and backfill runs a job for every fire time of a past range."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agentool_bridge import AgenToolInjector
from mcp_scheduler import InvalidJobInputError, JobEvent, RunEvent, SchedulerInput
from mcp_scheduler._engine import Engine, EngineJob
from mcp_scheduler.fire_times import jitter_delay
from mcp_scheduler.policies import PolicyInput
from mcp_scheduler.schedules import parse_schedule
from tests.scheduler._support import Calls, EventRecorder, Slow, finished, started
from tests.scheduler.conftest import RuntimeFactory

ECHO = {"operation": "echo", "text": "tick"}
BERLIN = ZoneInfo("Europe/Berlin")


def every(job_id: str, schedule: str = "1 second", **fields: Any) -> SchedulerInput:
    return SchedulerInput(operation="schedule", job_id=job_id, schedule_type="interval", schedule=schedule,
                          agentool_name="echo", input_data=ECHO, **fields)


def iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def completed(job_id: str) -> Any:
    return lambda e: isinstance(e, JobEvent) and e.kind == "completed" and e.job_id == job_id


# ---------------------------------------------------------------------- bounds


async def test_a_job_does_not_fire_before_its_start_at(make_runtime: RuntimeFactory, echo: Calls) -> None:
    service = (await make_runtime()).service
    recorder = EventRecorder(service.events)
    start_at = datetime.fromisoformat(iso_in(2))

    job = await service.schedule(every("late", policy=PolicyInput(start_at=start_at.isoformat())))
    (first,) = await recorder.wait_for(finished("late", "success"), within=5)

    assert job.next_run is not None and job.next_run >= start_at
    assert isinstance(first, RunEvent) and first.record.scheduled_time is not None
    assert first.record.scheduled_time >= start_at and first.record.started_at is not None
    assert first.record.started_at >= start_at


async def test_a_job_stops_at_its_end_at_and_completes_readable(make_runtime: RuntimeFactory, echo: Calls) -> None:
    runtime = await make_runtime()
    service = runtime.service
    recorder = EventRecorder(service.events)
    end_at = datetime.fromisoformat(iso_in(2.5))

    created = await service.schedule(every("short", policy=PolicyInput(end_at=end_at.isoformat())))
    await recorder.wait_for(completed("short"), within=5)
    await recorder.wait_for(finished("short"), count=2, within=2)
    job, recent = await service.get_job("short")

    assert len(created.next_runs) == 2 and all(t <= end_at for t in created.next_runs)  # shown within the bound
    assert (job.state, job.next_run, job.next_runs) == ("completed", None, [])
    assert len(recent) == 2 and all(r.scheduled_time is not None and r.scheduled_time <= end_at for r in recent)
    assert len(echo.inputs) == 2
    assert [j.job_id for j in service.list_jobs(state="completed")[0]] == ["short"]
    await runtime.close()
    again, _ = await (await make_runtime()).service.get_job("short")  # after a restart
    assert (again.state, again.next_run) == ("completed", None)


async def test_bounds_that_leave_no_fire_refuse_a_new_job_and_complete_an_updated_one(
    make_runtime: RuntimeFactory, echo: Calls
) -> None:
    service = (await make_runtime()).service
    await service.schedule(every("hourly", "1 hour"))

    with pytest.raises(InvalidJobInputError, match="would never run"):
        await service.schedule(every("never", "1 hour", policy=PolicyInput(end_at=iso_in(600))))
    updated = await service.update(SchedulerInput(operation="update", job_id="hourly",
                                                  policy=PolicyInput(end_at=iso_in(600))))

    assert (updated.state, updated.next_run) == ("completed", None)
    assert [j.job_id for j in service.list_jobs()[0]] == []


async def test_the_engine_computes_fire_times_within_the_bounds_it_is_given() -> None:
    async def on_due(job_id: str, run_times: list[datetime]) -> None:
        raise AssertionError(f"{job_id} fired")

    engine = Engine(on_due, lambda job_id, run_times: None, UTC)
    minutely = parse_schedule("interval", "1 minute", "UTC")
    now = datetime.now(UTC)
    engine.start()
    try:
        engine.add_job(EngineJob("later", minutely, 1, start_at=now + timedelta(hours=1)))
        engine.add_job(EngineJob("over", minutely, 1, end_at=now + timedelta(seconds=30)))
        engine.add_job(EngineJob("plain", minutely, 1))
        later, over, plain = (engine.next_run_time(job_id) for job_id in ("later", "over", "plain"))
        engine.pause_job("later")
        resumed = engine.resume_job("later")  # the next fire time is computed again, from now
    finally:
        engine.shutdown()

    assert later is not None and resumed is not None and later >= now + timedelta(hours=1) and resumed == later
    assert over is None and plain is not None and plain < now + timedelta(minutes=2)


# ---------------------------------------------------------------------- jitter


def test_the_jitter_delay_is_fixed_per_job_and_fire_and_spread_over_the_window() -> None:
    base = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    delays = [jitter_delay("job", base + timedelta(minutes=n), 30) for n in range(2000)]

    assert jitter_delay("job", base, 30) == jitter_delay("job", base.astimezone(BERLIN), 30) == delays[0]
    assert jitter_delay("other", base, 30) != delays[0]
    assert all(0 <= d < 30 for d in delays)
    assert min(delays) < 0.5 and max(delays) > 29.5 and 14 < sum(delays) / len(delays) < 16
    assert sum(1 for d in delays if d < 15) in range(900, 1100)  # no half of the window preferred
    assert jitter_delay("job", base, 0) == jitter_delay("job", base, None) == 0


def test_another_process_computes_the_same_jitter_delay() -> None:
    moment = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    code = ("from datetime import datetime; from mcp_scheduler.fire_times import jitter_delay; "
            f"print(repr(jitter_delay('job', datetime.fromisoformat({moment.isoformat()!r}), 30)))")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": os.getcwd()}

    output = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)

    assert float(output.stdout) == jitter_delay("job", moment, 30)


async def test_jittered_fires_start_late_by_their_delay_on_every_replica(
    make_runtime: RuntimeFactory, echo: Calls
) -> None:
    first, second = await make_runtime(), await make_runtime()  # one database: a runner and a standby
    assert first.service.is_runner and not second.service.is_runner
    recorder = EventRecorder(second.service.events)  # the standby sees the runs of both
    created = await first.service.schedule(every("jittery", policy=PolicyInput(jitter=0.5)))
    assert created.next_run is not None

    def scheduled_run(e: Any) -> bool:
        return isinstance(e, RunEvent) and e.job_id == "jittery" and e.kind == "finished" and e.record.trigger == \
            "schedule"

    await recorder.wait_for(scheduled_run, within=5)  # run by the first runtime, seen by the standby
    await first.close()  # the standby takes over and fires the next ones
    closed = datetime.now(UTC)
    await recorder.wait_for(lambda e: scheduled_run(e) and e.record.started_at > closed, within=5)

    records = list({e.record.run_id: e.record for e in recorder.runs("jittery")}.values())
    on_time = [r for r in records if r.trigger == "schedule"]  # a catch-up after the takeover is late anyway
    assert len(on_time) >= 2
    for record in on_time:
        assert record.scheduled_time is not None and record.started_at is not None
        late = (record.started_at - record.scheduled_time).total_seconds()
        due = jitter_delay("jittery", record.scheduled_time, 0.5)
        assert due - 0.005 <= late < 0.5 + 0.25, (record.scheduled_time, due, late)
    for record in records:
        assert record.scheduled_time is not None
        assert (record.scheduled_time - created.next_run).total_seconds() % 1 == 0  # on the nominal grid
    assert len({r.scheduled_time for r in records}) == len(records)  # no fire run twice across the takeover


# ---------------------------------------------------------------------- preview


async def test_a_preview_with_a_policy_keeps_within_its_bounds_and_runs(make_runtime: RuntimeFactory) -> None:
    service = (await make_runtime()).service
    bounds = PolicyInput(start_at="2030-01-01T00:00", end_at="2030-01-03T12:00")

    plain = service.preview("cron", "0 9 * * *", "Europe/Berlin", 5)
    bounded = service.preview("cron", "0 9 * * *", "Europe/Berlin", 5, bounds)
    counted = service.preview("cron", "0 9 * * *", "Europe/Berlin", 5, PolicyInput(start_at="2030-01-01", max_runs=2))
    jittered = service.preview("interval", "1 hour", None, 2, PolicyInput(jitter=30))

    assert len(plain.next_runs) == 5 and plain.next_runs[0].year < 2030 and plain.note is None
    assert [t.isoformat() for t in bounded.next_runs] == [
        "2030-01-01T09:00:00+01:00", "2030-01-02T09:00:00+01:00", "2030-01-03T09:00:00+01:00"]
    assert bounded.note is not None and "no runs after these" in bounded.note
    assert [t.day for t in counted.next_runs] == [1, 2] and "at most 2 runs" in (counted.note or "")
    assert len(jittered.next_runs) == 2 and "within 30 s after the time shown" in (jittered.note or "")


async def test_the_agentool_previews_with_a_policy(injector: AgenToolInjector, scheduler_agent: EventRecorder) -> None:
    output = await injector.run("scheduler", {
        "operation": "preview", "schedule_type": "cron", "schedule": "0 9 * * 1-5", "timezone": "Europe/Berlin",
        "count": 10, "policy": {"start_at": "2030-03-25", "end_at": "2030-04-02", "jitter": 60}})

    # Monday to Friday, then Monday after the change to summer time on Sunday 2030-03-31
    assert output.data["next_runs"] == [f"2030-03-{d}T09:00:00+01:00" for d in (25, 26, 27, 28, 29)] + [
        "2030-04-01T09:00:00+02:00"]
    assert "within 60 s" in output.message


# ---------------------------------------------------------------------- backfill


async def test_a_backfill_runs_every_weekday_of_a_month_across_the_dst_change(
    make_runtime: RuntimeFactory, echo: Calls
) -> None:
    service = (await make_runtime()).service
    recorder = EventRecorder(service.events)
    await service.schedule(SchedulerInput(operation="schedule", job_id="daily", schedule_type="cron",
                                          schedule="0 9 * * 1-5", timezone="Europe/Berlin", agentool_name="echo",
                                          input_data=ECHO))

    # Berlin went to summer time on Sunday 2026-03-29: 09:00 was 08:00 UTC before, 07:00 UTC after.
    summary = await service.backfill("daily", "2026-03-09T00:00", "2026-04-09T00:00", wait=True)
    runs = sorted(await service.get_history("daily", limit=100), key=lambda r: r.scheduled_time or r.started_at)

    assert (summary.count, summary.statuses, summary.overlap) == (23, {"success": 23}, "buffer_all")
    assert summary.first is not None and summary.first.isoformat() == "2026-03-09T09:00:00+01:00"
    assert summary.last is not None and summary.last.isoformat() == "2026-04-08T09:00:00+02:00"
    assert len(runs) == 23 and len(echo.inputs) == 23
    assert {r.trigger for r in runs} == {"backfill"} and {r.status for r in runs} == {"success"}
    local = [r.scheduled_time.astimezone(BERLIN) for r in runs if r.scheduled_time is not None]
    assert {(t.hour, t.minute) for t in local} == {(9, 0)} and {t.weekday() for t in local} == set(range(5))
    assert {t.utcoffset() for t in local} == {timedelta(hours=1), timedelta(hours=2)}
    # buffer_all: one after another, oldest first
    starts = [e.record for e in recorder.runs("daily", "started")]
    assert [r.scheduled_time for r in starts] == [r.scheduled_time for r in runs]
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier.finished_at is not None and later.started_at is not None
        assert earlier.finished_at <= later.started_at


async def test_a_backfill_with_allow_all_runs_up_to_max_instances_at_once(
    make_runtime: RuntimeFactory, slow: Slow
) -> None:
    service = (await make_runtime()).service
    recorder = EventRecorder(service.events)
    await service.schedule(SchedulerInput(operation="schedule", job_id="wide", schedule_type="interval",
                                          schedule="1 hour", agentool_name="slow", input_data={"operation": "wait"},
                                          max_instances=3))

    summary = await service.backfill("wide", "5h", overlap="allow_all")
    await recorder.wait_for(started("wide"), count=3)
    assert slow.started == 3 and summary.statuses is None
    slow.release.set()
    await recorder.wait_for(finished("wide", "success"), count=summary.count)

    in_progress = peak = 0
    for event in recorder.events:
        if isinstance(event, RunEvent) and event.job_id == "wide":
            in_progress += 1 if event.kind == "started" else -1
            peak = max(peak, in_progress)
    assert summary.count == 5 and peak == 3


async def test_a_backfill_refuses_a_future_or_too_large_range(make_runtime: RuntimeFactory, echo: Calls) -> None:
    service = (await make_runtime()).service
    await service.schedule(every("minutely", "1 minute"))

    with pytest.raises(InvalidJobInputError, match=r"holds 28[0-9]{2} fire times .* at most 1000"):
        await service.backfill("minutely", "2 days")
    with pytest.raises(InvalidJobInputError, match="is in the future"):
        await service.backfill("minutely", "1h", iso_in(3600))
    with pytest.raises(InvalidJobInputError, match="must be before until"):
        await service.backfill("minutely", iso_in(60))
    assert await service.get_history("minutely") == []


async def test_the_agentool_backfills_and_answers_at_once(
    injector: AgenToolInjector, scheduler_agent: EventRecorder, echo: Calls
) -> None:
    run = injector.run
    await run("scheduler", {"operation": "schedule", "job_id": "hourly", "schedule_type": "interval",
                            "schedule": "1 hour", "agentool_name": "echo", "input_data": ECHO})

    output = await run("scheduler", {"operation": "backfill", "job_id": "hourly", "since": "3h"})
    await scheduler_agent.wait_for(finished("hourly", "success"), count=3)

    assert (output.data["count"], output.data["statuses"]) == (3, None)
    assert "Started 3 backfill run(s)" in output.message
    with pytest.raises(Exception, match="since is required"):
        await run("scheduler", {"operation": "backfill", "job_id": "hourly"})
