"""The table of messages (one row each, with its state) and how a row reads back as a message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .values import DeadLetter, QueueMessage

__all__ = ["COLUMNS", "SCHEMA", "TABLE", "dead_letter_of", "message_of", "timestamp"]

TABLE = "agentool_queue_messages"
COLUMNS = "seq, message_id, payload, attempts, enqueued_at, state, max_retries, last_error, updated_at"
"""The columns a message is read with (`message_of`, `dead_letter_of`), in this order."""

SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        seq {{key}},
        message_id TEXT NOT NULL UNIQUE,
        queue_name TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('ready', 'in_flight', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        max_retries INTEGER NOT NULL,
        enqueued_at {{float}} NOT NULL,
        updated_at {{float}} NOT NULL,
        last_error TEXT
    )""",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_by_state ON {TABLE} (queue_name, state, seq)",
)


def timestamp(value: float) -> datetime:
    """A stored time (seconds since the epoch) as an aware UTC datetime."""
    return datetime.fromtimestamp(value, UTC)


def message_of(row: Any) -> QueueMessage:
    """A row of `COLUMNS` as a message."""
    return QueueMessage(row[1], json.loads(row[2]), row[3], timestamp(row[4]))


def dead_letter_of(row: Any) -> DeadLetter:
    """A row of `COLUMNS` of a dead-lettered message, with its last error."""
    return DeadLetter(row[1], json.loads(row[2]), row[3], timestamp(row[4]), row[7], timestamp(row[8]))
