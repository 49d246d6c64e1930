"""The job model: a job's definition (fixed when it is scheduled) and the state it moves through.

`JobDefinition` is stored as its JSON; `Job` is what the scheduler tracks in memory and in the
store's columns: the definition plus the state that firing changes. What clients see (`JobInfo`,
the AgenTool dicts) is derived from a `Job` in one place, `JobInfo.of`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from ._frozen import FrozenModel
from .policies import RunPolicy
from .schedules import Schedule
from .timestamps import Timestamp

__all__ = ["Job", "JobDefinition", "JobState", "RunStatus", "RunTrigger"]

JobState = Literal["scheduled", "paused", "completed"]
RunStatus = Literal["running", "success", "error", "timeout", "missed", "skipped", "cancelled", "interrupted"]
RunTrigger = Literal["schedule", "run_now", "catch_up", "retry", "backfill"]


class JobDefinition(FrozenModel):
    """What a job is: its schedule, the AgenTool it runs with which input, and its limits.

    Frozen: changing a job means replacing its definition. Stored as this model's JSON.
    """

    job_id: str = Field(description="Unique job id.")
    job_name: str | None = Field(default=None, description="Human-readable name.")
    agentool_name: Annotated[str, AfterValidator(sys.intern)] = Field(description="AgenTool the job runs.")
    input_data: dict[str, Any] = Field(default_factory=dict, description="Input passed to the AgenTool.")
    schedule: Schedule = Field(description="When the job fires.")
    max_instances: int = Field(default=1, description="Maximum concurrent executions.")
    misfire_grace_time: int | None = Field(default=30, description="Seconds a run may start late.")
    coalesce: bool = Field(default=True, description="Whether missed runs are combined into one.")
    timeout: float | None = Field(default=None, description="Seconds a run may take.")
    result_queue: str | None = Field(default=None, description="Queue that receives results.")
    error_queue: str | None = Field(default=None, description="Queue that receives errors.")
    policy: RunPolicy = Field(default=RunPolicy(), description="Overlap, catch-up, retries, pause on failures, bounds.")
    created_at: Timestamp = Field(description="When the job was created.")


@dataclass(slots=True, eq=False)
class Job:
    """A job as the scheduler tracks it: its definition and the state that its fires change."""

    definition: JobDefinition
    state: JobState = "scheduled"
    next_run_time: datetime | None = None
    last_run_at: datetime | None = None
    last_status: RunStatus | None = None

    @property
    def job_id(self) -> str:
        return self.definition.job_id
