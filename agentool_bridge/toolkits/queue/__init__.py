"""The `queue` AgenTool: durable named FIFO queues with acknowledgements and a dead-letter queue.

Messages live in SQLite (a file when a database path is given, otherwise a private in-memory
database) or in PostgreSQL when the database is a `postgresql://` URL; tables
`agentool_queue_messages`, `agentool_queue_events` and `agentool_queue_claims`, other tables are never
touched. A queue exists while it holds messages; there is no "create". On PostgreSQL several processes (machines)
share the queues: a message is taken by one of them only (`FOR UPDATE SKIP LOCKED`).

The queue named `inbox` is the user's inbox (see `inbox.py`); it belongs to the scheduler, and the
`queue` AgenTool refuses every operation on it: jobs post there only through the `notify` AgenTool,
which says which job posted. (`QueueStore`, the Python API, serves every queue.)

Modules: `values` (names and the values the store hands out), `inputs` (`QueueInput`), `schema` (the
messages table and its rows), `feed` (the enqueues other processes follow), `claims` (what a consumer noted
beside a message it took, for after a crash), `waiter` (dequeues waiting for a message), `store` (`QueueStore`),
`agentool` (the AgenTool's operations in words); a principal's queue names as stored (`~KEY/name`) are spelled by
`..namespaces`, shared with `storage_kv`.
"""

from __future__ import annotations

from ..errors import MessageNotFoundError, QueueClosedError, QueueFullError
from ..namespaces import NAMESPACE_MARK, namespace_for, stored_name, used_name
from .claims import Claimed
from .feed import EVENTS_CHANNEL
from .inputs import QueueInput
from .store import QueueStore, create_queue_agent
from .values import (
    AGENTOOL_NAME,
    INBOX_QUEUE,
    DeadLetter,
    Enqueued,
    Nacked,
    QueueCounts,
    QueueLevel,
    QueueMessage,
    QueueMessageEvent,
)

__all__ = [
    "AGENTOOL_NAME",
    "EVENTS_CHANNEL",
    "INBOX_QUEUE",
    "Claimed",
    "NAMESPACE_MARK",
    "DeadLetter",
    "Enqueued",
    "MessageNotFoundError",
    "Nacked",
    "QueueClosedError",
    "QueueCounts",
    "QueueFullError",
    "QueueInput",
    "QueueLevel",
    "QueueMessage",
    "QueueMessageEvent",
    "QueueStore",
    "create_queue_agent",
    "namespace_for",
    "stored_name",
    "used_name",
]
