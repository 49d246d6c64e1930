"""Backfills: a job run once for each of its fire times in a past range, in the background, ended by a stop, a
close, the job's removal or a cancelled caller (docs: backfill_job)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from ..clocks import Clock
from ..errors import InvalidJobInputError
from ..fire_times import backfill_times
from ..jobs import JobDefinition, RunTrigger
from ..models import BackfillOverlap, BackfillSummary
from ..principals import require_kind
from ..runs import RunPath
from ..schedules import parse_moment
from .audit_log import AuditLog
from .engine import EngineHandle
from .replication import Replication
from .table import JobTable

__all__ = ["BACKFILL_LIMIT", "CANCELLED_BACKFILL", "Backfills"]

logger = logging.getLogger(__name__)

BACKFILL_LIMIT = 1000  # most fire times one backfill runs
CANCELLED_BACKFILL = "its backfill was cancelled (tasks/cancel)"
_BACKFILL: tuple[RunTrigger] = ("backfill",)


class Backfills:
    """The backfills of this process and the tasks of those in progress (`tasks`, which close waits for)."""

    def __init__(
        self,
        *,
        table: JobTable,
        engine: EngineHandle,
        runs: RunPath,
        replication: Replication,
        clock: Clock,
        audit: AuditLog,
        per_job: int,
        is_open: Callable[[], bool],
    ) -> None:
        self._table = table
        self._engine = engine
        self._runs = runs
        self._replication = replication
        self._clock = clock
        self._audit = audit
        self._per_job = per_job
        self._is_open = is_open
        self.tasks: set[asyncio.Task[Counter[str]]] = set()  # backfills in progress
        self._halted: set[asyncio.Task[Counter[str]]] = set()  # backfills whose waiting caller was cancelled
        self._stops = 0  # stop_scheduler calls: a backfill started before one ends with it

    def stopped(self) -> None:
        """The scheduler was stopped: the backfills in progress end."""
        self._stops += 1

    async def backfill(
        self,
        job_id: str,
        since: str | datetime,
        until: str | datetime | None = None,
        overlap: BackfillOverlap = "buffer_all",
        *,
        wait: bool = False,
    ) -> BackfillSummary:
        """Run a job once for every fire time of its schedule in the past range [since, until] (until: now by
        default), each recorded with trigger 'backfill' and that fire time as its scheduled_time.

        Strings are ISO 8601 times (naive ones in the job's time zone) or how long ago ('30 days'). At most
        BACKFILL_LIMIT fire times. The runs start at once and go on in the background (buffer_all: one after
        another; allow_all: up to the job's max_instances at a time), each in one of the scheduler's run slots
        (max_concurrent_runs) and within the job's runs in flight (max_runs_per_job), waiting for room; with
        `wait` this returns once they have all finished, with their outcomes. The job's bounds and jitter do
        not apply: the range is what it runs. Only the runner runs backfills (it holds the runner lease);
        stop_scheduler and cancel_job end them, and so does cancelling a caller that waits (`wait`): its runs in
        progress are stopped (recorded `cancelled`) and the fire times left are not run.
        """
        job = await self._replication.find(job_id)
        definition = job.definition
        require_kind(definition.agentool_name, "backfilling a job")
        zone = definition.schedule.timezone
        now = self._clock.now()
        start = parse_moment(since, "since", zone, now) if isinstance(since, str) else since
        end = now if until is None else parse_moment(until, "until", zone, now) if isinstance(until, str) else until
        if end > now:
            raise InvalidJobInputError(
                f"A backfill runs past fire times only: until {end.isoformat()} is in the future. Give a past time "
                "(or omit until: now); future fire times run on schedule."
            )
        if start >= end:
            raise InvalidJobInputError(
                f"since ({start.isoformat()}) must be before until ({end.isoformat()}): give the start of a past range."
            )
        times, total = backfill_times(definition.schedule, start, end, BACKFILL_LIMIT)
        if total > BACKFILL_LIMIT:
            many = f"more than {total - 1}" if total > BACKFILL_LIMIT * 10 else str(total)
            raise InvalidJobInputError(
                f"The range from {start.isoformat()} to {end.isoformat()} holds {many} fire times of job {job_id!r}; "
                f"a backfill runs at most {BACKFILL_LIMIT}. Split it into smaller ranges."
            )
        summary = BackfillSummary(job_id=job_id, count=len(times), first=times[0] if times else None,
                                  last=times[-1] if times else None, overlap=overlap)
        await self._audit.record("backfill", job_id, since=start, until=end, overlap=overlap, count=len(times))
        if not times:
            return summary.model_copy(update={"statuses": {}})
        task = asyncio.create_task(self._backfill(definition, times, overlap), name=f"mcp-scheduler-backfill-{job_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        logger.info("Job %s: backfill of %d fire time(s) from %s to %s (%s)", job_id, len(times),
                    times[0].isoformat(), times[-1].isoformat(), overlap)
        if not wait:
            return summary
        try:
            statuses = await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                self._halted.add(task)
                task.add_done_callback(self._halted.discard)
                self._runs.flights.stop(job_id, CANCELLED_BACKFILL, triggers=_BACKFILL)
                await asyncio.wait([task])  # its stopped runs recorded: the caller's answer comes after them
            raise
        return summary.model_copy(update={"statuses": dict(statuses)})

    async def _backfill(
        self, definition: JobDefinition, times: list[datetime], overlap: BackfillOverlap
    ) -> Counter[str]:
        """Run the backfill's fire times; stops (logging what was left) when the job goes or the scheduler closes."""
        statuses: Counter[str] = Counter()
        job_id = definition.job_id
        wide = min(definition.max_instances, self._per_job)
        slots = asyncio.Semaphore(wide if overlap == "allow_all" else 1)
        left = list(reversed(times))
        stops = self._stops
        me = asyncio.current_task()

        def going() -> bool:
            return (self._is_open() and job_id in self._table and self._engine.engine is not None
                    and self._stops == stops and me not in self._halted)

        async def one(moment: datetime) -> None:
            try:
                # In a run slot of the scheduler and within the job's runs in flight, as every run.
                record = await self._runs.admission.run_extra(definition, "backfill", moment, wait=True, go=going)
                if record is not None:
                    statuses[record.status] += 1
            finally:
                slots.release()

        runs: set[asyncio.Task[None]] = set()
        try:
            while left:
                await slots.acquire()
                if not going():
                    slots.release()
                    logger.warning("Job %s: backfill stopped (the job or this runner went, the scheduler was "
                                   "stopped or the backfill cancelled); %d fire time(s) from %s were not run", job_id,
                                   len(left), left[-1].isoformat())
                    break
                run = asyncio.create_task(one(left.pop()))
                runs.add(run)
                run.add_done_callback(runs.discard)
            if runs:
                await asyncio.gather(*runs)
        except asyncio.CancelledError:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
            raise
        return statuses
