"""The queue's names and the values its store hands out: messages, counts, and what an enqueue or a nack did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "AGENTOOL_NAME",
    "INBOX_QUEUE",
    "DeadLetter",
    "EnqueueHook",
    "Enqueued",
    "Nacked",
    "QueueCounts",
    "QueueLevel",
    "QueueMessage",
    "QueueMessageEvent",
]

AGENTOOL_NAME = "queue"
INBOX_QUEUE = "inbox"
"""The queue that holds the user's inbox: reserved to the scheduler, refused by the `queue` AgenTool."""


QueueLevel = Literal["info", "error"]
"""How an enqueued message should be announced: a result (`info`) or a failure (`error`)."""


@dataclass(frozen=True)
class QueueMessageEvent:
    """What an enqueue hook receives: a message that was just committed to a queue."""

    queue_name: str
    message_id: str
    message: Any
    enqueued_at: datetime
    level: QueueLevel = "info"


@dataclass(frozen=True)
class QueueMessage:
    """A message as a queue holds it."""

    message_id: str
    message: Any
    attempts: int
    enqueued_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """The JSON form the `queue` AgenTool returns (`enqueued_at` as ISO 8601)."""
        return {
            "message_id": self.message_id,
            "message": self.message,
            "attempts": self.attempts,
            "enqueued_at": self.enqueued_at.isoformat(timespec="milliseconds"),
        }


@dataclass(frozen=True)
class DeadLetter(QueueMessage):
    """A message that failed `max_retries` times, with its last error."""

    last_error: str | None
    dead_lettered_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return super().as_dict() | {
            "last_error": self.last_error,
            "dead_lettered_at": self.dead_lettered_at.isoformat(timespec="milliseconds"),
        }


@dataclass(frozen=True)
class QueueCounts:
    """How many messages of a queue are ready, in flight and dead-lettered."""

    queue_name: str
    size: int = 0
    in_flight: int = 0
    dead_lettered: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue_name": self.queue_name,
            "size": self.size,
            "in_flight": self.in_flight,
            "dead_lettered": self.dead_lettered,
        }


@dataclass(frozen=True)
class Enqueued:
    """Where an enqueued message landed."""

    queue_name: str
    message_id: str
    position: int


@dataclass(frozen=True)
class Nacked:
    """What a nack did: requeued the message or dead-lettered it."""

    queue_name: str
    message_id: str
    attempts: int
    max_retries: int
    dead_lettered: bool


EnqueueHook = Callable[[QueueMessageEvent], None]
"""A function that hears every message committed to a store (`QueueStore.add_enqueue_hook`)."""
