"""What the scheduler shows of its jobs and runs: `RunRecord`, `JobInfo`, `JobSummary`, `AcceptedJob`,
`SchedulePreview`, `BackfillSummary` and `SchedulerStatus` (`mcp_scheduler.scheduler.views` is the one place where a
tracked `Job` becomes a `JobInfo`, a `JobSummary` or an `AcceptedJob`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, WithJsonSchema, model_serializer

from ..jobs import JobState, RunStatus, RunTrigger
from ..policies import RunPolicy
from ..schedules import ScheduleType
from ..success import SuccessCheck
from ..timestamps import Timestamp
from .request import BackfillOverlap

__all__ = [
    "ShownState",
    "ErrorInfo",
    "RunRecord",
    "JobInfo",
    "JobSummary",
    "CancelledJob",
    "AcceptedJob",
    "SchedulePreview",
    "BackfillSummary",
    "BackgroundRunner",
    "SchedulerStatus",
]


ShownState = Literal["scheduled", "paused", "completed", "cancelled"]
"""A job's state in an answer: its stored state, or `cancelled` in the answer of the cancel that removed it."""

_STRING_OR_OBJECT: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "object"}]}


class ErrorInfo(BaseModel):
    """Why a run failed."""

    type: str = Field(description="Exception type name.")
    message: str = Field(description="Exception message.")
    where: str | None = Field(default=None, description="Where it failed, in the job's terms (its kind and operation).")
    traceback: str | None = Field(default=None, description="Truncated traceback.")


class RunRecord(BaseModel):
    """One execution of a job, whatever its outcome."""

    model_config = ConfigDict(frozen=True)

    run_id: str = Field(description="Unique id of this run.")
    job_id: str = Field(description="The job this run belongs to.")
    agentool_name: str = Field(description="The job kind that was (or would have been) run.")
    trigger: RunTrigger = Field(
        description="schedule: a regular fire; run_now: started by hand; catch_up: a fire due while nothing ran "
        "(no scheduler process, the machine off or asleep), run late or missed; retry: another attempt of a failed "
        "fire (policy.max_attempts); backfill: a past fire time run by backfill (scheduled_time is that time); "
        "webhook: a delivery to one of its hooks; chain: a run of its policy.after job ended; condition: its "
        "policy.when turned true; queue: a message on its policy.on_message queue."
    )
    status: RunStatus = Field(description="Outcome of the run.")
    scheduled_time: Timestamp | None = Field(default=None, description="When the run was due.")
    started_at: Timestamp | None = Field(default=None, description="When it started; null if never.")
    finished_at: Timestamp | None = Field(default=None, description="When it ended.")
    duration_ms: float | None = Field(default=None, description="Run time in milliseconds.")
    result: Any = Field(default=None, description="The job kind's output (JSON), on success.")
    summary: Annotated[str | dict[str, Any] | None, WithJsonSchema(_STRING_OR_OBJECT)] = Field(
        default=None,
        exclude_if=lambda summary: summary is None,
        description="The result in a few words, on success (e.g. '200 OK in 182 ms'); labelled {\"untrusted\": true, "
        "...} when it quotes outside content; left out when none.",
    )
    error: ErrorInfo | None = Field(default=None, description="The error, for error and timeout runs.")
    note: str | None = Field(
        default=None,
        description="Why a run was late, missed, skipped or cancelled; for a job with retries, the attempt.",
    )
    attempt: int | None = Field(
        default=None, description="Which attempt of its fire this run was (1, 2, ...); null if the job has no retries."
    )


def _absent_when_null(schema: dict[str, Any]) -> None:
    """The schema of an optional field that is left out rather than null: its one non-null type."""
    branches = schema.pop("anyOf", [])
    schema.update(next(b for b in branches if b != {"type": "null"}))
    schema.pop("default", None)


class JobInfo(BaseModel):
    """A scheduled job as the scheduler knows it."""

    model_config = ConfigDict(defer_build=True)  # no answer's schema holds it: built when first made

    job_id: str = Field(description="Unique job id.")
    job_name: str | None = Field(default=None, description="Human-readable name.")
    agentool_name: str = Field(description="The job's kind.")
    input_data: dict[str, Any] = Field(description="The input the job kind is given.")
    schedule_type: ScheduleType = Field(description="Type of schedule.")
    schedule: str = Field(description="Schedule expression as given.")
    timezone: str = Field(description="IANA time zone the schedule is read in.")
    description: str = Field(description="The schedule in plain words.")
    state: JobState = Field(description="scheduled, paused, or completed (a one-time job that has run).")
    next_run: Timestamp | None = Field(default=None, description="Next fire time, in the job's time zone.")
    next_runs: list[Timestamp] = Field(default_factory=list, description="The next few fire times.")
    max_instances: int = Field(description="Maximum concurrent executions.")
    misfire_grace_time: int | None = Field(description="Seconds a due run may wait while the scheduler is busy.")
    coalesce: bool = Field(description="Whether missed runs are combined into one.")
    timeout: float | None = Field(default=None, description="Seconds a run may take.")
    result_queue: str | None = Field(default=None, description="Queue that receives results.")
    error_queue: str | None = Field(default=None, description="Queue that receives errors.")
    created_at: Timestamp = Field(description="When the job was created.")
    last_run_at: Timestamp | None = Field(default=None, description="When the job last started.")
    last_status: RunStatus | None = Field(default=None, description="Outcome of the last run.")
    running: int = Field(default=0, description="Runs in progress now.")
    policy: Annotated[RunPolicy, WithJsonSchema({"type": "object"})] = Field(
        default=RunPolicy(), description="The job's run policy (its fields are those of the policy parameter)."
    )
    policy_description: str = Field(default="", description="The run policy in words.")
    success: Annotated[SuccessCheck | None, WithJsonSchema({"type": "object"})] = Field(
        default=None, description="What success means for its runs (success checks); null: the call not raising."
    )
    pause_reason: str | None = Field(default=None, description="Why the job paused itself (failures in a row).")
    runs_remaining: int | None = Field(default=None, description="Scheduled runs left under policy.max_runs.")
    retry_at: Timestamp | None = Field(default=None, description="When a pending retry of a failed run is due.")
    address_policy: str | None = Field(
        default=None,
        description="Where its http requests and webhooks may go, as set by the server that accepted the job "
        "(on top of the running server's own limits); null: no limit of its own.",
    )
    warnings: list[str] = Field(
        default_factory=list,
        exclude_if=lambda warnings: not warnings,
        description="What schedule or update found may not work as meant (accepted anyway); left out when none.",
    )


class JobSummary(BaseModel):
    """A job in a list: what it is, when it runs and how its last run went (get_job has the rest).

    A field that is null is left out (job_name, next_run, last_status): the schema gives each one type.
    """

    job_id: str
    job_name: str | None = Field(default=None, json_schema_extra=_absent_when_null)
    description: str = Field(description="The schedule in plain words.")
    state: JobState
    next_run: Timestamp | None = Field(default=None, json_schema_extra=_absent_when_null)
    last_status: Annotated[RunStatus | None, WithJsonSchema({"type": "string"})] = None  # get_history lists them

    @model_serializer(mode="wrap")
    def _leave_out_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


class AcceptedJob(JobSummary):
    """What schedule_job, update_job, pause_job and resume_job answer: the job's summary, and what may not work as
    meant or what the change means for a job that a jobs file manages (left out when nothing)."""

    # A list of strings; the schema says array alone (every answer of these five tools carries it in tools/list).
    warnings: Annotated[list[str] | None, WithJsonSchema({"type": "array"})] = None


class CancelledJob(AcceptedJob):
    """What cancel_job answers: the job's summary as it is now, cancelled, with no next run (and its warnings)."""

    state: Literal["cancelled"] = "cancelled"  # type: ignore[assignment]


class SchedulePreview(BaseModel):
    """What a schedule means, without creating a job."""

    schedule_type: ScheduleType = Field(description="Type of schedule.")
    schedule: str = Field(description="Schedule expression as given.")
    timezone: str = Field(description="IANA time zone the schedule is read in.")
    description: str = Field(description="The schedule in plain words.")
    next_runs: list[Timestamp] = Field(description="The next fire times, in the schedule's time zone.")
    note: str | None = Field(
        default=None,
        description="How the policy given shapes these times (bounds, max_runs, jitter window); what a fixed-offset "
        "zone means.",
    )


class BackfillSummary(BaseModel):
    """What a backfill started: one run per fire time of the job's schedule in a past range."""

    job_id: str = Field(description="The job backfilled.")
    count: int = Field(description="Runs started: one per fire time in the range.")
    first: Timestamp | None = Field(default=None, description="The first fire time run (its scheduled_time).")
    last: Timestamp | None = Field(default=None, description="The last fire time run.")
    overlap: BackfillOverlap = Field(description="buffer_all (one after another) or allow_all (several at once).")
    statuses: dict[str, int] | None = Field(
        default=None,
        description="Runs per outcome once they have finished; null while they run (get_history with the job_id "
        "shows them, trigger 'backfill').",
    )


class BackgroundRunner(BaseModel):
    """The background runner of a database: a headless process that holds the runner lease and fires the jobs."""

    model_config = ConfigDict(defer_build=True)  # built at the first status answer

    pid: int = Field(description="Its process id.")
    since: str = Field(description="When it started (ISO 8601, UTC).")
    started_by: Literal["frontend", "service", "manual"] = Field(
        description="frontend: a server started it when it found none; service: the user service; manual: "
        "`mcp-scheduler runner`."
    )
    log_file: str = Field(description="Where it logs.")
    socket: str = Field(description="The Unix socket where it serves clients of this machine.")


class SchedulerStatus(BaseModel):
    """State of the scheduler."""

    model_config = ConfigDict(defer_build=True)  # built at the first status answer

    running: bool = Field(description="True while jobs are being processed (started, not stopped), on a standby by "
                          "its runner.")
    scheduler_state: int = Field(description="0 stopped, 1 running, 2 paused (APScheduler's numbering).")
    state: Literal["stopped", "running", "paused"] = Field(description="The state in words.")
    jobs_count: int = Field(description="Jobs that are scheduled or paused.")
    paused_jobs: int = Field(description="Jobs that are paused.")
    runs_in_progress: int = Field(description="Runs executing now in this process (on a standby, the jobs' runs are "
                                  "its runner's).")
    apscheduler_available: bool = Field(default=True, description="Always true: APScheduler is a dependency.")
    timezone: str = Field(description="Default time zone of the scheduler.")
    database: str | None = Field(description="SQLite file, or null when state is kept in memory.")
    role: Literal["runner", "standby"] = Field(
        default="runner",
        description="'runner' if this server process fires the jobs; 'standby' if another process on the same "
        "database does (this one serves the same jobs and takes over when that one stops).",
    )
    runner: str | None = Field(
        default=None,
        description="On a standby: the process that runs the jobs, or 'no runner: the store is unreachable since "
        "...' while this process cannot reach the store.",
    )
    background_runner: BackgroundRunner | None = Field(
        default=None,
        description="The background runner of this database on this machine: the process that fires the jobs "
        "while no client is connected (null if none runs).",
    )
