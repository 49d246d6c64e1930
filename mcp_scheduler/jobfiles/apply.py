"""Apply a jobs file through a scheduler service: the same commands as schedule_job, update_job and cancel_job,
every job checked (schedule, kind, input) before the first one changes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError, JobsFileError
from ..jobs import Job
from ..models import SchedulerInput
from ..policies import PolicyInput
from ..scheduler import SchedulerService
from ..schedules import parse_schedule
from .entries import Entry, read_entries
from .formats import load_document
from .plan import Change, Plan, plan_changes

__all__ = ["JobsFile", "apply_plan", "read_jobs_file"]

_SCHEDULE = ("schedule_type", "schedule", "timezone")


class JobsFile:
    """A parsed jobs file: where it is, the identity its jobs are marked with (its `name`, else its absolute path)
    and its entries."""

    def __init__(self, path: Path, name: str | None, entries: list[Entry]) -> None:
        self.path = path
        self.identity = name or str(path.resolve())
        self.entries = entries

    def plan(self, stored: dict[str, Job], *, prune: bool) -> Plan:
        """What applying the file to the `stored` jobs would do."""
        return plan_changes(self.identity, self.entries, stored, prune=prune)


def read_jobs_file(path: Path, default_zone: str, fmt: str | None = None) -> JobsFile:
    """Read and validate a jobs file (`JobsFileError` names the file, the entry and the field)."""
    name, entries = read_entries(load_document(path, fmt), str(path), default_zone)
    return JobsFile(path, name, entries)


def _update_request(change: Change) -> SchedulerInput:
    """The update_job request that makes a stored job what its entry says: the fields that differ, a schedule
    field with the other two, a kind with its input, and the whole policy."""
    assert change.entry is not None
    spec, request = change.entry.spec, change.entry.request
    names = set(change.fields)
    if names & set(_SCHEDULE):
        names |= set(_SCHEDULE)
    if names & {"agentool_name", "input_data"}:
        names |= {"agentool_name", "input_data"}
    fields: dict[str, Any] = {name: getattr(request, name) for name in names - {"policy", "timezone"}}
    if "timezone" in names:
        fields["timezone"] = spec["timezone"]
    if "policy" in names:
        fields["policy"] = PolicyInput.model_validate(
            {k: v for k, v in spec["policy"].items() if k in PolicyInput.model_fields})
    return SchedulerInput(operation="update", job_id=change.job_id, **fields)


async def _check(service: SchedulerService, change: Change, source: str) -> None:
    """The checks schedule_job makes, before anything changes: the schedule, the kind and its input."""
    assert change.entry is not None
    spec = change.entry.spec
    where = f"{source}: job {change.entry.index} ({change.job_id!r})"
    try:
        if change.action == "create" or set(change.fields) & set(_SCHEDULE):
            parse_schedule(spec["schedule_type"], spec["schedule"], spec["timezone"],
                           misfire_grace_time=spec["misfire_grace_time"], default_timezone=service.timezone)
        if change.action == "create" or set(change.fields) & {"agentool_name", "input_data"}:
            await service.check_job_input(spec["agentool_name"], spec["input_data"] or {})
    except InvalidArgumentError as exc:
        raise JobsFileError(f"{where}: {exc}") from None


async def apply_plan(service: SchedulerService, plan: Plan, source: str) -> list[str]:
    """Make the changes of `plan` through `service` (creates, updates, adoptions, then prunes); the warnings its
    commands gave, each with its job. Every create and update is checked before the first change. The audit log
    gets an `apply` entry (the file and its changes' counts) after the entries of the changes themselves."""
    for change in plan.changes:
        if change.action in ("create", "update"):
            await _check(service, change, source)
    warnings: list[str] = []
    for change in plan.changes:
        if change.action == "create":
            assert change.entry is not None
            request = change.entry.request.model_copy(update={"timezone": change.entry.spec["timezone"]})
            info = await service.schedule(request, managed_by=plan.identity)
        elif change.action == "update":
            info = await service.update(_update_request(change), managed_by=plan.identity)
        elif change.action == "adopt":
            info = await service.update(SchedulerInput(operation="update", job_id=change.job_id),
                                        managed_by=plan.identity)
        elif change.action == "prune":
            info = await service.cancel(change.job_id, managed_by=plan.identity)
        else:
            continue
        warnings += [f"{change.job_id}: {warning}" for warning in info.warnings]
    counts: Counter[str] = Counter(change.action for change in plan.changes if change.action != "unchanged")
    if counts:
        await service.audit.record("apply", None, file=plan.identity, **counts)
    return warnings
