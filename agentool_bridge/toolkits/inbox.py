"""The inbox: messages for the human, posted by jobs (`notify`) and by the scheduler, kept until read.

It is the queue named `inbox` of the `queue` toolkit's store, so it is durable and shared by every
process on the same database. Each message is an `InboxMessage` as JSON. The MCP server shows it as
the resource `scheduler://inbox`, lets a client read and acknowledge it, and announces new messages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..context import current_run
from .queue import QueueLevel, QueueStore

__all__ = ["INBOX_QUEUE", "InboxLevel", "InboxMessage", "post_to_inbox"]

INBOX_QUEUE = "inbox"
"""The queue that holds the inbox."""

InboxLevel = Literal["info", "warning", "error"]


class InboxMessage(BaseModel):
    """A message for the human: what happened, from which job, when."""

    model_config = ConfigDict(frozen=True)

    title: str | None = Field(default=None, description="A short headline.")
    message: str = Field(description="What to tell the human.")
    level: InboxLevel = Field(default="info", description="info, warning or error.")
    source: str = Field(
        default="notify", description="Who posted it: notify (a job) or scheduler (the scheduler itself)."
    )
    job_id: str | None = Field(default=None, description="The job that posted it, if any.")
    run_id: str | None = Field(default=None, description="The run that posted it, if any.")
    posted_at: datetime = Field(description="When it was posted (UTC).")


def post_to_inbox(
    queues: QueueStore,
    message: str,
    *,
    title: str | None = None,
    level: InboxLevel = "info",
    source: str = "notify",
    job_id: str | None = None,
    run_id: str | None = None,
) -> str:
    """Append a message to the inbox; returns its message id. Inside a scheduled run, the job and run
    ids default to that run's."""
    run = current_run()
    if run is not None:
        job_id = job_id or run.job_id
        run_id = run_id or run.run_id
    item = InboxMessage(
        title=title, message=message, level=level, source=source, job_id=job_id, run_id=run_id,
        posted_at=datetime.now(UTC),
    )
    queue_level: QueueLevel = "error" if level == "error" else "info"
    return queues.enqueue(INBOX_QUEUE, item.model_dump(mode="json"), level=queue_level).message_id
