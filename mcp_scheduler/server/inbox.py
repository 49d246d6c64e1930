"""The inbox as MCP sees it: messages for the user (reminders, notify messages), read and acknowledged.

The inbox is the `inbox` queue of the runtime's queue store (see `agentool_bridge.toolkits.inbox`):
durable, and shared by every process on the scheduler's database. Jobs post to it with the notify
AgenTool; the `read_inbox` tool and the `scheduler://inbox` resource read it here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import ValidationError

from agentool_bridge.toolkits import QueueMessage
from agentool_bridge.toolkits.inbox import INBOX_QUEUE, InboxMessage

from ..runtime import SchedulerRuntime
from .notifications import INBOX_URI
from .outputs import InboxEntry, InboxPage

__all__ = ["INBOX_QUEUE", "INBOX_URI", "inbox_entry", "read_inbox"]


def inbox_entry(item: QueueMessage) -> InboxEntry:
    """One inbox message as the tool and the resource show it."""
    try:
        posted = InboxMessage.model_validate(item.message)
    except ValidationError:
        # Not posted by post_to_inbox (the queue AgenTool can enqueue anything here): shown as text.
        text = item.message if isinstance(item.message, str) else json.dumps(item.message, ensure_ascii=False)
        return InboxEntry(id=item.message_id, message=text, level="info", source="queue",
                          posted_at=item.enqueued_at)
    return InboxEntry(id=item.message_id, **posted.model_dump())


def read_inbox(
    runtime: SchedulerRuntime, count: int = 20, *, acknowledge: bool = False, ack_ids: Sequence[str] | None = None
) -> InboxPage:
    """The oldest `count` unread messages (removed if `acknowledge`), or, given `ack_ids`, only remove those."""
    queues = runtime.queues
    if ack_ids is not None:
        removed = queues.remove(INBOX_QUEUE, ack_ids)
        return InboxPage(messages=[], acknowledged=removed, remaining=queues.counts(INBOX_QUEUE).size)
    messages = queues.peek(INBOX_QUEUE, count)
    removed = queues.remove(INBOX_QUEUE, [m.message_id for m in messages]) if acknowledge else 0
    return InboxPage(
        messages=[inbox_entry(m) for m in messages],
        acknowledged=removed,
        remaining=queues.counts(INBOX_QUEUE).size,
    )
