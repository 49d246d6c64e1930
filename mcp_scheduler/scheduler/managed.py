"""Jobs that a jobs file manages (`mcp-scheduler apply`): what a change by other means is told, or refused."""

from __future__ import annotations

from ..errors import ManagedJobError
from ..jobs import Job

__all__ = ["managed_warnings"]

_CONSEQUENCES = {
    "updated": "the next apply of the file puts back the fields it sets",
    "paused": "the file's next apply leaves it paused, which its owners may not expect",
    "resumed": "the file's owners may have paused it on purpose",
    "cancelled": "the next apply of the file schedules it again",
}


def managed_warnings(job: Job, action: str, *, by: str | None, protect: bool) -> list[str]:
    """What a change (`action`: updated, paused, resumed, cancelled) of `job` made by `by` (a jobs file's identity,
    None for a tool, the AgenTool face or a CLI action) is told: nothing when the job is not managed or `by` is
    the file that manages it; a warning otherwise, or `ManagedJobError` when the server protects managed jobs."""
    owner = job.definition.managed_by
    if owner is None or owner == by:
        return []
    if protect:
        raise ManagedJobError(job.job_id, owner, action)
    return [
        f"Job {job.job_id!r} is managed by the jobs file {owner!r} (mcp-scheduler apply) and was {action} anyway: "
        f"{_CONSEQUENCES[action]}. Tell the user; a lasting change belongs in the file."
    ]
