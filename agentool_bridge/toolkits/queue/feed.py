"""The feed of enqueues: every message committed, in order, so that other processes on the same database hear of it.

A store appends to the feed inside each enqueue's transaction; a follower (the scheduler) reads it with
`QueueStore.events_since` and announces the messages that other processes enqueued.
"""

from __future__ import annotations

import json

from .._db import Database
from .schema import timestamp
from .values import QueueLevel, QueueMessageEvent

__all__ = ["EVENTS_CHANNEL", "EVENTS_KEPT", "FEED_SCHEMA", "QueueFeed"]

_EVENTS = "agentool_queue_events"
EVENTS_KEPT = 10_000
"""The newest enqueues kept in the feed; older ones are pruned every thousand enqueues."""
# Enqueues take this lock (on PostgreSQL a transaction-level advisory lock, see agentool_bridge.postgres)
# before drawing their numbers: a sequence hands them out in the order transactions *start*, and without
# the lock a reader of the feed could pass seq 11 before seq 10 commits and never see 10.
_FEED_LOCK = 3
EVENTS_CHANNEL = "agentool_queue"
"""On PostgreSQL every enqueue NOTIFYs this channel of its schema (payload: the store's `writer`), so that
followers of the feed (the scheduler's store LISTENs there too) read `events_since` at once."""

FEED_SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {_EVENTS} (
        seq {{serial}},
        queue_name TEXT NOT NULL,
        message_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        level TEXT NOT NULL,
        enqueued_at {{float}} NOT NULL,
        writer TEXT NOT NULL
    )""",
)


class QueueFeed:
    """The feed table of one database, written as `writer` (whose own enqueues `since` leaves out).

    Not locked: its store calls it under its own lock, inside the transactions it opens.
    """

    def __init__(self, db: Database, writer: str) -> None:
        self._db = db
        self.writer = writer

    def lock(self) -> None:
        """First thing in an enqueue's transaction, before any number is drawn: seq order is commit order
        (and enqueues of every process take turns, which a queue's limit relies on)."""
        self._db.lock(_FEED_LOCK)

    def append(self, queue_name: str, message_id: str, payload: str, level: QueueLevel, now: float) -> None:
        """Inside an enqueue's transaction, after `lock`: record the enqueue and notify the followers (delivered
        when the transaction commits)."""
        [seq] = self._db.execute(
            f"INSERT INTO {_EVENTS} (queue_name, message_id, payload, level, enqueued_at, writer) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
            (queue_name, message_id, payload, level, now, self.writer),
        ).fetchone()
        if seq % 1000 == 0:
            self._db.execute(f"DELETE FROM {_EVENTS} WHERE seq <= ?", (seq - EVENTS_KEPT,))
        self._db.notify(EVENTS_CHANNEL, self.writer)

    def last(self) -> int:
        """The position of the newest enqueue."""
        row = self._db.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {_EVENTS}").fetchone()
        return int(row[0])

    def since(self, seq: int, limit: int) -> tuple[int, list[QueueMessageEvent]]:
        """Enqueues by other writers after position `seq` (at most `limit` read), and the new position."""
        rows = self._db.execute(
            f"SELECT seq, queue_name, message_id, payload, level, enqueued_at, writer FROM {_EVENTS} "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        ).fetchall()
        if not rows:
            return seq, []
        events = [
            QueueMessageEvent(queue, message_id, json.loads(payload), timestamp(enqueued_at), level)
            for _, queue, message_id, payload, level, enqueued_at, writer in rows
            if writer != self.writer
        ]
        return int(rows[-1][0]), events
