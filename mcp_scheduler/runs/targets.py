"""What a run executes (a job's definition, or an ad-hoc run_now) and how many runs of a job may go at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from agentool_bridge.toolkits import AddressRules

from ..jobs import JobDefinition
from ..policies import BUFFER_LIMIT
from ..success import SuccessCheck

__all__ = ["AdHocRun", "RunTarget", "concurrency_limit", "engine_instances", "runs_words"]

PER_JOB_FLAG = "--max-runs-per-job"
SLOTS_FLAG = "--max-concurrent-runs"


def runs_words(count: int) -> str:
    """'1 run', '3 runs'."""
    return f"{count} run" if count == 1 else f"{count} runs"


def concurrency_limit(definition: JobDefinition, per_job: int = BUFFER_LIMIT) -> int:
    """Scheduled runs of a job that may go at once: max_instances; with overlap allow_all and max_instances left
    at 1, BUFFER_LIMIT (allow_all means overlapping fires run, so one at a time would be skip by another name);
    never more than `per_job`, the operator's limit of runs of one job in flight (--max-runs-per-job)."""
    if definition.policy.overlap == "allow_all" and definition.max_instances <= 1:
        return max(1, min(BUFFER_LIMIT, per_job))
    return max(1, min(definition.max_instances, per_job))


def engine_instances(definition: JobDefinition) -> int:
    """How many fires of a job the engine may have in progress: enough that the run path sees each fire and
    decides by the job's overlap policy (runs beyond max_instances are skipped, buffered or cancel another)."""
    return concurrency_limit(definition) + BUFFER_LIMIT + 1


class RunTarget(Protocol):
    """What a run executes: a `JobDefinition`, or an `AdHocRun` for run_now without a job."""

    @property
    def job_id(self) -> str: ...
    @property
    def agentool_name(self) -> str: ...
    @property
    def input_data(self) -> dict[str, Any]: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def result_queue(self) -> str | None: ...
    @property
    def error_queue(self) -> str | None: ...
    @property
    def address_policy(self) -> AddressRules | None: ...
    @property
    def success(self) -> SuccessCheck | None: ...


@dataclass(frozen=True, slots=True)
class AdHocRun:
    """A run_now of an AgenTool that is not a scheduled job (it runs under its process's own address policy)."""

    job_id: str
    agentool_name: str
    input_data: dict[str, Any]
    timeout: float | None = None
    result_queue: str | None = None
    error_queue: str | None = None
    address_policy: AddressRules | None = None
    success: SuccessCheck | None = None
