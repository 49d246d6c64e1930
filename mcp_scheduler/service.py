"""The scheduler service: one object that owns the engine, the SQLite store and the run history.

Both faces (the `scheduler` AgenTool and the MCP server) call this class; it raises typed
errors (`mcp_scheduler.errors`) and returns the models of `mcp_scheduler.models`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import logging
import re
import secrets
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Self, TypeVar
from zoneinfo import ZoneInfo

import anyio
import pydantic_core
from pydantic import BaseModel, TypeAdapter

from agentool_bridge import AgenToolInjector, AgenToolInputError, AgenToolRegistry, get_injector

from ._engine import STATE_RUNNING, Engine, EngineJob
from .errors import (
    InvalidJobInputError,
    JobExecutionError,
    JobExistsError,
    JobNotFoundError,
    SchedulerStateError,
)
from .events import EventBus, JobEvent, QueueEvent, RunEvent
from .lease import FileLease, NullLease, RunnerLease
from .models import (
    ErrorInfo,
    JobInfo,
    RunRecord,
    RunStatus,
    RunTrigger,
    SchedulePreview,
    SchedulerInput,
    SchedulerStatus,
)
from .schedules import Schedule, load_schedule, local_timezone_name, parse_schedule, resolve_timezone
from .store import Bookkeeping, JobRow, SQLiteStore

__all__ = ["ServiceConfig", "SchedulerService"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
_JSON = TypeAdapter(Any)
MAX_RESULT_BYTES = 64 * 1024
MIN_GRACE_SECONDS = 1.0
_STATE_NAMES = {0: "stopped", 1: "running", 2: "paused"}
_LOAD_PAGE = 5000  # jobs read per query on open: the decoded JSON of all rows at once would double peak memory
_QUEUE_LEVEL: contextvars.ContextVar[Literal["info", "error"]] = contextvars.ContextVar(
    "mcp_scheduler_queue_level", default="info"
)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        value = _JSON.dump_python(value, mode="json")
    except Exception:
        value = repr(value)
    text = pydantic_core.to_json(value, fallback=str)
    if len(text) > MAX_RESULT_BYTES:
        return {"truncated": True, "bytes": len(text), "preview": text[:4000].decode(errors="replace")}
    return value


def _settled(outcome: _Outcome) -> _Outcome:
    """The outcome with its result in JSON form (as history, queues and events carry it)."""
    if outcome.status == "success":
        outcome.result = _jsonable(outcome.result)
    return outcome


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of a `SchedulerService`.

    `database`: SQLite file, or None to keep everything in memory. `timezone`: default IANA zone
    of schedules (None: the machine's). `history_limit`: runs kept per job. `flush_delay`: how long
    run records are gathered before one batched write. `start_paused`: open without running jobs.
    `use_lease`: take the runner lease of a database file (one runner per file). `close_timeout`: how long
    `close()` lets runs in progress finish (then they are cancelled and recorded so). `freeze_gc`: once the
    jobs are loaded, move the objects the process holds so far to the garbage collector's permanent
    generation (`gc.freeze()`), so that full collections stop rescanning them; with many jobs those
    scans would otherwise delay fires (1,000 runs due at once finish about a quarter sooner).
    """

    database: str | None = None
    timezone: str | None = None
    history_limit: int = 100
    flush_delay: float = 0.05
    start_paused: bool = False
    use_lease: bool = True
    close_timeout: float = 10.0
    freeze_gc: bool = True


@dataclass(slots=True, eq=False)
class _Job:
    job_id: str
    job_name: str | None
    agentool_name: str
    input_data: dict[str, Any]
    schedule: Schedule
    max_instances: int
    misfire_grace_time: int | None
    coalesce: bool
    timeout: float | None
    result_queue: str | None
    error_queue: str | None
    created_at: str
    state: str = "scheduled"
    next_run: str | None = None
    last_run_at: str | None = None
    last_status: str | None = None

    def definition(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "job_name": self.job_name,
            "agentool_name": self.agentool_name,
            "input_data": self.input_data,
            "schedule": self.schedule.model_dump(mode="json"),
            "max_instances": self.max_instances,
            "misfire_grace_time": self.misfire_grace_time,
            "coalesce": self.coalesce,
            "timeout": self.timeout,
            "result_queue": self.result_queue,
            "error_queue": self.error_queue,
            "created_at": self.created_at,
        }

    @classmethod
    def from_row(cls, row: JobRow) -> _Job:
        d = row.definition
        return cls(
            job_id=row.job_id,
            job_name=d.get("job_name"),
            agentool_name=sys.intern(d["agentool_name"]),
            input_data=d.get("input_data") or {},
            schedule=load_schedule(d["schedule"]),
            max_instances=d.get("max_instances", 1),
            misfire_grace_time=d.get("misfire_grace_time", 30),
            coalesce=d.get("coalesce", True),
            timeout=d.get("timeout"),
            result_queue=d.get("result_queue"),
            error_queue=d.get("error_queue"),
            created_at=d.get("created_at") or _now().isoformat(),
            state=sys.intern(row.state),
            next_run=row.next_run_time,
            last_run_at=row.last_run_at,
            last_status=row.last_status,
        )


@dataclass
class _Outcome:
    status: RunStatus
    result: Any = None
    error: ErrorInfo | None = None
    notes: list[str] = field(default_factory=list)


class SchedulerService:
    """A persistent job scheduler that runs AgenTools: `async with SchedulerService(config) as s: ...`."""

    def __init__(
        self,
        config: ServiceConfig | None = None,
        *,
        injector: AgenToolInjector | None = None,
        bus: EventBus | None = None,
        lease: RunnerLease | None = None,
    ) -> None:
        self.config = config or ServiceConfig()
        self.timezone = self.config.timezone or local_timezone_name()
        resolve_timezone(self.timezone)
        self.injector = injector or get_injector()
        self.events = bus or EventBus()
        if lease is None:
            lease = FileLease(self.config.database) if self.config.database and self.config.use_lease else NullLease()
        self._lease = lease
        self._jobs: dict[str, _Job] = {}
        self._running: Counter[str] = Counter()
        self._manual_runs: set[asyncio.Task[Any]] = set()  # tasks inside run_now, which close() waits for
        self._manual_changed = asyncio.Event()
        self._pending_runs: list[RunRecord] = []
        self._dirty: set[str] = set()
        self._store: SQLiteStore | None = None
        self._engine: Engine | None = None
        self._db_thread: ThreadPoolExecutor | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._flush_needed: asyncio.Event | None = None
        self._flush_lock: asyncio.Lock | None = None
        self._unhook: Callable[[], None] | None = None
        self._opened_at = _now()
        self._closed = False

    # ------------------------------------------------------------------ life cycle

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    async def open(self) -> Self:
        """Take the runner lease, load the jobs from the store and start processing them."""
        if self._engine is not None:
            return self
        self._lease.acquire()
        engine: Engine | None = None
        page: asyncio.Future[list[JobRow]] | None = None
        try:
            self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcp-scheduler-db")
            self._store = await self._db(SQLiteStore, self.config.database)
            self._flush_needed = asyncio.Event()
            self._flush_lock = asyncio.Lock()
            self._opened_at = _now()
            engine = Engine(self._on_due, self._on_skipped, ZoneInfo(self.timezone))
            specs: list[EngineJob] = []
            page = asyncio.ensure_future(self._db(self._store.load_jobs, 0, _LOAD_PAGE))
            while rows := await page:
                # read the next page while this one is turned into jobs
                page = asyncio.ensure_future(self._db(self._store.load_jobs, rows[-1].seq, _LOAD_PAGE))
                for row in rows:
                    try:
                        job = _Job.from_row(row)
                    except Exception as exc:
                        exc.add_note(f"while loading job {row.job_id!r} from {self.config.database}")
                        raise
                    self._jobs[job.job_id] = job
                    if job.state == "completed":
                        continue
                    stored_next = datetime.fromisoformat(row.next_run_time) if row.next_run_time else None
                    paused = job.state == "paused"
                    specs.append(EngineJob(job.job_id, job.schedule, job.max_instances, stored_next, paused))
            engine.load(specs)
        except BaseException:
            # A failed open must not keep the lease, the database or its thread (close() would not see them).
            if page is not None and not page.cancel() and not page.cancelled():
                page.exception()  # a read-ahead that failed too: the error being raised is the one that counts
            self._jobs.clear()
            if engine is not None:
                engine.shutdown()
            if self._store is not None:
                store, self._store = self._store, None
                if self._db_thread is not None:
                    self._db_thread.submit(store.close)  # after a read-ahead still running on that thread
                else:
                    store.close()
            if self._db_thread is not None:
                self._db_thread.shutdown(wait=False)
                self._db_thread = None
            self._lease.release()
            raise
        self._engine = engine
        if self.config.freeze_gc:
            gc.freeze()  # long-lived from here on: modules, loaded jobs; freed objects are still freed
        engine.start(paused=self.config.start_paused)
        self._flusher = asyncio.create_task(self._flush_forever(), name="mcp-scheduler-flush")
        self._hook_queues()
        logger.info(
            "Scheduler open: %d jobs, database %s, time zone %s",
            len(self._jobs),
            self.config.database or "(memory)",
            self.timezone,
        )
        return self

    async def close(self) -> None:
        """Stop processing, record interrupted runs as cancelled, flush history and release the lease."""
        if self._engine is None:
            return
        await self._flush()  # next run times are read from the engine: write them while it is alive
        engine, self._engine = self._engine, None
        tasks = engine.shutdown()
        if tasks:
            await asyncio.wait(tasks, timeout=self.config.close_timeout)
        await self._settle_manual_runs()
        if self._unhook is not None:
            self._unhook()
            self._unhook = None
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        try:
            await self._flush()
            if self._store is not None:
                await self._db(self._store.close)
        finally:
            if self._db_thread is not None:
                self._db_thread.shutdown(wait=True)
                self._db_thread = None
            self._store = None
            self._jobs.clear()
            self._lease.release()

    async def _settle_manual_runs(self) -> None:
        """Let run_now calls in progress finish (their records are written by the last flush).

        Runs still going after `close_timeout` are cancelled: each records itself as cancelled and
        its caller gets CancelledError. A run_now that is closing the service itself is not waited for.
        """
        deadline = time.monotonic() + self.config.close_timeout
        current = asyncio.current_task()
        cancelled = False
        while waiting := {t for t in self._manual_runs if t is not current and not t.done()}:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if cancelled:
                    logger.warning("%d run_now call(s) did not stop after being cancelled", len(waiting))
                    return
                for task in waiting:
                    task.cancel()
                cancelled = True
                deadline = time.monotonic() + 1.0  # time to record themselves as cancelled
                continue
            self._manual_changed.clear()  # set whenever a run_now returns
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._manual_changed.wait(), remaining)

    def _require_open(self) -> tuple[Engine, SQLiteStore]:
        if self._engine is None or self._store is None:
            raise SchedulerStateError("The scheduler is not open: call open() (or use 'async with') first.")
        return self._engine, self._store

    async def _db(self, func: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_thread, func, *args)

    def _hook_queues(self) -> None:
        try:
            from agentool_bridge.toolkits.queue import add_enqueue_hook
        except ImportError:  # pragma: no cover - the queue toolkit ships with the package
            return

        def forward(event: Any) -> None:
            # The hook runs inside our own enqueue call, so the context variable tells which kind it was.
            level = _QUEUE_LEVEL.get()
            self.events.publish(QueueEvent(event.queue_name, event.message_id, event.message, level))

        self._unhook = add_enqueue_hook(forward)

    # ------------------------------------------------------------------ operations

    async def schedule(self, request: SchedulerInput) -> JobInfo:
        """Create a job; validates the schedule, the AgenTool and its input first (nothing is kept on error)."""
        engine, store = self._require_open()
        assert request.schedule_type and request.schedule and request.agentool_name
        schedule = parse_schedule(
            request.schedule_type,
            request.schedule,
            request.timezone,
            misfire_grace_time=request.misfire_grace_time,
            default_timezone=self.timezone,
        )
        input_data = request.input_data or {}
        self.validate_job_input(request.agentool_name, input_data)
        job_id = request.job_id or self._new_job_id(request.job_name or request.agentool_name)
        if job_id in self._jobs:
            raise JobExistsError(job_id)
        job = _Job(
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
            created_at=_now().isoformat(),
        )
        next_run = schedule.next_fire_time(None, _now())
        self._jobs[job_id] = job
        try:
            await self._db(store.insert_job, job_id, job.definition(), job.state, _iso(next_run))
            engine.add_job(job_id, schedule, max_instances=job.max_instances, next_run_time=next_run)
        except BaseException:
            self._jobs.pop(job_id, None)
            engine.remove_job(job_id)
            with contextlib.suppress(Exception):
                await self._db(store.delete_job, job_id)
            raise
        self.events.publish(JobEvent("added", job_id))
        return self._job_info(job, previews=3)

    async def cancel(self, job_id: str) -> JobInfo:
        """Remove a job for good; its history stays readable until pruned."""
        engine, store = self._require_open()
        job = self._get(job_id)
        info = self._job_info(job)
        engine.remove_job(job_id)
        del self._jobs[job_id]
        self._dirty.discard(job_id)
        await self._db(store.delete_job, job_id)
        self.events.publish(JobEvent("removed", job_id))
        return info

    async def pause(self, job_id: str) -> JobInfo:
        """Stop a job from firing until it is resumed (idempotent)."""
        engine, store = self._require_open()
        job = self._get(job_id)
        if job.state == "completed":
            raise SchedulerStateError(f"Job {job_id!r} has completed (a one-time job that ran); nothing to pause.")
        if job.state != "paused":
            engine.pause_job(job_id)
            job.state = "paused"
            await self._db(store.set_state, job_id, "paused", None)
            self.events.publish(JobEvent("paused", job_id))
        return self._job_info(job)

    async def resume(self, job_id: str) -> JobInfo:
        """Let a paused job fire again from its next scheduled time (idempotent)."""
        engine, store = self._require_open()
        job = self._get(job_id)
        if job.state == "completed":
            raise SchedulerStateError(f"Job {job_id!r} has completed (a one-time job that ran); nothing to resume.")
        if job.state == "paused":
            next_run = engine.resume_job(job_id)
            job.state = "scheduled"
            await self._db(store.set_state, job_id, "scheduled", _iso(next_run))
            self.events.publish(JobEvent("resumed", job_id))
        return self._job_info(job, previews=3)

    async def run_now(self, request: SchedulerInput) -> RunRecord:
        """Run a job's AgenTool now (schedule unchanged), or a given AgenTool once; raise if it fails."""
        self._require_open()
        job = self._jobs.get(request.job_id) if request.job_id else None
        if job is not None:
            name, data = job.agentool_name, job.input_data
            timeout, rq, eq = job.timeout, job.result_queue, job.error_queue
            job_id = job.job_id
        else:
            if request.agentool_name is None:
                raise JobNotFoundError(request.job_id or "")
            name, data = request.agentool_name, request.input_data or {}
            timeout, rq, eq = request.timeout, request.result_queue, request.error_queue
            job_id = request.job_id or f"run_now-{uuid.uuid4().hex[:12]}"
            self.validate_job_input(name, data)
        task = asyncio.current_task()
        if task is not None:
            self._manual_runs.add(task)
        try:
            record = await self._execute(job_id, name, data, timeout, rq, eq, "run_now", None)
        finally:
            if task is not None:
                self._manual_runs.discard(task)
                self._manual_changed.set()
        if record.status != "success":
            err = record.error.message if record.error else record.status
            raise JobExecutionError(f"Failed to execute AgenTool {name!r} (job {job_id!r}, run {record.run_id}): {err}")
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

        def matches(job: _Job) -> bool:
            if state is not None and job.state != state:
                return False
            if state is None and not include_completed and job.state == "completed":
                return False
            return agentool_name is None or job.agentool_name == agentool_name

        selected = [j for j in self._jobs.values() if matches(j)]
        end = None if limit is None else offset + limit
        return [self._job_info(j) for j in selected[offset:end]], len(selected)

    def job_ids(self) -> list[str]:
        """Every job id (for completions)."""
        return list(self._jobs)

    async def get_job(self, job_id: str, history: int = 5) -> tuple[JobInfo, list[RunRecord]]:
        """A job with its next fire times and its latest runs."""
        _, store = self._require_open()
        job = self._get(job_id)
        await self._flush()
        recent = await self._db(store.history, job_id, None, history)
        return self._job_info(job, previews=3), recent

    async def get_history(self, job_id: str, status: str | None = None, limit: int = 20) -> list[RunRecord]:
        """A job's runs, newest first (also for cancelled jobs and run_now ids until pruned)."""
        _, store = self._require_open()
        await self._flush()
        records = await self._db(store.history, job_id, status, limit)
        if not records and job_id not in self._jobs and not await self._db(store.has_history, job_id):
            raise JobNotFoundError(job_id)
        return records

    async def start(self) -> SchedulerStatus:
        """Start (or restart) processing jobs."""
        engine, _ = self._require_open()
        engine.start()
        return self.status()

    async def stop(self) -> SchedulerStatus:
        """Stop processing jobs without losing any; runs due while stopped are handled on start."""
        engine, _ = self._require_open()
        engine.pause()
        return self.status()

    def status(self) -> SchedulerStatus:
        """The scheduler's state and counts."""
        engine, _ = self._require_open()
        active = [j for j in self._jobs.values() if j.state != "completed"]
        state = engine.state
        return SchedulerStatus(
            running=state == STATE_RUNNING,
            scheduler_state=state,
            state=_STATE_NAMES.get(state, "stopped"),  # type: ignore[arg-type]
            jobs_count=len(active),
            paused_jobs=sum(1 for j in active if j.state == "paused"),
            runs_in_progress=sum(self._running.values()),
            timezone=self.timezone,
            database=self.config.database,
        )

    @property
    def processing(self) -> bool:
        """True while jobs fire (open and not stopped)."""
        return self._engine is not None and self._engine.state == STATE_RUNNING

    def preview(
        self, schedule_type: str, schedule: str, timezone: str | None = None, count: int = 3
    ) -> SchedulePreview:
        """Describe a schedule and list its next fire times without creating a job."""
        parsed = parse_schedule(schedule_type, schedule, timezone, default_timezone=self.timezone)
        return SchedulePreview(
            schedule_type=parsed.schedule_type,
            schedule=parsed.expression,
            timezone=parsed.timezone,
            description=parsed.description,
            next_runs=[t.isoformat() for t in parsed.next_fire_times(count)],
        )

    def validate_job_input(self, agentool_name: str, input_data: dict[str, Any]) -> None:
        """Check that the AgenTool exists and `input_data` fits its schema (`!ref:` values excepted)."""
        agentool = AgenToolRegistry.get(agentool_name)
        try:
            self.injector.validate(agentool.name, input_data)
        except AgenToolInputError as exc:
            real = [e for e in exc.errors if not _is_ref_error(e, input_data)]
            if real:
                raise InvalidJobInputError(
                    f"input_data does not fit AgenTool {agentool_name!r}: {exc}. "
                    f"Its operations: {', '.join(agentool.operations)}; see its input schema."
                ) from exc

    # ------------------------------------------------------------------ execution

    async def _on_due(self, job_id: str, run_times: list[datetime]) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        if job.schedule.schedule_type == "once" and job.state != "completed":
            job.state = "completed"
            self._dirty.add(job_id)
            self.events.publish(JobEvent("completed", job_id))
        if job.coalesce and len(run_times) > 1:
            for missed in run_times[:-1]:
                self._record_not_run(job, missed, "missed", "coalesced: a later run time replaced it")
            run_times = run_times[-1:]
        for run_time in run_times:
            lateness = (_now() - run_time).total_seconds()
            grace = job.misfire_grace_time
            if grace is not None and lateness > max(float(grace), MIN_GRACE_SECONDS):
                self._record_not_run(
                    job, run_time, "missed", f"due {lateness:.1f} s ago, beyond misfire_grace_time {grace} s"
                )
                continue
            trigger: RunTrigger = "catch_up" if run_time < self._opened_at else "schedule"
            await self._execute(
                job.job_id,
                job.agentool_name,
                job.input_data,
                job.timeout,
                job.result_queue,
                job.error_queue,
                trigger,
                run_time,
            )

    def _on_skipped(self, job_id: str, run_times: list[datetime]) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        for run_time in run_times:
            self._record_not_run(
                job, run_time, "skipped", f"max_instances ({job.max_instances}) runs were still in progress"
            )

    def _record_not_run(self, job: _Job, scheduled: datetime, status: RunStatus, note: str) -> None:
        record = RunRecord(
            run_id=secrets.token_hex(16),
            job_id=job.job_id,
            agentool_name=job.agentool_name,
            trigger="catch_up" if scheduled < self._opened_at else "schedule",
            status=status,
            scheduled_time=scheduled.isoformat(),
            note=note,
        )
        job.last_status = status
        self._record(record)
        self.events.publish(RunEvent("finished", record))

    async def _execute(
        self,
        job_id: str,
        agentool_name: str,
        input_data: dict[str, Any],
        run_timeout: float | None,
        result_queue: str | None,
        error_queue: str | None,
        trigger: RunTrigger,
        scheduled: datetime | None,
    ) -> RunRecord:
        # This path runs once per fire: when a thousand jobs are due at once, each microsecond here
        # makes the last of them start a millisecond later.
        run_id = secrets.token_hex(16)
        started = _now().isoformat()
        job = self._jobs.get(job_id)
        if job is not None:
            job.last_run_at = started
            job.last_status = "running"
        base: dict[str, Any] = {
            "run_id": run_id,
            "job_id": job_id,
            "agentool_name": agentool_name,
            "trigger": trigger,
            "scheduled_time": _iso(scheduled),
            "started_at": started,
        }
        self.events.publish(RunEvent("started", RunRecord(status="running", **base)))
        self._running[job_id] += 1
        t0 = time.perf_counter()
        outcome: _Outcome
        try:
            outcome = await self._call(agentool_name, input_data, run_timeout)
        except asyncio.CancelledError:
            outcome = _Outcome("cancelled", notes=["the scheduler shut down while the run was in progress"])
            self._finish(job_id, base, outcome, t0)
            raise
        finally:
            self._running[job_id] -= 1
            if self._running[job_id] <= 0:
                del self._running[job_id]
        if trigger != "run_now":
            # A run that finished without suspending lets the other runs due now start before its
            # bookkeeping (result queue, history record, events): many jobs due at once then start
            # without waiting behind each other's records. run_now callers wait for the record.
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                self._finish(job_id, base, _settled(outcome), t0)
                raise
        outcome = _settled(outcome)
        await self._send_to_queue(job_id, run_id, agentool_name, outcome, result_queue, error_queue)
        return self._finish(job_id, base, outcome, t0)

    async def _call(self, agentool_name: str, input_data: dict[str, Any], run_timeout: float | None) -> _Outcome:
        try:
            if run_timeout is None:
                result = await self.injector.run(agentool_name, input_data)
            else:
                with anyio.move_on_after(run_timeout) as scope:
                    result = await self.injector.run(agentool_name, input_data)
                if scope.cancelled_caught:
                    return _Outcome(
                        "timeout",
                        error=ErrorInfo(type="TimeoutError", message=f"the run took longer than {run_timeout} s"),
                    )
        except Exception as exc:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]
            return _Outcome("error", error=ErrorInfo(type=type(exc).__name__, message=str(exc), traceback=tb))
        return _Outcome("success", result=result)  # made JSON by _settled, after the run has let others start

    async def _send_to_queue(
        self,
        job_id: str,
        run_id: str,
        agentool_name: str,
        outcome: _Outcome,
        result_queue: str | None,
        error_queue: str | None,
    ) -> None:
        success = outcome.status == "success"
        queue = result_queue if success else error_queue
        if not queue:
            return
        message: dict[str, Any] = {"job_id": job_id, "run_id": run_id, "agentool_name": agentool_name}
        if success:
            message |= {"status": "success", "result": outcome.result}
        else:
            message |= {
                "status": outcome.status,
                "error": outcome.error.message if outcome.error else outcome.status,
                "error_type": outcome.error.type if outcome.error else None,
            }
        message["timestamp"] = _now().isoformat()
        token = _QUEUE_LEVEL.set("info" if success else "error")
        try:
            await self.injector.run("queue", {"operation": "enqueue", "queue_name": queue, "message": message})
        except Exception as exc:
            logger.warning("Job %s: could not send to queue %r: %s", job_id, queue, exc)
            outcome.notes.append(f"could not send to queue {queue!r}: {exc}")
        finally:
            _QUEUE_LEVEL.reset(token)

    def _finish(self, job_id: str, base: dict[str, Any], outcome: _Outcome, t0: float) -> RunRecord:
        record = RunRecord(
            status=outcome.status,
            finished_at=_now().isoformat(),
            duration_ms=round((time.perf_counter() - t0) * 1000, 3),
            result=outcome.result,
            error=outcome.error,
            note="; ".join(outcome.notes) or None,
            **base,
        )
        job = self._jobs.get(job_id)
        if job is not None:
            job.last_status = outcome.status
        self._record(record)
        self.events.publish(RunEvent("finished", record))
        return record

    # ------------------------------------------------------------------ history writes

    def _record(self, record: RunRecord) -> None:
        self._pending_runs.append(record)
        if record.job_id in self._jobs:
            self._dirty.add(record.job_id)
        if self._flush_needed is not None:
            self._flush_needed.set()

    async def _flush_forever(self) -> None:
        assert self._flush_needed is not None
        while True:
            await self._flush_needed.wait()
            await asyncio.sleep(self.config.flush_delay)  # gather a batch: one write for many runs
            try:
                await self._flush()
            except Exception:
                logger.exception("Writing run history failed; will retry with the next batch")

    async def _flush(self) -> None:
        """Write buffered run records and job bookkeeping in one transaction."""
        engine = self._engine
        if self._store is None or self._flush_lock is None:
            return
        async with self._flush_lock:
            if self._flush_needed is not None:
                self._flush_needed.clear()
            runs, self._pending_runs = self._pending_runs, []
            dirty, self._dirty = self._dirty, set()
            books = [
                Bookkeeping(
                    job_id,
                    job.state,
                    self._stored_next_run(job, engine),
                    job.last_run_at,
                    job.last_status,
                )
                for job_id in dirty
                if (job := self._jobs.get(job_id)) is not None
            ]
            if not runs and not books:
                return
            try:
                await self._db(self._store.write_batch, runs, books, self.config.history_limit)
            except BaseException:
                self._pending_runs[:0] = runs
                self._dirty |= dirty
                raise

    # ------------------------------------------------------------------ helpers

    def _stored_next_run(self, job: _Job, engine: Engine | None) -> str | None:
        """The next run time to persist; after shutdown, the last one read from the engine."""
        if engine is not None:
            job.next_run = _iso(engine.next_run_time(job.job_id)) if job.state == "scheduled" else None
        return job.next_run

    def _get(self, job_id: str) -> _Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFoundError(job_id) from None

    def _new_job_id(self, base: str) -> str:
        slug = re.sub(r"[^A-Za-z0-9._:@-]+", "_", base).strip("_.-")[:100] or "job"
        if not slug[0].isalnum():
            slug = f"job{slug}"
        return slug if slug not in self._jobs else f"{slug}-{uuid.uuid4().hex[:8]}"

    def _job_info(self, job: _Job, previews: int = 0) -> JobInfo:
        zone = ZoneInfo(job.schedule.timezone)
        next_run = self._engine.next_run_time(job.job_id) if self._engine and job.state == "scheduled" else None
        next_runs: list[str] = []
        if previews and next_run is not None:
            times = [next_run]
            while len(times) < previews:
                following = job.schedule.next_fire_time(times[-1], times[-1])
                if following is None or following <= times[-1]:
                    break
                times.append(following)
            next_runs = [t.astimezone(zone).isoformat() for t in times]
        return JobInfo(
            job_id=job.job_id,
            job_name=job.job_name,
            agentool_name=job.agentool_name,
            input_data=job.input_data,
            schedule_type=job.schedule.schedule_type,
            schedule=job.schedule.expression,
            timezone=job.schedule.timezone,
            description=job.schedule.description,
            state=job.state,  # type: ignore[arg-type]
            next_run=None if next_run is None else next_run.astimezone(zone).isoformat(),
            next_runs=next_runs,
            max_instances=job.max_instances,
            misfire_grace_time=job.misfire_grace_time,
            coalesce=job.coalesce,
            timeout=job.timeout,
            result_queue=job.result_queue,
            error_queue=job.error_queue,
            created_at=job.created_at,
            last_run_at=job.last_run_at,
            last_status=job.last_status,  # type: ignore[arg-type]
            running=self._running.get(job.job_id, 0),
        )


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
