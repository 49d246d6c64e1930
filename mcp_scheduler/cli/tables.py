"""Human-readable tables of jobs and runs for `mcp-scheduler jobs` / `history`, read through the job store.

They read a SQLite file or a PostgreSQL database directly (`store.read_store`: no scheduler is started), so
they work while a server runs on it. Tables go to stdout, sized to the terminal; messages go to stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from ..errors import JobNotFoundError
from ..jobs import Job, RunStatus
from ..models import JobInfo, RunRecord
from ..schedules import local_timezone_name, parse_moment, resolve_timezone
from ..store import read_store

__all__ = [
    "format_table", "iso", "job_json", "job_rows", "print_history", "print_jobs", "result_summary", "run_json",
    "run_outcome", "run_row", "when", "write_json",
]

JOB_HEADERS = ("JOB", "STATE", "KIND", "SCHEDULE", "NEXT RUN", "LAST RUN", "LAST STATUS")
JOB_FLEX = (3, 0)  # the schedule in words, then the job id, give way first on a narrow terminal
RUN_HEADERS = ("WHEN", "JOB", "TRIGGER", "STATUS", "DURATION", "RUN", "RESULT / ERROR / NOTE")
OUTCOME_MAX = 120  # an outcome is clipped to this even when the output is not a terminal
MIN_FLEX = 10


def terminal_width(out: TextIO) -> int | None:
    """The width to fit tables into: $COLUMNS, else the terminal's; None (unlimited) when not a terminal."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if out.isatty():
            return shutil.get_terminal_size().columns
    except (AttributeError, ValueError, OSError):
        pass
    return None


def clip_cell(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, width: int | None = None, flex: Sequence[int] = ()
) -> str:
    """Columns padded to their widest cell; past `width`, the `flex` columns (in that order) are clipped."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    if width is not None:
        excess = sum(widths) + 2 * (len(widths) - 1) - width
        for column in flex:
            if excess <= 0:
                break
            cut = min(excess, widths[column] - max(MIN_FLEX, len(headers[column])))
            if cut > 0:
                widths[column] -= cut
                excess -= cut
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(clip_cell(c, w).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    return "\n".join(lines) + "\n"


def when(value: datetime | None, zone_name: str) -> str:
    """A time in the zone `zone_name`, with the zone's name: "2026-12-05 09:00 Europe/Berlin" (seconds if any)."""
    if value is None:
        return "-"
    local = value.astimezone(resolve_timezone(zone_name))
    return local.strftime("%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M") + f" {zone_name}"


def iso(value: datetime | None, zone_name: str) -> str | None:
    """A time as ISO 8601 with its offset in the zone `zone_name` (for --json), or None."""
    return None if value is None else value.astimezone(resolve_timezone(zone_name)).isoformat()


def _duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m {seconds:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def result_summary(result: Any) -> str:
    """A result in one line: an AgenTool's `message` when it has one, else its JSON."""
    if isinstance(result, dict) and isinstance(result.get("message"), str) and result["message"].strip():
        return _one_line(result["message"])
    return _one_line(json.dumps(result, default=str, ensure_ascii=False))


def run_outcome(record: RunRecord, *, clip: int | None = OUTCOME_MAX) -> str:
    """What a run gave, in one line: its error, else its summary (what a quoted one says), else its note, else its
    result's message or JSON; with its note in brackets; clipped to `clip`."""
    summary = record.summary.get("content") if isinstance(record.summary, dict) else record.summary
    if record.error is not None:
        text = f"{record.error.type}: {record.error.message}"
        if record.note:
            text += f" ({record.note})"
    elif isinstance(summary, str) and summary:
        text = summary + (f" ({record.note})" if record.note else "")
    elif record.note:
        text = record.note
    elif record.result is not None:
        text = result_summary(record.result)
    else:
        return "-"
    text = _one_line(text)
    return text if clip is None else clip_cell(text, clip)


def _job_fields(job: Job | JobInfo) -> tuple[str, str, str, datetime | None]:
    """(AgenTool, schedule in words, time zone, next run) of a stored job or of the scheduler's answer."""
    if isinstance(job, JobInfo):
        return job.agentool_name, job.description, job.timezone, job.next_run
    d = job.definition
    return d.agentool_name, d.schedule.description, d.schedule.timezone, job.next_run_time


def _state(job: Job | JobInfo) -> str:
    if isinstance(job, Job) and job.pause_reason and job.state == "paused":
        return "paused (failures)"
    return job.state


def job_rows(jobs: Sequence[Job | JobInfo]) -> list[list[str]]:
    """One row of JOB_HEADERS per job (a stored job, or what the scheduler answered about one), its times in
    the job's own zone."""
    rows = []
    for job in jobs:
        agentool, words, zone, next_run = _job_fields(job)
        rows.append([
            job.job_id, _state(job), agentool, _one_line(words), when(next_run, zone),
            when(job.last_run_at, zone), job.last_status or "-",
        ])
    return rows


def job_json(job: Job | JobInfo) -> dict[str, Any]:
    """What a row of the jobs table says, for --json: unclipped, times as ISO 8601 in the job's zone."""
    agentool, words, zone, next_run = _job_fields(job)
    return {
        "job_id": job.job_id, "state": _state(job), "agentool": agentool, "schedule": words, "timezone": zone,
        "next_run": iso(next_run, zone), "last_run": iso(job.last_run_at, zone), "last_status": job.last_status,
    }


def run_json(record: RunRecord, zone: str) -> dict[str, Any]:
    """What a row of the history table says, for --json: unclipped, with the result, times in `zone`."""
    return {
        "run_id": record.run_id, "job_id": record.job_id, "trigger": record.trigger, "status": record.status,
        "scheduled_time": iso(record.scheduled_time, zone), "started_at": iso(record.started_at, zone),
        "finished_at": iso(record.finished_at, zone), "timezone": zone, "duration_ms": record.duration_ms,
        "summary": run_outcome(record, clip=None), "error": None if record.error is None else
        {"type": record.error.type, "message": record.error.message}, "note": record.note, "result": record.result,
    }


def write_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, default=str, ensure_ascii=False, indent=2) + "\n")


def run_row(record: RunRecord, zone: str) -> list[str]:
    """One row of RUN_HEADERS."""
    return [
        when(record.started_at or record.scheduled_time, zone), record.job_id, record.trigger, record.status,
        _duration(record.duration_ms), record.run_id[:12], run_outcome(record),
    ]


async def print_jobs(
    database: str, *, limit: int = 50, state: str | None = None, as_json: bool = False, out: TextIO | None = None,
) -> int:
    """Print the jobs table (creation order, `state` only if given; times in each job's zone), or with `as_json`
    its rows as a JSON array; returns a process exit code."""
    out = out or sys.stdout
    jobs: list[Job] = []
    total = 0
    async with read_store(database) as store:
        async for page in store.load_jobs():  # read to the end (the total is counted)
            for job in page:
                if state is None or job.state == state:
                    total += 1
                    if len(jobs) < limit:
                        jobs.append(job)
    if as_json:
        write_json([job_json(job) for job in jobs], out)
        return 0
    out.write(format_table(JOB_HEADERS, job_rows(jobs), width=terminal_width(out), flex=JOB_FLEX))
    more = f" (--limit {total} to see all)" if total > len(jobs) else ""
    out.write(f"{len(jobs)} of {total} job(s){more}; times in each job's time zone\n")
    return 0


async def print_history(
    database: str, job_id: str | None, *, limit: int = 50, status: RunStatus | None = None,
    since: str | None = None, until: str | None = None, timezone: str | None = None, as_json: bool = False,
    out: TextIO | None = None,
) -> int:
    """Print runs, newest first: one job's, or with `job_id` None every job's, times in each job's zone (a
    deleted job's in `timezone`, else the machine's), or with `as_json` the rows as a JSON array; `since` /
    `until` are ISO times (read in `timezone`) or durations ago ('1h'). Raises `JobNotFoundError` for a job id
    that has neither a job nor runs."""
    out = out or sys.stdout
    default_zone = timezone or local_timezone_name()
    start = parse_moment(since, "--since", default_zone) if since else None
    end = parse_moment(until, "--until", default_zone) if until else None
    zones: dict[str, str] = {}
    async with read_store(database) as store:
        records = await store.history(job_id, status, limit, since=start, until=end)
        for wanted in {r.job_id for r in records} | ({job_id} if job_id is not None else set()):
            job = await store.load_job(wanted)
            if job is not None:
                zones[wanted] = job.definition.schedule.timezone
        if job_id is not None and not records and job_id not in zones and not await store.has_history(job_id):
            raise JobNotFoundError(job_id)
    if as_json:
        write_json([run_json(r, zones.get(r.job_id, default_zone)) for r in records], out)
        return 0
    rows = [run_row(r, zones.get(r.job_id, default_zone)) for r in records]
    headers: Sequence[str] = RUN_HEADERS
    flex: tuple[int, ...] = (6, 1)
    if job_id is not None:  # one job: its id on every row says nothing
        headers = RUN_HEADERS[:1] + RUN_HEADERS[2:]
        rows = [row[:1] + row[2:] for row in rows]
        flex = (5,)
    out.write(format_table(headers, rows, width=terminal_width(out), flex=flex))
    whose = f"of job {job_id}" if job_id is not None else "of all jobs"
    more = f" (the newest {limit}; --limit N for more)" if len(records) == limit else ""
    out.write(f"{len(records)} run(s) {whose}{more}; times in each job's time zone\n")
    return 0
