"""The commands that change jobs: schedule, update, cancel, pause and resume.

Each checks its request first (nothing changes on error), commits the change to the store with its audit entry (one
transaction: both or neither), changes the job in memory (through the job table) and in the engine, and publishes a
`JobEvent`. Cancel, pause and resume change memory and engine first (no fire slips in while the store writes): if the
write fails, that change is undone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from agentool_bridge.redaction import scrub

from ..clocks import Clock
from ..errors import InvalidJobInputError, JobExistsError, SchedulerStateError
from ..events import EventBus, JobEvent
from ..history import HistoryWriter
from ..jobs import Job, JobDefinition
from ..models import JobInfo, SchedulerInput
from ..owners import may_see, owner_fields, principal_quota
from ..policies import RunPolicy
from ..principals import require_kind
from ..queue_owners import check_queues
from ..runs import RunPath
from ..schedules import Schedule, parse_schedule
from ..schedules.zones import zone_warning
from ..store import SchedulerStore
from ..success import check_fits
from ..tracing import current_traceparent
from .audit_log import AuditLog
from .chains import check_after
from .conditions import check_when
from .config import CANCEL_GRACE_SECONDS, CANCELLED_JOB, UPDATED_JOB, ServiceConfig
from .engine import EngineHandle, engine_job
from .inputs import UPDATABLE, RequestChecks, first_fire, policy_of
from .local_writes import LocalWrites
from .managed import managed_warnings
from .queue_trigger import check_on_message
from .replication import Replication
from .table import JobTable
from .views import JobViews

__all__ = ["JobCommands"]

logger = logging.getLogger(__name__)


class JobCommands:
    """Schedule, update, cancel, pause and resume jobs (the service checks that it is open first)."""

    def __init__(
        self,
        config: ServiceConfig,
        *,
        timezone: str,
        table: JobTable,
        engine: EngineHandle,
        store: SchedulerStore,
        writes: LocalWrites,
        history: HistoryWriter,
        runs: RunPath,
        events: EventBus,
        checks: RequestChecks,
        replication: Replication,
        views: JobViews,
        clock: Clock,
        audit: AuditLog,
    ) -> None:
        self._config = config
        self._timezone = timezone
        self._table = table
        self._engine = engine
        self._store = store
        self._writes = writes
        self._history = history
        self._runs = runs
        self._events = events
        self._checks = checks
        self._replication = replication
        self._views = views
        self._clock = clock
        self._audit = audit

    async def schedule(self, request: SchedulerInput, *, managed_by: str | None = None, previews: int = 3) -> JobInfo:
        """Create a job; validates the schedule, the AgenTool and its input first (nothing is kept on error).

        `managed_by`: the jobs file that asks (`mcp-scheduler apply`), stored with the job. `previews`: how many next
        run times the answer lists (`next_runs`; 0 for a caller that shows only the next).
        """
        assert request.schedule_type and request.schedule and request.agentool_name
        require_kind(request.agentool_name, "a job")
        now = self._clock.now()
        schedule = parse_schedule(
            request.schedule_type,
            request.schedule,
            request.timezone,
            now=now,
            misfire_grace_time=request.misfire_grace_time,
            default_timezone=self._timezone,
        )
        self._checks.check_spacing(schedule)
        self._checks.check_instances(request.max_instances)
        # Scheduled from inside a run (a job of the `scheduler` AgenTool), a secret the run resolved is stored as
        # its reference again, and resolved when this job runs.
        input_data = scrub(request.input_data or {})
        warnings = _zone_warnings(schedule) + await self._checks.check_job_input(request.agentool_name, input_data)
        policy = policy_of(request.policy, RunPolicy(), schedule.timezone)
        success = check_fits(request.success, request.agentool_name)
        job_id = request.job_id or self._new_job_id(request.job_name or request.agentool_name)
        if request.job_id and (existing := self._table.get(job_id)) is not None:
            return await self._exists(request, existing, managed_by, previews)
        principal_quota(self._table.jobs(), self._config.max_jobs_per_principal)
        await check_after(job_id, policy, self._replication.lookup)
        policy, said = await check_when(policy, self._checks)
        warnings += said
        check_on_message(job_id, policy, self._table.jobs(), owner_fields()["owner"])
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
            success=success,
            created_at=now,
            address_policy=self._checks.accepted_rules(),
            traceparent=current_traceparent(),
            managed_by=managed_by,
            **owner_fields(),
        )
        check_queues(definition)
        job = Job(definition, next_run_time=first_fire(definition, now))
        audit = self._audit.entry("create", job_id, **_given(request, request.model_fields_set), managed_by=managed_by)
        if job.next_run_time is None and (policy.start_at is not None or policy.end_at is not None):
            raise InvalidJobInputError(
                f"Job {job_id!r} would never run: its schedule has no fire time between policy.start_at and "
                "policy.end_at from now on. Move end_at later (or start_at earlier)."
            )
        self._table.added(job)
        try:
            async with self._writes.write(job_id):
                await self._store.insert_jobs([job], max_jobs=self._config.max_jobs, audit=audit)
            self._table.added(job)  # again: a takeover during the insert reloads the jobs
            engine = self._engine.engine  # read after the insert, for the same reason
            if engine is not None and not engine.has_job(job_id):
                engine.add_job(engine_job(job, job.next_run_time))
        except JobExistsError:
            # Another process stored this id first (this one had not heard of it yet): its job stays.
            if self._table.get(job_id) is job:
                self._table.removed(job_id)
            existing = await self._replication.lookup(job_id) if request.job_id else None
            if existing is None:
                raise
            return await self._exists(request, existing, managed_by, previews)
        except BaseException:
            self._table.removed(job_id)
            self._engine.drop(job_id)
            with contextlib.suppress(Exception):
                await self._store.delete_job(job_id)
            raise
        self._events.publish(JobEvent("added", job_id, job.definition.owner))
        return self._views.info(job, previews, warnings)

    async def _exists(self, request: SchedulerInput, existing: Job, managed_by: str | None, previews: int) -> JobInfo:
        """schedule_job of an id taken: keep the job, refuse, or replace it, as `if_exists` says (another
        principal's job is "taken", whatever it says)."""
        if not may_see(existing):
            raise JobExistsError(existing.job_id, hidden=True)
        if request.if_exists == "keep":
            return self._views.info(existing, previews)
        if request.if_exists == "error":
            raise JobExistsError(existing.job_id)
        return await self.update(request.model_copy(update={"operation": "update"}), replace=True,
                                 managed_by=managed_by, previews=previews)

    async def update(
        self, request: SchedulerInput, *, replace: bool = False, managed_by: str | None = None, previews: int = 3
    ) -> JobInfo:
        """Change a job's schedule, AgenTool input, queues or limits; only the fields given change.

        The job keeps its id, state (a paused job stays paused) and history. A new schedule fires from
        its next time after now; a one-time job that has run becomes scheduled again with a new schedule.
        Everything is checked first (as for schedule): on error nothing changes. `managed_by`: the jobs file that
        asks, which then manages the job (alone, it adopts the job); others changing a managed job are warned.
        """
        job = await self._replication.find(request.job_id or "")
        # replace (schedule_job with if_exists='replace'): every field is the request's, defaults included.
        given = set(UPDATABLE) if replace else request.model_fields_set & set(UPDATABLE)
        adopt = managed_by is not None and managed_by != job.definition.managed_by
        if not given and not adopt:
            raise InvalidJobInputError(
                f"Nothing to change in job {job.job_id!r}: give at least one of {', '.join(UPDATABLE)}."
            )
        current = job.definition
        warnings = managed_warnings(job, "updated", by=managed_by, protect=self._config.protect_managed_jobs)
        changes: dict[str, Any] = {name: getattr(request, name) for name in given & set(UPDATABLE[4:])}
        if managed_by is not None:
            changes["managed_by"] = managed_by
        if given & {"schedule_type", "schedule", "timezone"}:
            if "schedule_type" in given and "schedule" not in given:
                raise InvalidJobInputError(
                    f"schedule_type changes what schedule means: give the new schedule with it (job {job.job_id!r})."
                )
            changes["schedule"] = parse_schedule(
                request.schedule_type or current.schedule.schedule_type,
                request.schedule or current.schedule.expression,
                request.timezone if "timezone" in given else current.schedule.timezone,
                now=self._clock.now(),
                misfire_grace_time=changes.get("misfire_grace_time", current.misfire_grace_time),
                default_timezone=self._timezone,
            )
            self._checks.check_spacing(changes["schedule"])
            warnings += _zone_warnings(changes["schedule"])
        if "max_instances" in given:
            self._checks.check_instances(request.max_instances)
        if "policy" in given:
            base = RunPolicy() if replace else current.policy
            zone = changes["schedule"].timezone if "schedule" in changes else current.schedule.timezone
            changes["policy"] = policy_of(request.policy, base, zone)
            await check_after(job.job_id, changes["policy"], self._replication.lookup)
            changes["policy"], said = await check_when(changes["policy"], self._checks)
            warnings += said
            check_on_message(job.job_id, changes["policy"], self._table.jobs(), current.owner)
        agentool_name = changes.get("agentool_name", current.agentool_name)
        changes["success"] = check_fits(changes.get("success", current.success), agentool_name)
        require_kind(current.agentool_name, "changing a job")
        require_kind(agentool_name, "changing a job")
        if "agentool_name" in changes or "input_data" in changes:
            changes.setdefault("input_data", current.input_data)
            if changes["input_data"] is None:
                raise InvalidJobInputError("input_data cannot be null: give the AgenTool's input as an object.")
            changes["input_data"] = scrub(changes["input_data"])
            warnings += await self._checks.check_job_input(agentool_name, changes["input_data"])
        changes["address_policy"] = rules = self._checks.accepted_rules()
        if rules.exposed and rules != current.address_policy and "input_data" not in changes:
            # The job now obeys this process's policy: what it reaches must pass it (nothing changes if not).
            warnings += await self._checks.check_job_input(agentool_name, current.input_data)
        definition = JobDefinition(**{**dict(current), **changes})
        check_queues(definition)
        state, next_run = job.state, job.next_run_time
        if self._engine.engine is not None and state == "scheduled":
            next_run = self._engine.engine.next_run_time(job.job_id)
        bounds = ("start_at", "end_at")
        rebound = [getattr(definition.policy, n) for n in bounds] != [getattr(current.policy, n) for n in bounds]
        if "schedule" in changes or rebound:
            state = "paused" if state == "paused" else "scheduled"
            next_run = None if state == "paused" else first_fire(definition, self._clock.now())
            if state == "scheduled" and next_run is None and definition.policy.end_at is not None:
                state = "completed"  # its new end_at is past: the job finishes, as one that ran to its end
        updated = Job(definition, state, next_run, job.last_run_at, job.last_status)
        audit = self._audit.entry("update", job.job_id, **_given(request, given), managed_by=managed_by)
        async with self._writes.write(job.job_id):
            await self._store.update_job(updated, audit=audit)
        self._table.replaced(job, updated)
        self._engine.put(job)
        await self.stop_runs(job.job_id, UPDATED_JOB)  # what they run is not the job any more
        self._events.publish(JobEvent("updated", job.job_id, job.definition.owner))
        return self._views.info(job, previews, warnings)

    async def cancel(self, job_id: str, *, managed_by: str | None = None) -> JobInfo:
        """Remove a job for good; its history stays readable until pruned. `managed_by`: the jobs file that asks."""
        job = await self._replication.find(job_id)
        warnings = managed_warnings(job, "cancelled", by=managed_by, protect=self._config.protect_managed_jobs)
        audit, before = self._audit.entry("cancel", job_id, managed_by=managed_by), dataclasses.replace(job)
        self._engine.remove_job(job_id)
        self._table.removed(job_id)
        async with self._undone_on_error(job, before):
            await self._store.delete_job(job_id, audit=audit)
        self._history.forget(job_id)
        self._runs.forget(job_id)  # a pending retry is dropped with the job
        await self.stop_runs(job_id, CANCELLED_JOB)
        self._events.publish(JobEvent("removed", job_id, job.definition.owner))
        return self._views.cancelled(job).model_copy(update={"warnings": warnings})

    async def stop_runs(self, job_id: str | None, reason: str) -> None:
        """Stop the runs in flight in this process of a job (None: of every job) and return once their records
        (`cancelled`, "<reason> while this run was in progress") are committed. A run that does not stop
        within CANCEL_GRACE_SECONDS is left going, with a warning."""
        waits = self._runs.stop_runs(job_id, reason)
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=CANCEL_GRACE_SECONDS)
        if pending:
            logger.warning("%d run(s) of %s did not stop within %s s of being cancelled (%s)", len(pending),
                           f"job {job_id}" if job_id else "the scheduler", CANCEL_GRACE_SECONDS, reason)
        await self._history.commit()

    async def pause(self, job_id: str) -> JobInfo:
        """Stop a job from firing until it is resumed (idempotent)."""
        job = await self._replication.find(job_id)
        if job.state == "completed":
            raise SchedulerStateError(f"Job {job_id!r} has completed (a one-time job that ran); nothing to pause.")
        warnings: list[str] = []
        changed = job.state != "paused"
        if changed:
            warnings = managed_warnings(job, "paused", by=None, protect=self._config.protect_managed_jobs)
            audit, before = self._audit.entry("pause", job_id), dataclasses.replace(job)
            if self._engine.engine is not None:
                self._engine.engine.pause_job(job_id)
            self._table.paused(job)
            async with self._undone_on_error(job, before):
                await self._store.set_state(job_id, "paused", None, audit=audit)
            self._events.publish(JobEvent("paused", job_id, job.definition.owner))
        return self._views.info(job, 0, warnings)

    async def resume(self, job_id: str) -> JobInfo:
        """Let a paused job fire again from its next scheduled time (idempotent)."""
        job = await self._replication.find(job_id)
        if job.state == "completed":
            raise SchedulerStateError(
                f"Job {job_id!r} has completed (a one-time job that ran, or one past its end_at); nothing to resume."
            )
        require_kind(job.definition.agentool_name, "resuming a job")  # it runs again: as run_now, the kind's scope
        warnings: list[str] = []
        changed = job.state == "paused"
        if changed:
            warnings = managed_warnings(job, "resumed", by=None, protect=self._config.protect_managed_jobs)
            if not self._engine.runner and (stored := await self._store.load_job(job_id)) is not None:
                self._table.progress_copied(job, stored)  # the runner keeps them: its count of runs, its pending retry
            audit, before = self._audit.entry("resume", job_id), dataclasses.replace(job)
            if self._engine.engine is not None:
                next_run = self._engine.engine.resume_job(job_id)
            else:
                next_run = first_fire(job.definition, self._clock.now())
            self._table.resumed(job, next_run)  # completed if resumed after its end_at: nothing left to run
            async with self._undone_on_error(job, before):
                await self._store.set_state(
                    job_id, job.state, job.next_run_time, job.progress_json() or "{}", audit=audit
                )
            if self._engine.runner and job.state == "scheduled":
                self._runs.retries.arm(job)  # a retry that waited for the resume
            self._events.publish(JobEvent("resumed" if job.state == "scheduled" else "completed", job_id,
                                          job.definition.owner))
        return self._views.info(job, 3, warnings)

    @contextlib.asynccontextmanager
    async def _undone_on_error(self, job: Job, before: Job) -> AsyncIterator[None]:
        """The store write of a change made to `job` in memory and in the engine already; if it fails (nothing was
        stored, its audit entry neither), the job is `before` again there."""
        try:
            async with self._writes.write(job.job_id):
                yield
        except BaseException:
            self._table.restored(job, before)
            self._engine.put(job)
            if self._engine.runner:
                self._runs.retries.arm(job)
            raise

    def _new_job_id(self, base: str) -> str:
        slug = re.sub(r"[^A-Za-z0-9._:@-]+", "_", base).strip("_.-")[:100] or "job"
        if not slug[0].isalnum():
            slug = f"job{slug}"
        return slug if slug not in self._table else f"{slug}-{uuid.uuid4().hex[:8]}"


def _zone_warnings(schedule: Schedule) -> list[str]:
    """What to know about the zone a schedule is read in (a fixed offset without daylight saving time)."""
    warning = zone_warning(schedule.zone)
    return [] if warning is None else [warning]


def _given(request: SchedulerInput, names: set[str]) -> dict[str, Any]:
    """The fields of a job that `request` gave (those of `names`), as the audit log keeps them."""
    return {name: getattr(request, name) for name in UPDATABLE if name in names}
