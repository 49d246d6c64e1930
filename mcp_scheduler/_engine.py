"""The engine adapter: the only module that imports apscheduler (3.11, pinned `>=3.11,<3.12`).

APScheduler decides *when* jobs are due; the scheduler's own store is the source of truth for what the jobs are.
Every APScheduler job's function is one stable module-level function, `dispatch`, whose arguments are the engine's
due handler and the job id (nothing is pickled: our job store keeps the jobs in memory). A custom executor passes
all the due run times to the handler (calling it directly, as `dispatch` would: one coroutine less per fire), so
that the service records missed, coalesced and late runs truthfully.

Everything here that relies on APScheduler beyond its documented API is listed in `check_apscheduler()`, which a
test runs so that an upgrade that changes it fails with a clear message instead of misfiring.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from agentool_bridge.versions import require_version

from ._plugin_scan import own_entry_points
from .engine_job import EngineJob
from .fire_times import jitter_delay, next_fire_time
from .schedules import Schedule

# APScheduler scans every package's entry points for its aliases at import (1.5% of a start); we pass instances only.
with own_entry_points("APScheduler", "apscheduler."):
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
    from apscheduler.executors.base import BaseExecutor
    from apscheduler.job import Job
    from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING, STATE_STOPPED
    from apscheduler.triggers.base import BaseTrigger

__all__ = ["STATE_PAUSED", "STATE_RUNNING", "STATE_STOPPED", "Engine", "EngineJob", "check_apscheduler", "dispatch"]

logger = logging.getLogger(__name__)


# APScheduler's scheduler's `logger`: its warnings (one line per skipped or missed fire, which the service records
# and sums up itself) cost more to build than the skip itself.
_APSCHEDULER_LOG = logging.getLogger(f"{__name__}.apscheduler")
_APSCHEDULER_LOG.setLevel(logging.ERROR)

DueHandler = Callable[[str, list[datetime]], Awaitable[None]]
SkipHandler = Callable[[str, list[datetime]], None]
HOLD_RECHECK = 0.05  # seconds between looks at due jobs while the executor has no room
SUPPORTED = ((3, 11), (3, 12))  # [lowest, first unsupported) minor versions, as pinned in pyproject.toml
_INF = float("inf")


async def dispatch(on_due: DueHandler, job_id: str, *, run_times: list[datetime] | None = None) -> None:
    """The function every APScheduler job calls: hand the due run times to the engine's handler."""
    if run_times:
        await on_due(job_id, run_times)


_DISPATCH_REF = f"{dispatch.__module__}:{dispatch.__qualname__}"


class _ScheduleTrigger(BaseTrigger):
    """An APScheduler trigger backed by our schedule classes (the same code as previews), within the job's
    bounds; it also carries the job's jitter for the job table."""

    __slots__ = ("_asked", "_answer", "end_at", "jitter", "schedule", "start_at")

    def __init__(
        self,
        schedule: Schedule,
        start_at: datetime | None = None,
        end_at: datetime | None = None,
        jitter: float | None = None,
    ) -> None:
        self.schedule = schedule
        self.start_at = start_at
        self.end_at = end_at
        self.jitter = jitter
        self._asked: tuple[datetime | None, datetime] | None = None
        self._answer: datetime | None = None

    @classmethod
    def of(cls, spec: EngineJob) -> _ScheduleTrigger:
        return cls(spec.schedule, spec.start_at, spec.end_at, spec.jitter)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # Asked twice per fire with the same two objects (due times, then the next): identity is enough to remember.
        asked = self._asked
        if asked is not None and asked[0] is previous_fire_time and asked[1] is now:
            return self._answer
        if self.start_at is None and self.end_at is None:
            answer = self.schedule.next_fire_time(previous_fire_time, now)
        else:
            answer = next_fire_time(self.schedule, previous_fire_time, now, start_at=self.start_at, end_at=self.end_at)
        self._asked, self._answer = (previous_fire_time, now), answer
        return answer

    def __str__(self) -> str:
        return f"{self.schedule.schedule_type}[{self.schedule.expression}]"


class _JobTable(BaseJobStore):
    """An in-memory job store ordered by next run time, with a bulk `load` for restarts.

    APScheduler's own `MemoryJobStore` inserts one job at a time (a sorted-list insert each); a restart
    with 100,000 jobs needs them sorted once. Jobs loaded that way stay light `EngineJob` entries until
    APScheduler needs them as `Job`s (when due, or looked up to pause, resume or remove).
    """

    def __init__(self, restore: Callable[[EngineJob], Job], room: Callable[[], int] | None = None) -> None:
        super().__init__()
        self._restore = restore
        self._room = room
        self.held = False  # due jobs were left for later: the executor had no room for them
        self._index: dict[str, tuple[Job | EngineJob, float]] = {}  # id -> (job, sort timestamp; inf if paused)
        self._order: list[tuple[float, str]] = []

    @staticmethod
    def _timestamp(item: Job | EngineJob) -> float:
        """When the job is due: its next run time, plus its jitter delay for that fire (inf when paused)."""
        next_run_time = item.next_run_time
        if next_run_time is None:
            return _INF
        jitter = item.jitter if isinstance(item, EngineJob) else getattr(item.trigger, "jitter", None)
        if jitter:
            return next_run_time.timestamp() + jitter_delay(item.id if isinstance(item, Job) else item.job_id,
                                                            next_run_time, jitter)
        return next_run_time.timestamp()

    def load(self, specs: Iterable[EngineJob]) -> None:
        """Replace the contents with `specs`, whose `next_run_time` is resolved (None when paused)."""
        self._index = {spec.job_id: (spec, self._timestamp(spec)) for spec in specs}
        self._order = sorted((ts, job_id) for job_id, (_, ts) in self._index.items())

    def _job(self, job_id: str) -> Job | None:
        entry = self._index.get(job_id)
        if entry is None:
            return None
        item, ts = entry
        if isinstance(item, EngineJob):
            item = self._restore(item)
            self._index[job_id] = (item, ts)
        return item

    def next_run_time(self, job_id: str) -> datetime | None:
        """A job's next run time without building its `Job`."""
        entry = self._index.get(job_id)
        return None if entry is None else entry[0].next_run_time

    def due_at(self, job_id: str) -> datetime | None:
        """When the job's next fire is due: its next run time plus that fire's jitter delay."""
        entry = self._index.get(job_id)
        return None if entry is None or entry[1] == _INF else datetime.fromtimestamp(entry[1], UTC)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._index

    def lookup_job(self, job_id: str) -> Job | None:
        return self._job(job_id)

    def get_due_jobs(self, now: datetime) -> list[Job]:
        limit = now.timestamp()
        room = None if self._room is None else max(self._room(), 0)
        due: list[Job] = []
        self.held = False
        for ts, job_id in self._order:
            if ts > limit:
                break
            if room is not None and len(due) >= room:
                self.held = True  # the earliest due go first; the rest wait in order, not as skipped fires
                break
            job = self._job(job_id)
            if job is not None:
                due.append(job)
        return due

    def get_next_run_time(self) -> datetime | None:
        """When the scheduler should next look at due jobs: the earliest due time (jitter included)."""
        if not self._order or self._order[0][0] == _INF:
            return None
        ts, job_id = self._order[0]
        next_run_time = self._index[job_id][0].next_run_time
        if next_run_time is None or ts != next_run_time.timestamp():  # delayed by its jitter
            next_run_time = datetime.fromtimestamp(ts, UTC)
        if self.held and next_run_time is not None:
            # Jobs are due but the executor is full: it wakes the scheduler when a run ends; until then
            # look again in a while rather than spin.
            return max(next_run_time, datetime.now(next_run_time.tzinfo) + timedelta(seconds=HOLD_RECHECK))
        return next_run_time

    def get_all_jobs(self) -> list[Job]:
        return [job for _, job_id in self._order if (job := self._job(job_id)) is not None]

    def add_job(self, job: Job) -> None:
        if job.id in self._index:
            raise ConflictingIdError(job.id)
        ts = self._timestamp(job)
        self._index[job.id] = (job, ts)
        bisect.insort(self._order, (ts, job.id))

    def update_job(self, job: Job) -> None:
        old = self._index.get(job.id)
        if old is None:
            raise JobLookupError(job.id)
        ts = self._timestamp(job)
        if ts != old[1]:
            del self._order[bisect.bisect_left(self._order, (old[1], job.id))]
            bisect.insort(self._order, (ts, job.id))
        self._index[job.id] = (job, ts)

    def put(self, spec: EngineJob) -> None:
        """Add or replace one job as a light entry (its `Job` is built when APScheduler needs it)."""
        if spec.job_id in self._index:
            self.remove_job(spec.job_id)
        ts = self._timestamp(spec)
        self._index[spec.job_id] = (spec, ts)
        bisect.insort(self._order, (ts, spec.job_id))

    def remove_job(self, job_id: str) -> None:
        old = self._index.pop(job_id, None)
        if old is None:
            raise JobLookupError(job_id)
        del self._order[bisect.bisect_left(self._order, (old[1], job_id))]

    def remove_all_jobs(self) -> None:
        self._index = {}
        self._order = []

    def shutdown(self) -> None:
        self.remove_all_jobs()


class _DispatchExecutor(BaseExecutor):
    """Runs the due handler `dispatch` would call as an asyncio task with all the job's due run times (no misfire
    filtering here)."""

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self._loop = asyncio.get_running_loop()  # AsyncIOScheduler.start() runs in the event loop
        self.tasks: dict[asyncio.Task[None], str] = {}  # runs in progress -> their job's id

    def shutdown(self, wait: bool = True) -> None:
        pass  # runs in progress are the service's to wait for (and to cancel when that takes too long)

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        # What `dispatch` does, called here directly: one coroutine less on the path of every fire.
        on_due, job_id = job.args
        task = self._loop.create_task(on_due(job_id, list(run_times)))
        task.add_done_callback(self._done)
        self.tasks[task] = job.id

    def _done(self, task: asyncio.Task[None]) -> None:
        job_id = self.tasks.pop(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            self._run_job_error(job_id, exc, exc.__traceback__)
        else:
            self._run_job_success(job_id, [])


class _Scheduler(AsyncIOScheduler):
    """AsyncIOScheduler without what every fire paid for and nothing here uses: events no listener takes (one per
    submitted job, one per removed job) and the lock and log line of removing a fired one-time job. Jobs are
    removed and looked up (to pause, resume or modify) in the job table in every state: stopped, APScheduler
    looks only in its pending list, which the engine never fills (jobs go into the table directly)."""

    def _dispatch_event(self, event: Any) -> None:
        for _, mask in self._listeners:
            if event.code & mask:
                super()._dispatch_event(event)
                return

    def remove_job(self, job_id: str, jobstore: str | None = None) -> None:
        self._jobstores["default"].remove_job(job_id)  # raises JobLookupError, as the scheduler does

    def _lookup_job(self, job_id: str, jobstore_alias: str | None) -> tuple[Job, str]:
        job = self._jobstores["default"].lookup_job(job_id)
        if job is None:
            raise JobLookupError(job_id)
        return job, "default"


class Engine:
    """APScheduler 3 behind a small interface: add, remove, pause and resume jobs; start and stop."""

    def __init__(
        self, on_due: DueHandler, on_skipped: SkipHandler, timezone: tzinfo, room: Callable[[], int] | None = None
    ) -> None:
        """`room()`: how many more fires the caller can take now; due jobs beyond it wait in order."""
        self._on_due = on_due
        self._on_skipped = on_skipped
        self._executor = _DispatchExecutor()
        self._table = _JobTable(self._restore, room)
        self._scheduler = _Scheduler(
            timezone=timezone,
            jobstores={"default": self._table},
            executors={"default": self._executor},
            logger=_APSCHEDULER_LOG,
        )
        self._scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)

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

    def wake_if_held(self) -> None:
        """Look at due jobs again now if some were left for lack of room (a run just ended)."""
        if self._table.held and self._scheduler.state == STATE_RUNNING:
            self._table.held = False
            self._scheduler.wakeup()

    def wake(self) -> None:
        """Look at due jobs now (the clock jumped forward, or the machine woke up: its timer does not know)."""
        if self._scheduler.state == STATE_RUNNING:
            self._scheduler.wakeup()

    def pause(self) -> None:
        """Stop processing jobs; jobs stay scheduled and runs due meanwhile are handled on resume."""
        if self._scheduler.state == STATE_RUNNING:
            self._scheduler.pause()

    def shutdown(self) -> set[asyncio.Task[None]]:
        """Stop firing for good; returns the runs still in progress (they go on: wait for them or cancel them)."""
        tasks = set(getattr(self._executor, "tasks", set()))
        if self._scheduler.state != STATE_STOPPED:
            self._scheduler.shutdown(wait=False)
        return tasks

    def add_job(self, spec: EngineJob) -> None:
        """Add or replace a job; `spec.next_run_time` resumes a stored schedule (catch-up if in the past).
        Entered as `load` enters jobs, not through APScheduler's `add_job` (it checks the function's signature
        on every call, most of the cost of scheduling a job)."""
        self._table.put(spec.resolved(datetime.now(self._scheduler.timezone)))
        self.wake()

    def load(self, specs: Iterable[EngineJob]) -> None:
        """Add many jobs before `start` (a restart): the same jobs as `add_job` gives, sorted once.

        A job without a stored next run time gets its first fire time from its schedule, as with
        `add_job`; a paused one gets none.
        """
        if self._scheduler.state != STATE_STOPPED:
            raise RuntimeError("Engine.load() is for the jobs of a restart, before start(); use add_job() after it")
        now = datetime.now(self._scheduler.timezone)
        self._table.load(spec.resolved(now) for spec in specs)

    def _restore(self, spec: EngineJob) -> Job:
        """The APScheduler `Job` of a loaded entry (built when it is first due or looked up)."""
        next_run_time = None if spec.next_run_time is None else spec.next_run_time.astimezone(self._scheduler.timezone)
        return _build_job(spec.job_id, _ScheduleTrigger.of(spec), (self._on_due, spec.job_id), spec.max_instances,
                          next_run_time, self._scheduler)

    def remove_job(self, job_id: str) -> None:
        """Remove a job; a job that already left the engine (a fired one-time job) is fine."""
        try:
            self._scheduler.remove_job(job_id)
        except JobLookupError:
            pass

    def pause_job(self, job_id: str) -> None:
        """Pause a job (in any state of the engine, as the other job methods); a `KeyError` if it holds none."""
        self._scheduler.pause_job(job_id)

    def resume_job(self, job_id: str) -> datetime | None:
        """Resume a paused job; returns its next fire time (None if its schedule has ended: then it left)."""
        job = self._scheduler.resume_job(job_id)
        return None if job is None else job.next_run_time

    def next_run_time(self, job_id: str) -> datetime | None:
        """Next fire time, None when paused, finished or unknown."""
        return self._table.next_run_time(job_id)

    def due_at(self, job_id: str) -> datetime | None:
        """When the job's next fire is handed over: `next_run_time` plus its jitter delay (None: not due)."""
        return self._table.due_at(job_id)

    def has_job(self, job_id: str) -> bool:
        return job_id in self._table


def _build_job(
    job_id: str, trigger: BaseTrigger | None, args: tuple[Any, ...], max_instances: int,
    next_run_time: datetime | None, scheduler: Any,
) -> Job:
    """A `Job` calling `dispatch`, with what `Job.__setstate__` sets when APScheduler's persistent stores restore
    one (skipping `add_job`'s signature check) set directly: `__setstate__` resolving the function's reference
    cost 7 us of every fire of a one-time job (built when it fires). Plus what those stores set after it."""
    job = Job.__new__(Job)
    job.id, job.func_ref, job.func, job.trigger, job.executor = job_id, _DISPATCH_REF, dispatch, trigger, "default"
    job.args, job.kwargs, job.name, job.misfire_grace_time, job.coalesce = args, {}, "dispatch", None, False
    job.max_instances, job.next_run_time = max_instances, next_run_time
    job._scheduler, job._jobstore_alias = scheduler, "default"
    return job


def check_apscheduler() -> None:
    """Raise `RuntimeError` naming what changed if the installed APScheduler is not one this adapter knows.

    Checks the version range and the parts of APScheduler used beyond its documented API: a job built as
    `Job.__setstate__` restores one (`_build_job`: the same attributes) plus the `_scheduler` / `_jobstore_alias`
    slots that persistent job stores set, the executor hooks `_do_submit_job`, `_run_job_success`,
    `_run_job_error`, and the scheduler's `_dispatch_event` and `_lookup_job` (`_Scheduler`).
    """
    installed = require_version("apscheduler", SUPPORTED, "mcp-scheduler's engine adapter")
    missing = [name for name in ("_scheduler", "_jobstore_alias") if name not in Job.__slots__]
    missing += [
        f"{owner.__name__}.{name}"
        for owner, name in ((BaseExecutor, "_do_submit_job"), (BaseExecutor, "_run_job_success"),
                            (BaseExecutor, "_run_job_error"), (AsyncIOScheduler, "_dispatch_event"),
                            (AsyncIOScheduler, "_lookup_job"))
        if not callable(getattr(owner, name, None))
    ]
    if missing:
        raise RuntimeError(f"APScheduler {installed} changed what the engine adapter relies on: {', '.join(missing)}.")
    probe = Job.__new__(Job)
    try:
        probe.__setstate__(
            {"version": 1, "id": "probe", "func": _DISPATCH_REF, "trigger": None, "executor": "default",
             "args": (), "kwargs": {}, "name": "dispatch", "misfire_grace_time": None, "coalesce": False,
             "max_instances": 1, "next_run_time": None}
        )
    except Exception as exc:
        raise RuntimeError(
            f"APScheduler {installed} no longer restores jobs from the state the engine adapter writes: {exc}"
        ) from exc
    if probe.func is not dispatch:
        raise RuntimeError(f"APScheduler {installed} restored the job function as {probe.func!r}, not dispatch.")
    built = _build_job("probe", None, (), 1, None, None)
    unset = [name for name in Job.__slots__ if hasattr(probe, name) and not hasattr(built, name)]
    if unset or any(getattr(built, name) != getattr(probe, name) for name in Job.__slots__ if hasattr(probe, name)):
        raise RuntimeError(f"APScheduler {installed} restores jobs with attributes the engine adapter does not set "
                           f"as it does: {', '.join(unset) or 'different values'}.")
