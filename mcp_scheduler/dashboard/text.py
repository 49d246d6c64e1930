"""The schedule view as compact text: what `show_schedule` answers a host that renders no MCP Apps (and what the
model reads beside the dashboard in one that does)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from agentool_bridge.untrusted import content_text, quote

from .view import ChangeRow, JobRow, RunRow, ScheduleView

__all__ = ["MOST_LISTED", "schedule_text"]

MOST_LISTED = 10
"""Most jobs, failures and retries listed each (the counts say how many there are)."""


def _at(moment: datetime | None, zone: tzinfo) -> str:
    return "-" if moment is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _job_line(row: JobRow, zone: tzinfo) -> str:
    line = f"- {row.name} [{row.kind}] {row.schedule}" + (f", after {row.after}" if row.after else "") + ": "
    if row.state == "paused":
        line += "paused" + (f" ({row.pause_reason})" if row.pause_reason else "")
    elif row.next_run is not None:
        line += f"next {_at(row.next_run, zone)}"
    else:
        line += "no next run"
    if row.retry_at is not None:
        line += f"; retry at {_at(row.retry_at, zone)}"
    if row.last_status is not None:
        line += f"; last {row.last_status}"
    if row.running:
        line += f"; {row.running} running"
    return line


def _outcome(row: RunRow) -> str:
    if row.error is not None:
        return row.error
    if isinstance(row.summary, dict):
        return quote(content_text(row.summary.get("content")), str(row.summary.get("from")), what="summary")
    return row.summary or row.note or ""


def _change(row: ChangeRow, zone: tzinfo) -> str:
    what = row.operation if row.job_id is None else f"{row.operation} of {row.job_name or row.job_id}"
    return f"{what} by {row.subject} at {_at(row.at, zone)}"


def _more(shown: int, total: int) -> list[str]:
    return [f"- ... and {total - shown} more"] if total > shown else []


def schedule_text(view: ScheduleView) -> str:
    """`view` in a few lines: the runner, the jobs soonest first, the window's outcomes, its failures with why,
    paused jobs with why, pending retries, the latest change of the audit log; times in the scheduler's time
    zone."""
    zone = ZoneInfo(view.timezone)
    runner = view.runner
    lines = [f"Schedule at {_at(view.generated_at, zone)} ({view.timezone}); jobs {runner.state}, run by {runner.who}."]
    active = [row for row in view.jobs if row.state != "paused"]
    lines.append(f"Jobs: {view.jobs_total} ({len(view.paused)} paused)" + (":" if view.jobs else "."))
    lines += [_job_line(row, zone) for row in active[:MOST_LISTED]] + _more(min(len(active), MOST_LISTED), len(active))
    hours = round((view.generated_at - view.window_start).total_seconds() / 3600)
    counts = ", ".join(f"{count} {status}" for status, count in sorted(view.outcomes.items(), key=lambda i: -i[1]))
    more = " (more not shown)" if view.runs_left_out else ""
    lines.append(f"Last {hours} h: {len(view.runs)} runs{more}" + (f": {counts}." if counts else "."))
    if view.failures:
        lines.append(f"Failures ({len(view.failures)}):")
        lines += [
            f"- {_at(row.at, zone)} {row.job_name or row.job_id} {row.status}: {_outcome(row)}"
            for row in view.failures[:MOST_LISTED]
        ]
        lines += _more(min(len(view.failures), MOST_LISTED), len(view.failures))
    if view.paused:
        lines.append(f"Paused ({len(view.paused)}):")
        lines += [f"- {row.name}: {row.pause_reason or 'paused by hand'}" for row in view.paused[:MOST_LISTED]]
        lines += _more(min(len(view.paused), MOST_LISTED), len(view.paused))
    if view.retries:
        lines.append(f"Retries pending ({len(view.retries)}):")
        lines += [f"- {row.name} at {_at(row.retry_at, zone)}" for row in view.retries[:MOST_LISTED]]
        lines += _more(min(len(view.retries), MOST_LISTED), len(view.retries))
    if view.changes:
        lines.append(f"Latest change: {_change(view.changes[0], zone)} (scheduler://audit has them all).")
    return "\n".join(lines)
