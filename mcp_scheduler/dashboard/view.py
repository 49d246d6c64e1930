"""One view of the schedule, derived from what the scheduler already answers: its jobs with their next runs, the
runs of the last hours with their outcome and summary, the failures among them, the paused jobs and why, the
pending retries, which process runs the jobs, and the latest changes of the audit log. The dashboard page, its JSON
API and `show_schedule` show it."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field, WithJsonSchema

from agentool_bridge.errors import clip_text
from agentool_bridge.untrusted import clip_content

from ..audit import AuditEntry, AuditOperation
from ..jobs import FAILED, JobState, RunStatus, RunTrigger
from ..models import JobInfo, RunRecord, SchedulerStatus
from ..timestamps import Timestamp

if TYPE_CHECKING:
    from ..runtime import SchedulerRuntime

__all__ = [
    "MAX_CHANGES",
    "MAX_JOBS",
    "MAX_RUNS",
    "WINDOW_HOURS",
    "ChangeRow",
    "JobRow",
    "RunRow",
    "RunnerRow",
    "ScheduleView",
    "read_schedule",
    "change_row",
    "run_row",
    "schedule_view",
]

WINDOW_HOURS = 24
"""Hours of runs the view shows."""

MAX_RUNS = 500
"""Most runs of the window the view holds (the newest); `runs_left_out` says when there were more."""

MAX_JOBS = 500
"""Most jobs the view holds (in creation order); `jobs_total` counts them all."""

MAX_CHANGES = 20
"""Most entries of the audit log the view holds (the latest)."""

SUMMARY_CHARS = 200
"""Most characters of a run's summary or error in the view (the run view has them whole)."""

_SUMMARY = Annotated[str | dict[str, Any] | None, WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "object"}]})]


class JobRow(BaseModel):
    """A job as the dashboard lists it."""

    job_id: str
    job_name: str | None = None
    kind: str = Field(description="The job kind (agentool_name).")
    schedule: str = Field(description="The schedule in words.")
    timezone: str
    state: JobState
    next_run: Timestamp | None = None
    last_status: RunStatus | None = None
    last_run_at: Timestamp | None = None
    running: int = 0
    pause_reason: str | None = None
    retry_at: Timestamp | None = Field(default=None, description="When a pending retry of a failed run is due.")
    after: str | None = Field(default=None, description="The job it is chained after, with the outcome it waits for.")

    @property
    def name(self) -> str:
        """The job's name, else its id."""
        return self.job_name or self.job_id


class RunRow(BaseModel):
    """A run in brief: when, how long, how it ended, and in a few words what it did or why it failed."""

    run_id: str
    job_id: str
    job_name: str | None = None
    trigger: RunTrigger
    status: RunStatus
    scheduled_time: Timestamp | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    duration_ms: float | None = None
    summary: _SUMMARY = Field(default=None, description="What it did (labelled when it quotes outside content).")
    error: str | None = Field(default=None, description="Error type and message, cut short.")
    note: str | None = None
    attempt: int | None = None

    @property
    def at(self) -> datetime | None:
        """When it ran (started), else when it was due."""
        return self.started_at or self.scheduled_time


class ChangeRow(BaseModel):
    """An entry of the audit log in brief: who changed what, when, of which job."""

    seq: int | None = None
    at: Timestamp
    subject: str = Field(description="Who: the token's subject (`local` for the operator).")
    client: str | None = None
    operation: AuditOperation
    job_id: str | None = Field(default=None, description="The job changed (None for the scheduler itself).")
    job_name: str | None = None
    fields: list[str] = Field(default_factory=list, description="The names of the fields the change gave.")


def change_row(entry: AuditEntry, names: dict[str, str | None] | None = None) -> ChangeRow:
    """`entry` in brief (the names of its fields, not their values); `names` gives job names by id."""
    return ChangeRow(
        seq=entry.seq,
        at=entry.at,
        subject=entry.subject,
        client=entry.client,
        operation=entry.operation,
        job_id=entry.job_id,
        job_name=None if entry.job_id is None else (names or {}).get(entry.job_id),
        fields=sorted(entry.fields),
    )


class RunnerRow(BaseModel):
    """Which process runs the jobs."""

    state: str = Field(description="running, stopped or paused (the runner's).")
    role: str = Field(description="runner: the process serving this view fires the jobs; standby: another does.")
    who: str = Field(description="The process that fires the jobs, in words.")
    background_pid: int | None = Field(default=None, description="The store's background runner, if one runs.")
    runs_in_progress: int = 0


class ScheduleView(BaseModel):
    """The schedule at a glance."""

    generated_at: Timestamp
    timezone: str = Field(description="The scheduler's default time zone.")
    window_start: Timestamp = Field(description="The runs shown are those since this time.")
    runner: RunnerRow
    jobs: list[JobRow] = Field(
        description="Scheduled and paused jobs, and completed ones with a retry to come; soonest next run first."
    )
    jobs_total: int
    runs: list[RunRow] = Field(description="Runs of the window, newest first.")
    runs_left_out: bool = Field(default=False, description="True when the window held more runs than shown.")
    outcomes: dict[str, int] = Field(description="Runs of the window per status.")
    failures: list[RunRow] = Field(description="The failed runs of the window (error, timeout, interrupted).")
    paused: list[JobRow] = Field(description="Paused jobs, with why when they paused themselves.")
    retries: list[JobRow] = Field(description="Jobs with a retry of a failed run pending.")
    changes: list[ChangeRow] = Field(
        default_factory=list,
        description="The latest entries of the audit log, newest first: every principal's for an admin, else the "
        "caller's own.",
    )


def _summary(record: RunRecord) -> str | dict[str, Any] | None:
    summary = record.summary
    if isinstance(summary, dict):
        return clip_content(summary, SUMMARY_CHARS)
    return summary


def run_row(record: RunRecord, names: dict[str, str | None] | None = None) -> RunRow:
    """`record` in brief; `names` gives job names by id."""
    error = record.error
    return RunRow(
        run_id=record.run_id,
        job_id=record.job_id,
        job_name=(names or {}).get(record.job_id),
        trigger=record.trigger,
        status=record.status,
        scheduled_time=record.scheduled_time,
        started_at=record.started_at,
        finished_at=record.finished_at,
        duration_ms=record.duration_ms,
        summary=_summary(record),
        note=None if record.note is None else clip_text(record.note, SUMMARY_CHARS),
        error=None if error is None else clip_text(f"{error.type}: {error.message}", SUMMARY_CHARS),
        attempt=record.attempt,
    )


def _after(job: JobInfo, names: dict[str, str | None]) -> str | None:
    """`policy.after` in words: "Fetch (success)" (the job's name, else its id)."""
    after = job.policy.after
    return None if after is None else f"{names.get(after.job) or after.job} ({after.on})"


def _job_row(job: JobInfo, names: dict[str, str | None]) -> JobRow:
    return JobRow(
        job_id=job.job_id,
        job_name=job.job_name,
        kind=job.agentool_name,
        schedule=job.description,
        timezone=job.timezone,
        state=job.state,
        next_run=job.next_run,
        last_status=job.last_status,
        last_run_at=job.last_run_at,
        running=job.running,
        pause_reason=job.pause_reason,
        retry_at=job.retry_at,
        after=_after(job, names),
    )


def _runner_row(status: SchedulerStatus) -> RunnerRow:
    background = status.background_runner
    if status.role == "runner":
        who = "this process"
        if background is not None and background.pid is not None:
            who += f" (the background runner, pid {background.pid})"
    else:
        who = status.runner or "another process"
    return RunnerRow(
        state=status.state,
        role=status.role,
        who=who,
        background_pid=None if background is None else background.pid,
        runs_in_progress=status.runs_in_progress,
    )


def _soonest_first(row: JobRow) -> tuple[int, float, str]:
    return (row.next_run is None, row.next_run.timestamp() if row.next_run else 0.0, row.job_id)


def schedule_view(
    jobs: list[JobInfo],
    jobs_total: int,
    runs: list[RunRecord],
    status: SchedulerStatus,
    *,
    now: datetime,
    window_start: datetime,
    runs_left_out: bool = False,
    changes: list[AuditEntry] | None = None,
) -> ScheduleView:
    """The view of `jobs` (of `jobs_total`), the window's `runs` (newest first), `status` and the latest `changes`
    of the audit log (newest first), at `now`."""
    names = {job.job_id: job.job_name for job in jobs}
    rows = sorted((_job_row(job, names) for job in jobs), key=_soonest_first)
    run_rows = [run_row(record, names) for record in runs]
    return ScheduleView(
        generated_at=now,
        timezone=status.timezone,
        window_start=window_start,
        runner=_runner_row(status),
        jobs=rows,
        jobs_total=jobs_total,
        runs=run_rows,
        runs_left_out=runs_left_out,
        outcomes=dict(Counter(row.status for row in run_rows)),
        failures=[row for row in run_rows if row.status in FAILED],
        paused=[row for row in rows if row.state == "paused"],
        retries=sorted((row for row in rows if row.retry_at is not None), key=lambda row: row.retry_at or now),
        changes=[change_row(entry, names) for entry in changes or []],
    )


async def read_schedule(runtime: SchedulerRuntime, *, hours: int = WINDOW_HOURS) -> ScheduleView:
    """The view of `runtime`'s scheduler now, read through the store (what another process changed included), as
    the acting principal may see it (its own jobs, runs and changes unless it is an admin)."""
    service = runtime.service
    await service.catch_up()
    now = service.clock.now()
    window_start = now - timedelta(hours=hours)
    jobs, total = service.list_jobs(limit=MAX_JOBS)
    # A one-time job whose fire failed is completed, and still has its retry to come.
    retrying = [job for job in service.list_jobs(state="completed")[0] if job.retry_at is not None]
    jobs += retrying[: MAX_JOBS - len(jobs)]
    total += len(retrying)
    runs = await service.get_history(None, None, MAX_RUNS + 1, since=window_start)
    changes = await service.audit.read(limit=MAX_CHANGES, newest=True)
    return schedule_view(
        jobs,
        total,
        runs[:MAX_RUNS],
        runtime.status(),
        now=now,
        window_start=window_start,
        runs_left_out=len(runs) > MAX_RUNS,
        changes=changes,
    )
