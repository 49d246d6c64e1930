"""The inbox as MCP sees it: messages for the user (reminders, notify messages, runs' results), read and
acknowledged.

The inbox is the `inbox` queue of the runtime's queue store (see `agentool_bridge.toolkits.inbox`):
durable, and shared by every process on the scheduler's database. Only the server posts to it (jobs
through the notify AgenTool, runs through `result_queue` / `error_queue`); the `read_inbox` tool and
the `scheduler://inbox` resource read it here, a page at a time (`AnswerLimits`).

Each principal reads its own (`readable`, the one check): an admin every message; any other principal only the
messages about its own jobs (a message carries its job's id; one without, or about a job it may not see or that is
gone, is the admins'), and it acknowledges only those.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import ValidationError

from agentool_bridge.errors import clip_text
from agentool_bridge.toolkits import QueueMessage
from agentool_bridge.toolkits.inbox import INBOX_QUEUE, InboxMessage
from agentool_bridge.untrusted import untrusted

from ..principals import acting
from ..runtime import SchedulerRuntime
from .notifications import INBOX_URI
from .outputs import AnswerLimits, InboxEntry, InboxPage

__all__ = ["INBOX_QUEUE", "INBOX_URI", "MESSAGE_LIMIT", "inbox_entry", "inbox_page", "read_inbox", "readable"]

MESSAGE_LIMIT = 10_000
"""Most characters of an inbox message's own text shown (the notify AgenTool takes no longer one)."""


def inbox_entry(item: QueueMessage, limits: AnswerLimits) -> InboxEntry:
    """One inbox message as the tool and the resource show it (its untrusted content clipped)."""
    try:
        posted = InboxMessage.model_validate(item.message)
    except ValidationError:
        # Not posted by the server (written there by an older version, or through the queue store's Python API).
        text = item.message if isinstance(item.message, str) else json.dumps(item.message, ensure_ascii=False)
        return InboxEntry(
            id=item.message_id, message="A message that the scheduler did not post; its text is in `untrusted`.",
            level="info", source="queue", posted_at=item.enqueued_at,
            untrusted=limits.clip(untrusted(text, "the inbox queue")),
        )
    fields = posted.model_dump()
    fields["message"] = clip_text(posted.message, MESSAGE_LIMIT)
    if posted.untrusted is not None:
        fields["untrusted"] = limits.clip(posted.untrusted)
    return InboxEntry(id=item.message_id, **fields)


def _job_of(item: QueueMessage) -> str | None:
    job_id = item.message.get("job_id") if isinstance(item.message, dict) else None
    return job_id if isinstance(job_id, str) else None


def readable(runtime: SchedulerRuntime, count: int | None = None) -> tuple[list[QueueMessage], int]:
    """The oldest unread messages the acting principal may read and acknowledge (at most `count`; None: all), and
    how many it may read in all: every message for an admin, else those about the jobs it may see."""
    queues = runtime.queues
    if acting().admin:
        if count is None:
            count = max(queues.counts(INBOX_QUEUE).size, 1)
        return queues.head(INBOX_QUEUE, count)
    own = set(runtime.service.job_ids())  # the principal's jobs alone (owners.visible)
    every = queues.peek(INBOX_QUEUE, max(queues.counts(INBOX_QUEUE).size, 1))
    mine = [item for item in every if _job_of(item) in own]
    return mine[:count], len(mine)


def inbox_page(runtime: SchedulerRuntime, count: int, limits: AnswerLimits) -> tuple[list[InboxEntry], int, int]:
    """The oldest unread messages the acting principal may read, at most `count` and a page, how many of `count`
    were left out, and how many it may read in all."""
    messages, unread = readable(runtime, count)
    entries = limits.page([inbox_entry(m, limits) for m in messages])
    return entries, len(messages) - len(entries), unread


def read_inbox(
    runtime: SchedulerRuntime,
    count: int = 20,
    *,
    acknowledge: bool = False,
    ack_ids: Sequence[str] | None = None,
    limits: AnswerLimits | None = None,
) -> InboxPage:
    """The oldest `count` unread messages the acting principal may read that fit in a page (removed if
    `acknowledge`), or, given `ack_ids`, only remove those of them it may read (others' are left alone)."""
    queues = runtime.queues
    if ack_ids is not None:
        if not acting().admin:
            mine = {item.message_id for item in readable(runtime)[0]}
            ack_ids = [message_id for message_id in ack_ids if message_id in mine]
        removed = queues.remove(INBOX_QUEUE, ack_ids)
        return InboxPage(messages=[], acknowledged=removed, remaining=readable(runtime, 0)[1])
    entries, not_shown, unread = inbox_page(runtime, count, limits or AnswerLimits())
    removed = queues.remove(INBOX_QUEUE, [e.id for e in entries]) if acknowledge else 0
    remaining = readable(runtime, 0)[1] if removed else unread
    return InboxPage(messages=entries, acknowledged=removed, remaining=remaining, not_shown=not_shown)
