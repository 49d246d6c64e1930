"""The job model: a job's definition (fixed when it is scheduled) and the state it moves through.

`JobDefinition` is stored as its JSON; `Job` is what the scheduler tracks in memory and in the
store's columns: the definition plus the state that firing changes. What clients see (`JobInfo`,
the AgenTool dicts) is derived from a `Job` in one place, `mcp_scheduler.scheduler.views`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field

from agentool_bridge.toolkits.config import AddressRules

from ._frozen import FrozenModel
from .policies import RunPolicy
from .schedules import Schedule
from .success import SuccessCheck
from .timestamps import Timestamp

__all__ = [
    "ASKED", "FAILED", "EventTrigger", "Job", "JobDefinition", "JobState", "PendingRetry", "RunStatus", "RunTrigger",
]

JobState = Literal["scheduled", "paused", "completed"]
RunStatus = Literal["running", "success", "error", "timeout", "missed", "skipped", "cancelled", "interrupted"]
RunTrigger = Literal[
    "schedule", "run_now", "catch_up", "retry", "backfill", "webhook", "chain", "condition", "queue",
]
EventTrigger = Literal["webhook", "chain", "condition", "queue"]
"""The triggers of runs that an event starts (`ExtraRuns.start_triggered`)."""
FAILED: frozenset[RunStatus] = frozenset({"error", "timeout", "interrupted"})
"""The outcomes that count as a failed run (for retries and pause_after_failures)."""
ASKED: frozenset[RunTrigger] = frozenset({"run_now", "webhook", "chain", "condition"})
"""The triggers of runs that a process may ask the runner for through the store (scheduler/run_requests.py)."""


_RULES: dict[AddressRules, AddressRules] = {}


def _shared_rules(rules: AddressRules | None) -> AddressRules | None:
    """One object for all the jobs accepted under the same address policy (there are a handful of them)."""
    if rules is None:
        return None
    shared = _RULES.get(rules)
    if shared is None:
        if len(_RULES) >= 1000:
            return rules
        shared = _RULES[rules] = rules
    return shared


class JobDefinition(FrozenModel):
    """What a job is: its schedule, the AgenTool it runs with which input, and its limits.

    Frozen: changing a job means replacing its definition. Stored as this model's JSON.
    """

    model_config = ConfigDict(defer_build=True)  # built when the first job is made or loaded, not at start

    job_id: str = Field(description="Unique job id.")
    job_name: str | None = Field(default=None, description="Human-readable name.")
    agentool_name: Annotated[str, AfterValidator(sys.intern)] = Field(description="AgenTool the job runs.")
    input_data: dict[str, Any] = Field(default_factory=dict, description="Input passed to the AgenTool.")
    schedule: Schedule = Field(description="When the job fires.")
    max_instances: int = Field(default=1, description="Maximum concurrent executions.")
    misfire_grace_time: int | None = Field(
        default=30, description="Seconds a due run may wait while the scheduler is busy (a fire due while nothing ran "
        "has the catch-up window instead).",
    )
    coalesce: bool = Field(default=True, description="Whether missed runs are combined into one.")
    timeout: float | None = Field(default=None, description="Seconds a run may take.")
    result_queue: str | None = Field(default=None, description="Queue that receives results.")
    error_queue: str | None = Field(default=None, description="Queue that receives errors.")
    policy: RunPolicy = Field(default=RunPolicy(), description="Overlap, catch-up, retries, pause on failures, bounds.")
    success: SuccessCheck | None = Field(
        default=None, exclude_if=lambda success: success is None,
        description="What success means beyond the call not raising (`SuccessCheck`); left out of the stored JSON "
        "when None.",
    )
    created_at: Timestamp = Field(description="When the job was created.")
    address_policy: Annotated[AddressRules | None, AfterValidator(_shared_rules)] = Field(
        default=None,
        description="The address policy of the server that accepted the job (scheduled or last updated it): "
        "its runs obey it as well as their runner's. Set by that server from its settings, never from a "
        "request; None for jobs stored before jobs kept it (their runner's policy alone applies).",
    )
    traceparent: str | None = Field(
        default=None, exclude_if=lambda value: value is None,
        description="The W3C traceparent of the call that created the job (its OpenTelemetry span), which the "
        "spans of its runs link to; stored only when there was one, so other rows keep their format.",
    )
    managed_by: str | None = Field(
        default=None,
        exclude_if=lambda managed_by: managed_by is None,
        description="The jobs file that created or adopted the job (`mcp-scheduler apply`): its `name`, else its "
        "absolute path. Set by apply, never from a request; left out of the stored JSON when None.",
    )
    owner: str | None = Field(
        default=None,
        exclude_if=lambda owner: owner is None,
        description="Who created the job: the subject of the principal that scheduled it (`local` from stdio, the "
        "CLI or the AgenTool face). Without scheduler:admin a principal sees and changes only its own jobs; None "
        "for jobs stored before jobs kept their owner (admins' only). Never from a request.",
    )
    owner_client: str | None = Field(
        default=None,
        exclude_if=lambda client: client is None,
        description="The name the creating MCP client gave (its clientInfo), when it gave one.",
    )
    owner_admin: bool = Field(
        default=False,
        exclude_if=lambda admin: not admin,
        description="Whether the owner (a token, not `local`) held scheduler:admin when it created the job: the "
        "job's result and error queues and its runs' `queue` kind then use the shared queue names, as the owner's "
        "calls do; else the owner's own (queue_owners.py). Set with the owner, never from a request; left out of "
        "the stored JSON when False.",
    )


@dataclass(frozen=True, slots=True)
class PendingRetry:
    """The next attempt of a failed fire: when it runs, its number, the fire's own (nominal) time, and what its
    record's note says about why it waited (a retry of an interrupted run, held until the old runs stopped)."""

    at: datetime
    attempt: int
    nominal: datetime | None
    note: str | None = None


@dataclass(slots=True, eq=False)
class Job:
    """A job as the scheduler tracks it: its definition and the state that its fires change.

    `failures` (failed runs in a row), `runs` (scheduled runs started), `pause_reason` and `retry` are
    the job's progress under its run policy, stored as one JSON column (`progress_json`).
    """

    definition: JobDefinition
    state: JobState = "scheduled"
    next_run_time: datetime | None = None
    last_run_at: datetime | None = None
    last_status: RunStatus | None = None
    failures: int = 0
    runs: int = 0
    pause_reason: str | None = None
    retry: PendingRetry | None = None

    @property
    def job_id(self) -> str:
        return self.definition.job_id

    def progress_json(self) -> str | None:
        """The progress as stored: JSON text, or None when there is none yet."""
        if not (self.failures or self.runs or self.pause_reason or self.retry):
            return None
        retry = self.retry
        return json.dumps({
            "failures": self.failures,
            "runs": self.runs,
            "pause_reason": self.pause_reason,
            "retry": None if retry is None else {
                "at": retry.at.isoformat(),
                "attempt": retry.attempt,
                "nominal": None if retry.nominal is None else retry.nominal.isoformat(),
                **({} if retry.note is None else {"note": retry.note}),
            },
        })

    def load_progress(self, text: str | None) -> None:
        """Set the progress from its stored JSON (None: none)."""
        data = json.loads(text) if text else {}
        self.failures = int(data.get("failures") or 0)
        self.runs = int(data.get("runs") or 0)
        self.pause_reason = data.get("pause_reason")
        retry = data.get("retry")
        self.retry = None if not retry else PendingRetry(
            datetime.fromisoformat(retry["at"]),
            int(retry["attempt"]),
            None if retry.get("nominal") is None else datetime.fromisoformat(retry["nominal"]),
            retry.get("note"),
        )

    def copy_progress(self, other: Job) -> None:
        """Take `other`'s progress (the same job as stored by another process)."""
        self.failures, self.runs, self.pause_reason, self.retry = (
            other.failures, other.runs, other.pause_reason, other.retry
        )
