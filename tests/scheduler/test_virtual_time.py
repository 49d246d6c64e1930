"""Catch-up decided in virtual time: the scheduler reads the clock it is given, not the machine's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mcp_scheduler import SchedulerService
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
