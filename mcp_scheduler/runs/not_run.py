"""Records of fires that did not run (missed, skipped): one per window and job, and a quiet log.

Fires of one job that do not run are recorded per window of NOT_RUN_WINDOW seconds: the first of a window gets a
record of its own, the others share one record with their count. A job that keeps missing then costs a counter,
not a row per fire. The shared record is attached to the history writer's next write of its job's bookkeeping
(built then, from the count at that moment): the count is committed exactly when the job's next run time moves
past the fires it counts, so a kill -9 loses neither or both (a fire whose bookkeeping was lost is due again for
the next runner, which records it). Otherwise it is written with its job at least every NOT_RUN_WRITE_EVERY
seconds, and when the scheduler closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..clocks import Clock
from ..events import EventBus, RunEvent
from ..history import HistoryWriter
from ..jobs import Job, RunStatus
from ..models import RunRecord
from .gaps import Gaps
from .run_ids import RunIds

if TYPE_CHECKING:
    from ..scheduler.table import JobTable

__all__ = ["NOT_RUN_WINDOW", "NOT_RUN_WRITE_EVERY", "NotRunLog", "NotRunRecords"]

logger = logging.getLogger(__name__)

NOT_RUN_WINDOW = 60.0
NOT_RUN_WRITE_EVERY = 15.0


@dataclass(slots=True, eq=False)
class _Streak:
    """Fires of one job in one window that did not run, for one status (missed, or skipped)."""

    job_id: str
    status: RunStatus
    agentool_name: str
    opened: float  # the clock's monotonic() at the window's first fire
    count: int = 1  # the window's fires (the first has a record of its own)
    run_id: str = ""  # the shared record of the fires after the window's first
    first: datetime | None = None
    last: datetime | None = None
    reason: str = ""
    build: Callable[[], RunRecord] | None = None  # the shared record as it is now, for the history writer
    record: RunRecord | None = None  # the shared record of `count` fires, once built


class NotRunLog:
    """Log lines about fires that did not run: the first at once, then one summary per `every` seconds."""

    def __init__(self, clock: Clock, every: float = 60.0) -> None:
        self._clock = clock
        self._every = every
        self._counts: Counter[RunStatus] = Counter()
        self._jobs: dict[RunStatus, set[str]] = {}
        self._last = -every

    def note(self, job_id: str, status: RunStatus, why: str, count: int = 1) -> None:
        self._counts[status] += count
        jobs = self._jobs.setdefault(status, set())
        if len(jobs) < 10_000:
            jobs.add(job_id)
        now = self._clock.monotonic()
        if now - self._last < self._every:
            return
        if sum(self._counts.values()) == 1:
            logger.warning("Job %s: a fire was %s: %s", job_id, status, why)
        else:
            logger.warning(
                "Fires not run in the last %.0f s: %s (each is in its job's history)",
                now - self._last if self._last >= 0 else self._every,
                "; ".join(f"{n} {status} ({len(self._jobs[status])} jobs)" for status, n in self._counts.items()),
            )
        self._counts.clear()
        self._jobs.clear()
        self._last = now


class NotRunRecords:
    """Records fires that did not run, in the job's history and as `RunEvent("finished")`."""

    def __init__(self, table: JobTable, history: HistoryWriter, events: EventBus, gaps: Gaps, clock: Clock) -> None:
        self._table = table
        self._history = history
        self._events = events
        self._gaps = gaps
        self._clock = clock
        self._streaks: dict[tuple[str, RunStatus], _Streak] = {}
        self._swept = clock.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._log = NotRunLog(clock)
        self._run_ids = RunIds()

    def record(self, job: Job, scheduled: datetime, status: RunStatus, note: str) -> None:
        """Record a fire that did not run: see NOT_RUN_WINDOW."""
        self.record_many(job, (scheduled,), status, note)

    def record_many(self, job: Job, fires: Sequence[datetime], status: RunStatus, note: str) -> None:
        """Record fires of one job that did not run, oldest first, all for the same reason: as many `record` calls
        would, but the job's shared record changes (and is attached) once for all of them."""
        if not fires:
            return
        self._table.ended(job, status)
        job_id = job.job_id
        if (meter := self._events.meter) is not None:
            meter.fire_not_run(job_id, status, note, len(fires))
        self._log.note(job_id, status, note, len(fires))
        key = (job_id, status)
        now = self._clock.monotonic()
        if now - self._swept >= NOT_RUN_WINDOW:
            self._sweep(now)
        streak = self._streaks.get(key)
        if streak is None or now - streak.opened >= NOT_RUN_WINDOW:
            name = job.definition.agentool_name
            self._streaks[key] = streak = _Streak(job_id, status, name, opened=now)
            self.publish(job_id, name, self._run_ids(), status, fires[0], note)
            fires = fires[1:]
            if not fires:
                return
        streak.count += len(fires)
        if streak.build is None:
            streak.run_id, streak.first = self._run_ids(), fires[0]
            streak.build = lambda: self._shared(streak)
        streak.last, streak.reason, streak.record = fires[-1], note, None
        if job_id not in self._table:  # no bookkeeping to go with: written as it is
            self._history.record(streak.build(), job_known=False)
            return
        self._history.attach(job_id, streak.run_id, streak.build)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(NOT_RUN_WRITE_EVERY, self._write_due)

    def _write_due(self) -> None:
        """Have the shared records that no batch has written since they changed written now (with their jobs'
        bookkeeping): those of jobs that nothing else wrote."""
        self._timer = None
        self._history.touch_attached()

    def close(self) -> None:
        """Have the shared records that changed written now, with their jobs' bookkeeping, and stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
        self._write_due()

    def replace(self, job: Job, run_id: str, scheduled: datetime, status: RunStatus, note: str) -> None:
        """Record a buffered fire that did not run, in place of its "waiting" record `run_id`."""
        self._table.ended(job, status)
        if (meter := self._events.meter) is not None:
            meter.fire_not_run(job.job_id, status, note)
        self._log.note(job.job_id, status, note)
        self.publish(job.job_id, job.definition.agentool_name, run_id, status, scheduled, note)

    def _shared(self, streak: _Streak) -> RunRecord:
        """The record shared by the window's fires after its first, as they are now (built and published once per
        change, when the history writer's batch takes it)."""
        if streak.record is not None:
            return streak.record
        first, last = streak.first or streak.last, streak.last or streak.first
        assert first is not None and last is not None
        fires, status = streak.count - 1, streak.status
        note = streak.reason if fires == 1 else (
            f"{fires} fires {status} from {first.isoformat()} to {last.isoformat()} (one record for all"
            f"; the last said: {streak.reason})"
        )
        streak.record = record = RunRecord(
            run_id=streak.run_id,
            job_id=streak.job_id,
            agentool_name=streak.agentool_name,
            trigger=self._gaps.trigger(first),
            status=status,
            scheduled_time=first,
            note=note,
        )
        self._events.publish(RunEvent("finished", record))
        return record

    def _sweep(self, now: float) -> None:
        """Drop the windows that have closed (their records are with the history writer already)."""
        self._swept = now
        for key in [k for k, streak in self._streaks.items() if now - streak.opened >= NOT_RUN_WINDOW]:
            del self._streaks[key]

    def publish(
        self, job_id: str, agentool_name: str, run_id: str, status: RunStatus, scheduled: datetime, note: str
    ) -> None:
        record = RunRecord(
            run_id=run_id,
            job_id=job_id,
            agentool_name=agentool_name,
            trigger=self._gaps.trigger(scheduled),
            status=status,
            scheduled_time=scheduled,
            note=note,
        )
        self._history.record(record, job_known=job_id in self._table)
        self._events.publish(RunEvent("finished", record))

    def forget(self, job_id: str) -> None:
        """Drop the windows of a job that is gone (the history writer writes their records: `forget` there)."""
        for status in ("missed", "skipped"):
            self._streaks.pop((job_id, status), None)
