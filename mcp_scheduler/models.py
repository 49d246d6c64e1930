"""Pydantic models that cross the scheduler's boundaries (AgenTool face and MCP face).

`SchedulerInput` is the one source of truth for request fields: the AgenTool input schema and
the MCP tool parameters are both built from its fields and descriptions. `mcp_scheduler.scheduler.views` is
the one place where a tracked `Job` becomes what clients see (`JobInfo`, `JobSummary`).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)

from agentool_bridge import BaseOperationInput, OperationOutput
from agentool_bridge.errors import clip

from .jobs import JobState, RunStatus, RunTrigger
from .policies import PolicyInput, RunPolicy
from .schedules import ScheduleType
from .timestamps import Timestamp

__all__ = [
    "MAX_INPUT_BYTES",
    "JOB_ID_PATTERN",
    "MAX_MISFIRE_GRACE_TIME",
    "MAX_TIMEOUT",
    "QUEUE_NAME_PATTERN",
    "QueueName",
    "Operation",
    "OPERATIONS",
    "REQUIRED_FIELDS",
    "RunStatus",
    "RunTrigger",
    "JobState",
    "SchedulerInput",
    "SchedulerOutput",
    "ErrorInfo",
    "RunRecord",
    "JobInfo",
    "JobSummary",
    "SchedulePreview",
    "BackfillOverlap",
    "BackfillSummary",
    "BackgroundRunner",
    "SchedulerStatus",
]

MAX_INPUT_BYTES = 64 * 1024
"""Largest accepted `input_data`, measured as compact JSON (64 KiB)."""

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"

QUEUE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}$"
"""A job's result_queue / error_queue: 1 to 200 letters, digits and . _ : @ / -, starting with a letter or digit."""

MAX_MISFIRE_GRACE_TIME = 366 * 24 * 3600
"""Largest misfire_grace_time (one year, in seconds); null means no limit."""

MAX_TIMEOUT = 30 * 24 * 3600
"""Largest run timeout (30 days, in seconds); null means no limit."""


def _whole(pattern: str, value: str) -> bool:
    # re.match with `$` would let a trailing newline through
    return re.fullmatch(pattern.removeprefix("^").removesuffix("$"), value) is not None


def _check_queue_name(value: str) -> str:
    if not _whole(QUEUE_NAME_PATTERN, value):
        raise ValueError(
            f"{clip(value)} is not a usable queue name: use 1 to 200 letters, digits and . _ : @ / - "
            "(no spaces or control characters), starting with a letter or digit, e.g. 'results' or 'reports/errors'"
        )
    return value


def _require_unicode(field: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{field} contains a lone surrogate ({text[exc.start]!r}): strings must be valid Unicode text"
        ) from None


QueueName = Annotated[
    str,
    AfterValidator(_check_queue_name),
    Field(json_schema_extra={"pattern": QUEUE_NAME_PATTERN}),  # the pattern bounds the length too
]
"""A queue name as jobs give it (`QUEUE_NAME_PATTERN`): checked, and published in the tool schemas, in one place."""

Operation = Literal[
    "schedule",
    "update",
    "cancel",
    "pause",
    "resume",
    "run_now",
    "list",
    "get_job",
    "get_history",
    "start",
    "stop",
    "status",
    "preview",
    "backfill",
]
OPERATIONS: tuple[str, ...] = Operation.__args__  # type: ignore[attr-defined]

REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "schedule": ("schedule_type", "schedule", "agentool_name", "input_data"),
    "cancel": ("job_id",),
    "pause": ("job_id",),
    "resume": ("job_id",),
    "update": ("job_id",),
    "get_job": ("job_id",),
    "preview": ("schedule_type", "schedule"),
    "backfill": ("job_id", "since"),
}

BackfillOverlap = Literal["buffer_all", "allow_all"]


class SchedulerInput(BaseOperationInput):
    """Input of the `scheduler` AgenTool: one operation and the fields it needs."""

    operation: Operation = Field(description="The scheduler operation to perform.")
    job_id: str | None = Field(
        default=None,
        description="The job's id: letters, digits and . _ : @ - (at most 128 characters).",
    )
    job_name: str | None = Field(default=None, max_length=200, description="A name for people to read.")
    schedule_type: ScheduleType | None = Field(
        default=None,
        description="cron (5 fields, or 6 with seconds first), interval ('30 seconds', '1h30m') or once ('now', an "
        "ISO 8601 time, 'in 10 minutes').",
    )
    schedule: str | None = Field(
        default=None,
        max_length=200,
        description="The expression, e.g. '0 9 * * 1-5' (9:00 on weekdays), '5 minutes' or '2026-12-25T09:00:00'.",
    )
    agentool_name: str | None = Field(
        default=None, max_length=200, description="The AgenTool to run (list_agentools shows them)."
    )
    input_data: dict[str, Any] | None = Field(
        default=None,
        description="The AgenTool's input, e.g. {\"operation\": \"log\", \"message\": \"hi\"}, checked against its "
        "input schema now; '!ref:<kind>:<key>' values are left for it to resolve.",
    )
    max_instances: int = Field(default=1, ge=1, le=100, description="Most runs of the job at once.")
    misfire_grace_time: int | None = Field(
        default=30,
        ge=0,
        le=MAX_MISFIRE_GRACE_TIME,
        description="Seconds a due run may wait while the scheduler is busy, else missed; null: no limit.",
    )
    policy: PolicyInput | None = Field(
        default=None,
        description="Run policy: overlap, catch-up, retries, pause after failures, jitter, start and end, max_runs. "
        "Every field is optional.",
    )
    if_exists: Literal["error", "replace", "keep"] = Field(
        default="error",
        description="If job_id is taken: error, replace the job (its history stays) or keep it (safe to retry).",
    )
    coalesce: bool = Field(default=True, description="Run once when several runs were missed.")
    result_queue: QueueName | None = Field(
        default=None,
        description="Queue for each run's result (read_queue reads it); 'inbox': the user's inbox.",
    )
    error_queue: QueueName | None = Field(
        default=None,
        description="Queue for each failed run's error; 'inbox': the user's inbox.",
    )
    timezone: str | None = Field(
        default=None,
        max_length=100,
        description="IANA time zone such as 'Europe/Berlin' that naive times and cron fields are read in. Default: "
        "the server's.",
    )
    timeout: float | None = Field(
        default=None,
        gt=0,
        le=MAX_TIMEOUT,
        description="Seconds a run may take before it is stopped (status timeout).",
    )
    status: RunStatus | None = Field(default=None, description="Only runs with this outcome.")
    since: str | None = Field(
        default=None,
        max_length=100,
        description="Only runs from this time on: an ISO 8601 time, or how long ago such as '1h' or '30 minutes'.",
    )
    until: str | None = Field(
        default=None, max_length=100, description="Only runs before this time (the same forms as since)."
    )
    limit: int = Field(default=20, ge=1, le=1000, description="Most items returned.")
    count: int = Field(default=3, ge=1, le=50, description="How many next run times to list.")
    backfill_overlap: BackfillOverlap = Field(
        default="buffer_all",
        description="buffer_all: one after another, oldest first; allow_all: up to the job's max_instances at once.",
    )

    @field_validator("job_id")
    @classmethod
    def _job_id_shape(cls, value: str | None) -> str | None:
        if value is not None and not _whole(JOB_ID_PATTERN, value):
            raise ValueError(
                "job_id must start with a letter or digit and use only letters, digits and . _ : @ - "
                "(at most 128 characters)"
            )
        return value

    @field_validator("schedule", "agentool_name")
    @classmethod
    def _not_blank(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.strip():
            if info.field_name == "schedule":
                what = "a schedule expression such as '0 9 * * 1-5', '5 minutes' or 'now'"
            else:
                what = "the name of an AgenTool (list_agentools shows them)"
            raise ValueError(f"{info.field_name} must not be empty: give {what}")
        return value

    @field_validator("job_id", "job_name", "schedule", "agentool_name", "timezone")
    @classmethod
    def _valid_unicode(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _require_unicode(str(info.field_name), value)
        return value

    @field_validator("input_data")
    @classmethod
    def _input_size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            text = json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
            _require_unicode("input_data", text)
            size = len(text.encode())
            if size > MAX_INPUT_BYTES:
                raise ValueError(f"input_data is {size} bytes as JSON; the limit is {MAX_INPUT_BYTES} bytes")
        return value

    @model_validator(mode="after")
    def _required_for_operation(self) -> SchedulerInput:
        missing = [name for name in REQUIRED_FIELDS.get(self.operation, ()) if getattr(self, name) is None]
        if self.operation == "run_now" and self.job_id is None:
            missing = [n for n in ("agentool_name", "input_data") if getattr(self, n) is None]
            if missing:
                raise ValueError(
                    "run_now needs either job_id alone (to run an existing job once, e.g. job_id='daily-report') "
                    "or agentool_name and input_data (to run an AgenTool once, e.g. agentool_name='logging', "
                    "input_data={'operation': 'log', 'message': 'hi'})"
                )
        if missing:
            raise ValueError(
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required for operation "
                f"{self.operation!r}"
            )
        return self


class SchedulerOutput(OperationOutput):
    """Result of every `scheduler` operation; `success` is false only when it found nothing to act on."""


class ErrorInfo(BaseModel):
    """Why a run failed."""

    type: str = Field(description="Exception type name.")
    message: str = Field(description="Exception message.")
    traceback: str | None = Field(default=None, description="Truncated traceback.")


class RunRecord(BaseModel):
    """One execution of a job, whatever its outcome."""

    model_config = ConfigDict(frozen=True)

    run_id: str = Field(description="Unique id of this run.")
    job_id: str = Field(description="The job this run belongs to.")
    agentool_name: str = Field(description="The AgenTool that was (or would have been) run.")
    trigger: RunTrigger = Field(
        description="schedule: a regular fire; run_now: started by hand; catch_up: a fire due while nothing ran "
        "(no scheduler process, the machine off or asleep), run late or missed; retry: another attempt of a failed "
        "fire (policy.max_attempts); backfill: a past fire time run by backfill (scheduled_time is that time)."
    )
    status: RunStatus = Field(description="Outcome of the run.")
    scheduled_time: Timestamp | None = Field(default=None, description="When the run was due.")
    started_at: Timestamp | None = Field(default=None, description="When it started; null if never.")
    finished_at: Timestamp | None = Field(default=None, description="When it ended.")
    duration_ms: float | None = Field(default=None, description="Run time in milliseconds.")
    result: Any = Field(default=None, description="The AgenTool's output (JSON), on success.")
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

    job_id: str = Field(description="Unique job id.")
    job_name: str | None = Field(default=None, description="Human-readable name.")
    agentool_name: str = Field(description="AgenTool the job runs.")
    input_data: dict[str, Any] = Field(description="Input passed to the AgenTool.")
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
    pause_reason: str | None = Field(default=None, description="Why the job paused itself (failures in a row).")
    runs_remaining: int | None = Field(default=None, description="Scheduled runs left under policy.max_runs.")
    retry_at: Timestamp | None = Field(default=None, description="When a pending retry of a failed run is due.")
    address_policy: str | None = Field(
        default=None,
        description="Where its http requests and webhooks may go, as set by the server that accepted the job "
        "(on top of the running server's own limits); null: no limit of its own.",
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


class SchedulePreview(BaseModel):
    """What a schedule means, without creating a job."""

    schedule_type: ScheduleType = Field(description="Type of schedule.")
    schedule: str = Field(description="Schedule expression as given.")
    timezone: str = Field(description="IANA time zone the schedule is read in.")
    description: str = Field(description="The schedule in plain words.")
    next_runs: list[Timestamp] = Field(description="The next fire times, in the schedule's time zone.")
    note: str | None = Field(
        default=None, description="How the policy given shapes these times (bounds, max_runs, jitter window)."
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

    running: bool = Field(description="True while jobs are being processed (started, not stopped).")
    scheduler_state: int = Field(description="0 stopped, 1 running, 2 paused (APScheduler's numbering).")
    state: Literal["stopped", "running", "paused"] = Field(description="The state in words.")
    jobs_count: int = Field(description="Jobs that are scheduled or paused.")
    paused_jobs: int = Field(description="Jobs that are paused.")
    runs_in_progress: int = Field(description="Runs executing now.")
    apscheduler_available: bool = Field(default=True, description="Always true: APScheduler is a dependency.")
    timezone: str = Field(description="Default time zone of the scheduler.")
    database: str | None = Field(description="SQLite file, or null when state is kept in memory.")
    role: Literal["runner", "standby"] = Field(
        default="runner",
        description="'runner' if this server process fires the jobs; 'standby' if another process on the same "
        "database does (this one serves the same jobs and takes over when that one stops).",
    )
    runner: str | None = Field(default=None, description="On a standby: the process that runs the jobs.")
    background_runner: BackgroundRunner | None = Field(
        default=None,
        description="The background runner of this database on this machine: the process that fires the jobs "
        "while no client is connected (null if none runs).",
    )
