"""Fires due while nothing ran: caught up late within the catch-up window, told in the inbox beyond it.

Downtime is made as it happens: a closed scheduler's database is edited so that a job's next run time lies
hours back, then a scheduler opens it. Sleep is made as it happens too: the process stops (its event loop
does nothing) while the test's monotonic clock stands still, as the kernel's does while a machine sleeps;
the scheduler is handed that clock pair (`ServiceConfig.clocks`), nothing else of time is replaced.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from agentool_bridge.toolkits.inbox import INBOX_QUEUE, InboxMessage
from mcp_scheduler import SchedulerRuntime
from mcp_scheduler.clocks import Clocks
from mcp_scheduler.models import RunRecord
from mcp_scheduler.policies import PolicyInput
from mcp_scheduler.settings import Settings
from mcp_scheduler.timestamps import utcnow
from tests.scheduler._support import Calls, EventRecorder, Slow, finished, request, set_stored_next_run, started
from tests.scheduler.conftest import RuntimeFactory

WAIT = {"operation": "wait"}
AT = r"(\d{4}-\d\d-\d\d )?\d\d:\d\d(:\d\d)? UTC"  # a time as notes give it: the date only when it is not today


class Machine:
    """The clock pair of a machine the test can put to sleep or whose clock it can set back."""

    def __init__(self) -> None:
        self.slept = 0.0  # seconds the monotonic clock stood still
        self.set_back_by = 0.0

    def clocks(self) -> Clocks:
        return Clocks(wall=lambda: time.time() - self.set_back_by, monotonic=lambda: time.monotonic() - self.slept)

    def sleep_until(self, moment: datetime) -> None:
        """Suspend this process until `moment`: nothing in it runs, and its monotonic clock does not move."""
        seconds = (moment - utcnow()).total_seconds()
        start = time.monotonic()
        time.sleep(max(seconds, 0.0))  # the suspension itself: the event loop is stopped, as in a real sleep
        self.slept += time.monotonic() - start


async def _down_for(make_runtime: RuntimeFactory, db_path: str, job: Any, hours: float) -> SchedulerRuntime:
    """Schedule `job`, close the scheduler, make its next run `hours` back, open a new one; returns it."""
    first = await make_runtime()
    await first.service.schedule(job)
    await first.close()
    set_stored_next_run(db_path, job.job_id, utcnow() - timedelta(hours=hours))
    runtime = await make_runtime(open=False)
    return runtime


async def _records(make_runtime: RuntimeFactory, runtime: SchedulerRuntime, job_id: str) -> list[RunRecord]:
    """Every record of a job, once its runtime is closed (which writes the shared not-run records)."""
    await runtime.close()
    reader = await make_runtime(start_paused=True)
    return await reader.service.get_history(job_id, limit=1000)


def _fires(record: RunRecord) -> int:
    match = re.match(r"(\d+) fires missed from", record.note or "")
    return int(match[1]) if match else 1


def _inbox(runtime: SchedulerRuntime) -> list[InboxMessage]:
    return [InboxMessage.model_validate(m.message) for m in runtime.queues.peek(INBOX_QUEUE, 100)]


async def test_a_recurring_job_down_for_hours_catches_up_once_and_says_how_late(
    make_runtime: RuntimeFactory, db_path: str, echo: Calls
) -> None:
    runtime = await _down_for(make_runtime, db_path, request("hourly", "interval", "1 hour"), hours=4.8)
    recorder = EventRecorder(runtime.service.events)
    await runtime.open()
    await recorder.wait_for(finished("hourly", "success"))
    inbox = _inbox(runtime)

    records = await _records(make_runtime, runtime, "hourly")
    [ran] = [r for r in records if r.status == "success"]
    assert ran.trigger == "catch_up"
    assert re.fullmatch(rf"ran 4[89] min late: nothing was running at {AT}", ran.note or ""), ran.note
    missed = [r for r in records if r.status == "missed"]
    assert sum(map(_fires, missed)) == 4 and all("coalesced" in (r.note or "") for r in missed)
    assert len(echo.inputs) == 1
    assert inbox == []  # a run took the missed ones' place: nothing to tell


async def test_fires_beyond_the_servers_catch_up_window_are_missed_and_told_in_one_inbox_message(
    make_runtime: RuntimeFactory, db_path: str, echo: Calls
) -> None:
    first = await make_runtime()
    await first.service.schedule(request("hourly", "interval", "1 hour", job_name="Hourly sync"))
    await first.close()
    due = utcnow() - timedelta(hours=4.8)
    set_stored_next_run(db_path, "hourly", due)
    runtime = await make_runtime(open=False, catchup_window=600)  # --catchup-window 10m
    recorder = EventRecorder(runtime.service.events)
    await runtime.open()
    await recorder.wait_for(finished("hourly", "missed"))
    inbox = _inbox(runtime)

    records = await _records(make_runtime, runtime, "hourly")
    assert {r.status for r in records} == {"missed"} and sum(map(_fires, records)) == 5
    assert echo.inputs == []
    assert "longer ago than its catch-up window (10 min, the server's --catchup-window)" in (records[-1].note or "")
    [message] = inbox  # one for the job, not one per fire
    assert (message.source, message.level, message.job_id, message.job_name) == (
        "scheduler", "warning", "hourly", "Hourly sync")
    assert message.title == "Hourly sync: missed 5 runs"
    # (the date is added to a time that is not today, 4.8 h ago may be yesterday; seconds only when not :00)
    since = rf"(\d{{4}}-\d\d-\d\d )?{due:%H:%M}(:{due:%S})? UTC"
    assert re.search(rf"Job 'Hourly sync' missed 5 runs due from {since} to {AT}: nothing was running then",
                     message.message), message.message


async def test_a_jobs_own_catch_up_window_overrides_the_servers(
    make_runtime: RuntimeFactory, db_path: str, echo: Calls
) -> None:
    first = await make_runtime()
    # Both were due 3 hours ago; the server's window is a day, one job's own is an hour.
    await first.service.schedule(request("strict", "once", "in 1 hour", policy=PolicyInput(catchup_window="1h")))
    await first.service.schedule(request("lenient", "once", "in 1 hour"))
    await first.close()
    for job_id in ("strict", "lenient"):
        set_stored_next_run(db_path, job_id, utcnow() - timedelta(hours=3))
    runtime = await make_runtime(open=False)
    recorder = EventRecorder(runtime.service.events)
    await runtime.open()
    await recorder.wait_for(lambda e: finished("strict")(e) or finished("lenient")(e), count=2)

    [strict] = await runtime.service.get_history("strict")
    [lenient] = await runtime.service.get_history("lenient")
    assert (lenient.status, lenient.trigger) == ("success", "catch_up")
    assert (strict.status, strict.trigger) == ("missed", "catch_up")
    assert "longer ago than its catch-up window (1 h, its policy.catchup_window)" in (strict.note or "")
    assert [m.job_id for m in _inbox(runtime)] == ["strict"]


async def test_catchup_all_runs_the_fires_within_its_window_and_tells_the_older_ones_in_one_message(
    make_runtime: RuntimeFactory, db_path: str, echo: Calls
) -> None:
    job = request("sync", "interval", "1 hour", policy=PolicyInput(catchup="all", catchup_window="2h"))
    runtime = await _down_for(make_runtime, db_path, job, hours=4.8)  # 5 fires: 3 beyond 2 h, 2 within
    recorder = EventRecorder(runtime.service.events)
    await runtime.open()
    await recorder.wait_for(finished("sync", "success"), count=2)
    inbox = _inbox(runtime)

    records = await _records(make_runtime, runtime, "sync")
    ran = [r for r in records if r.status == "success"]
    assert len(ran) == 2 and all(re.match(r"ran (1 h \d+ min|\d+ min) late: nothing", r.note or "") for r in ran)
    assert sum(_fires(r) for r in records if r.status == "missed") == 3
    [message] = inbox
    assert message.title == "sync: missed 3 runs" and "(2 h, its policy.catchup_window)" in message.message


async def test_a_job_that_set_misfire_grace_time_keeps_it_as_its_catch_up_window(
    make_runtime: RuntimeFactory, db_path: str, echo: Calls
) -> None:
    job = request("old-style", "once", "in 1 hour", misfire_grace_time=600)
    runtime = await _down_for(make_runtime, db_path, job, hours=1)
    recorder = EventRecorder(runtime.service.events)
    await runtime.open()
    await recorder.wait_for(finished("old-style"))

    [record] = await runtime.service.get_history("old-style")
    assert record.status == "missed"
    assert "catch-up window (10 min, its misfire_grace_time)" in (record.note or "")


def test_the_servers_catch_up_window_is_a_duration_and_a_bad_one_is_refused_naming_the_flag() -> None:
    assert Settings(catchup_window="2h").service_config().catchup_window == 7200
    assert Settings().service_config().catchup_window == 86400
    for bad in ("soon", "0s", "2 years"):
        with pytest.raises(ValueError, match=r"--catchup-window '.*' is not a catch-up window: give a duration"):
            Settings(catchup_window=bad).service_config()


# ----------------------------------------------------------------------------- sleep and clock jumps


async def test_a_fire_due_while_the_machine_slept_runs_late_as_a_catch_up_not_as_a_missed_fire(
    make_runtime: RuntimeFactory, echo: Calls
) -> None:
    machine = Machine()
    runtime = await make_runtime(clocks=machine.clocks(), clock_jump=1.0)
    recorder = EventRecorder(runtime.service.events)
    # misfire_grace_time 1 s: taken for a fire late while the scheduler ran, the sleep would make it missed.
    job = await runtime.service.schedule(request("nap", "once", "in 1.5 seconds", misfire_grace_time=1,
                                                 policy=PolicyInput(catchup_window="1h")))
    assert job.next_run is not None

    machine.sleep_until(job.next_run + timedelta(seconds=1.5))
    [event] = await recorder.wait_for(finished("nap"))

    record = event.record  # type: ignore[attr-defined]
    assert (record.status, record.trigger) == ("success", "catch_up"), record.note
    assert re.fullmatch(rf"ran \d\.\d s late: the machine was asleep \(or its clock was set forward\) from {AT} to "
                        rf"{AT}", record.note or ""), record.note
    assert len(echo.inputs) == 1


async def test_a_fire_late_because_every_run_slot_was_taken_is_judged_by_misfire_grace_time_not_the_window(
    make_runtime: RuntimeFactory, slow: Slow
) -> None:
    runtime = await make_runtime(clocks=Machine().clocks(), clock_jump=1.0, max_concurrent_runs=1)  # nobody sleeps
    service, recorder = runtime.service, EventRecorder(runtime.service.events)
    await service.schedule(request("holder", "once", "now", agentool_name="slow", input_data=WAIT))
    await recorder.wait_for(started("holder"))
    await service.schedule(request("waiter", "once", "now", agentool_name="slow", input_data=WAIT,
                                   misfire_grace_time=0, policy=PolicyInput(catchup_window="1h")))

    await asyncio.sleep(1.2)  # time passing is the point: the waiter's grace time (at least 1 s) runs out
    slow.release.set()

    [event] = await recorder.wait_for(finished("waiter"))
    record = event.record  # type: ignore[attr-defined]
    assert (record.status, record.trigger) == ("missed", "schedule")
    assert "beyond misfire_grace_time 0 s" in (record.note or "")


async def test_a_clock_set_back_runs_no_fire_twice_and_says_what_happens(
    make_runtime: RuntimeFactory, echo: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    machine = Machine()
    runtime = await make_runtime(clocks=machine.clocks(), clock_jump=1.0)
    recorder = EventRecorder(runtime.service.events)
    await runtime.service.schedule(request("tick", "interval", "1 second"))
    await recorder.wait_for(finished("tick", "success"), count=2)

    with caplog.at_level(logging.WARNING, logger="mcp_scheduler"):
        machine.set_back_by = 3600.0
        await recorder.wait_for(finished("tick", "success"), count=5, within=10)

    history = await runtime.service.get_history("tick", limit=100)
    times = [r.scheduled_time for r in history]
    assert len(times) == len(set(times))  # no fire ran twice
    assert {r.trigger for r in history} == {"schedule"}  # nor did the jump make any fire a catch-up
    [warning] = [r.getMessage() for r in caplog.records if "set back" in r.getMessage()]
    assert warning.startswith("The clock was set back by 1 h (to ")
    assert "no fire that already ran runs again" in warning
