"""The scheduler service: the job lifecycle (schedule, pause, resume, cancel, run now) over a store.

Both faces (the `scheduler` AgenTool and the MCP server) call it; it raises typed errors (`errors.py`) and returns
`models`. It puts its collaborators together once, here: the job table (the one owner of the jobs in memory), the
engine handle, the run path, the commands, the queries, the extra runs, the hooks and the store's replication.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Self

from agentool_bridge import AgenToolInjector
from agentool_bridge.toolkits import AddressRules, QueueStore

from .._engine import STATE_RUNNING, Engine
from ..clocks import Clock, Clocks, ClockWatch, SystemClock
from ..errors import SchedulerStateError
from ..events import EventBus
from ..history import HistoryWriter
from ..jobs import RunStatus, RunTrigger
from ..lease import NullLease, RunnerLease
from ..models import (
    BackfillOverlap,
    BackfillSummary,
    JobInfo,
    RunRecord,
    SchedulePreview,
    SchedulerInput,
    SchedulerStatus,
)
from ..policies import PolicyInput
from ..runs import RunLimits, RunPath
from ..schedules import local_timezone_name, resolve_timezone
from ..secret_names import allowed_secret_names, warn_about_secrets
from ..store import Bookkeeping, FencedStore, SchedulerStore
from .audit_log import AuditLog
from .commands import JobCommands
from .config import CANCEL_GRACE_SECONDS, SHUT_DOWN, STOPPED_SCHEDULER, ServiceConfig
from .engine import EngineHandle
from .extra_runs import ExtraRuns
from .failures import FailurePause
from .hooks import Hooks
from .inputs import RequestChecks
from .local_writes import LocalWrites
from .queries import JobQueries
from .replication import Replication
from .table import JobTable
from .views import JobViews

__all__ = ["SchedulerService"]

logger = logging.getLogger(__name__)

_RUN_NOW: tuple[RunTrigger, ...] = ("run_now",)


class SchedulerService:
    """A persistent job scheduler that runs AgenTools: `async with service: ...` opens and closes it.

    `address_rules`: the settings of this process's address policy (`ToolkitConfig.address_rules`). Every
    job scheduled or updated here stores them, and its runs obey them in whichever process runs them.
    `clock`: the time the scheduler reads (None: the real one); the engine keeps wall time.
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
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.timezone = config.timezone or local_timezone_name()
        resolve_timezone(self.timezone)
        self.injector = injector
        self.events = events
        # The process's environment by default: `!env:` secrets are the server's own, read when jobs run.
        self.environ: Mapping[str, str] = config.environ if config.environ is not None else os.environ
        self.secret_names = allowed_secret_names(config.secrets)
        clocks = config.clocks or (Clocks.of(clock) if clock is not None else None)
        self.clock = clock = clock or SystemClock()
        self._store = store
        self._lease = lease or NullLease()
        if isinstance(store, FencedStore):
            store.fence_with(self._lease.fencing_token)
        self._table = table = JobTable()
        self._engine = engine = EngineHandle()
        self._writes = writes = LocalWrites()
        self._history = history = HistoryWriter(
            store, self._bookkeeping, history_limit=config.history_limit, flush_delay=config.flush_delay, clock=clock,
            events=events,
        )
        pauser = FailurePause(table=table, engine=engine, store=store, writes=writes, events=events, queues=queues)
        self._runs = runs = RunPath(
            table=table, history=history, events=events, engine=engine, pauser=pauser, injector=injector,
            queues=queues, environ=self.environ, secret_names=self.secret_names,
            limits=RunLimits(config.max_concurrent_runs, config.max_runs_per_job, config.catchup_window),
            claim=self._lease.claim if self._lease.claims_each_fire else None, lease_held=self._lease.is_held,
            watch=ClockWatch(clocks, config.clock_jump), clock=clock,
        )
        self._checks = checks = RequestChecks(
            config, injector=injector, environ=self.environ, secret_names=self.secret_names,
            address_rules=address_rules or AddressRules(),
        )
        self._replication = replication = Replication(
            store=store, lease=self._lease, table=table, engine=engine, runs=runs, history=history, events=events,
            writes=writes, queues=queues, timezone=self.timezone, clock=clock,
        )
        views, self.audit = JobViews(engine, runs.running, config.max_runs_per_job), AuditLog(store, clock)
        self._commands = JobCommands(
            config, timezone=self.timezone, table=table, engine=engine, store=store, writes=writes, history=history,
            runs=runs, events=events, checks=checks, replication=replication, views=views, clock=clock,
            audit=self.audit,
        )
        self._queries = JobQueries(
            timezone=self.timezone, table=table, engine=engine, store=store, lease=self._lease, history=history,
            runs=runs, checks=checks, replication=replication, views=views, clock=clock,
        )
        self._extra = ExtraRuns(table=table, engine=engine, runs=runs, checks=checks, replication=replication,
                                history=history, store=store, history_limit=config.history_limit, queues=queues,
                                per_job=config.max_runs_per_job, clock=clock, audit=self.audit, events=events)
        views.condition_note = self._extra.conditions.note
        self.hooks = Hooks(store=store, replication=replication, extra=self._extra, audit=self.audit, clock=clock)
        replication.on_run_request = self._take_request
        self._open = False
        self._closing = False  # from the start of close() to the next open(): new work is refused as such

    @property
    def address_rules(self) -> AddressRules:
        """What jobs accepted here store of this process's address policy (the http toolkit's settings)."""
        return self._checks.address_rules

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
        return self._engine.runner

    async def open(self) -> Self:
        """Load the jobs from the store and serve them; fire them if this process gets the runner lease
        (otherwise it is a standby that follows the store and takes over when the runner stops)."""
        if self._open:
            return self
        self._closing, replication, extra = False, self._replication, self._extra
        extra.opened()  # first: runs chained after those the last runner left interrupted start as it takes over
        try:
            await self._store.open()
            await replication.join(paused=self.config.start_paused)
        except BaseException:
            # A failed open must not keep the lease or the database (close() would not see them).
            extra.closed()
            self._table.cleared()
            self._runs.retries.stop()
            engine = replication.stop_firing()
            if engine is not None:
                engine.shutdown()
            self._engine.runner = False
            await self._store.close()
            await self._lease.release()
            raise
        self._open = True
        extra.serving()
        warn_about_secrets(self.config.secrets, self.environ)
        self._history.start()
        if self._store.location is not None:
            replication.start()
        logger.info("Scheduler open: %d jobs, database %s, time zone %s, %s", len(self._table),
                    self._store.location or "(memory)", self.timezone,
                    "running them" if self._engine.runner else f"standby (the jobs run in {self._lease.holder()})")
        return self

    async def close(self) -> None:
        """Stop firing, let runs in progress finish for up to `close_timeout` seconds (then cancel them and
        record them as cancelled), write the history and release the store and the lease."""
        if not self._open:
            return
        self._open = False
        self._closing = True
        self._extra.closed()
        await self._replication.stop()
        extra = self._extra
        runs: set[asyncio.Task[Any]] = extra.manual_runs | self._replication.orphaned_runs | extra.backfills
        runs |= self._runs.retries.stop()
        if self._engine.engine is not None:
            self._runs.not_run.close()  # the jobs of not-run counts not written yet: with their next run times
            await self._history.flush_before_close()  # next run times come from the engine: written while it lives
            engine = self._replication.stop_firing()  # from here on, bookkeeping keeps the last next run times
            assert engine is not None
            runs |= engine.shutdown()
        self._runs.admission.cancel_waiting()  # fires that have not started yet: recorded as missed
        runs.discard(asyncio.current_task())  # a run_now that closes the scheduler itself
        await self._settle(runs)
        self._runs.not_run.close()
        try:
            await self._history.stop()
        finally:
            await self._store.close()
            self._table.cleared()
            self._engine.runner = False
            await self._lease.release()

    async def _settle(self, runs: set[asyncio.Task[Any]]) -> None:
        """Wait for `runs` up to `close_timeout`; cancel the rest (each records itself as cancelled). A run_now
        is stopped rather than its caller cancelled, so that the caller answers with the cancelled record."""
        pending = {task for task in runs if not task.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self.config.close_timeout)
        if pending:
            logger.warning("Cancelling %d run(s) still in progress after %s s", len(pending), self.config.close_timeout)
            why = SHUT_DOWN.format(seconds=self.config.close_timeout)
            self._runs.flights.stop(None, why, _RUN_NOW)  # the runs of the pending run_now calls
            for task in pending:
                if not task.cancelling():  # not a run_now stopped just above
                    task.cancel()
            _, pending = await asyncio.wait(pending, timeout=CANCEL_GRACE_SECONDS)
            if pending:
                logger.warning("%d run(s) did not stop after being cancelled", len(pending))

    def _require_open(self) -> None:
        if not self._open:
            if self._closing:
                raise SchedulerStateError(
                    "The scheduler was closed (the server is shutting down): it takes no new work. Try again once "
                    "the server has restarted (runs started before are answered and recorded; get_history shows them)."
                )
            raise SchedulerStateError("The scheduler is not open: call open() (or use 'async with') first.")

    def _require_runner(self) -> Engine:
        self._require_open()
        if self._engine.engine is None:
            raise SchedulerStateError(
                f"This process is a standby: the jobs run in {self._lease.holder()}, which starts and stops them. "
                "Its jobs can be scheduled, paused, resumed and cancelled from here."
            )
        return self._engine.engine

    def _bookkeeping(self, job_ids: Iterable[str]) -> list[Bookkeeping]:
        """The current state of the given jobs, to persist; next run times come from the engine while it runs."""
        books: list[Bookkeeping] = []
        if not self._engine.runner:
            return books
        engine = self._engine.engine
        for job_id in job_ids:
            job = self._table.get(job_id)
            if job is None:
                continue
            if engine is not None:
                self._table.next_run_noted(job, engine.next_run_time(job_id) if job.state == "scheduled" else None)
            books.append(Bookkeeping.of(job))
        return books

    async def schedule(self, request: SchedulerInput, *, managed_by: str | None = None, previews: int = 3) -> JobInfo:
        """Create a job, checking schedule, AgenTool and input first (nothing kept on error); `previews`: next_runs."""
        self._require_open()
        return await self._commands.schedule(request, managed_by=managed_by, previews=previews)

    async def update(
        self, request: SchedulerInput, *, replace: bool = False, managed_by: str | None = None, previews: int = 3
    ) -> JobInfo:
        """Change a job's schedule, AgenTool input, queues or limits (only the fields given); `JobCommands.update`."""
        self._require_open()
        return await self._commands.update(request, replace=replace, managed_by=managed_by, previews=previews)

    async def cancel(self, job_id: str, *, managed_by: str | None = None) -> JobInfo:
        """Remove a job for good; its history stays readable until pruned."""
        self._require_open()
        return await self._commands.cancel(job_id, managed_by=managed_by)

    async def pause(self, job_id: str) -> JobInfo:
        """Stop a job from firing until it is resumed (idempotent)."""
        self._require_open()
        return await self._commands.pause(job_id)

    async def resume(self, job_id: str) -> JobInfo:
        """Let a paused job fire again from its next scheduled time (idempotent)."""
        self._require_open()
        return await self._commands.resume(job_id)

    async def run_now(self, request: SchedulerInput, *, run_id: str | None = None) -> RunRecord:
        """Run a job's AgenTool now (schedule unchanged), or a given AgenTool once; raise if it fails. `run_id`:
        the id of its record (drawn when None)."""
        self._require_open()
        return await self._extra.run_now(request, run_id=run_id)

    def stop_run(self, run_id: str, reason: str) -> bool:
        """Stop the run `run_id` if in progress here (recorded `cancelled`: "<reason> while ..."); else False."""
        return bool(self._runs.flights.stop_run(run_id, reason))

    def runs_in_flight(self) -> set[str]:
        return self._runs.flights.run_ids()  # the run ids of the runs in progress in this process

    async def backfill(
        self,
        job_id: str,
        since: str | datetime,
        until: str | datetime | None = None,
        overlap: BackfillOverlap = "buffer_all",
        *,
        wait: bool = False,
    ) -> BackfillSummary:
        """Run a job once per fire time of its schedule in [since, until] (the runner only; `ExtraRuns.backfill`)."""
        self._require_runner()
        return await self._extra.backfill(job_id, since, until, overlap, wait=wait)

    async def check_job_input(self, agentool_name: str, input_data: dict[str, Any]) -> list[str]:
        """Check that the AgenTool exists, every `!env:NAME` is an allowed secret that is set and `input_data` fits
        the AgenTool's schema (see `RequestChecks.check_job_input`); return the warnings of its check."""
        return await self._checks.check_job_input(agentool_name, input_data)

    async def start(self) -> SchedulerStatus:
        """Start (or restart) processing jobs."""
        self._require_runner().start()
        self._runs.retries.hold = False
        self._runs.retries.arm_all()
        await self._lease.note_stopped(None)
        await self.audit.record("start_scheduler")
        return self.status()

    async def stop(self) -> SchedulerStatus:
        """Stop processing jobs without losing any: runs in progress are stopped (recorded `cancelled`), fires
        waiting for a slot or behind a run are recorded `missed`, backfills end; fires due while stopped are
        handled on start (by each job's catch-up policy), and pending retries wait for it."""
        self._require_runner().pause()
        await self._lease.note_stopped(self.clock.now())  # the standbys' scheduler_status and `status` tell it
        self._runs.retries.hold = True
        self._runs.retries.stop()  # pending retries wait for the start too
        self._extra.stopped()
        self._runs.admission.cancel_waiting(f"{STOPPED_SCHEDULER} before this fire could run")
        await self._commands.stop_runs(None, STOPPED_SCHEDULER)
        await self.audit.record("stop_scheduler")
        return self.status()

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
        return self._queries.list_jobs(state=state, agentool_name=agentool_name, offset=offset, limit=limit,
                                       include_completed=include_completed)

    async def catch_up(self) -> datetime | None:
        """Apply what other processes on the store wrote until now; call before `list_jobs`. None, or if the store
        is out of reach when the jobs in memory last matched it (`Replication.catch_up`)."""
        return await self._replication.catch_up()

    def job_ids(self) -> list[str]:
        return self._queries.job_ids()  # every job id (for completions)

    def job_name(self, job_id: str) -> str | None:
        return self._queries.job_name(job_id)  # the job's name, whoever owns it (None: no name, or no such job)

    def job_owner(self, job_id: str) -> str | None:
        return self._queries.job_owner(job_id)  # who created it (None: nobody, or no such job: the admins')

    async def job_kind(self, job_id: str) -> str | None:
        """The kind of the job `job_id` as the acting principal may see it; None when there is no such job, it is
        another's (it answers "not found"), or the scheduler is not open. What a call about a stored job needs
        beyond its tool's scope is read from it (`server/tooling.py`, `stored_kind_needs`)."""
        if not self.is_open:
            return None
        job = await self._replication.lookup(job_id)
        return None if job is None else job.definition.agentool_name

    async def get_job(self, job_id: str, history: int = 5) -> tuple[JobInfo, list[RunRecord]]:
        """A job with its next fire times and its latest runs."""
        self._require_open()
        return await self._queries.get_job(job_id, history)

    async def get_history(
        self,
        job_id: str | None = None,
        status: RunStatus | None = None,
        limit: int = 20,
        *,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        agentool_name: str | None = None,
        run_id: str | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first: one job's, or with no `job_id` those of every job (see `JobQueries.get_history`)."""
        self._require_open()
        return await self._queries.get_history(job_id, status, limit, since=since, until=until,
                                               agentool_name=agentool_name, run_id=run_id)

    def status(self) -> SchedulerStatus:
        """The scheduler's state and counts."""
        self._require_open()
        return self._queries.status()

    def preview(
        self,
        schedule_type: str,
        schedule: str,
        timezone: str | None = None,
        count: int = 3,
        policy: PolicyInput | None = None,
    ) -> SchedulePreview:
        """Describe a schedule and list its next fire times without creating a job (see `JobQueries.preview`)."""
        return self._queries.preview(schedule_type, schedule, timezone, count, policy)

    def _take_request(self, request: RunRecord) -> None:
        """Run what another process asked for through the store, while this runner processes jobs (one opened
        paused, a command's for a moment, or stopped leaves it to the runner that processes them)."""
        if self.processing:
            self._extra.take_request(request)
        else:
            logger.info("Job %s: a run asked for by another process is left to a runner that processes jobs "
                        "(this one is paused or stopped)", request.job_id)

    def has_active_work(self) -> bool:
        """True while a job is scheduled (not paused), a retry is pending or a run is in progress: what keeps a
        background runner running."""
        return bool(self._runs.running or self._extra.manual_runs or self._extra.backfills) or any(
            job.state == "scheduled" or job.retry is not None for job in self._table.jobs())

    @property
    def processing(self) -> bool:
        """True while jobs fire (open and not stopped)."""
        engine = self._engine.engine
        return engine is not None and engine.state == STATE_RUNNING
