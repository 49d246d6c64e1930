"""What the MCP tools return beyond the scheduler's own models (pages, details, catalogs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..models import JobInfo, JobSummary, RunRecord, SchedulerStatus

__all__ = [
    "TRACEBACK_FRAMES",
    "AgenToolCatalog",
    "AgenToolEntry",
    "brief_run",
    "HistoryPage",
    "InboxEntry",
    "InboxPage",
    "JobDetail",
    "JobPage",
    "QueueMessages",
    "SchedulerState",
]

TRACEBACK_FRAMES = 3
"""Frames of a failed run's traceback that tool answers carry (the history resource has the whole of it)."""


def brief_run(record: RunRecord) -> RunRecord:
    """`record` with its traceback cut to the last frames and the exception: what a tool answer needs."""
    error = record.error
    if error is None or not error.traceback:
        return record
    lines = error.traceback.splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    if len(frames) <= TRACEBACK_FRAMES:
        return record
    kept = "\n".join(lines[frames[-TRACEBACK_FRAMES] :])
    head = (
        f"Traceback (the last {TRACEBACK_FRAMES} of {len(frames)} frames; the resource "
        f"scheduler://jobs/{record.job_id}/history has all of them):\n"
    )
    return record.model_copy(update={"error": error.model_copy(update={"traceback": head + kept})})


class JobPage(BaseModel):
    """One page of jobs, summarised (get_job has a job's details)."""

    jobs: list[JobSummary] = Field(description="Jobs on this page, in creation order.")
    total: int = Field(description="Jobs matching the filters, on all pages.")
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; null at the end.")


class SchedulerState(BaseModel):
    """Whether jobs are being processed, after start_scheduler or stop_scheduler (scheduler_status has the counts)."""

    running: bool = Field(description="True while jobs are being processed.")
    state: Literal["stopped", "running", "paused"] = Field(description="The state in words.")

    @classmethod
    def of(cls, status: SchedulerStatus) -> SchedulerState:
        """The state part of `status`."""
        return cls(running=status.running, state=status.state)


class JobDetail(BaseModel):
    """A job with its latest runs."""

    job: JobInfo = Field(description="The job.")
    recent_history: list[RunRecord] = Field(description="Its latest runs, newest first.")


class HistoryPage(BaseModel):
    """Runs of one job or of every job, newest first."""

    job_id: str | None = Field(description="The job; null for the runs of every job.")
    runs: list[RunRecord] = Field(description="The runs, newest first.")
    count: int = Field(description="Number of runs returned.")


class AgenToolEntry(BaseModel):
    """What can be scheduled: an AgenTool with its operations and input schema."""

    name: str = Field(description="Use as `agentool_name`.")
    description: str = Field(description="What it does.")
    operations: list[str] = Field(description="Values of the `operation` field in `input_data`.")
    input_schema: dict[str, Any] = Field(description="JSON schema that `input_data` must satisfy.")
    examples: list[dict[str, Any]] = Field(default_factory=list, description="Example inputs.")


class AgenToolCatalog(BaseModel):
    """Every AgenTool a job can run."""

    agentools: list[AgenToolEntry] = Field(description="The registered AgenTools, by name.")


class QueueMessages(BaseModel):
    """Messages read from a queue."""

    queue_name: str = Field(description="The queue.")
    mode: Literal["peek", "take"] = Field(description="peek leaves messages in place; take removes them.")
    messages: list[dict[str, Any]] = Field(description="Messages, oldest first (message_id, message, enqueued_at).")
    remaining: int = Field(description="Messages still waiting in the queue.")


class InboxEntry(BaseModel):
    """A message for the user, posted by a job (notify) or by the scheduler."""

    id: str = Field(description="The message id; pass it in ack_ids to acknowledge the message.")
    title: str | None = Field(default=None, description="A short headline.")
    message: str = Field(description="What to tell the user.")
    level: Literal["info", "warning", "error"] = Field(description="info, warning or error.")
    source: str = Field(description="Who posted it: notify (a job) or scheduler.")
    job_id: str | None = Field(default=None, description="The job that posted it, if any.")
    run_id: str | None = Field(default=None, description="The run that posted it, if any.")
    posted_at: datetime = Field(description="When it was posted (UTC).")


class InboxPage(BaseModel):
    """Messages read from the inbox, and what is left unread."""

    messages: list[InboxEntry] = Field(description="Messages, oldest first.")
    acknowledged: int = Field(description="Messages this call removed from the inbox.")
    remaining: int = Field(description="Unread messages still in the inbox.")
