"""`QueueInput`: what the `queue` AgenTool accepts, checked before any operation reaches the store."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue, field_validator, model_validator

from ...models import BaseOperationInput
from .._common import Name, check_json, check_text, require_fields
from .values import INBOX_QUEUE

__all__ = ["QueueInput"]

_REQUIRED: dict[str, tuple[str, ...]] = {
    "enqueue": ("queue_name", "message"),
    "dequeue": ("queue_name",),
    "ack": ("queue_name", "message_id"),
    "nack": ("queue_name", "message_id"),
    "peek": ("queue_name",),
    "size": ("queue_name",),
    "clear": ("queue_name",),
    "get_dlq": ("queue_name",),
}


class QueueInput(BaseOperationInput):
    """Durable named FIFO queues: enqueue, dequeue (optionally waiting), ack/nack, dead-letter queue."""

    operation: Literal["enqueue", "dequeue", "ack", "nack", "peek", "size", "clear", "list_queues", "get_dlq"] = Field(
        description="The queue operation to perform."
    )
    queue_name: Name | None = Field(
        default=None,
        description="Name of the queue (1-200 characters, no control characters; not 'inbox', the scheduler's). "
        "Required by every operation except list_queues.",
    )
    message: JsonValue = Field(default=None, description="enqueue: the message, any JSON value except null.")
    max_retries: int = Field(
        default=3,
        ge=1,
        le=100,
        description="enqueue: failed attempts (nacks) after which the message moves to the dead-letter queue.",
    )
    timeout: float | None = Field(
        default=None,
        ge=0,
        description="dequeue: seconds to wait for a message if the queue is empty; null or 0 returns at once.",
    )
    auto_ack: bool = Field(
        default=True,
        description="dequeue: true removes the message at once; false keeps it in flight until ack or nack.",
    )
    message_id: Name | None = Field(default=None, description="ack/nack: the message_id returned by dequeue.")
    error: str | None = Field(
        default=None, description="nack: why processing failed; shown by get_dlq if the message dead-letters."
    )
    count: int = Field(default=1, ge=1, le=100, description="peek: how many messages to show from the head.")
    limit: int = Field(
        default=100, ge=1, le=1000, description="get_dlq: the most dead-lettered messages to return, oldest first."
    )

    @field_validator("queue_name")
    @classmethod
    def not_the_inbox(cls, value: str | None) -> str | None:
        """The inbox belongs to the scheduler: a job could otherwise post in its name, or read or wipe it."""
        if value == INBOX_QUEUE:
            raise ValueError(
                "the queue 'inbox' is reserved: jobs post to the inbox through the notify AgenTool (operation "
                "'inbox'), which names the job; the user's model reads it with read_inbox"
            )
        return value

    @field_validator("message")
    @classmethod
    def check_message(cls, value: JsonValue) -> JsonValue:
        """Messages are stored as strict JSON."""
        return check_json("message", value)

    @field_validator("error")
    @classmethod
    def check_error(cls, value: str | None) -> str | None:
        """An error text is stored as text: no NUL characters."""
        return None if value is None else check_text("error", value)

    @model_validator(mode="after")
    def check_required(self) -> QueueInput:
        """Each operation names the fields it needs."""
        require_fields(self, _REQUIRED)
        return self
