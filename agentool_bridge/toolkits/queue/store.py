"""`QueueStore`: the messages of every queue in one database, and the typed API over them.

A message is *ready*, *in flight* (dequeued with `auto_ack=false`, waiting for `ack`/`nack`)
or *dead* (in the dead-letter queue of its queue). `nack` counts a failed attempt: once the
attempts reach the message's `max_retries` it is dead-lettered, otherwise it becomes ready
again at its original place, i.e. ahead of every message enqueued after it (normally the
head of the queue), so FIFO order is kept. In-flight messages stay in flight until acked or
nacked, also across restarts.

`dequeue` with a `timeout` waits for an `enqueue` (or a `nack` that requeues) in this process:
it sleeps on an event that those operations set. On PostgreSQL it also looks again every 0.2 s
(a bounded poll), for messages that other processes enqueued.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from ...injector import get_injector
from ...redaction import scrub, scrub_text
from ...registry import AgenTool, AgenToolRegistry
from .._common import check_name, check_text
from .._db import open_database
from ..errors import MessageNotFoundError, QueueClosedError, QueueFullError
from .agentool import queue_agentool
from .claims import CLAIMS_SCHEMA, Claimed, QueueClaims
from .feed import FEED_SCHEMA, QueueFeed
from .schema import COLUMNS, SCHEMA, TABLE, dead_letter_of, message_of, timestamp
from .values import (
    AGENTOOL_NAME,
    DeadLetter,
    Enqueued,
    EnqueueHook,
    Nacked,
    QueueCounts,
    QueueLevel,
    QueueMessage,
    QueueMessageEvent,
)
from .waiter import Waiters

__all__ = ["QueueStore", "create_queue_agent"]

logger = logging.getLogger(__name__)

_REMOVE_BATCH = 500  # ids per DELETE: SQLite allows 999 parameters in older builds


class QueueStore:
    """The messages of every queue in one database: the typed API behind the `queue` AgenTool.

    `database`: a SQLite file, a `postgresql://` URL (tables in the first schema of its search_path),
    or None for a private in-memory SQLite database. Thread-safe. Callers in Python (the scheduler,
    the MCP server) use these methods directly; `agentool()` builds the `queue` AgenTool over the
    same store. Enqueue hooks (`add_enqueue_hook`) belong to this store and hear every message
    committed to it.
    """

    def __init__(self, database: str | os.PathLike[str] | None = None) -> None:
        self._db = open_database(database, name=AGENTOOL_NAME, tables=(*SCHEMA, *FEED_SCHEMA, *CLAIMS_SCHEMA))
        self._lock = threading.RLock()
        self._waiters = Waiters()
        self._hooks: list[tuple[object, EnqueueHook]] = []
        self._closed = False
        self._limits: dict[str, tuple[int, str, str]] = {}  # queue name -> (most messages, flag, what to do)
        self.writer = uuid.uuid4().hex[:16]  # marks this store's enqueues, which `events_since` leaves out
        self._feed = QueueFeed(self._db, self.writer)
        self._claims = QueueClaims(self._db)

    @property
    def location(self) -> str:
        """Where the messages are: a SQLite file, `:memory:`, or a PostgreSQL URL (password masked)."""
        return self._db.location

    def close(self) -> None:
        """Close the database; pending `dequeue` waits end with `QueueClosedError`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._db.close()
        self._waiters.wake()

    def add_enqueue_hook(self, callback: EnqueueHook) -> Callable[[], None]:
        """Call `callback(event)` after every enqueue is committed; return a function that unsubscribes.

        Hooks run synchronously, in the order they were added, in the thread that enqueued. An
        exception in a hook is logged and does not affect the enqueue or the other hooks.
        """
        token = object()
        with self._lock:
            self._hooks.append((token, callback))

        def unsubscribe() -> None:
            with self._lock:
                self._hooks[:] = [(t, cb) for t, cb in self._hooks if t is not token]

        return unsubscribe

    def _run_hooks(self, event: QueueMessageEvent) -> None:
        with self._lock:
            callbacks = [cb for _, cb in self._hooks]
        for callback in callbacks:
            try:
                callback(event)
            except Exception:
                logger.exception("Enqueue hook %r failed for message %s", callback, event.message_id)

    def _check_open(self) -> None:
        if self._closed:
            raise QueueClosedError(
                f"This queue store is closed: the {AGENTOOL_NAME!r} AgenTool was replaced or unregistered."
            )

    def _counts(self, queue_name: str) -> QueueCounts:
        rows = self._db.execute(
            f"SELECT state, COUNT(*) FROM {TABLE} WHERE queue_name = ? GROUP BY state", (queue_name,)
        )
        counts = {state: int(count) for state, count in rows.fetchall()}
        return QueueCounts(queue_name, counts.get("ready", 0), counts.get("in_flight", 0), counts.get("dead", 0))

    def _in_flight(self, queue_name: str, message_id: str) -> Any:
        """The row (`COLUMNS`) of an in-flight message, locked until the transaction ends."""
        row = self._db.execute(
            f"SELECT {COLUMNS} FROM {TABLE} WHERE message_id = ? AND queue_name = ?{self._db.for_update}",
            (message_id, queue_name),
        ).fetchone()
        if row is None:
            raise MessageNotFoundError(
                f"No message {message_id!r} in queue {queue_name!r}: it does not exist, belongs to "
                "another queue, or was already acked."
            )
        if row[5] != "in_flight":
            where = "is in the dead-letter queue" if row[5] == "dead" else "is waiting in the queue"
            raise MessageNotFoundError(
                f"Message {message_id!r} in queue {queue_name!r} is not in flight (it {where}); only "
                "messages dequeued with auto_ack=false can be acked or nacked."
            )
        return row

    def set_limit(self, queue_name: str, most: int | None, *, flag: str = "", advice: str = "") -> None:
        """Refuse enqueues to `queue_name` while it holds `most` messages (ready or in flight; None: no limit),
        with `QueueFullError`, whose message names the `flag` that sets the limit and what to do (`advice`).
        Counted in the database, inside the enqueue's transaction, so the limit holds for every process on it
        that sets it."""
        check_name("queue_name", queue_name)
        if most is None:
            self._limits.pop(queue_name, None)
        else:
            self._limits[queue_name] = (most, f" ({flag})" if flag else "", advice)

    def _check_room(self, queue_name: str) -> None:
        """Inside an enqueue's transaction, after the feed lock: raise QueueFullError if the queue is full."""
        most, flag, advice = self._limits[queue_name]
        [count] = self._db.execute(
            f"SELECT COUNT(*) FROM {TABLE} WHERE queue_name = ? AND state <> 'dead'", (queue_name,)
        ).fetchone()
        if count >= most:
            raise QueueFullError(
                f"Queue {queue_name!r} holds {count:,} message{'' if count == 1 else 's'}, its limit{flag}: "
                + (advice or "take some (dequeue) or clear it before enqueueing more") + ".",
                count=int(count),
                limit=most,
            )

    def enqueue(self, queue_name: str, message: Any, *, max_retries: int = 3, level: QueueLevel = "info") -> Enqueued:
        """Append a message to the tail of a queue, then run the enqueue hooks (which see `level`);
        `QueueFullError` if the queue has a limit (`set_limit`) and holds that many messages.

        Inside a run, the secrets revealed to it are stored as their `!env:NAME` reference, never their value.
        """
        check_name("queue_name", queue_name)
        payload = json.dumps(scrub(message), ensure_ascii=False, allow_nan=False)  # NUL is escaped as \u0000
        message_id = uuid.uuid4().hex
        now = time.time()
        with self._lock:
            self._check_open()
            with self._db.transaction():
                self._feed.lock()
                if queue_name in self._limits:
                    self._check_room(queue_name)  # under the lock: enqueues of every process take turns
                self._db.execute(
                    f"INSERT INTO {TABLE} (message_id, queue_name, payload, state, max_retries, enqueued_at, "
                    "updated_at) VALUES (?, ?, ?, 'ready', ?, ?, ?)",
                    (message_id, queue_name, payload, max_retries, now, now),
                )
                self._feed.append(queue_name, message_id, payload, level, now)
                size = self._counts(queue_name).size
        self._waiters.wake(queue_name)
        self._run_hooks(QueueMessageEvent(queue_name, message_id, json.loads(payload), timestamp(now), level))
        return Enqueued(queue_name, message_id, size)

    def last_event(self) -> int:
        """The position of the newest enqueue (for `events_since`)."""
        with self._lock:
            self._check_open()
            return self._feed.last()

    def events_since(self, seq: int, limit: int = 1000) -> tuple[int, list[QueueMessageEvent]]:
        """Enqueues by other processes on the same database after position `seq` (at most `limit` read),
        and the new position: how a process announces messages that another one enqueued."""
        with self._lock:
            self._check_open()
            return self._feed.since(seq, limit)

    def take(self, queue_name: str, *, auto_ack: bool = True, claim: str | None = None) -> QueueMessage | None:
        """The message at the head of a queue (None if it is empty), removed or left in flight; a message left in
        flight may carry a `claim` (`claims.py`), committed with the take.

        On PostgreSQL, rows that another process is taking are skipped: no message is taken twice.
        """
        check_name("queue_name", queue_name)
        if claim is not None and auto_ack:
            raise ValueError("a claim goes with a message left in flight: take it with auto_ack=False")
        with self._lock:
            self._check_open()
            with self._db.transaction():
                row = self._db.execute(
                    f"SELECT {COLUMNS} FROM {TABLE} WHERE queue_name = ? AND state = 'ready' "
                    f"ORDER BY seq LIMIT 1{self._db.skip_locked}",
                    (queue_name,),
                ).fetchone()
                if row is None:
                    return None
                if auto_ack:
                    self._db.execute(f"DELETE FROM {TABLE} WHERE seq = ?", (row[0],))
                else:
                    self._db.execute(
                        f"UPDATE {TABLE} SET state = 'in_flight', updated_at = ? WHERE seq = ?",
                        (time.time(), row[0]),
                    )
                    if claim is not None:
                        self._claims.put(queue_name, row[1], claim)
        return message_of(row)

    async def dequeue(
        self, queue_name: str, *, wait: float | None = None, auto_ack: bool = True
    ) -> QueueMessage | None:
        """Take the message at the head of a queue, waiting up to `wait` seconds for one (None or 0: do not wait).

        An enqueue in this process wakes the wait at once; on PostgreSQL the queue is also looked at
        every `poll_interval` seconds, for messages that other processes enqueued.
        """
        deadline = anyio.current_time() + wait if wait else None
        poll = self._db.poll_interval
        while True:
            waiter = self._waiters.add(queue_name) if deadline is not None else None
            try:
                taken = self.take(queue_name, auto_ack=auto_ack)
                remaining = deadline - anyio.current_time() if deadline is not None else 0.0
                if taken is not None or waiter is None or remaining <= 0:
                    return taken
                with anyio.move_on_after(remaining if poll is None else min(remaining, poll)):
                    await waiter.event.wait()
            finally:
                if waiter is not None:
                    self._waiters.remove(queue_name, waiter)

    def ack(self, queue_name: str, message_id: str) -> None:
        """Remove an in-flight message for good: it was processed."""
        check_name("queue_name", queue_name)
        check_name("message_id", message_id)
        with self._lock:
            self._check_open()
            with self._db.transaction():
                row = self._in_flight(queue_name, message_id)
                self._db.execute(f"DELETE FROM {TABLE} WHERE seq = ?", (row[0],))
                self._claims.drop(message_id)

    def nack(self, queue_name: str, message_id: str, error: str | None = None) -> Nacked:
        """Count a failed attempt: requeue the message at its place, or dead-letter it at `max_retries`.

        `error` (shown by `dead_letters`) must not contain NUL characters (`InvalidTextError`).
        """
        check_name("queue_name", queue_name)
        check_name("message_id", message_id)
        if error is not None:
            check_text("error", error)
            error = scrub_text(error)
        with self._lock:
            self._check_open()
            with self._db.transaction():
                row = self._in_flight(queue_name, message_id)
                attempts, max_retries = row[3] + 1, row[6]
                dead = attempts >= max_retries
                self._db.execute(
                    f"UPDATE {TABLE} SET state = ?, attempts = ?, last_error = ?, updated_at = ? WHERE seq = ?",
                    ("dead" if dead else "ready", attempts, error, time.time(), row[0]),
                )
                self._claims.drop(message_id)
        if not dead:
            self._waiters.wake(queue_name)
        return Nacked(queue_name, message_id, attempts, max_retries, dead)

    def claimed(self, prefix: str = "") -> list[Claimed]:
        """The messages in flight that carry a claim starting with `prefix`, oldest first."""
        with self._lock:
            self._check_open()
            return self._claims.in_flight(prefix)

    def settle(self, queue_name: str, message_id: str, claim: str, *, done: bool) -> bool:
        """End a claimed message's flight: `done` removes it (as `ack`), otherwise it is ready again at its place,
        its attempts unchanged (released, not failed). False, changing nothing, unless it is in flight under `claim`
        (acked, nacked, or released and taken again by someone else meanwhile)."""
        with self._lock:
            self._check_open()
            with self._db.transaction():
                row = self._db.execute(
                    f"SELECT seq, state FROM {TABLE} WHERE message_id = ? AND queue_name = ?{self._db.for_update}",
                    (message_id, queue_name),
                ).fetchone()
                if row is None or row[1] != "in_flight" or not self._claims.holds(message_id, claim):
                    return False
                if done:
                    self._db.execute(f"DELETE FROM {TABLE} WHERE seq = ?", (row[0],))
                else:
                    self._db.execute(f"UPDATE {TABLE} SET state = 'ready', updated_at = ? WHERE seq = ?",
                                     (time.time(), row[0]))
                self._claims.drop(message_id)
        if not done:
            self._waiters.wake(queue_name)
        return True

    def peek(self, queue_name: str, count: int = 1) -> list[QueueMessage]:
        """The first `count` ready messages, not removed."""
        check_name("queue_name", queue_name)
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM {TABLE} WHERE queue_name = ? AND state = 'ready' ORDER BY seq LIMIT ?",
                (queue_name, count),
            ).fetchall()
        return [message_of(r) for r in rows]

    def head(self, queue_name: str, count: int = 1) -> tuple[list[QueueMessage], int]:
        """The first `count` ready messages (not removed) and how many ready messages the queue holds, read
        together: no enqueue or take of this store comes between the two."""
        with self._lock:
            return self.peek(queue_name, count), self.counts(queue_name).size

    def counts(self, queue_name: str) -> QueueCounts:
        """The ready, in-flight and dead-lettered messages of a queue."""
        check_name("queue_name", queue_name)
        with self._lock:
            self._check_open()
            return self._counts(queue_name)

    def clear(self, queue_name: str) -> int:
        """Remove every message of a queue (ready, in flight and dead-lettered); return how many."""
        check_name("queue_name", queue_name)
        with self._lock:
            self._check_open()
            with self._db.transaction():
                self._claims.drop_queue(queue_name)
                return int(self._db.execute(f"DELETE FROM {TABLE} WHERE queue_name = ?", (queue_name,)).rowcount)

    def remove(self, queue_name: str, message_ids: Sequence[str]) -> int:
        """Remove ready messages of a queue by id, as read by `peek` (acknowledging them); return how many.

        Ids that are unknown, of another queue, in flight or dead-lettered are left alone (and not counted).
        """
        check_name("queue_name", queue_name)
        ids = list(dict.fromkeys(check_name("message_id", m) for m in message_ids))
        removed = 0
        with self._lock:
            self._check_open()
            with self._db.transaction():
                for start in range(0, len(ids), _REMOVE_BATCH):
                    batch = ids[start : start + _REMOVE_BATCH]
                    marks = ", ".join("?" * len(batch))
                    removed += int(self._db.execute(
                        f"DELETE FROM {TABLE} WHERE queue_name = ? AND state = 'ready' AND message_id IN ({marks})",
                        (queue_name, *batch),
                    ).rowcount)
        return removed

    def queues(self) -> list[QueueCounts]:
        """Every queue that holds messages, with its counts, sorted by name."""
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                f"SELECT queue_name, state, COUNT(*) FROM {TABLE} GROUP BY queue_name, state ORDER BY queue_name"
            ).fetchall()
        counts: dict[str, dict[str, int]] = {}
        key = {"ready": "size", "in_flight": "in_flight", "dead": "dead_lettered"}
        for name, state, count in rows:
            counts.setdefault(name, {})[key[state]] = int(count)
        return [QueueCounts(name, **c) for name, c in counts.items()]

    def dead_letters(self, queue_name: str, limit: int = 100) -> tuple[list[DeadLetter], int]:
        """The dead-lettered messages of a queue, oldest first (at most `limit`), and how many there are."""
        check_name("queue_name", queue_name)
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM {TABLE} WHERE queue_name = ? AND state = 'dead' "
                "ORDER BY updated_at, seq LIMIT ?",
                (queue_name, limit),
            ).fetchall()
            total = self._counts(queue_name).dead_lettered
        return [dead_letter_of(r) for r in rows], total

    def agentool(self) -> AgenTool:
        """The `queue` AgenTool over this store (not registered; closing it closes the store)."""
        return queue_agentool(self)


def create_queue_agent(
    database: str | os.PathLike[str] | None = None, *, registry: AgenToolRegistry | None = None
) -> AgenTool:
    """Register (or replace) the `queue` AgenTool, stored in `database` (a SQLite file, a PostgreSQL URL) or in memory.

    It goes into `registry` (default: the active injector's); replacing it closes the previous store.
    """
    return (registry if registry is not None else get_injector().registry).register(QueueStore(database).agentool())
