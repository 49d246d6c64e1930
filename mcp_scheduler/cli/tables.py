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
from datetime import datetime, tzinfo
from typing import TextIO

from ..errors import JobNotFoundError
from ..jobs import Job, RunStatus
from ..models import JobInfo, RunRecord
from ..schedules import local_timezone_name, parse_moment, resolve_timezone
from ..store import read_store

__all__ = ["format_table", "job_rows", "print_history", "print_jobs", "run_outcome"]

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


def _when(value: datetime | None, zone: tzinfo) -> str:
    return "-" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


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


def run_outcome(record: RunRecord) -> str:
    """What a run gave, in one line: its error, else its note, else its result as JSON."""
    if record.error is not None:
        text = f"{record.error.type}: {record.error.message}"
        if record.note:
            text += f" ({record.note})"
    elif record.note:
        text = record.note
    elif record.result is not None:
        text = json.dumps(record.result, default=str, ensure_ascii=False)
    else:
        return "-"
    return clip_cell(_one_line(text), OUTCOME_MAX)


def job_rows(jobs: Sequence[Job | JobInfo], zone: tzinfo) -> list[list[str]]:
    """One row of JOB_HEADERS per job (a stored job, or what the scheduler answered about one)."""
    rows = []
    for job in jobs:
        if isinstance(job, JobInfo):
            agentool, words, next_run = job.agentool_name, job.description, job.next_run
        else:
            d = job.definition
            agentool, words, next_run = d.agentool_name, d.schedule.description, job.next_run_time
        state: str = job.state
        if isinstance(job, Job) and job.pause_reason and state == "paused":
            state = "paused (failures)"
        rows.append([
            job.job_id, state, agentool, _one_line(words), _when(next_run, zone),
            _when(job.last_run_at, zone), job.last_status or "-",
        ])
    return rows


def display_zone(timezone: str | None) -> tuple[str, tzinfo]:
    name = timezone or local_timezone_name()
    return name, resolve_timezone(name)


async def print_jobs(
    database: str, *, limit: int = 50, state: str | None = None, timezone: str | None = None,
    out: TextIO | None = None,
) -> int:
    """Print the jobs table (creation order, `state` only if given); returns a process exit code."""
    out = out or sys.stdout
    zone_name, zone = display_zone(timezone)
    jobs: list[Job] = []
    total = 0
    async with read_store(database) as store:
        async for page in store.load_jobs():  # read to the end (the total is counted)
            for job in page:
                if state is None or job.state == state:
                    total += 1
                    if len(jobs) < limit:
                        jobs.append(job)
    out.write(format_table(JOB_HEADERS, job_rows(jobs, zone), width=terminal_width(out), flex=JOB_FLEX))
    more = f" (--limit {total} to see all)" if total > len(jobs) else ""
    out.write(f"{len(jobs)} of {total} job(s){more}; times in {zone_name}\n")
    return 0


async def print_history(
    database: str, job_id: str | None, *, limit: int = 50, status: RunStatus | None = None,
    since: str | None = None, until: str | None = None, timezone: str | None = None, out: TextIO | None = None,
) -> int:
    """Print runs, newest first: one job's, or with `job_id` None every job's; `since` / `until` are ISO
    times or durations ago ('1h'). Raises `JobNotFoundError` for a job id that has neither a job nor runs."""
    out = out or sys.stdout
    zone_name, zone = display_zone(timezone)
    start = parse_moment(since, "--since", zone_name) if since else None
    end = parse_moment(until, "--until", zone_name) if until else None
    async with read_store(database) as store:
        records = await store.history(job_id, status, limit, since=start, until=end)
        if job_id is not None and not records and not await store.has_history(job_id):
            if await store.load_job(job_id) is None:
                raise JobNotFoundError(job_id)
    rows = [
        [
            _when(r.started_at or r.scheduled_time, zone), r.job_id, r.trigger, r.status, _duration(r.duration_ms),
            r.run_id[:12], run_outcome(r),
        ]
        for r in records
    ]
    headers: Sequence[str] = RUN_HEADERS
    flex: tuple[int, ...] = (6, 1)
    if job_id is not None:  # one job: its id on every row says nothing
        headers = RUN_HEADERS[:1] + RUN_HEADERS[2:]
        rows = [row[:1] + row[2:] for row in rows]
        flex = (5,)
    out.write(format_table(headers, rows, width=terminal_width(out), flex=flex))
    whose = f"of job {job_id}" if job_id is not None else "of all jobs"
    more = f" (the newest {limit}; --limit N for more)" if len(records) == limit else ""
    out.write(f"{len(records)} run(s) {whose}{more}; times in {zone_name}\n")
    return 0
