"""Catch-up, schedules and jitter in virtual time: the scheduler reads the clock it is given, not the machine's.

The engine keeps wall time (see `mcp_scheduler.clocks`): fires are handed to the run path as the engine does
(`Admission.on_due`), and the engine's own part of jitter is read from `Engine.due_at`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mcp_scheduler import InvalidScheduleError, SchedulerInput, SchedulerService
from mcp_scheduler._engine import Engine, EngineJob
from mcp_scheduler.fire_times import jitter_delay
from mcp_scheduler.policies import PolicyInput
from mcp_scheduler.schedules import parse_schedule
from tests.scheduler._support import Calls, VirtualClock, request

HOUR = 3600.0


async def test_a_fire_due_before_the_runner_opened_runs_late_or_is_missed_by_the_virtual_clock(
    make_service: Any, echo: Calls
) -> None:
    clock = VirtualClock()
    service: SchedulerService = await make_service(clock=clock, catchup_window=HOUR)
    opened = clock.now()
    await service.schedule(request("hourly"))
    due = opened - timedelta(minutes=30)  # nothing ran then: a catch-up fire, 30 minutes late so far

    clock.advance(20 * 60)  # 50 minutes late: within the hour of its window
    await service._runs.admission.on_due("hourly", [due])
    clock.advance(25 * 60)  # the same time is 75 minutes late now: beyond it
    await service._runs.admission.on_due("hourly", [due])

    missed, ran = await service.get_history("hourly")
    assert (ran.trigger, ran.status, ran.started_at) == ("catch_up", "success", opened + timedelta(minutes=20))
    assert ran.note is not None and ran.note.startswith("ran 50 min late: nothing was running at")
    assert (missed.trigger, missed.status) == ("catch_up", "missed")
    assert missed.note is not None
    assert missed.note.startswith("due 1 h 15 min ago, longer ago than its catch-up window (1 h")
    assert len(echo.inputs) == 1


# ---------------------------------------------------------------------- schedules from the clock's now

START = datetime(2030, 1, 1, 8, 59, 30, tzinfo=UTC)
"""Where the virtual clocks below start: years after the machine's time, so that only the clock can explain what
the scheduler computes (and the engine, on wall time, fires none of it)."""


In2030 = tuple[VirtualClock, SchedulerService]


@pytest.fixture
async def in_2030(make_service: Any) -> In2030:
    """A scheduler whose virtual clock starts at START."""
    clock = VirtualClock(START)
    return clock, await make_service(clock=clock)


async def test_next_runs_and_relative_times_count_from_the_clock_of_the_scheduler(
    in_2030: In2030, echo: Calls
) -> None:
    clock, service = in_2030

    cron = await service.schedule(request("cron", "cron", "0 9 * * *"))
    interval = await service.schedule(request("interval", "interval", "10 minutes"))
    once = await service.schedule(request("once", "once", "in 10 minutes"))
    with pytest.raises(InvalidScheduleError, match="is in the past"):  # the machine's clock would call it future
        await service.schedule(request("past", "once", "2030-01-01T08:00"))
    clock.advance(100)
    moved = await service.update(SchedulerInput(operation="update", job_id="interval", schedule="5 minutes"))

    assert cron.next_runs == [datetime(2030, 1, d, 9, tzinfo=UTC) for d in (1, 2, 3)]
    assert interval.next_runs == [START + timedelta(minutes=m) for m in (10, 20, 30)]
    assert (interval.created_at, once.next_run) == (START, START + timedelta(minutes=10))
    assert moved.next_run == START + timedelta(seconds=100, minutes=5)  # from the update's now, a new phase


async def test_a_preview_lists_the_fire_times_after_the_clock_of_the_scheduler(in_2030: In2030) -> None:
    clock, service = in_2030

    hourly = service.preview("interval", "1 hour", count=2)
    weekdays = service.preview("cron", "0 9 * * 1-5", "Europe/Berlin", 3)  # 2030-01-01 is a Tuesday
    bounded = service.preview("interval", "1 hour", count=3, policy=PolicyInput(end_at="2030-01-01T10:30"))

    assert hourly.next_runs == [START + timedelta(hours=1), START + timedelta(hours=2)]
    assert [t.isoformat() for t in weekdays.next_runs] == [
        "2030-01-02T09:00:00+01:00", "2030-01-03T09:00:00+01:00", "2030-01-04T09:00:00+01:00"]
    assert bounded.next_runs == [START + timedelta(hours=1)] and "no runs after these" in (bounded.note or "")


async def test_an_interval_job_fires_at_its_start_instants_and_each_run_starts_then(
    in_2030: In2030, echo: Calls
) -> None:
    clock, service = in_2030
    created = await service.schedule(request("grid", "interval", "15 minutes"))

    for fire_time in created.next_runs:
        clock.advance((fire_time - clock.now()).total_seconds())
        await service._runs.admission.on_due("grid", [fire_time])

    history = list(reversed(await service.get_history("grid")))
    assert [r.scheduled_time for r in history] == [START + timedelta(minutes=m) for m in (15, 30, 45)]
    assert [r.started_at for r in history] == [r.scheduled_time for r in history]
    assert [(r.trigger, r.status) for r in history] == [("schedule", "success")] * 3


# ---------------------------------------------------------------------- jitter


async def test_the_engine_hands_a_jittered_fire_over_late_by_its_delay_with_its_nominal_time() -> None:
    handed: list[tuple[str, list[datetime]]] = []
    came = asyncio.Event()

    async def on_due(job_id: str, run_times: list[datetime]) -> None:
        handed.append((job_id, run_times))
        came.set()

    hourly = parse_schedule("interval", "1 hour", "UTC")
    now = datetime.now(UTC)
    past, future = now - timedelta(minutes=2), now + timedelta(hours=1)  # due at once (the delay is under 1 min); not
    engine = Engine(on_due, lambda job_id, run_times: None, UTC)
    engine.start(paused=True)
    try:
        engine.add_job(EngineJob("past", hourly, 1, next_run_time=past, jitter=60))
        engine.add_job(EngineJob("future", hourly, 1, next_run_time=future, jitter=60))
        due = {job_id: engine.due_at(job_id) for job_id in ("past", "future")}
        engine.start()
        await asyncio.wait_for(came.wait(), 5)
    finally:
        engine.shutdown()

    assert handed == [("past", [past])]  # the nominal time, not the jittered one
    for job_id, nominal in (("past", past), ("future", future)):
        when = due[job_id]
        assert when is not None
        assert abs((when - nominal).total_seconds() - jitter_delay(job_id, nominal, 60)) < 1e-3
        assert nominal <= when < nominal + timedelta(seconds=60)


async def test_two_engines_hold_each_jittered_fire_due_at_the_same_instant_within_its_window() -> None:
    async def on_due(job_id: str, run_times: list[datetime]) -> None:
        raise AssertionError(f"{job_id} fired")

    hourly = parse_schedule("interval", "1 hour", "UTC")
    nominals = [datetime(2030, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(40)]
    engines = [Engine(on_due, lambda job_id, run_times: None, UTC) for _ in range(2)]
    dues: list[list[datetime | None]] = []
    for engine in engines:
        engine.start(paused=True)
        try:
            for index, nominal in enumerate(nominals):
                engine.add_job(EngineJob(f"job-{index}", hourly, 1, next_run_time=nominal, jitter=30))
            dues.append([engine.due_at(f"job-{index}") for index in range(len(nominals))])
        finally:
            engine.shutdown()

    assert dues[0] == dues[1]
    delays = [(due - nominal).total_seconds() for due, nominal in zip(dues[0], nominals, strict=True) if due]
    assert len(delays) == len(nominals) and all(0 <= d < 30 for d in delays)
    assert len({round(d, 3) for d in delays}) == len(delays)  # spread: each job and fire its own delay


async def test_a_jittered_fire_is_late_by_its_due_instant_not_its_nominal_time(in_2030: In2030, echo: Calls) -> None:
    clock, service = in_2030
    created = await service.schedule(request("jit", "interval", "1 hour", policy=PolicyInput(jitter=3600)))
    first, second = created.next_runs[:2]
    delays = [jitter_delay("jit", t, 3600) for t in (first, second)]
    assert min(delays) > 60  # beyond misfire_grace_time (30 s) after the nominal times: only the jitter explains

    clock.advance((first - clock.now()).total_seconds() + delays[0])  # the instant the engine hands it over
    await service._runs.admission.on_due("jit", [first])
    clock.advance((second - clock.now()).total_seconds() + delays[1] + 31)  # 31 s after its due instant
    await service._runs.admission.on_due("jit", [second])

    missed, ran = await service.get_history("jit")
    assert (ran.scheduled_time, ran.status, ran.trigger) == (first, "success", "schedule")
    assert ran.started_at is not None and abs((ran.started_at - first).total_seconds() - delays[0]) < 1e-3
    assert (missed.scheduled_time, missed.status) == (second, "missed")
    assert missed.note is not None and missed.note.startswith("due 31.0 s ago, beyond misfire_grace_time")
