"""Pending retries on the runner: their timers, their runs, and pausing a job after failures in a row."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from ..clocks import Clock, Timer
from ..history import HistoryWriter
from ..jobs import Job, PendingRetry
from ..models import RunRecord
from .lanes import JobLanes
from .not_run import NotRunRecords
from .ports import JobPauser
from .run import Execution, Ran
from .slots import RunSlots

if TYPE_CHECKING:
    from ..scheduler.table import JobTable

__all__ = ["Retries"]

logger = logging.getLogger(__name__)


class Retries:
    """Arms the timer of each job's pending retry (`job.retry`, planned by `RetryPolicy`) and runs it when due,
    in a run slot and within its job's runs in flight. `hold` keeps them waiting (the scheduler is stopped)."""

    def __init__(
        self,
        *,
        table: JobTable,
        execution: Execution,
        slots: RunSlots,
        lanes: JobLanes,
        not_run: NotRunRecords,
        history: HistoryWriter,
        pauser: JobPauser,
        claim: Callable[[str, datetime], Awaitable[bool]] | None,
        clock: Clock,
    ) -> None:
        self._table = table
        self._execution = execution
        self._slots = slots
        self._lanes = lanes
        self._not_run = not_run
        self._history = history
        self._pauser = pauser
        self._claim = claim
        self._clock = clock
        self._timers: dict[str, Timer] = {}
        self._runs: set[asyncio.Task[None]] = set()
        self.hold = False  # the scheduler is stopped: pending retries wait for its start

    async def after(self, ran: Ran) -> None:
        """After a scheduled run: arm the retry it planned (while this process holds the lease) and pause its
        job if it failed too often in a row."""
        if ran.policed is None:
            return
        if ran.retry is not None and self._execution.lease_held():
            self.arm(ran.policed)
        await self.pause_if_failing(ran.policed, ran.record)

    async def pause_if_failing(self, job: Job, record: RunRecord) -> None:
        """Pause the job (through the pauser) once it has failed `policy.pause_after_failures` times in a row."""
        limit = job.definition.policy.pause_after_failures
        if limit is None or job.failures < limit or job.state != "scheduled":
            return
        last = record.error.message if record.error else record.status
        failures = f"{job.failures} failure{'s' if job.failures > 1 else ''}"
        try:
            await self._pauser.pause_for_failures(job, f"paused after {failures} in a row", last)
        except Exception:
            logger.exception("Job %s: could not pause it after %d failures in a row", job.job_id, job.failures)

    def arm(self, job: Job) -> None:
        """Start the timer of the job's pending retry on the clock (on the runner; a paused job's waits until
        resumed)."""
        self.disarm(job.job_id)
        retry = job.retry
        if retry is None or job.state == "paused" or self.hold:
            return
        delay = max(0.0, (retry.at - self._clock.now()).total_seconds())
        self._timers[job.job_id] = self._clock.call_later(delay, functools.partial(self._due, job.job_id, retry))

    def arm_all(self) -> None:
        for job in self._table.jobs():
            if job.retry is not None:
                self.arm(job)  # one due already runs at once: a retry, not a missed fire

    def disarm(self, job_id: str) -> None:
        handle = self._timers.pop(job_id, None)
        if handle is not None:
            handle.cancel()

    def stop(self) -> set[asyncio.Task[None]]:
        """Cancel every retry timer (the retries stay stored); returns the retries in progress."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        return set(self._runs)

    def _due(self, job_id: str, retry: PendingRetry) -> None:
        self._timers.pop(job_id, None)
        task = asyncio.create_task(self._run(job_id, retry), name=f"mcp-scheduler-retry-{job_id}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def _run(self, job_id: str, retry: PendingRetry) -> None:
        job = self._table.get(job_id)
        if job is None or job.retry != retry or job.state == "paused":
            return  # gone, changed, or waiting for its job to be resumed
        if not await self._lanes.enter(job_id, wait=True):
            return
        try:
            await self._slots.take()
            try:
                if self.hold:
                    return  # the scheduler was stopped while it waited: it waits for the start (still stored)
                # Claimed by its own time: a fire's claim is by its scheduled time, this retry's by when it is due.
                if not (self._execution.lease_held() if self._claim is None else await self._claim(job_id, retry.at)):
                    if self._execution.lease_held():
                        self._table.retry_taken(job)
                        self._history.touch(job_id)
                        self._not_run.record(job, retry.nominal or retry.at, "missed", "a retry claimed by the "
                                             "previous runner, which stopped before it started the run; not run again")
                    return
                if job.retry != retry or job.state == "paused" or self._table.get(job_id) is not job:
                    return
                self._table.retry_taken(job)  # stored with the start of the run
                ran = await self._execution.execute(job.definition, "retry", retry.nominal, attempt=retry.attempt,
                                                    note=retry.note)
                await self.after(ran)
            finally:
                self._slots.give_back()
        finally:
            self._lanes.exit(job_id)
