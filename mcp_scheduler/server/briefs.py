"""What tool answers show of jobs, runs and job kinds within the budgets of what a model reads: a failed run in
about 1,000 characters without the server's paths, get_job in at most 2,000, list_agentools in at most 8,000 (one
line per job kind; one kind's whole input schema on request). The resources keep everything whole."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from agentool_bridge.errors import clip, clip_text, did_you_mean

from ..errors import SchedulerError
from ..models import JobInfo, RunRecord
from ..policies import RunPolicy
from ._params import compact_schema
from .outputs import AgenToolCatalog, AgenToolEntry, AnswerLimits, HistoryPage

__all__ = [
    "AGENTOOLS_BUDGET",
    "ERROR_CHARS",
    "FAILED_HISTORY_BUDGET",
    "FAILED_RUN_BUDGET",
    "GET_JOB_BUDGET",
    "INPUT_VALUE_CHARS",
    "RECENT_RUNS",
    "JobBrief",
    "UnknownJobKindError",
    "answer_size",
    "brief_job",
    "brief_run",
    "catalog_entry",
    "catalog_line",
    "history_page",
    "input_fields",
    "job_kinds",
    "run_line",
]

AGENTOOLS_BUDGET = 8_000
"""Most characters of the list_agentools answer (structured and text content) with every built-in job kind."""

GET_JOB_BUDGET = 2_000
"""Most characters of a get_job answer (structured and text content)."""

FAILED_RUN_BUDGET = 1_000
"""Most characters (as JSON) of one failed run in a tool answer."""

FAILED_HISTORY_BUDGET = 2 * FAILED_RUN_BUDGET
"""Most characters of a get_history answer (structured and text content) with one failed run."""

ERROR_CHARS = 300
"""Most characters of a failed run's error message in a tool answer (the history resource has it whole)."""

INPUT_VALUE_CHARS = 40
"""Most characters of each string in a job's input_data as get_job shows it (the job resource has it whole)."""

RECENT_RUNS = 2
"""Runs in get_job's recent_history (get_history has more)."""

def answer_size(result: Any) -> int:
    """Characters of a tool result (`CallToolResult`) as a client gets it, what the budgets count: its structured
    content and its text content, as JSON."""
    content = [block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content]
    return len(json.dumps({"structuredContent": result.structured_content, "content": content}))


_RECENT_ERROR_CHARS = 100
_SCHEDULE_DEFAULTS: dict[str, Any] = {"max_instances": 1, "misfire_grace_time": 30, "coalesce": True, "running": 0}
_DEFAULT_POLICY = RunPolicy().model_dump(mode="json")


def brief_run(record: RunRecord) -> RunRecord:
    """`record` as a tool answer shows a run: a failed run's error type, message (cut to `ERROR_CHARS`) and where
    it failed in the job's terms, without the traceback, which holds the server's paths (the history resource
    has it whole)."""
    error = record.error
    if error is None:
        return record
    update: dict[str, Any] = {"traceback": None}
    if len(error.message) > ERROR_CHARS:
        update["message"] = clip_text(error.message, ERROR_CHARS)
    where = error.where or f"job kind '{record.agentool_name}'"
    if error.traceback:
        where += f"; traceback: scheduler://jobs/{record.job_id}/history"
    update["where"] = where
    return record.model_copy(update={"error": error.model_copy(update=update)})


def _second(moment: datetime) -> str:
    """`moment` in ISO 8601 to the second (what a model reads of a time; the resources keep the fraction)."""
    return moment.replace(microsecond=0).isoformat()


def run_line(record: RunRecord) -> dict[str, Any]:
    """A run in a job's recent history: its outcome and start, how it was started unless by its schedule, and, if
    it failed, why in brief (get_history has the rest, and the run's id)."""
    line: dict[str, Any] = {"status": record.status}
    if record.trigger != "schedule":
        line["trigger"] = record.trigger
    if record.started_at is not None:
        line["started_at"] = _second(record.started_at)
    if record.error is not None:
        line["error"] = clip_text(f"{record.error.type}: {record.error.message}", _RECENT_ERROR_CHARS)
    elif record.note:
        line["note"] = clip_text(record.note, _RECENT_ERROR_CHARS)
    return line


def _clipped(value: Any) -> tuple[Any, bool]:
    """`value` with each long string cut to `INPUT_VALUE_CHARS`, and whether anything was cut."""
    if isinstance(value, str):
        if len(value) <= INPUT_VALUE_CHARS:
            return value, False
        return clip_text(value, INPUT_VALUE_CHARS), True
    if isinstance(value, dict):
        pairs = [(key, _clipped(item)) for key, item in value.items()]
        return {key: item for key, (item, _) in pairs}, any(cut for _, (_, cut) in pairs)
    if isinstance(value, list):
        items = [_clipped(item) for item in value]
        return [item for item, _ in items], any(cut for _, cut in items)
    return value, False


class JobBrief(BaseModel):
    """A job with its latest runs, in brief (the resource scheduler://jobs/{job_id} has all of it)."""

    job: dict[str, Any] = Field(description="The job; null fields and those at their default (the run policy "
                                "too) left out; times to the second.")
    recent_history: list[dict[str, Any]] = Field(description="Its latest runs, newest first, in brief (get_history "
                                                 "has them whole).")


def brief_job(job: JobInfo, recent: list[RunRecord]) -> JobBrief:
    """`job` as get_job shows it: fields that are null or at their default left out (next_run too: it is the first
    of next_runs; created_at, which the resource has), the run policy and its words only when it is not the
    default, long strings of input_data cut (saying so), times to the second; its `RECENT_RUNS` latest runs one short
    entry each, the latest with its summary."""
    shown = job.model_dump(mode="json", exclude_none=True, exclude={"next_run", "policy", "created_at"})
    for name, default in _SCHEDULE_DEFAULTS.items():
        if shown.get(name) == default:
            del shown[name]
    policy = {k: v for k, v in job.policy.model_dump(mode="json").items() if _DEFAULT_POLICY.get(k) != v}
    if policy:
        shown["policy"] = policy
    else:
        shown.pop("policy_description", None)
    for name in ("last_run_at", "retry_at"):
        moment = getattr(job, name)
        if moment is not None:
            shown[name] = _second(moment)
    shown["next_runs"] = [_second(moment) for moment in job.next_runs]
    shown["input_data"], cut = _clipped(shown["input_data"])
    if cut:
        shown["input_clipped"] = f"whole in scheduler://jobs/{job.job_id}"
    lines = [run_line(r) for r in recent[:RECENT_RUNS]]
    if lines and recent[0].summary is not None:
        lines[0]["summary"] = recent[0].summary
    return JobBrief(job=shown, recent_history=lines)


def input_fields(schema: dict[str, Any]) -> str:
    """The top-level fields of an input schema in one line, `*` after those always required."""
    required = set(schema.get("required", []))
    return ", ".join(f"{name}*" if name in required else name for name in schema.get("properties", {}))


def catalog_line(entry: dict[str, Any]) -> AgenToolEntry:
    """A registry catalog entry as list_agentools lists it: name, what it does, operations and input fields."""
    return AgenToolEntry(name=entry["name"], description=entry["description"].replace("\n", " "),
                         operations=entry["operations"], fields=input_fields(entry["input_schema"]))


def catalog_entry(entry: dict[str, Any]) -> AgenToolEntry:
    """A registry catalog entry whole: with its input schema (without titles and references, as tools/list
    writes schemas) and examples."""
    return AgenToolEntry(name=entry["name"], description=entry["description"], operations=entry["operations"],
                         input_schema=compact_schema(entry["input_schema"], output=False),
                         examples=list(entry["examples"]))


def job_kinds(catalog: list[dict[str, Any]], name: str | None) -> AgenToolCatalog:
    """What list_agentools answers from the registry's `catalog`: a line per job kind, or kind `name` whole
    (`UnknownJobKindError` naming the nearest kinds when there is none of that name)."""
    kinds = {entry["name"]: entry for entry in catalog if entry["name"] != "scheduler"}
    if name is None:
        return AgenToolCatalog(agentools=[catalog_line(entry) for entry in kinds.values()],
                               more="list_agentools(name=...) has a kind's input schema and examples.")
    if name not in kinds:
        raise UnknownJobKindError(f"There is no job kind {clip(name)}.{did_you_mean(name, kinds)} Job kinds: "
                                  f"{', '.join(kinds)}.")
    return AgenToolCatalog(agentools=[catalog_entry(kinds[name])])


class UnknownJobKindError(SchedulerError, LookupError):
    """list_agentools was asked for a job kind that is not registered."""


def history_page(job_id: str | None, runs: list[RunRecord], limits: AnswerLimits) -> HistoryPage:
    """`runs` (newest first) as one get_history answer: those that fit in a page of `limits` (at least one), and
    where the next page starts when some were left out."""
    shown = limits.page(runs)
    if len(shown) == len(runs):
        return HistoryPage(job_id=job_id, runs=shown, count=len(shown))
    last = shown[-1]
    return HistoryPage(job_id=job_id, runs=shown, count=len(shown), next_until=last.started_at or last.scheduled_time)
