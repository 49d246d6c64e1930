"""The engine adapter: the only module that imports apscheduler (3.11).

APScheduler keeps jobs in its memory job store; the service's own SQLite tables are the source
of truth. Every APScheduler job calls one stable module-level function, `dispatch`, with
JSON-serialisable arguments only. A custom executor passes the due run times to `dispatch`
so that the service can record missed, coalesced and late runs truthfully.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING, STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.util import convert_to_datetime

from .schedules import Schedule

__all__ = ["Engine", "EngineJob", "dispatch", "STATE_STOPPED", "STATE_RUNNING", "STATE_PAUSED"]

logger = logging.getLogger(__name__)

DueHandler = Callable[[str, list[datetime]], Awaitable[None]]
SkipHandler = Callable[[str, list[datetime]], None]

_ENGINES: weakref.WeakValueDictionary[str, Engine] = weakref.WeakValueDictionary()


async def dispatch(engine_key: str, job_id: str, *, run_times: list[datetime] | None = None) -> None:
    """The function every APScheduler job calls: hand the due run times to the owning service."""
    if not run_times:
        return
    engine = _ENGINES.get(engine_key)
    if engine is None:
        logger.warning("Job %s fired for an engine that is gone; ignored", job_id)
        return
    await engine.on_due(job_id, run_times)


@dataclass(frozen=True, slots=True)
class EngineJob:
    """A job as `Engine.load` takes it (the arguments of `Engine.add_job`)."""

    job_id: str
    schedule: Schedule
    max_instances: int
    next_run_time: datetime | None = None
    paused: bool = False


class _ScheduleTrigger(BaseTrigger):
    """An APScheduler trigger backed by a `Schedule` (the same code as previews)."""

    __slots__ = ("schedule",)

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        return self.schedule.next_fire_time(previous_fire_time, now)

    def __str__(self) -> str:
        return f"{self.schedule.schedule_type}[{self.schedule.expression}]"


class _DispatchExecutor(BaseExecutor):
    """Runs `dispatch` as an asyncio task with all the job's due run times (no misfire filtering here)."""

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self._loop: asyncio.AbstractEventLoop = scheduler._eventloop
        self.tasks: set[asyncio.Task[None]] = set()

    def shutdown(self, wait: bool = True) -> None:
        for task in self.tasks:
            task.cancel()

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def done(task: asyncio.Task[None]) -> None:
            self.tasks.discard(task)
            if task.cancelled():
                self._run_job_success(job.id, [])
                return
            exc = task.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, [])

        task = self._loop.create_task(job.func(*job.args, run_times=list(run_times)))
        task.add_done_callback(done)
        self.tasks.add(task)


class Engine:
    """APScheduler 3 behind a small interface: add, remove, pause and resume jobs; start and stop."""

    def __init__(self, on_due: DueHandler, on_skipped: SkipHandler, timezone: tzinfo) -> None:
        self.key = uuid.uuid4().hex
        self.on_due = on_due
        self._on_skipped = on_skipped
        self._executor = _DispatchExecutor()
        self._store = MemoryJobStore()
        self._scheduler = AsyncIOScheduler(
            timezone=timezone,
            jobstores={"default": self._store},
            executors={"default": self._executor},
        )
        self._scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)
        _ENGINES[self.key] = self

    def _skipped(self, event: JobSubmissionEvent) -> None:
        self._on_skipped(event.job_id, list(event.scheduled_run_times))

    @property
    def state(self) -> int:
        """0 stopped, 1 running, 2 paused."""
        return int(self._scheduler.state)

    def start(self, *, paused: bool = False) -> None:
        """Start processing jobs (must be called inside the running event loop)."""
        if self._scheduler.state == STATE_STOPPED:
            self._scheduler.start(paused=paused)
        elif not paused:
            self._scheduler.resume()

    def pause(self) -> None:
        """Stop processing jobs; jobs stay scheduled and runs due meanwhile are handled on resume."""
        if self._scheduler.state == STATE_RUNNING:
            self._scheduler.pause()

    def shutdown(self) -> set[asyncio.Task[None]]:
        """Stop for good; returns the run tasks that were cancelled (await them to let them record)."""
        tasks = set(getattr(self._executor, "tasks", set()))
        if self._scheduler.state != STATE_STOPPED:
            self._scheduler.shutdown(wait=False)
        _ENGINES.pop(self.key, None)
        return tasks

    def add_job(
        self,
        job_id: str,
        schedule: Schedule,
        *,
        max_instances: int,
        next_run_time: datetime | None = None,
        paused: bool = False,
    ) -> None:
        """Add or replace a job; `next_run_time` resumes a stored schedule (catch-up if in the past)."""
        extra: dict[str, Any] = {}
        if paused:
            extra["next_run_time"] = None
        elif next_run_time is not None:
            extra["next_run_time"] = next_run_time
        self._scheduler.add_job(
            dispatch,
            trigger=_ScheduleTrigger(schedule),
            args=(self.key, job_id),
            id=job_id,
            max_instances=max_instances,
            coalesce=False,
            misfire_grace_time=None,
            replace_existing=True,
            **extra,
        )

    def load(self, jobs: Iterable[EngineJob]) -> None:
        """Add many jobs before `start` (a restart): the same jobs as `add_job` gives, in one pass.

        APScheduler's `add_job` checks the callable's signature and does a sorted list insert per
        job; on a restart with 100,000 jobs that alone takes seconds. All our jobs call `dispatch`
        with the same argument shape, so one checked prototype serves for all of them, and the
        memory store's list (ordered by next run time, then id) is sorted once.
        """
        if self._scheduler.state != STATE_STOPPED:
            raise RuntimeError("Engine.load() is for the jobs of a restart, before start(); use add_job() after it")
        specs = list(jobs)
        if not specs:
            return
        first = specs[0]
        prototype = Job(
            self._scheduler,
            id=first.job_id,
            func=dispatch,
            trigger=_ScheduleTrigger(first.schedule),
            args=(self.key, first.job_id),
            kwargs={},
            executor="default",
            max_instances=first.max_instances,
            coalesce=False,
            misfire_grace_time=None,
            next_run_time=None,
        )
        now = datetime.now(self._scheduler.timezone)
        index = self._store._jobs_index
        for spec in specs:
            job = Job.__new__(Job)
            job._scheduler = self._scheduler
            job._jobstore_alias = "default"
            job.id = spec.job_id
            job.func = prototype.func
            job.func_ref = prototype.func_ref
            job.name = prototype.name
            job.executor = prototype.executor
            job.trigger = _ScheduleTrigger(spec.schedule)
            job.args = (self.key, spec.job_id)
            job.kwargs = {}
            job.max_instances = spec.max_instances
            job.coalesce = False
            job.misfire_grace_time = None
            if spec.paused:
                job.next_run_time = None
            elif spec.next_run_time is not None:
                job.next_run_time = convert_to_datetime(spec.next_run_time, self._scheduler.timezone, "next_run_time")
            else:
                job.next_run_time = job.trigger.get_next_fire_time(None, now)
            # datetime.timestamp() is several times faster than APScheduler's helper; the two may differ in the
            # last bit, which is harmless: the list only has to be sorted by the values stored with it.
            timestamp = None if job.next_run_time is None else job.next_run_time.timestamp()
            index[job.id] = (job, timestamp)  # a later spec with the same id replaces an earlier one
        inf = float("inf")
        self._store._jobs = sorted(index.values(), key=lambda e: (inf if e[1] is None else e[1], e[0].id))

    def remove_job(self, job_id: str) -> None:
        """Remove a job; a job that already left the engine (a fired one-time job) is fine."""
        try:
            self._scheduler.remove_job(job_id)
        except JobLookupError:
            pass

    def pause_job(self, job_id: str) -> None:
        self._scheduler.pause_job(job_id)

    def resume_job(self, job_id: str) -> datetime | None:
        """Resume a paused job; returns its next fire time (None if its schedule has ended)."""
        job = self._scheduler.resume_job(job_id)
        return None if job is None else job.next_run_time

    def next_run_time(self, job_id: str) -> datetime | None:
        """Next fire time, None when paused, finished or unknown."""
        job = self._scheduler.get_job(job_id)
        return None if job is None else job.next_run_time

    def has_job(self, job_id: str) -> bool:
        return self._scheduler.get_job(job_id) is not None

