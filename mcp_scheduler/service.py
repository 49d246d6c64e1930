"""The scheduler service: the job lifecycle (schedule, pause, resume, cancel, run now) over a store.

Both faces (the `scheduler` AgenTool and the MCP server) call this class; it raises typed
errors (`mcp_scheduler.errors`) and returns the models of `mcp_scheduler.models`. It depends on
the store interface (`SchedulerStore`), runs jobs through `RunExecutor` and writes history
through `HistoryWriter`; `SchedulerRuntime` builds it with everything it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import operator
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from pydantic import ValidationError

from agentool_bridge import AgenToolError, AgenToolInjector, AgenToolInputError
from agentool_bridge.context import current_run
from agentool_bridge.errors import clip, clip_text, describe_errors
from agentool_bridge.redaction import revealing, scrub
from agentool_bridge.secrets import SHORT_SECRET_LENGTH, SecretNotAllowedError, SecretNotSetError, redact, resolve_env
from agentool_bridge.toolkits import AddressRules, QueueStore, ToolkitError
from agentool_bridge.toolkits.inbox import post_to_inbox
from agentool_bridge.untrusted import clip_content, untrusted

from ._engine import STATE_RUNNING, Engine, EngineJob
from .clocks import CLOCK_JUMP, Clocks, ClockWatch
from .downtime import DEFAULT_CATCHUP_WINDOW
from .errors import (
    InvalidJobInputError,
    InvalidScheduleError,
    JobExecutionError,
    JobExistsError,
    JobNotFoundError,
    SchedulerStateError,
)
from .events import EventBus, JobEvent, QueueEvent, RunEvent
from .execution import AdHocRun, RunExecutor, RunTarget, engine_instances
from .fire_times import backfill_times, next_fire_time, preview_fire_times
from .history import HistoryWriter
from .jobs import Job, JobDefinition, RunStatus
from .lease import NullLease, RunnerLease
from .models import (
    BackfillOverlap,
    BackfillSummary,
    JobInfo,
    RunRecord,
    SchedulePreview,
    SchedulerInput,
    SchedulerStatus,
)
from .policies import PolicyInput, RunPolicy, catchup_seconds
from .schedules import (
    Schedule,
    local_timezone_name,
    parse_moment,
    parse_schedule,
    parse_time,
    resolve_timezone,
)
from .secret_names import RESERVED_SECRET_PREFIX, allowed_secret_names
from .store import Bookkeeping, SchedulerStore
from .timestamps import utcnow

__all__ = ["SchedulerService", "ServiceConfig"]

logger = logging.getLogger(__name__)
_STATE_NAMES = {0: "stopped", 1: "running", 2: "paused"}
_STATE_OF = operator.attrgetter("state")
CANCEL_GRACE_SECONDS = 5.0  # how long cancelled runs get to record themselves when the scheduler closes
LOAD_PAGE = 5000  # jobs read per query on open: the decoded JSON of all rows at once would double peak memory
FOLLOW_EVERY = 0.05  # seconds between checks for what other processes on the store wrote
LEASE_RETRY = 0.5  # seconds between a standby's attempts to take the runner lease
LEASE_CHECK = 1.0  # seconds between the runner's checks that it still holds the lease
BACKFILL_LIMIT = 1000  # most fire times one backfill runs
INTERRUPTED_NOTE = "the scheduler stopped while the run was in progress (a crash or a kill); it was not run again"
# Why stop_runs stops a job's runs in flight: "<reason> while this run was in progress" is the note of each.
CANCELLED_JOB = "the job was cancelled"
UPDATED_JOB = "the job was updated"
STOPPED_SCHEDULER = "the scheduler was stopped (stop_scheduler)"


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of a scheduler.

    `database`: SQLite file, a `postgresql://` URL, or None to keep everything in memory. `timezone`: default IANA zone
    of schedules (None: the machine's). `history_limit`: runs kept per job. `flush_delay`: how long
    run records are gathered before one batched write. `start_paused`: open without running jobs.
    `use_lease`: take part in the runner lease of a database file: of all processes on one file, the
    lease holder runs the jobs and the others (standbys) serve the same jobs and take over when it stops.
    `close_timeout`: how long `close()` lets runs in progress finish (then they are cancelled and recorded so).
    `lease_time` (PostgreSQL): how long the runner lease outlives a runner that died or was cut off.
    `max_concurrent_runs`: runs in progress at a time in this process (scheduled ones, retries, backfills and
    run_now); more due fires wait for a slot (within their misfire_grace_time), which keeps the server
    answering however many jobs are due; a run_now that finds none free is refused.
    `environ`: where `!env:NAME` values in jobs' input_data are read from (None: this process's environment).
    `secrets`: the variable names that `!env:NAME` may name (the operator's allow-list); any other name
    is refused, without saying whether it is set. Names starting with MCP_SCHEDULER_ (the server's own
    settings) are refused even when listed.
    `max_jobs`: jobs a store may hold (scheduled, paused or completed; counted in the store, so for every
    process on it). `min_interval`: the shortest time (seconds) between two fires of a schedule, checked when
    a job is scheduled, updated or previewed. `max_runs_per_job`: runs of one job in progress at once in this
    process, whatever its max_instances or overlap policy asks (a larger max_instances is refused).
    `inbox_limit`: unread inbox messages kept; further posts are refused until some are read.
    `catchup_window`: seconds a fire due while nothing ran (no process of the store was running, the machine was
    off or asleep, its clock jumped forward) may still start late; jobs may set their own (policy.catchup_window).
    Beyond it the fire is recorded missed and the inbox says so. Lateness while the scheduler runs (a fire waiting
    for a run slot) is judged by each job's misfire_grace_time instead.
    `clocks`: the wall and monotonic clocks compared to notice sleep and clock jumps (None: the real ones);
    `clock_jump`: by how many seconds they may part between two looks before it counts as one.
    """

    database: str | None = None
    timezone: str | None = None
    history_limit: int = 100
    flush_delay: float = 0.05
    start_paused: bool = False
    use_lease: bool = True
    close_timeout: float = 10.0
    max_concurrent_runs: int = 1000
    lease_time: float = 10.0
    environ: Mapping[str, str] | None = None
    secrets: tuple[str, ...] = ()
    max_jobs: int = 10_000
    min_interval: float = 1.0
    max_runs_per_job: int = 10
    inbox_limit: int = 1000
    catchup_window: float = DEFAULT_CATCHUP_WINDOW
    clocks: Clocks | None = None
    clock_jump: float = CLOCK_JUMP


class SchedulerService:
    """A persistent job scheduler that runs AgenTools: `async with service: ...` opens and closes it.

    `address_rules`: the settings of this process's address policy (`ToolkitConfig.address_rules`). Every
    job scheduled or updated here stores them, and its runs obey them in whichever process runs them.
    """

    def __init__(
        self,
        config: ServiceConfig,
        *,
        injector: AgenToolInjector,
        store: SchedulerStore,
        events: EventBus,
        queues: Callable[[], QueueStore] | None = None,
        lease: RunnerLease | None = None,
        address_rules: AddressRules | None = None,
    ) -> None:
        self.config = config
        # What jobs accepted here store of this process's address policy (the http toolkit's settings).
        self.address_rules = address_rules or AddressRules()
        self.timezone = config.timezone or local_timezone_name()
        resolve_timezone(self.timezone)
        self.injector = injector
        self.events = events
        # The process's environment by default: `!env:` secrets are the server's own, read when jobs run.
        self.environ: Mapping[str, str] = config.environ if config.environ is not None else os.environ
        self.secret_names = allowed_secret_names(config.secrets)
        self._store = store
        self._lease = lease or NullLease()
        self._jobs: dict[str, Job] = {}
        self._history = HistoryWriter(
            store, self._bookkeeping, history_limit=config.history_limit, flush_delay=config.flush_delay
        )
        self._executor = RunExecutor(
            injector=injector,
            queues=queues,
            history=self._history,
            events=events,
            jobs=self._jobs,
            max_concurrent_runs=config.max_concurrent_runs,
            max_runs_per_job=config.max_runs_per_job,
            claim=self._lease.claim,
            lease_held=self._lease.is_held,
            environ=self.environ,
            secret_names=self.secret_names,
            catchup_window=config.catchup_window,
            watch=ClockWatch(config.clocks, config.clock_jump),
        )
        self._executor.on_pause = self._pause_for_failures
        self._manual_runs: set[asyncio.Task[Any]] = set()  # tasks inside run_now, which close() waits for
        self._backfills: set[asyncio.Task[Counter[str]]] = set()  # backfills in progress (close() waits for their run)
        self._engine: Engine | None = None  # the runner's, None on a standby
        self._open = False
        self._runner = False  # holds the lease: fires jobs and writes their bookkeeping
        self._follower: asyncio.Task[None] | None = None
        self._orphaned_runs: set[asyncio.Task[Any]] = set()  # runs going on when the lease was lost
        self._positions = (0, 0)  # how far this process has followed the store: (change seq, run seq)
        self._local_writes: Counter[str] = Counter()  # this process's writes per job, newer than a feed read
        self._writing: Counter[str] = Counter()  # this process's writes per job not yet committed
        self._queues = queues
        self._queue_position: tuple[QueueStore | None, int] = (None, 0)  # the same for the queue store
        self._stops = 0  # stop() calls: a backfill started before one ends with it

    # ------------------------------------------------------------------ life cycle

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def is_runner(self) -> bool:
        """True in the process that holds the runner lease and fires the jobs; False on a standby."""
        return self._runner

    async def open(self) -> Self:
        """Load the jobs from the store and serve them; fire them if this process gets the runner lease
        (otherwise it is a standby that follows the store and takes over when the runner stops)."""
        if self._open:
            return self
        try:
            await self._store.open()
            if await self._lease.try_acquire():
                await self._become_runner(paused=self.config.start_paused)
            else:
                await self._load_jobs()
            self._positions = await self._store.positions()
            self._follow_queues()  # from the current end of the queues
        except BaseException:
            # A failed open must not keep the lease or the database (close() would not see them).
            self._jobs.clear()
            self._executor.stop_retries()
            self._executor.unwatch_clocks()
            if self._engine is not None:
                self._engine.shutdown()
                self._engine = None
            self._runner = False
            await self._store.close()
            await self._lease.release()
            raise
        self._open = True
        self._warn_about_secrets()
        self._history.start()
        if self._store.location is not None:
            self._follower = asyncio.create_task(self._follow(), name="mcp-scheduler-follower")
        logger.info(
            "Scheduler open: %d jobs, database %s, time zone %s, %s",
            len(self._jobs),
            self._store.location or "(memory)",
            self.timezone,
            "running them" if self._runner else f"standby (the jobs run in {self._lease.holder()})",
        )
        return self

    def _warn_about_secrets(self) -> None:
        """Tell the operator about `--secret` names that cannot work as they expect."""
        for name in dict.fromkeys(self.config.secrets):
            if name.startswith(RESERVED_SECRET_PREFIX):
                logger.warning("--secret %s is ignored: jobs never read the server's own settings (%s*)", name,
                               RESERVED_SECRET_PREFIX)
            elif name not in self.environ:
                logger.warning("--secret %s: the variable is not set in the server's environment; jobs that use "
                               "'!env:%s' will fail until it is", name, name)
            elif len(self.environ[name]) < SHORT_SECRET_LENGTH:
                logger.warning("--secret %s: its value is shorter than %d characters; it will be replaced by "
                               "'!env:%s' wherever it appears in results, errors, stored values and logs", name,
                               SHORT_SECRET_LENGTH, name)

    async def _load_jobs(self) -> None:
        """Replace the jobs in memory with the stored ones (the dict stays the same object)."""
        jobs: dict[str, Job] = {}
        async for page in self._store.load_jobs(LOAD_PAGE):
            for job in page:
                jobs[job.job_id] = job
        self._jobs.clear()
        self._jobs.update(jobs)

    async def _become_runner(self, *, paused: bool) -> None:
        """With the lease held: record the runs the last runner left unfinished, load the jobs, start firing."""
        interrupted = await self._store.interrupt_unfinished(INTERRUPTED_NOTE)
        if interrupted:
            logger.warning("%d run(s) were in progress when the last runner stopped: recorded as interrupted",
                           len(interrupted))
        self._executor.reopen()  # what came due before now, nothing ran: catch-up fires
        await self._load_jobs()
        interrupted = self._executor.settle_interrupted(interrupted)  # buffered fires that never started: missed
        engine = Engine(
            self._executor.on_due, self._executor.on_skipped, resolve_timezone(self.timezone), self._executor.room
        )
        self._executor.on_room = engine.wake_if_held
        self._executor.on_complete = engine.remove_job
        engine.load([self._engine_job(j, j.next_run_time) for j in self._jobs.values() if j.state != "completed"])
        self._engine, self._runner = engine, True
        engine.start(paused=paused)
        self._executor.on_clock_jump = engine.wake
        self._executor.watch_clocks()
        failing = [self._retry_interrupted(record) for record in interrupted]
        self._executor.hold_retries = paused
        self._arm_retries()
        for record in interrupted:
            self.events.publish(RunEvent("finished", record))
        for job, record in filter(None, failing):
            await self._executor.pause_if_failing(job, record)

    def _retry_interrupted(self, record: RunRecord) -> tuple[Job, RunRecord] | None:
        """A run the last runner left unfinished is a failed run of its job: retried under the job's policy."""
        job = self._jobs.get(record.job_id)
        if job is None or record.status != "interrupted" or record.trigger not in ("schedule", "catch_up", "retry"):
            return None  # a buffered fire that never started is missed (settle_interrupted), not a failed run
        policy = job.definition.policy
        if policy.max_attempts == 1 and policy.pause_after_failures is None:
            return None  # nothing to do (most jobs: a runner that died with many runs in progress stays cheap)
        notes = [record.note] if record.note else []
        if policy.max_attempts > 1:
            notes.append(f"attempt {record.attempt or 1} of {policy.max_attempts}")
            self._executor.plan_retry(job, "interrupted", record.attempt, record.scheduled_time, notes, at_once=True)
            self._history.record(record.model_copy(update={"note": "; ".join(notes)}))
        else:
            self._executor.plan_retry(job, "interrupted", record.attempt, record.scheduled_time, notes)
            self._history.touch(job.job_id)
        return job, record

    async def close(self) -> None:
        """Stop firing, let runs in progress finish for up to `close_timeout` seconds (then cancel them and
        record them as cancelled), write the history and release the store and the lease."""
        if not self._open:
            return
        self._open = False
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        runs: set[asyncio.Task[Any]] = (
            self._manual_runs | self._orphaned_runs | self._backfills | self._executor.stop_retries()
        )
        if self._engine is not None:
            await self._history.flush()  # next run times are read from the engine: write them while it is alive
            engine, self._engine = self._engine, None  # from here on, bookkeeping keeps the last next run times
            self._executor.on_room = self._executor.on_complete = self._executor.on_clock_jump = None
            self._executor.unwatch_clocks()
            runs |= engine.shutdown()
        self._executor.cancel_waiting()  # fires that have not started yet: recorded as missed
        runs.discard(asyncio.current_task())  # a run_now that closes the scheduler itself
        await self._settle(runs)
        self._executor.write_streaks()
        try:
            await self._history.stop()
        finally:
            await self._store.close()
            self._jobs.clear()
            self._runner = False
            await self._lease.release()

    # ------------------------------------------------------------------ other processes on the store

    async def _follow(self) -> None:
        """Apply what other processes wrote to the store; keep the lease on the runner, and on a standby
        take it once it is free."""
        last_try = last_keep = time.monotonic()
        while True:
            await asyncio.sleep(FOLLOW_EVERY)
            try:
                now = time.monotonic()
                if self._runner and now - last_keep >= LEASE_CHECK:
                    last_keep = now
                    if not await self._lease.keep():
                        self._lose_lease()
                        last_try = time.monotonic()
                        continue
                elif not self._runner and now - last_try >= LEASE_RETRY:
                    last_try = now
                    if await self._lease.try_acquire():
                        logger.warning("The runner of %s stopped: this process runs the jobs now", self._store.location)
                        await self._become_runner(paused=False)
                        self._positions = await self._store.positions()
                        last_keep = time.monotonic()
                        continue
                if await self._store.changed():
                    await self._apply_changes()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Following the store failed; trying again")

    def _lose_lease(self) -> None:
        """Stop firing at once: the lease could not be confirmed, and another process may take it."""
        logger.error("Lost the runner lease of %s: stopped firing; this process is a standby now",
                     self._store.location)
        engine, self._engine, self._runner = self._engine, None, False
        self._executor.on_room = self._executor.on_complete = self._executor.on_clock_jump = None
        self._executor.unwatch_clocks()
        if engine is not None:
            self._orphaned_runs |= engine.shutdown()  # runs in progress finish and are recorded
        self._orphaned_runs |= self._executor.stop_retries()  # pending retries stay stored for the next runner
        self._executor.cancel_waiting()

    async def _apply_changes(self) -> None:
        # A job written here while the feed is being read has a newer state than what was read: skip it.
        before = self._local_writes.copy()
        change_seq, job_ids = await self._store.changes_since(self._positions[0])
        if job_ids is None:  # fell too far behind the change feed: compare every job
            stored: dict[str, Job] = {}
            async for page in self._store.load_jobs(LOAD_PAGE):
                stored.update((job.job_id, job) for job in page)
            for job_id in set(self._jobs) | set(stored):
                if self._untouched(job_id, before):
                    self._reconcile(job_id, stored.get(job_id))
        else:
            for job_id in sorted(job_ids):
                stored_job = await self._store.load_job(job_id)
                if self._untouched(job_id, before):
                    self._reconcile(job_id, stored_job)
        run_seq, records = await self._store.runs_since(self._positions[1])
        self._positions = (change_seq, run_seq)
        for record in records:
            if record.status == "running" and record.started_at is None:
                continue  # a fire buffered behind a run (overlap policy): announced when it starts
            job = self._jobs.get(record.job_id)
            if job is not None and not self._runner:
                job.last_run_at, job.last_status = record.started_at or job.last_run_at, record.status
            self.events.publish(RunEvent("started" if record.status == "running" else "finished", record))
        self._follow_queues()

    def _follow_queues(self) -> None:
        """Announce the messages that other processes enqueued (a result queue of the runner, say)."""
        if self._queues is None:
            return
        queues = self._queues()
        source, position = self._queue_position
        try:
            if queues is not source:  # first time, or the queue AgenTool moved to another store
                self._queue_position = (queues, queues.last_event())
                return
            position, messages = queues.events_since(position)
        except ToolkitError:  # the queue store was closed
            return
        self._queue_position = (queues, position)
        for m in messages:
            self.events.publish(QueueEvent(m.queue_name, m.message_id, m.message, m.level))

    @contextlib.asynccontextmanager
    async def _local_write(self, job_id: str) -> AsyncIterator[None]:
        """Mark a write of this process to a job's stored row, so that the feed does not undo it."""
        self._writing[job_id] += 1
        self._local_writes[job_id] += 1
        try:
            yield
        finally:
            self._writing[job_id] -= 1
            self._local_writes[job_id] += 1

    def _untouched(self, job_id: str, before: Counter[str]) -> bool:
        """True if this process did not write the job since `before` (what was read of it is not stale)."""
        return self._writing[job_id] == 0 and self._local_writes[job_id] == before[job_id]

    def _reconcile(self, job_id: str, stored: Job | None) -> None:
        """Make the job in memory (and in the engine) what another process stored."""
        current, engine = self._jobs.get(job_id), self._engine
        if stored is None:
            if current is not None:
                if engine is not None and engine.has_job(job_id):
                    engine.remove_job(job_id)
                del self._jobs[job_id]
                self._history.forget(job_id)
                self._executor.forget(job_id)
                self._executor.stop_runs(job_id, CANCELLED_JOB)  # recorded with the next batch
                self.events.publish(JobEvent("removed", job_id))
            return
        if current is None:
            self._jobs[job_id] = stored
            if engine is not None and stored.state != "completed":
                engine.add_job(self._engine_job(stored, stored.next_run_time))
            self.events.publish(JobEvent("added", job_id))
            return
        if stored.definition != current.definition:  # updated by another process
            self._replace(current, stored)
            self._executor.stop_runs(job_id, UPDATED_JOB)
            self.events.publish(JobEvent("updated", job_id))
            if not self._runner:
                self._refresh(current, stored)
            return
        if stored.state != current.state and {stored.state, current.state} == {"paused", "scheduled"}:
            if stored.state == "paused":
                if engine is not None:
                    engine.pause_job(job_id)
                current.state, current.next_run_time = "paused", None
                self.events.publish(JobEvent("paused", job_id))
            else:
                current.state = "scheduled"
                current.next_run_time = engine.resume_job(job_id) if engine is not None else stored.next_run_time
                current.failures, current.pause_reason = 0, None  # as the resuming process stored them
                if self._runner:
                    self._executor.arm_retry(current)
                self.events.publish(JobEvent("resumed", job_id))
        if not self._runner:  # the runner owns the bookkeeping; a standby shows what it stored
            self._refresh(current, stored)

    @staticmethod
    def _refresh(job: Job, stored: Job) -> None:
        if stored.state == "completed" or stored.state == job.state:
            job.state, job.next_run_time = stored.state, stored.next_run_time
        job.last_run_at, job.last_status = stored.last_run_at, stored.last_status
        job.copy_progress(stored)

    async def _settle(self, runs: set[asyncio.Task[Any]]) -> None:
        """Wait for `runs` up to `close_timeout`; cancel the rest (each records itself as cancelled)."""
        pending = {task for task in runs if not task.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self.config.close_timeout)
        if pending:
            logger.warning("Cancelling %d run(s) still in progress after %s s", len(pending), self.config.close_timeout)
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=CANCEL_GRACE_SECONDS)
            if pending:
                logger.warning("%d run(s) did not stop after being cancelled", len(pending))

    def _require_open(self) -> None:
        if not self._open:
            raise SchedulerStateError("The scheduler is not open: call open() (or use 'async with') first.")

    def _require_runner(self) -> Engine:
        self._require_open()
        if self._engine is None:
            raise SchedulerStateError(
                f"This process is a standby: the jobs run in {self._lease.holder()}, which starts and stops them. "
                "Its jobs can be scheduled, paused, resumed and cancelled from here."
            )
        return self._engine

    # ------------------------------------------------------------------ operations

    async def schedule(self, request: SchedulerInput) -> JobInfo:
        """Create a job; validates the schedule, the AgenTool and its input first (nothing is kept on error)."""
        self._require_open()
        assert request.schedule_type and request.schedule and request.agentool_name
        schedule = parse_schedule(
            request.schedule_type,
            request.schedule,
            request.timezone,
            misfire_grace_time=request.misfire_grace_time,
            default_timezone=self.timezone,
        )
        self._check_spacing(schedule)
        self._check_instances(request.max_instances)
        # Scheduled from inside a run (a job of the `scheduler` AgenTool), a secret the run resolved is stored as
        # its reference again, and resolved when this job runs.
        input_data = scrub(request.input_data or {})
        await self.check_job_input(request.agentool_name, input_data)
        policy = self._policy(request.policy, RunPolicy(), schedule.timezone)
        job_id = request.job_id or self._new_job_id(request.job_name or request.agentool_name)
        existing = await self._lookup(job_id) if request.job_id else None
        if existing is not None:
            if request.if_exists == "keep":
                return self._job_info(existing, previews=3)
            if request.if_exists == "error":
                raise JobExistsError(job_id)
            return await self.update(request.model_copy(update={"operation": "update"}), replace=True)
        now = utcnow()
        definition = JobDefinition(
            job_id=job_id,
            job_name=request.job_name,
            agentool_name=request.agentool_name,
            input_data=input_data,
            schedule=schedule,
            max_instances=request.max_instances,
            misfire_grace_time=request.misfire_grace_time,
            coalesce=request.coalesce,
            timeout=request.timeout,
            result_queue=request.result_queue,
            error_queue=request.error_queue,
            policy=policy,
            created_at=now,
            address_policy=self._accepted_rules(),
        )
        job = Job(definition, next_run_time=_first_fire(definition, now))
        if job.next_run_time is None and (policy.start_at is not None or policy.end_at is not None):
            raise InvalidJobInputError(
                f"Job {job_id!r} would never run: its schedule has no fire time between policy.start_at and "
                "policy.end_at from now on. Move end_at later (or start_at earlier)."
            )
        self._jobs[job_id] = job
        try:
            async with self._local_write(job_id):
                await self._store.insert_jobs([job], max_jobs=self.config.max_jobs)
            self._jobs[job_id] = job  # again: a takeover during the insert reloads the jobs
            engine = self._engine  # read after the insert, for the same reason
            if engine is not None and not engine.has_job(job_id):
                engine.add_job(self._engine_job(job, job.next_run_time))
        except BaseException:
            self._jobs.pop(job_id, None)
            if self._engine is not None and self._engine.has_job(job_id):
                self._engine.remove_job(job_id)
            with contextlib.suppress(Exception):
                await self._store.delete_job(job_id)
            raise
        self.events.publish(JobEvent("added", job_id))
        return self._job_info(job, previews=3)

    def _check_spacing(self, schedule: Schedule) -> None:
        """Refuse a schedule whose fires may come closer than `min_interval` (--min-interval)."""
        gap, least = schedule.shortest_gap(), self.config.min_interval
        if gap is None or gap >= least:
            return
        if schedule.schedule_type == "interval":
            what = f"The interval {clip(schedule.expression)} is {gap:g} s"
        else:
            what = f"Two fires of the cron schedule {clip(schedule.expression)} come {gap:g} s apart"
        raise InvalidScheduleError(
            f"{what}, shorter than the {least:g} s this server allows between two fires of a schedule "
            f"(--min-interval): give one at least {least:g} s apart, or ask the operator to lower --min-interval."
        )

    def _check_instances(self, max_instances: int) -> None:
        """Refuse a max_instances above `max_runs_per_job` (--max-runs-per-job)."""
        most = self.config.max_runs_per_job
        if max_instances > most:
            raise InvalidJobInputError(
                f"max_instances {max_instances} is more than the {most} runs of one job this server lets go at "
                f"once (--max-runs-per-job): give max_instances {most} or less, or ask the operator to raise "
                "--max-runs-per-job."
            )

    async def update(self, request: SchedulerInput, *, replace: bool = False) -> JobInfo:
        """Change a job's schedule, AgenTool input, queues or limits; only the fields given change.

        The job keeps its id, state (a paused job stays paused) and history. A new schedule fires from
        its next time after now; a one-time job that has run becomes scheduled again with a new schedule.
        Everything is checked first (as for schedule): on error nothing changes.
        """
        self._require_open()
        job = await self._find(request.job_id or "")
        # replace (schedule_job with if_exists='replace'): every field is the request's, defaults included.
        given = set(_UPDATABLE) if replace else request.model_fields_set & set(_UPDATABLE)
        if not given:
            raise InvalidJobInputError(
                f"Nothing to change in job {job.job_id!r}: give at least one of {', '.join(_UPDATABLE)}."
            )
        current = job.definition
        changes: dict[str, Any] = {name: getattr(request, name) for name in given & set(_UPDATABLE[4:])}
        if given & {"schedule_type", "schedule", "timezone"}:
            if "schedule_type" in given and "schedule" not in given:
                raise InvalidJobInputError(
                    f"schedule_type changes what schedule means: give the new schedule with it (job {job.job_id!r})."
                )
            changes["schedule"] = parse_schedule(
                request.schedule_type or current.schedule.schedule_type,
                request.schedule or current.schedule.expression,
                request.timezone if "timezone" in given else current.schedule.timezone,
                misfire_grace_time=changes.get("misfire_grace_time", current.misfire_grace_time),
                default_timezone=self.timezone,
            )
            self._check_spacing(changes["schedule"])
        if "max_instances" in given:
            self._check_instances(request.max_instances)
        if "policy" in given:
            base = RunPolicy() if replace else current.policy
            zone = changes["schedule"].timezone if "schedule" in changes else current.schedule.timezone
            changes["policy"] = self._policy(request.policy, base, zone)
        agentool_name = changes.get("agentool_name", current.agentool_name)
        if "agentool_name" in changes or "input_data" in changes:
            changes.setdefault("input_data", current.input_data)
            if changes["input_data"] is None:
                raise InvalidJobInputError("input_data cannot be null: give the AgenTool's input as an object.")
            changes["input_data"] = scrub(changes["input_data"])
            await self.check_job_input(agentool_name, changes["input_data"])
        changes["address_policy"] = rules = self._accepted_rules()
        if rules.exposed and rules != current.address_policy and "input_data" not in changes:
            # The job now obeys this process's policy: what it reaches must pass it (nothing changes if not).
            await self.check_job_input(agentool_name, current.input_data)
        definition = JobDefinition(**{**dict(current), **changes})
        state, next_run = job.state, job.next_run_time
        if self._engine is not None and state == "scheduled":
            next_run = self._engine.next_run_time(job.job_id)
        bounds = ("start_at", "end_at")
        rebound = [getattr(definition.policy, n) for n in bounds] != [getattr(current.policy, n) for n in bounds]
        if "schedule" in changes or rebound:
            state = "paused" if state == "paused" else "scheduled"
            next_run = None if state == "paused" else _first_fire(definition, utcnow())
            if state == "scheduled" and next_run is None and definition.policy.end_at is not None:
                state = "completed"  # its new end_at is past: the job finishes, as one that ran to its end
        updated = Job(definition, state, next_run, job.last_run_at, job.last_status)
        async with self._local_write(job.job_id):
            await self._store.update_job(updated)
        self._replace(job, updated)
        await self._stop_runs(job.job_id, UPDATED_JOB)  # what they run is not the job any more
        self.events.publish(JobEvent("updated", job.job_id))
        return self._job_info(job, previews=3)

    @staticmethod
    def _policy(given: PolicyInput | None, base: RunPolicy, zone: str) -> RunPolicy:
        """`base` with the fields set in `given` (times read in `zone`, `catchup_window` made seconds)."""
        if given is None:
            return base
        fields = given.model_fields_set
        changes: dict[str, Any] = {name: getattr(given, name) for name in fields if name in RunPolicy.model_fields}
        for name in ("start_at", "end_at"):
            if name in fields and changes[name] is not None:
                changes[name] = parse_time(changes[name], f"policy.{name}", zone)
        if "catchup_window" in fields:
            changes["catchup_window"] = catchup_seconds(given.catchup_window)
        try:
            return RunPolicy.model_validate({**base.model_dump(), **changes})
        except ValidationError as exc:
            raise InvalidJobInputError(f"Invalid policy: {describe_errors(exc.errors())}") from None

    def _replace(self, job: Job, stored: Job) -> None:
        """Give `job` (in memory and in the engine) the definition, state and next run time of `stored`."""
        job.definition, job.state, job.next_run_time = stored.definition, stored.state, stored.next_run_time
        engine = self._engine
        if engine is not None:
            if engine.has_job(job.job_id):
                engine.remove_job(job.job_id)
            if job.state != "completed":
                engine.add_job(self._engine_job(job, job.next_run_time))

    async def cancel(self, job_id: str) -> JobInfo:
        """Remove a job for good; its history stays readable until pruned."""
        self._require_open()
        job = await self._find(job_id)
        info = self._job_info(job)
        if self._engine is not None:
            self._engine.remove_job(job_id)
        del self._jobs[job_id]
        self._history.forget(job_id)
        self._executor.forget(job_id)  # a pending retry is dropped with the job
        async with self._local_write(job_id):
            await self._store.delete_job(job_id)
        await self._stop_runs(job_id, CANCELLED_JOB)
        self.events.publish(JobEvent("removed", job_id))
        return info.model_copy(update={"running": self._executor.running.get(job_id, 0)})

    async def _stop_runs(self, job_id: str | None, reason: str) -> None:
        """Stop the runs in flight in this process of a job (None: of every job) and return once their records
        (`cancelled`, "<reason> while this run was in progress") are committed. A run that does not stop
        within CANCEL_GRACE_SECONDS is left going, with a warning."""
        waits = self._executor.stop_runs(job_id, reason)
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=CANCEL_GRACE_SECONDS)
        if pending:
            logger.warning("%d run(s) of %s did not stop within %s s of being cancelled (%s)", len(pending),
                           f"job {job_id}" if job_id else "the scheduler", CANCEL_GRACE_SECONDS, reason)
        await self._history.commit()

    async def pause(self, job_id: str) -> JobInfo:
        """Stop a job from firing until it is resumed (idempotent)."""
        self._require_open()
        job = await self._find(job_id)
        if job.state == "completed":
            raise SchedulerStateError(f"Job {job_id!r} has completed (a one-time job that ran); nothing to pause.")
        if job.state != "paused":
            if self._engine is not None:
                self._engine.pause_job(job_id)
            job.state, job.next_run_time = "paused", None
            async with self._local_write(job_id):
                await self._store.set_state(job_id, "paused", None)
            self.events.publish(JobEvent("paused", job_id))
        return self._job_info(job)

    async def resume(self, job_id: str) -> JobInfo:
        """Let a paused job fire again from its next scheduled time (idempotent)."""
        self._require_open()
        job = await self._find(job_id)
        if job.state == "completed":
            raise SchedulerStateError(
                f"Job {job_id!r} has completed (a one-time job that ran, or one past its end_at); nothing to resume."
            )
        if job.state == "paused":
            if not self._runner and (stored := await self._store.load_job(job_id)) is not None:
                job.copy_progress(stored)  # the runner keeps it: keep its count of runs and its pending retry
            if self._engine is not None:
                next_run = self._engine.resume_job(job_id)
            else:
                next_run = _first_fire(job.definition, utcnow())
            job.state, job.next_run_time = "scheduled", next_run
            job.failures, job.pause_reason = 0, None
            if next_run is None and job.definition.policy.end_at is not None:
                job.state = "completed"  # resumed after its end_at: it has nothing left to run
            async with self._local_write(job_id):
                await self._store.set_state(job_id, job.state, job.next_run_time, job.progress_json() or "{}")
            if self._runner and job.state == "scheduled":
                self._executor.arm_retry(job)  # a retry that waited for the resume
            self.events.publish(JobEvent("resumed" if job.state == "scheduled" else "completed", job_id))
        return self._job_info(job, previews=3)

    async def _pause_for_failures(self, job: Job, why: str, last_error: str) -> None:
        """Pause a job that failed `policy.pause_after_failures` times in a row (`why` says so), and say so in
        the inbox: the server's words, with the last error (which may quote outside text) labelled untrusted."""
        if job.state != "scheduled":
            return
        reason = f"{why}; last error: {clip_text(last_error, 500)}"
        job_id = job.job_id
        if self._engine is not None:
            self._engine.pause_job(job_id)
        job.state, job.next_run_time, job.pause_reason = "paused", None, reason
        async with self._local_write(job_id):
            await self._store.set_state(job_id, "paused", None, job.progress_json())
        logger.warning("Job %s: %s", job_id, reason)
        self.events.publish(JobEvent("paused", job_id))
        if self._queues is not None:
            name = job.definition.job_name or job_id
            try:
                post_to_inbox(self._queues(), f"Job {name!r} was {why}. Resume it with resume_job once the cause is "
                              "fixed; its last error is in `untrusted`.",
                              title=f"{name} paused", level="warning", source="scheduler", job_id=job_id,
                              job_name=job.definition.job_name,
                              untrusted=clip_content(untrusted(last_error, f"the last run of job {name!r}"), 1000))
            except Exception as exc:
                logger.warning("Job %s: could not post to the inbox: %s", job_id, exc)

    async def run_now(self, request: SchedulerInput) -> RunRecord:
        """Run a job's AgenTool now (schedule unchanged), or a given AgenTool once; raise if it fails."""
        self._require_open()
        job = await self._lookup(request.job_id) if request.job_id else None
        target: RunTarget
        if job is not None:
            target = job.definition
        else:
            if request.agentool_name is None:
                raise JobNotFoundError(request.job_id or "")
            target = AdHocRun(
                job_id=request.job_id or f"run_now-{uuid.uuid4().hex[:12]}",
                agentool_name=request.agentool_name,
                input_data=request.input_data or {},
                timeout=request.timeout,
                result_queue=request.result_queue,
                error_queue=request.error_queue,
            )
            await self.check_job_input(target.agentool_name, target.input_data)
        task = asyncio.current_task()
        if task is not None:
            self._manual_runs.add(task)
        try:
            record = await self._executor.run_extra(target, "run_now", None, wait=False)
        finally:
            if task is not None:
                self._manual_runs.discard(task)
        if record is None:
            raise JobNotFoundError(target.job_id)
        if record.status != "success":
            err = record.error.message if record.error else f"{record.status}: {record.note}" if record.note \
                else record.status
            raise JobExecutionError(
                f"Failed to execute AgenTool {target.agentool_name!r} (job {target.job_id!r}, "
                f"run {record.run_id}): {err}"
            )
        return record

    def list_jobs(
        self,
        *,
        state: str | None = None,
        agentool_name: str | None = None,
        offset: int = 0,
        limit: int | None = None,
        include_completed: bool = False,
    ) -> tuple[list[JobInfo], int]:
        """Jobs in creation order (filtered), one page of them, and the total that match."""
        self._require_open()

        # With 100,000 jobs a Python call per job made the first page ~50 ms: the count runs in C
        # (map + list.count) and the page stops at its last job.
        jobs: Iterable[Job] = self._jobs.values()
        if agentool_name is None and (state is not None or not include_completed):
            states = list(map(_STATE_OF, self._jobs.values()))
            total = states.count(state) if state is not None else len(states) - states.count("completed")
        else:
            total = -1  # counted below
        if state is not None:
            jobs = (j for j in jobs if j.state == state)
        elif not include_completed:
            jobs = (j for j in jobs if j.state != "completed")
        if agentool_name is not None:
            jobs = (j for j in jobs if j.definition.agentool_name == agentool_name)
        if total < 0:
            selected = list(jobs)
            total, jobs = len(selected), selected
        start = min(offset, total)  # a cursor far past the end is an empty page (islice takes no huge ints)
        end = None if limit is None else min(offset + limit, total)
        page = list(itertools.islice(jobs, start, end)) if end is None or start < end else []
        return [self._job_info(j) for j in page], total

    def job_ids(self) -> list[str]:
        """Every job id (for completions)."""
        return list(self._jobs)

    async def get_job(self, job_id: str, history: int = 5) -> tuple[JobInfo, list[RunRecord]]:
        """A job with its next fire times and its latest runs."""
        self._require_open()
        job = await self._find(job_id)
        await self._history.flush()
        if not self._runner and (stored := await self._store.load_job(job_id)) is not None:
            self._refresh(job, stored)
        recent = await self._store.history(job_id, None, history)
        return self._job_info(job, previews=3), recent

    async def get_history(
        self,
        job_id: str | None = None,
        status: RunStatus | None = None,
        limit: int = 20,
        *,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        agentool_name: str | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first: one job's (also cancelled jobs and run_now ids, until pruned), or with no
        `job_id` those of every job, cancelled and finished ones included. `since` and `until` bound the
        run time: datetimes, or strings such as '2026-12-01T09:00' or '1h' (that long ago)."""
        self._require_open()
        start = parse_moment(since, "since", self.timezone) if isinstance(since, str) else since
        end = parse_moment(until, "until", self.timezone) if isinstance(until, str) else until
        await self._history.flush()
        records = await self._store.history(
            job_id, status, limit, since=start, until=end, agentool_name=agentool_name
        )
        if job_id is not None and not records and await self._lookup(job_id) is None:
            if not await self._store.has_history(job_id):
                raise JobNotFoundError(job_id)
        return records

    async def start(self) -> SchedulerStatus:
        """Start (or restart) processing jobs."""
        self._require_runner().start()
        self._executor.hold_retries = False
        self._arm_retries()
        return self.status()

    async def stop(self) -> SchedulerStatus:
        """Stop processing jobs without losing any: runs in progress are stopped (recorded `cancelled`), fires
        waiting for a slot or behind a run are recorded `missed`, backfills end; fires due while stopped are
        handled on start (by each job's catch-up policy), and pending retries wait for it."""
        self._require_runner().pause()
        self._executor.hold_retries = True
        self._executor.stop_retries()  # pending retries wait for the start too
        self._stops += 1
        self._executor.cancel_waiting(f"{STOPPED_SCHEDULER} before this fire could run")
        await self._stop_runs(None, STOPPED_SCHEDULER)
        return self.status()

    def _arm_retries(self) -> None:
        for job in self._jobs.values():
            if job.retry is not None:
                self._executor.arm_retry(job)  # one due already runs at once: a retry, not a missed fire

    def status(self) -> SchedulerStatus:
        """The scheduler's state and counts."""
        self._require_open()
        state = self._engine.state if self._engine is not None else 0
        active = [j for j in self._jobs.values() if j.state != "completed"]
        return SchedulerStatus(
            running=state == STATE_RUNNING,
            scheduler_state=state,
            state=_STATE_NAMES.get(state, "stopped"),  # type: ignore[arg-type]
            jobs_count=len(active),
            paused_jobs=sum(1 for j in active if j.state == "paused"),
            runs_in_progress=sum(self._executor.running.values()),
            timezone=self.timezone,
            database=self._store.location,
            role="runner" if self._runner else "standby",
            runner=None if self._runner else self._lease.holder(),
        )

    def has_active_work(self) -> bool:
        """True while a job is scheduled (not paused), a retry is pending or a run is in progress: what keeps a
        background runner running."""
        return (
            bool(self._executor.running or self._manual_runs or self._backfills)
            or any(job.state == "scheduled" or job.retry is not None for job in self._jobs.values())
        )

    @property
    def processing(self) -> bool:
        """True while jobs fire (open and not stopped)."""
        return self._engine is not None and self._engine.state == STATE_RUNNING

    def preview(
        self,
        schedule_type: str,
        schedule: str,
        timezone: str | None = None,
        count: int = 3,
        policy: PolicyInput | None = None,
    ) -> SchedulePreview:
        """Describe a schedule and list its next fire times without creating a job; with a `policy`, the times
        a job with it would run: none before start_at, none after end_at, at most max_runs, and a note on
        the jitter window."""
        parsed = parse_schedule(schedule_type, schedule, timezone, default_timezone=self.timezone)
        self._check_spacing(parsed)
        note = None
        if policy is None:
            times = parsed.next_fire_times(count)
        else:
            bounds = self._policy(policy, RunPolicy(), parsed.timezone)
            times = preview_fire_times(parsed, count, utcnow(), start_at=bounds.start_at, end_at=bounds.end_at,
                                       max_runs=bounds.max_runs)
            note = _preview_note(bounds, len(times) < count)
        return SchedulePreview(
            schedule_type=parsed.schedule_type,
            schedule=parsed.expression,
            timezone=parsed.timezone,
            description=parsed.description,
            next_runs=times,
            note=note,
        )

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
        stop_scheduler and cancel_job end them.
        """
        self._require_runner()
        job = await self._find(job_id)
        definition = job.definition
        zone = definition.schedule.timezone
        now = utcnow()
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
        if not times:
            return summary.model_copy(update={"statuses": {}})
        task = asyncio.create_task(self._backfill(definition, times, overlap), name=f"mcp-scheduler-backfill-{job_id}")
        self._backfills.add(task)
        task.add_done_callback(self._backfills.discard)
        logger.info("Job %s: backfill of %d fire time(s) from %s to %s (%s)", job_id, len(times),
                    times[0].isoformat(), times[-1].isoformat(), overlap)
        if not wait:
            return summary
        statuses = await asyncio.shield(task)
        return summary.model_copy(update={"statuses": dict(statuses)})

    async def _backfill(
        self, definition: JobDefinition, times: list[datetime], overlap: BackfillOverlap
    ) -> Counter[str]:
        """Run the backfill's fire times; stops (logging what was left) when the job goes or the scheduler closes."""
        statuses: Counter[str] = Counter()
        job_id = definition.job_id
        wide = min(definition.max_instances, self.config.max_runs_per_job)
        slots = asyncio.Semaphore(wide if overlap == "allow_all" else 1)
        left = list(reversed(times))
        stops = self._stops

        def going() -> bool:
            return self._open and job_id in self._jobs and self._engine is not None and self._stops == stops

        async def one(moment: datetime) -> None:
            try:
                # In a run slot of the scheduler and within the job's runs in flight, as every run.
                record = await self._executor.run_extra(definition, "backfill", moment, wait=True, go=going)
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
                    logger.warning("Job %s: backfill stopped (the job or this runner went, or the scheduler was "
                                   "stopped); %d fire time(s) from %s were not run", job_id, len(left),
                                   left[-1].isoformat())
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

    async def check_job_input(self, agentool_name: str, input_data: dict[str, Any]) -> None:
        """Check that the AgenTool exists, that every `!env:NAME` is a secret the operator allows and is set,
        and that `input_data` fits the AgenTool's schema and its own check (`!ref:` values, resolved only
        when the job runs, excepted)."""
        agentool = self.injector.get(agentool_name)
        try:
            resolved, revealed = resolve_env(input_data, self.environ, self.secret_names)
        except (SecretNotAllowedError, SecretNotSetError) as exc:
            raise InvalidJobInputError(f"input_data of AgenTool {agentool_name!r}: {exc}") from exc
        try:
            # The check sees the secrets' values: what it quotes of them (clip) comes out as the reference.
            with revealing(revealed):
                await self.injector.check(agentool.name, resolved)
        except AgenToolInputError as exc:
            real = [e for e in exc.errors if not _is_ref_error(e, input_data)]
            if real or not exc.errors:
                raise InvalidJobInputError(
                    f"input_data does not fit AgenTool {agentool_name!r}: {redact(str(exc), revealed).rstrip('.')}. "
                    f"Its operations: {', '.join(agentool.operations)}; see its input schema."
                ) from None
        except AgenToolError as exc:
            # An error quoting a secret must not carry it to the caller (or a log).
            if revealed and (text := str(exc)) != (clean := redact(text, revealed)):
                raise InvalidJobInputError(clean) from None
            raise

    # ------------------------------------------------------------------ helpers

    def _accepted_rules(self) -> AddressRules:
        """The address policy a job accepted now stores: this process's; no looser than the current run's
        when a job schedules or updates jobs."""
        run = current_run()
        if run is not None and run.address_policy is not None:
            return self.address_rules.strictest(run.address_policy)
        return self.address_rules

    @staticmethod
    def _engine_job(job: Job, next_run_time: datetime | None) -> EngineJob:
        d = job.definition
        p = d.policy
        # The executor decides overlaps by the job's policy: the engine hands over every fire.
        return EngineJob(d.job_id, d.schedule, engine_instances(d), next_run_time, job.state == "paused",
                         p.start_at, p.end_at, p.jitter)

    def _bookkeeping(self, job_ids: Iterable[str]) -> list[Bookkeeping]:
        """The current state of the given jobs, to persist; next run times come from the engine while it runs."""
        books: list[Bookkeeping] = []
        if not self._runner:
            return books
        for job_id in job_ids:
            job = self._jobs.get(job_id)
            if job is None:
                continue
            if self._engine is not None:
                job.next_run_time = self._engine.next_run_time(job_id) if job.state == "scheduled" else None
            books.append(Bookkeeping.of(job))
        return books

    async def _lookup(self, job_id: str) -> Job | None:
        """The job, also one another process stored a moment ago (before its change reached this one)."""
        job = self._jobs.get(job_id)
        if job is None and self._follower is not None:
            stored = await self._store.load_job(job_id)
            if stored is not None:
                self._reconcile(job_id, stored)
                job = self._jobs.get(job_id)
        return job

    async def _find(self, job_id: str) -> Job:
        job = await self._lookup(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    def _new_job_id(self, base: str) -> str:
        slug = re.sub(r"[^A-Za-z0-9._:@-]+", "_", base).strip("_.-")[:100] or "job"
        if not slug[0].isalnum():
            slug = f"job{slug}"
        return slug if slug not in self._jobs else f"{slug}-{uuid.uuid4().hex[:8]}"

    def _job_info(self, job: Job, previews: int = 0) -> JobInfo:
        if job.state != "scheduled":
            next_run = None
        elif self._engine is not None:
            next_run = self._engine.next_run_time(job.job_id)
        else:
            next_run = job.next_run_time
        following: list[datetime] = []
        if previews and next_run is not None:
            following = [next_run]
            policy = job.definition.policy
            while len(following) < previews:
                nxt = next_fire_time(job.definition.schedule, following[-1], following[-1], start_at=policy.start_at,
                                     end_at=policy.end_at)
                if nxt is None or nxt <= following[-1]:
                    break
                following.append(nxt)
        return JobInfo.of(job, next_run, following, self._executor.running.get(job.job_id, 0),
                          runs_per_job=self.config.max_runs_per_job)


_UPDATABLE = (
    "schedule_type", "schedule", "timezone",  # parsed together into the schedule
    "policy",  # merged into the job's policy
    "job_name", "agentool_name", "input_data", "max_instances", "misfire_grace_time", "coalesce", "timeout",
    "result_queue", "error_queue",
)


def _preview_note(policy: RunPolicy, cut: bool) -> str | None:
    """How a policy shapes a preview's times, in words (None when it does not)."""
    parts: list[str] = []
    if policy.start_at is not None:
        parts.append(f"none before {policy.start_at.isoformat()}")
    if policy.end_at is not None:
        parts.append(f"none after {policy.end_at.isoformat()}")
    if policy.max_runs is not None:
        parts.append(f"at most {policy.max_runs} run{'s' if policy.max_runs > 1 else ''} in all")
    if cut and (policy.end_at is not None or policy.max_runs is not None):
        parts.append("no runs after these")
    if policy.jitter:
        parts.append(f"each run starts within {policy.jitter:g} s after the time shown (jitter; the same delay on "
                     "every replica, different per job and fire)")
    return "; ".join(parts) or None


def _first_fire(definition: JobDefinition, now: datetime) -> datetime | None:
    """A job's first fire time from `now`, within its policy's bounds."""
    policy = definition.policy
    return next_fire_time(definition.schedule, None, now, start_at=policy.start_at, end_at=policy.end_at)


def _is_ref_error(error: dict[str, Any], data: dict[str, Any]) -> bool:
    value: Any = data
    for part in str(error.get("loc", "")).split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False
    return isinstance(value, str) and value.startswith("!ref:")
