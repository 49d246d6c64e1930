"""The `queue` AgenTool over a `QueueStore`: each operation in words, through the store's public methods only.

Inside a scheduled run its queues are those of the run's namespace (`RunInfo.namespace`: its job's owner's):
the names it is given and shows are the owner's names, the store keeps them within the namespace
(`toolkits/namespaces.py`), and `list_queues` lists the namespace's queues alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...context import current_run
from ...models import RoutingConfig
from ...redaction import scrub_text
from ...registry import AgenTool
from .._common import ToolkitOutput
from ..namespaces import stored_name, used_name
from .inputs import QueueInput
from .values import AGENTOOL_NAME

if TYPE_CHECKING:
    from .store import QueueStore

__all__ = ["queue_agentool"]


def _name(queue_name: str | None) -> str:
    """A queue name as the store keeps it: inside a run, a revealed secret in it becomes its reference."""
    assert queue_name is not None  # required by every operation that names a queue
    return scrub_text(queue_name)


def _namespace() -> str | None:
    run = current_run()
    return None if run is None else run.namespace


def _stored(queue_name: str) -> str:
    """Where the store keeps the queue `queue_name` of the run in progress (refused if it is not the run's)."""
    return stored_name(_namespace(), queue_name)


def queue_agentool(store: QueueStore) -> AgenTool:
    """The `queue` AgenTool over `store` (not registered; closing it closes the store)."""

    def enqueue(queue_name: str, message: Any, max_retries: int) -> ToolkitOutput:
        done = store.enqueue(_stored(queue_name), message, max_retries=max_retries)
        return ToolkitOutput(
            operation="enqueue",
            message=f"Enqueued message {done.message_id} to {queue_name!r} at position {done.position}.",
            data={"queue_name": queue_name, "message_id": done.message_id, "position": done.position,
                  "size": done.position},
        )

    async def dequeue(queue_name: str, max_wait: float | None, auto_ack: bool) -> ToolkitOutput:
        taken = await store.dequeue(_stored(queue_name), wait=max_wait, auto_ack=auto_ack)
        if taken is None:
            return ToolkitOutput(
                operation="dequeue",
                message=f"Queue {queue_name!r} is empty.",
                data={"queue_name": queue_name, "message": None, "empty": True},
            )
        state = "removed" if auto_ack else "in flight until ack or nack"
        return ToolkitOutput(
            operation="dequeue",
            message=f"Dequeued message {taken.message_id} from {queue_name!r} ({state}).",
            data={"queue_name": queue_name, **taken.as_dict(), "empty": False},
        )

    def ack(queue_name: str, message_id: str) -> ToolkitOutput:
        store.ack(_stored(queue_name), message_id)
        return ToolkitOutput(
            operation="ack",
            message=f"Acknowledged message {message_id} of {queue_name!r}.",
            data={"queue_name": queue_name, "message_id": message_id, "acked": True},
        )

    def nack(queue_name: str, message_id: str, error: str | None) -> ToolkitOutput:
        done = store.nack(_stored(queue_name), message_id, error)
        if done.dead_lettered:
            text = f"Message {message_id} failed {done.attempts} times and moved to the dead-letter queue."
        else:
            text = f"Message {message_id} requeued in {queue_name!r} (attempt {done.attempts} of {done.max_retries})."
        return ToolkitOutput(
            operation="nack",
            message=text,
            data={
                "queue_name": queue_name,
                "message_id": message_id,
                "attempts": done.attempts,
                "max_retries": done.max_retries,
                "dead_lettered": done.dead_lettered,
                "requeued": not done.dead_lettered,
            },
        )

    def peek(queue_name: str, count: int) -> ToolkitOutput:
        messages, size = store.head(_stored(queue_name), count)
        return ToolkitOutput(
            operation="peek",
            message=f"{len(messages)} of {size} messages at the head of {queue_name!r}.",
            data={"queue_name": queue_name, "messages": [m.as_dict() for m in messages], "count": len(messages),
                  "size": size},
        )

    def size(queue_name: str) -> ToolkitOutput:
        counts = store.counts(_stored(queue_name))
        return ToolkitOutput(
            operation="size",
            message=f"Queue {queue_name!r} has {counts.size} ready messages.",
            data={**counts.as_dict(), "queue_name": queue_name},
        )

    def clear(queue_name: str) -> ToolkitOutput:
        removed = store.clear(_stored(queue_name))
        return ToolkitOutput(
            operation="clear",
            message=f"Removed {removed} messages from {queue_name!r}.",
            data={"queue_name": queue_name, "removed": removed},
        )

    def list_queues() -> ToolkitOutput:
        namespace = _namespace()
        queues = [{**q.as_dict(), "queue_name": name} for q in store.queues()
                  if (name := used_name(namespace, q.queue_name)) is not None]
        return ToolkitOutput(
            operation="list_queues",
            message=f"{len(queues)} queues.",
            data={"queues": queues, "count": len(queues)},
        )

    def get_dlq(queue_name: str, limit: int) -> ToolkitOutput:
        letters, total = store.dead_letters(_stored(queue_name), limit)
        return ToolkitOutput(
            operation="get_dlq",
            message=f"{total} dead-lettered messages in {queue_name!r}.",
            data={"queue_name": queue_name, "messages": [m.as_dict() for m in letters], "count": len(letters),
                  "total": total},
        )

    routing = RoutingConfig(
        operation_map={
            "enqueue": (
                "enqueue",
                lambda m: {"queue_name": _name(m.queue_name), "message": m.message, "max_retries": m.max_retries},
            ),
            "dequeue": (
                "dequeue",
                lambda m: {"queue_name": _name(m.queue_name), "max_wait": m.timeout, "auto_ack": m.auto_ack},
            ),
            "ack": ("ack", lambda m: {"queue_name": _name(m.queue_name), "message_id": m.message_id}),
            "nack": (
                "nack",
                lambda m: {"queue_name": _name(m.queue_name), "message_id": m.message_id, "error": m.error},
            ),
            "peek": ("peek", lambda m: {"queue_name": _name(m.queue_name), "count": m.count}),
            "size": ("size", lambda m: {"queue_name": _name(m.queue_name)}),
            "clear": ("clear", lambda m: {"queue_name": _name(m.queue_name)}),
            "list_queues": ("list_queues", lambda m: {}),
            "get_dlq": ("get_dlq", lambda m: {"queue_name": _name(m.queue_name), "limit": m.limit}),
        }
    )
    return AgenTool(
        name=AGENTOOL_NAME,
        input_schema=QueueInput,
        routing_config=routing,
        tools=(enqueue, dequeue, ack, nack, peek, size, clear, list_queues, get_dlq),
        output_type=ToolkitOutput,
        tags=("builtin", "queue"),
        examples=(
            {"operation": "enqueue", "queue_name": "emails", "message": {"to": "ada@example.com"}},
            {"operation": "dequeue", "queue_name": "emails", "timeout": 5, "auto_ack": False},
            {"operation": "nack", "queue_name": "emails", "message_id": "<id from dequeue>", "error": "SMTP down"},
        ),
        on_close=store.close,
        backend=store,
    )
