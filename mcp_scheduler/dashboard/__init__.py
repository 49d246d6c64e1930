"""The dashboard: one view of the schedule (`view`), as compact text (`text`), as an MCP App inside a chat host and
as a page for operators in a browser.

- `view`: `ScheduleView`, derived from the scheduler's jobs, its runs of the last 24 hours, its status and the
  latest changes of its audit log;
- `text`: the view in a few lines, for hosts without MCP Apps.
"""

from __future__ import annotations

from .text import schedule_text
from .view import ChangeRow, JobRow, RunnerRow, RunRow, ScheduleView, read_schedule, run_row, schedule_view

__all__ = [
    "ChangeRow",
    "JobRow",
    "RunRow",
    "RunnerRow",
    "ScheduleView",
    "read_schedule",
    "run_row",
    "schedule_text",
    "schedule_view",
]
