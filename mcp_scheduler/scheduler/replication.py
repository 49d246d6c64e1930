"""Several processes on one store: follow what the others write, reconcile memory and engine with it, and take
the runner lease over when the runner stops (or give it up when it cannot be confirmed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agentool_bridge.toolkits import QueueStore, ToolkitError

from .._engine import Engine
from ..backoff import Backoff
from ..clocks import Clock
from ..errors import JobNotFoundError
from ..events import EventBus, JobEvent, QueueEvent, RunEvent
from ..history import HistoryWriter
from ..jobs import Job, RunTrigger
from ..lease import RunnerLease
from ..models import RunRecord
from ..owners import may_see
from ..runs import RunPath
from ..schedules import resolve_timezone
from ..store import SchedulerStore
from .config import CANCELLED_JOB, INTERRUPTED_NOTE, INTERRUPTED_RETRIED_NOTE, LEASE_LOST, UPDATED_JOB
from .engine import EngineHandle, engine_job
from .local_writes import LocalWrites
from .read_marks import ReadMarks
from .run_requests import KEPT_UNSTARTED, is_run_request
from .table import JobTable

__all__ = ["Replication"]

logger = logging.getLogger(__name__)

LOAD_PAGE = 5000  # jobs read per query on open: the decoded JSON of all rows at once would double peak memory
FOLLOW_EVERY = 0.05  # seconds between checks for what other processes on the store wrote
BACKOFF_CAP = 5.0  # most seconds between checks of the store, or attempts at the lease, while they fail
LEASE_RETRY = 0.5  # seconds between a standby's attempts to take the runner lease
WATCH_EVERY = 0.1  # seconds between the runner's looks at whether its lease is still confirmed (no I/O)
RUNNER_TRIGGERS: tuple[RunTrigger, ...] = ("schedule", "catch_up", "retry")  # the runs only the runner starts


class Replication:
    """Follows the store (`start`/`stop` its task), reconciles, and makes this process the runner or a standby."""

    def __init__(
        self,
        *,
        store: SchedulerStore,
        lease: RunnerLease,
        table: JobTable,
        engine: EngineHandle,
        runs: RunPath,
        history: HistoryWriter,
        events: EventBus,
        writes: LocalWrites,
        queues: Callable[[], QueueStore] | None,
        timezone: str,
        clock: Clock,
    ) -> None:
        self._store = store
        self._lease = lease
        self._table = table
        self._engine = engine
        self._runs = runs
        self._history = history
        self._events = events
        self._writes = writes
        self._queues = queues
        self._timezone = timezone
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._applying = asyncio.Lock()  # the follower and a read catching up apply the feeds one at a time
        self.synced_at: datetime | None = None  # when this process's view last matched the store
        self._watch: asyncio.Task[None] | None = None
        self._last_try = self._last_keep = 0.0  # monotonic(): the last lease attempt (standby), check (runner)
        self.orphaned_runs: set[asyncio.Task[Any]] = set()  # runs going on when the lease was lost
        # The runner's taker of runs that other processes ask for through the store (ExtraRuns.take_request).
        self.on_run_request: Callable[[RunRecord], None] | None = None
        self._positions = (0, 0)  # how far this process has followed the store: (change seq, run seq)
        self._marks = ReadMarks()  # skips reads through the store while nothing was written to it
        self._behind = False  # runs are left to read beyond the last read's limit
        self._queue_position: tuple[QueueStore | None, int] = (None, 0)  # the same for the queue store
        self.backoff = Backoff("Following the store", logger, clock, base=FOLLOW_EVERY, cap=BACKOFF_CAP)
        self.lease_backoff = Backoff("Keeping or taking the runner lease", logger, clock, base=LEASE_RETRY,
                                     cap=BACKOFF_CAP)

    @property
    def unreachable_since(self) -> datetime | None:
        """Since when the store (or the runner lease on it) has failed every attempt to reach it; None while it
        answers."""
        times = [t for t in (self.backoff.failing_since, self.lease_backoff.failing_since) if t is not None]
        return min(times) if times else None

    # ------------------------------------------------------------------ runner or standby

    async def load_jobs(self) -> None:
        """Replace the jobs in memory with the stored ones."""
        jobs: list[Job] = []
        async for page in self._store.load_jobs(LOAD_PAGE):
            jobs.extend(page)
        self._table.loaded(jobs)

    async def join(self, *, paused: bool) -> None:
        """Take part in the store (just opened): as its runner if the lease is free, else as a standby; follow
        what others write from now on."""
        # Where the feeds end before the jobs are read: what others write meanwhile (a run asked of the runner,
        # say) is then read by the follower, not skipped.
        positions = await self._store.positions()
        if await self._lease.try_acquire():
            await self.become_runner(paused=paused)
        else:
            await self.load_jobs()
        self._positions = positions
        self.follow_queues()  # from the current end of the queues

    async def become_runner(self, *, paused: bool) -> None:
        """With the lease held: record the runs the last runner left unfinished, load the jobs, start firing, and
        start the chained runs it decided and the runs handed to it that it did not start (KEPT_UNSTARTED)."""
        unfinished = await self._store.interrupt_unfinished(INTERRUPTED_NOTE, keep_unstarted=KEPT_UNSTARTED)
        interrupted = [record for record in unfinished if record.status != "running"]
        waiting = [record for record in unfinished if record.status == "running"]
        if interrupted:
            logger.warning("%d run(s) were in progress when the last runner stopped: recorded as interrupted",
                           len(interrupted))
        runs = self._runs
        runs.gaps.reopen()  # what came due before now, nothing ran: catch-up fires
        await self.load_jobs()
        interrupted = runs.admission.settle_interrupted(interrupted)  # buffered fires that never started: missed
        engine = Engine(runs.admission.on_due, runs.admission.on_skipped, resolve_timezone(self._timezone),
                        runs.slots.room)
        engine.load([engine_job(j, j.next_run_time) for j in self._table.jobs() if j.state != "completed"])
        self._engine.attach(engine)
        engine.start(paused=paused)
        runs.gaps.watch_clocks()
        wait = self._lease.takeover_wait()
        failing = [self._retry_interrupted(record, wait) for record in interrupted]
        runs.retries.hold = paused
        runs.retries.arm_all()
        if paused:
            await self._lease.note_stopped(self._clock.now())
        for record in interrupted:
            self._events.publish(RunEvent("finished", record))
        for job, record in filter(None, failing):
            await runs.retries.pause_if_failing(job, record)
        if waiting and self.on_run_request is not None:
            for trigger, count in Counter(record.trigger for record in waiting).items():
                logger.warning("%d %s run(s) had not started when the last runner stopped: started here", count,
                               "chained" if trigger == "chain" else trigger)
            for record in waiting:
                self.on_run_request(record)  # as a run handed over by another process (run_requests.py)

    def _retry_interrupted(self, record: RunRecord, wait: float) -> tuple[Job, RunRecord] | None:
        """A run the last runner left unfinished is a failed run of its job: retried under the job's policy (if
        its retry_on has `interrupted`), not before `wait` seconds from now, when the last runner's runs are
        known stopped."""
        job = self._table.get(record.job_id)
        if job is None or record.status != "interrupted" or record.trigger not in RUNNER_TRIGGERS:
            return None  # a buffered fire that never started is missed (settle_interrupted), not a failed run
        policy = job.definition.policy
        if policy.max_attempts == 1 and policy.pause_after_failures is None:
            return None  # nothing to do (most jobs: a runner that died with many runs in progress stays cheap)
        notes = [record.note] if record.note else []
        if policy.max_attempts > 1:
            notes.append(f"attempt {record.attempt or 1} of {policy.max_attempts}")
            retry = self._runs.policy.plan(job, "interrupted", record.attempt, record.scheduled_time, notes,
                                           wait=wait, why=_held_retry(wait))
            if retry is not None and notes[0] == INTERRUPTED_NOTE:
                notes[0] = INTERRUPTED_RETRIED_NOTE
            self._history.record(record.model_copy(update={"note": "; ".join(notes)}))
        else:
            self._runs.policy.plan(job, "interrupted", record.attempt, record.scheduled_time, notes)
            self._history.touch(job.job_id)
        return job, record

    def stop_firing(self) -> Engine | None:
        """Stop the engine's side of the run path (clocks, retry timers); returns the engine to shut down."""
        self._runs.gaps.unwatch_clocks()
        return self._engine.detach()

    async def _lose_lease(self) -> None:
        """Stop acting at once: the lease could not be confirmed, and another process may take it (fencing).
        The fires and retries in progress are cancelled (`cancelled`, "lease lost", in this process's events; the
        store's fence keeps their records out, so the next runner records them `interrupted`), and the lease is
        let go."""
        if not self._engine.runner:
            return
        logger.error("Lost the runner lease of %s: stopped firing and cancelled the runs in progress; this process "
                     "is a standby now", self._store.location)
        engine = self.stop_firing()
        self._engine.runner = False
        self._runs.stop_runs(None, LEASE_LOST, RUNNER_TRIGGERS)
        if engine is not None:
            self.orphaned_runs |= engine.shutdown()  # the fires' tasks, which end as their runs are recorded
        self.orphaned_runs |= self._runs.retries.stop()  # pending retries stay stored for the next runner
        self._runs.admission.cancel_waiting()
        await self._lease.release()

    async def _watch_lease(self) -> None:
        """On the runner: lose the lease as soon as it is no longer confirmed (half the lease time after the last
        successful check), whatever the follower is waiting for (a slow store, a ping that does not answer)."""
        while True:
            await asyncio.sleep(WATCH_EVERY)
            if self._engine.runner and not self._lease.is_held():
                await self._lose_lease()
                self._last_try = self._clock.monotonic()

    # ------------------------------------------------------------------ following the store

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="mcp-scheduler-follower")
        self._watch = asyncio.create_task(self._watch_lease(), name="mcp-scheduler-lease-watch")

    @property
    def following(self) -> bool:
        return self._task is not None

    async def stop(self) -> None:
        for task in (self._watch, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._watch = None

    async def _follow(self) -> None:
        """Apply what other processes wrote to the store; keep the lease on the runner, and on a standby take it
        once it is free. Failures (the database or the lease's file is out of reach) back off with jitter, the
        store's and the lease's each on its own."""
        self._last_try = self._last_keep = self._clock.monotonic()
        while True:
            await asyncio.sleep(self.backoff.delay())
            try:
                if await self._lease_turn():
                    continue
                if self._behind or await self._store.changed():
                    async with self._applying:
                        await self._apply_changes()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.backoff.failed(exc)
            else:
                self.backoff.succeeded()
                self.synced_at = self._clock.now()

    async def _lease_turn(self) -> bool:
        """Confirm the lease (runner) or try to take it (standby) when that is due; True if the role changed."""
        now = self._clock.monotonic()
        lease = self.lease_backoff
        try:
            if self._engine.runner:
                if now - self._last_keep < (self._lease.keep_every() if not lease.failures else lease.delay()):
                    return False
                self._last_keep = now
                if not await self._lease.keep():
                    await self._lose_lease()
                    self._last_try = self._clock.monotonic()
                    return True
            else:
                if now - self._last_try < lease.delay():
                    return False
                self._last_try = now
                if await self._lease.try_acquire():
                    logger.warning("The runner of %s stopped: this process runs the jobs now", self._store.location)
                    async with self._applying:  # a read's catch-up must not move the feeds' positions meanwhile
                        positions = await self._store.positions()
                        await self.become_runner(paused=False)
                        self._positions = positions
                    self._last_keep = self._clock.monotonic()
                    lease.succeeded()
                    return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            lease.failed(exc)
            return False
        lease.succeeded()
        return False

    async def catch_up(self) -> datetime | None:
        """Apply what other processes wrote up to now, before a read: a list right after a change on another
        replica shows that change, not what the follower last applied (it checks every 50 ms, or on a
        PostgreSQL notification that may not have arrived yet). Returns None once caught up; with the store out of
        reach, the view stays as it is and this returns when it last matched the store."""
        if self._task is None:
            return None
        try:
            async with self._applying:
                if not self._marks.feeds_current(self._store.read_mark()):
                    await self._apply_changes()
        except Exception as exc:
            logger.warning("Reading the jobs as last followed: the store's changes could not be read (%s)", exc)
            return self.synced_at
        self.synced_at = self._clock.now()
        return None

    async def _apply_changes(self) -> None:
        mark = self._store.read_mark()  # before the reads: a write after it moves the mark
        # A job written here while the feed is being read has a newer state than what was read: skip it.
        before = self._writes.snapshot()
        feeds = await self._store.feeds_since(*self._positions)
        records = feeds.runs
        # On a standby also the jobs that another process ran: the runner stored their next run time, count of runs
        # and pending retry with the runs' records (its bookkeeping is in no change feed).
        ran = set() if self._engine.runner else {
            r.job_id for r in records if r.status != "running" or r.started_at is not None}
        if feeds.changed is None:  # fell too far behind the change feed: compare every job
            stored: dict[str, Job] = {}
            async for page in self._store.load_jobs(LOAD_PAGE):
                stored.update((job.job_id, job) for job in page)
            for job_id in set(self._table) | set(stored):
                if self._writes.untouched(job_id, before):
                    self.reconcile(job_id, stored.get(job_id))
        else:
            stored = await self._store.load_jobs_by_id(feeds.changed | ran)
            # In creation order: jobs that another process added are listed here in the order it created them.
            changed = sorted(feeds.changed, key=lambda job_id: (0, stored[job_id].definition.created_at, "")
                             if job_id in stored else (1, None, job_id))
            for job_id in changed:
                if self._writes.untouched(job_id, before):
                    self.reconcile(job_id, stored.get(job_id))
        self._positions = (feeds.change_seq, feeds.run_seq)
        self._refresh_run_jobs(ran, stored, before)
        for record in records:
            if is_run_request(record) and self._engine.runner and self.on_run_request is not None:
                self.on_run_request(record)
                continue
            if record.status == "running" and record.started_at is None:
                continue  # a fire buffered behind a run (overlap policy): announced when it starts
            job = self._table.get(record.job_id)
            if job is not None and not self._engine.runner:
                self._table.seen_run(job, record.started_at, record.status)
            self._events.publish(RunEvent("started" if record.status == "running" else "finished", record, remote=True))
        self.follow_queues()
        self._behind = feeds.more_runs
        self._marks.feeds_read(None if feeds.more_runs else mark)

    def _refresh_run_jobs(self, job_ids: set[str], stored: dict[str, Job], before: Counter[str]) -> None:
        """On a standby: the jobs that another process ran as stored with their runs' records, read after them."""
        for job_id in job_ids:
            job, row = self._table.get(job_id), stored.get(job_id)
            if job is not None and row is not None and self._writes.untouched(job_id, before):
                if row.definition == job.definition:
                    self._table.refreshed(job, row)

    def follow_queues(self) -> None:
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
            self._events.publish(QueueEvent(m.queue_name, m.message_id, m.message, m.level))

    def reconcile(self, job_id: str, stored: Job | None) -> None:
        """Make the job in memory (and in the engine) what another process stored."""
        current, engine = self._table.get(job_id), self._engine.engine
        if stored is None:
            if current is not None:
                self._engine.drop(job_id)
                self._table.removed(job_id)
                self._history.forget(job_id)
                self._runs.forget(job_id)
                self._runs.stop_runs(job_id, CANCELLED_JOB)  # recorded with the next batch
                self._events.publish(JobEvent("removed", job_id, current.definition.owner))
            return
        if current is None:
            self._table.added(stored)
            if engine is not None and stored.state != "completed":
                engine.add_job(engine_job(stored, stored.next_run_time))
            self._events.publish(JobEvent("added", job_id, stored.definition.owner))
            return
        if stored.definition != current.definition:  # updated by another process
            self._table.replaced(current, stored)
            self._engine.put(current)
            self._runs.stop_runs(job_id, UPDATED_JOB)
            self._events.publish(JobEvent("updated", job_id, stored.definition.owner))
            if not self._engine.runner:
                self._table.refreshed(current, stored)
            return
        if stored.state != current.state and {stored.state, current.state} == {"paused", "scheduled"}:
            if stored.state == "paused":
                if engine is not None:
                    engine.pause_job(job_id)
                self._table.paused(current)
                self._events.publish(JobEvent("paused", job_id, current.definition.owner, remote=True))
            else:
                next_run = engine.resume_job(job_id) if engine is not None else stored.next_run_time
                self._table.resumed(current, next_run, may_complete=False)  # as the resuming process stored it
                if self._engine.runner:
                    self._runs.retries.arm(current)
                self._events.publish(JobEvent("resumed", job_id, current.definition.owner))
        if not self._engine.runner:  # the runner owns the bookkeeping; a standby shows what it stored
            self._table.refreshed(current, stored)

    async def lookup(self, job_id: str) -> Job | None:
        """The job, also one another process stored a moment ago (before its change reached this one); None also
        when the acting principal may not see it (another's job: `owners.may_see`), the one check of every read
        and change of a job by id."""
        job = self._table.get(job_id)
        if job is None and self._task is not None:
            stored = await self._store.load_job(job_id)
            if stored is not None:
                self.reconcile(job_id, stored)
                job = self._table.get(job_id)
        return job if job is None or may_see(job) else None

    async def read_through(self, job_id: str) -> Job:
        """The job as stored now (one row), applied to this process's view first: a read right after a change on
        another replica (a cancel, an update, the runner's last run) answers with that change."""
        mark = self._store.read_mark()
        if self._marks.row_current(mark, job_id):  # nothing was written since it was last read
            return await self.find(job_id)
        before = self._writes.snapshot()
        stored = await self._store.load_job(job_id)
        if self._task is not None and self._writes.untouched(job_id, before):
            self.reconcile(job_id, stored)
        job = await self.find(job_id)
        self._marks.row_read(mark, job_id)
        return job

    async def find(self, job_id: str) -> Job:
        job = await self.lookup(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job


def _held_retry(wait: float) -> str:
    """The note of a retry of a run the last runner left interrupted: when it could start, and why."""
    if wait <= 0:
        return "a retry of a run the last runner left interrupted (that runner had stopped: it let go of the lease)"
    return (f"a retry of a run the last runner left interrupted, held {wait:g} s after the takeover until that "
            "runner's runs were known stopped (a runner that loses its lease cancels them within half its lease "
            "time)")
