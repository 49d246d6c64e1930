"""Pydantic models that cross the scheduler's boundaries (AgenTool face and MCP face).

`request.py`: `SchedulerInput`, the one source of truth for request fields (the AgenTool input schema and the
MCP tool parameters are both built from its fields and descriptions), `SchedulerOutput` and the limits of a
request. `views.py`: what the scheduler shows of jobs and runs (`mcp_scheduler.scheduler.views` is the one place
where a tracked `Job` becomes what clients see).
"""

from __future__ import annotations

from ..jobs import JobState, RunStatus, RunTrigger
from .request import (
    JOB_ID_PATTERN,
    MAX_INPUT_BYTES,
    MAX_MISFIRE_GRACE_TIME,
    MAX_TIMEOUT,
    OPERATIONS,
    QUEUE_NAME_PATTERN,
    REQUIRED_FIELDS,
    BackfillOverlap,
    Operation,
    QueueName,
    SchedulerInput,
    SchedulerOutput,
)
from .views import (
    AcceptedJob,
    BackfillSummary,
    BackgroundRunner,
    CancelledJob,
    ErrorInfo,
    JobInfo,
    JobSummary,
    RunRecord,
    SchedulePreview,
    SchedulerStatus,
)

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
    "CancelledJob",
    "AcceptedJob",
    "SchedulePreview",
    "BackfillOverlap",
    "BackfillSummary",
    "BackgroundRunner",
    "SchedulerStatus",
]
