"""The request and the answer of every scheduler operation: `SchedulerInput`, the one source of request fields
(the AgenTool input schema and the MCP tool parameters are both built from its fields and descriptions), and
`SchedulerOutput`; the limits a request is checked against."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from agentool_bridge import BaseOperationInput, OperationOutput
from agentool_bridge.errors import clip

from ..jobs import RunStatus
from ..policies import PolicyInput
from ..schedules import ScheduleType
from ..success import SuccessCheck

__all__ = [
    "MAX_INPUT_BYTES",
    "JOB_ID_PATTERN",
    "MAX_MISFIRE_GRACE_TIME",
    "MAX_TIMEOUT",
    "QUEUE_NAME_PATTERN",
    "QueueName",
    "is_queue_name",
    "Operation",
    "OPERATIONS",
    "REQUIRED_FIELDS",
    "SCHEDULE_FIELDS",
    "BackfillOverlap",
    "SchedulerInput",
    "SchedulerOutput",
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


def is_queue_name(value: str) -> bool:
    """True if `value` is a queue name jobs may give (`QUEUE_NAME_PATTERN`)."""
    return _whole(QUEUE_NAME_PATTERN, value)


def _check_queue_name(value: str) -> str:
    if not is_queue_name(value):
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

SCHEDULE_FIELDS: tuple[str, ...] = (
    "schedule_type", "schedule", "agentool_name", "input_data", "job_id", "job_name", "timezone", "max_instances",
    "misfire_grace_time", "coalesce", "timeout", "result_queue", "error_queue", "policy", "success", "if_exists",
)
"""The fields of a `schedule` request, in the order schedule_job lists them (a jobs file's entries take the same,
but if_exists)."""

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
        description="cron (5 fields, 6 with seconds first), interval ('30s', '1h30m') or once ('now', ISO "
        "8601, 'in 10m').",
    )
    schedule: str | None = Field(
        default=None,
        max_length=200,
        description="E.g. '0 9 * * 1-5' (9:00 weekdays), '5 minutes', '2026-12-25T09:00'.",
    )
    agentool_name: str | None = Field(
        default=None, max_length=200, description="The job kind to run (list_agentools shows them)."
    )
    input_data: dict[str, Any] | None = Field(
        default=None,
        description="The kind's input, e.g. {\"operation\": \"log\", \"message\": \"hi\"}; '!ref:<kind>:<key>' "
        "resolves at run time.",
    )
    max_instances: int = Field(default=1, ge=1, le=100, description="Most runs at once.")
    misfire_grace_time: int | None = Field(
        default=30,
        ge=0,
        le=MAX_MISFIRE_GRACE_TIME,
        description="Seconds a due run may wait while busy (else missed); null: none.",
    )
    policy: PolicyInput | None = Field(
        default=None,
        description="Run policy: overlap, catch-up, retries, pause after failures, jitter, start and end, max_runs. "
        "Every field is optional.",
    )
    success: SuccessCheck | None = Field(
        default=None,
        description="All must hold, else error: status [codes] (http), json {path, equals}, contains, "
        "not_contains, no_error (mcp, agent), tools_used (agent: true or names).",
    )
    if_exists: Literal["error", "replace", "keep"] = Field(
        default="error",
        description="job_id taken: error, replace (history stays) or keep (idempotent).",
    )
    coalesce: bool = Field(default=True, description="Run once for several missed runs.")
    result_queue: QueueName | None = Field(
        default=None,
        description="Queue for each run's result (read_queue) or 'inbox' (the user's).",
    )
    error_queue: QueueName | None = Field(
        default=None,
        description="Queue for failed runs' errors, or 'inbox'.",
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
        description="Seconds a run may take (else timeout).",
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
    count: int = Field(default=3, ge=1, le=50, description="Next run times to list.")
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
                what = "a job kind (list_agentools shows them)"
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
                    "or agentool_name and input_data (to run a job kind once, e.g. agentool_name='logging', "
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

