"""A jobs file's entries and the stored jobs, in one comparable shape.

Each entry holds the fields of schedule_job (`SCHEDULE_FIELDS` but if_exists, job_id required) and is validated by
the model the tool uses (`SchedulerInput`). A job's `spec` is what the file decides of it: its schedule as given
(type, expression, zone), its kind and input, its limits and queues, and its whole run policy; two specs are
equal exactly when applying the entry would change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agentool_bridge.errors import describe_errors

from ..errors import InvalidArgumentError, JobsFileError
from ..jobs import JobDefinition
from ..models import SchedulerInput
from ..models.request import SCHEDULE_FIELDS
from ..policies import PolicyInput, RunPolicy
from ..scheduler.inputs import policy_of
from ..schedules import resolve_timezone
from ..success import SuccessCheck, check_fits

__all__ = ["ENTRY_FIELDS", "Entry", "entry_of", "read_entries", "spec_of"]

ENTRY_FIELDS = tuple(name for name in SCHEDULE_FIELDS if name != "if_exists")
_DEFAULTS = SchedulerInput(operation="list")


@dataclass(frozen=True)
class Entry:
    """One job of a jobs file: its request (as schedule_job would get it), its position and its spec."""

    index: int
    request: SchedulerInput
    spec: dict[str, Any]

    @property
    def job_id(self) -> str:
        return self.request.job_id or ""


def read_entries(document: Any, source: str, default_zone: str) -> tuple[str | None, list[Entry]]:
    """The `name` and the entries of a parsed jobs file. `JobsFileError` names `source`, the entry (its number and
    job_id) and the field of the first problem; naive times and cron fields are read in `default_zone` unless an
    entry gives its timezone."""
    if not isinstance(document, dict) or not isinstance(document.get("jobs", []), list):
        raise JobsFileError(f"{source}: expected a table with a `jobs` array (TOML [[jobs]], YAML `jobs:` list).")
    unknown = sorted(set(document) - {"name", "jobs"})
    if unknown:
        raise JobsFileError(f"{source}: unknown top-level key(s) {', '.join(unknown)}: a jobs file has name and jobs.")
    name = document.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise JobsFileError(f"{source}: name must be a non-empty string (it marks the jobs this file manages).")
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(document.get("jobs", []), start=1):
        entry = _entry(raw, index, source, default_zone)
        if entry.job_id in seen:
            raise JobsFileError(f"{source}: job {index} ({entry.job_id!r}): job_id is also job {seen[entry.job_id]}'s.")
        seen[entry.job_id] = index
        entries.append(entry)
    return name, entries


def _entry(raw: Any, index: int, source: str, default_zone: str) -> Entry:
    where = f"{source}: job {index}"
    if not isinstance(raw, dict):
        raise JobsFileError(f"{where}: expected a table of schedule_job's fields, got {type(raw).__name__}.")
    if isinstance(raw.get("job_id"), str):
        where += f" ({raw['job_id']!r})"
    unknown = sorted(set(raw) - set(ENTRY_FIELDS))
    if unknown:
        raise JobsFileError(
            f"{where}: unknown field(s) {', '.join(unknown)}; an entry takes {', '.join(ENTRY_FIELDS)}."
        )
    if "job_id" not in raw:
        raise JobsFileError(f"{where}: field job_id is required (apply finds the job by it).")
    try:
        request = SchedulerInput.model_validate({**raw, "operation": "schedule"})
    except ValidationError as exc:
        errors = [{**e, "loc": ("field", *e["loc"])} if e["loc"] else e for e in exc.errors()]
        raise JobsFileError(f"{where}: {describe_errors(errors)}") from None
    try:
        spec = _spec(request, default_zone)
    except InvalidArgumentError as exc:
        raise JobsFileError(f"{where}: {exc}") from None
    return Entry(index, request, spec)


def _spec(request: SchedulerInput, default_zone: str) -> dict[str, Any]:
    zone = resolve_timezone(request.timezone, default_zone).key
    return {
        "job_name": request.job_name,
        "schedule_type": request.schedule_type,
        "schedule": request.schedule,
        "timezone": zone,
        "agentool_name": request.agentool_name,
        "input_data": request.input_data,
        "max_instances": request.max_instances,
        "misfire_grace_time": request.misfire_grace_time,
        "coalesce": request.coalesce,
        "timeout": request.timeout,
        "result_queue": request.result_queue,
        "error_queue": request.error_queue,
        "policy": policy_of(request.policy, RunPolicy(), zone).model_dump(mode="json"),
        "success": _checks_json(check_fits(request.success, request.agentool_name or "")),
    }


def spec_of(definition: JobDefinition) -> dict[str, Any]:
    """What a jobs file would say of a stored job (the shape of `Entry.spec`)."""
    d = definition
    return {
        "job_name": d.job_name,
        "schedule_type": d.schedule.schedule_type,
        "schedule": d.schedule.expression,
        "timezone": d.schedule.timezone,
        "agentool_name": d.agentool_name,
        "input_data": d.input_data,
        "max_instances": d.max_instances,
        "misfire_grace_time": d.misfire_grace_time,
        "coalesce": d.coalesce,
        "timeout": d.timeout,
        "result_queue": d.result_queue,
        "error_queue": d.error_queue,
        "policy": d.policy.model_dump(mode="json"),
        "success": _checks_json(d.success),
    }


def _checks_json(success: SuccessCheck | None) -> dict[str, Any] | None:
    return None if success is None else success.model_dump(mode="json")


def entry_of(definition: JobDefinition) -> dict[str, Any]:
    """A stored job as an entry of a jobs file: job_id, its schedule, zone, kind and input, then the fields that
    differ from schedule_job's defaults (a policy: its fields that differ from the default policy)."""
    spec = spec_of(definition)
    entry: dict[str, Any] = {"job_id": definition.job_id}
    for name in ENTRY_FIELDS:
        if name in ("job_id", "policy"):
            continue
        value = spec[name]
        if name in ("schedule_type", "schedule", "timezone", "agentool_name", "input_data"):
            entry[name] = value
        elif value != getattr(_DEFAULTS, name):
            entry[name] = value
    default_policy = RunPolicy().model_dump(mode="json")
    policy = {k: v for k, v in spec["policy"].items() if v != default_policy[k] and k in PolicyInput.model_fields}
    if policy:
        entry["policy"] = policy
    return entry
