"""Human-readable tables of jobs and runs, read straight from the database (no scheduler is started)."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from .models import RunRecord
from .schedules import load_schedule

__all__ = ["print_jobs", "print_history", "format_table"]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines) + "\n"


def _open(database: str) -> sqlite3.Connection:
    if not os.path.exists(database):
        raise FileNotFoundError(f"No scheduler database at {database}: pass --db FILE (the one the server uses).")
    # as_uri() percent-encodes the path: a '?', '#' or '%' in it would otherwise end or change the URI.
    return sqlite3.connect(f"{Path(database).resolve().as_uri()}?mode=ro", uri=True)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat()


def _cut(text: str | None, width: int) -> str:
    text = text or "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def print_jobs(database: str, *, limit: int = 50, out: TextIO | None = None) -> int:
    """Print the jobs table; returns a process exit code."""
    out = out or sys.stdout
    with _open(database) as conn:
        rows = conn.execute(
            "SELECT job_id, definition, state, next_run_time, last_run_at, last_status FROM scheduler_jobs "
            "ORDER BY created_seq LIMIT ?",
            (limit,),
        ).fetchall()
        total = conn.execute("SELECT COUNT(*) FROM scheduler_jobs").fetchone()[0]
    table = []
    for job_id, definition, state, next_run, _last_run, last_status in rows:
        d = json.loads(definition)
        schedule = load_schedule(d["schedule"])
        table.append([
            job_id, state, d["agentool_name"], _cut(schedule.description, 48),
            next_run or "-", last_status or "-",
        ])
    out.write(format_table(["JOB ID", "STATE", "AGENTOOL", "SCHEDULE", "NEXT RUN", "LAST STATUS"], table))
    out.write(f"{len(rows)} of {total} job(s)\n")
    return 0


def print_history(database: str, job_id: str, *, limit: int = 50, out: TextIO | None = None) -> int:
    """Print a job's runs, newest first; returns a process exit code (1 if the job has no runs)."""
    out = out or sys.stdout
    with _open(database) as conn:
        rows = conn.execute(
            "SELECT record FROM scheduler_runs WHERE job_id = ? ORDER BY seq DESC LIMIT ?", (job_id, limit)
        ).fetchall()
    if not rows:
        sys.stderr.write(f"No runs recorded for job {job_id!r}.\n")
        return 1
    table = []
    for (raw,) in rows:
        r = RunRecord.model_validate_json(raw)
        outcome = f"{r.error.type}: {r.error.message}" if r.error else (r.note or json.dumps(r.result)[:60])
        table.append([
            r.run_id[:12], r.trigger, r.status, _when(r.scheduled_time), _when(r.started_at),
            "-" if r.duration_ms is None else f"{r.duration_ms:.1f}", _cut(outcome, 60),
        ])
    out.write(format_table(["RUN", "TRIGGER", "STATUS", "SCHEDULED", "STARTED", "MS", "RESULT / ERROR"], table))
    return 0
