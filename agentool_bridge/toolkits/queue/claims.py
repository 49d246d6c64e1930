"""Claims: what a consumer wrote beside a message it took in flight, in the same transaction as the take.

A consumer that must not lose or repeat work across a crash (the scheduler's queue trigger) takes a message with a
claim (say, the id of the run it is about to start). After a crash the next consumer reads the claims of the messages
still in flight (`QueueStore.claimed`) and decides, by what the claim names, whether the work was done (ack the
message) or not (`release` it: ready again at its place). A claim lives as long as its message is in flight: ack,
nack, release and clear remove it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._db import Database
from .schema import TABLE

__all__ = ["CLAIMS_SCHEMA", "Claimed", "QueueClaims"]

_CLAIMS = "agentool_queue_claims"

CLAIMS_SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {_CLAIMS} (
        message_id TEXT PRIMARY KEY,
        queue_name TEXT NOT NULL,
        claim TEXT NOT NULL
    )""",
)


@dataclass(frozen=True)
class Claimed:
    """A message in flight with its claim (`QueueStore.claimed`)."""

    queue_name: str
    message_id: str
    claim: str


class QueueClaims:
    """The claims table of one database. Not locked: its store calls it under its own lock, in its transactions."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, queue_name: str, message_id: str, claim: str) -> None:
        """Inside a take's transaction: note `claim` for the message taken."""
        self._db.execute(f"DELETE FROM {_CLAIMS} WHERE message_id = ?", (message_id,))
        self._db.execute(f"INSERT INTO {_CLAIMS} (message_id, queue_name, claim) VALUES (?, ?, ?)",
                         (message_id, queue_name, claim))

    def holds(self, message_id: str, claim: str) -> bool:
        """True if the message's claim is `claim`."""
        row = self._db.execute(f"SELECT claim FROM {_CLAIMS} WHERE message_id = ?", (message_id,)).fetchone()
        return row is not None and row[0] == claim

    def drop(self, message_id: str) -> None:
        """Inside an ack's, nack's or release's transaction: the message is no longer in flight."""
        self._db.execute(f"DELETE FROM {_CLAIMS} WHERE message_id = ?", (message_id,))

    def drop_queue(self, queue_name: str) -> None:
        """Inside a clear's transaction: every message of the queue is gone."""
        self._db.execute(f"DELETE FROM {_CLAIMS} WHERE queue_name = ?", (queue_name,))

    def in_flight(self, prefix: str) -> list[Claimed]:
        """The messages in flight whose claim starts with `prefix`, oldest first."""
        rows = self._db.execute(
            f"SELECT c.queue_name, c.message_id, c.claim FROM {_CLAIMS} c "
            f"JOIN {TABLE} m ON m.message_id = c.message_id "
            "WHERE m.state = 'in_flight' AND substr(c.claim, 1, ?) = ? ORDER BY m.seq",
            (len(prefix), prefix),
        ).fetchall()
        return [Claimed(queue, message_id, claim) for queue, message_id, claim in rows]
