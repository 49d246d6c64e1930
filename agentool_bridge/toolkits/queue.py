"""The `queue` AgenTool: durable named FIFO queues with acknowledgements and a dead-letter queue.

Messages live in SQLite (a file when a database path is given, otherwise a private in-memory
database) or in PostgreSQL when the database is a `postgresql://` URL; tables
`agentool_queue_messages` and `agentool_queue_events`, other tables are never touched. A queue
exists while it holds messages; there is no "create". On PostgreSQL several processes (machines)
share the queues: a message is taken by one of them only (`FOR UPDATE SKIP LOCKED`).

A message is *ready*, *in flight* (dequeued with `auto_ack=false`, waiting for `ack`/`nack`)
or *dead* (in the dead-letter queue of its queue). `nack` counts a failed attempt: once the
attempts reach the message's `max_retries` it is dead-lettered, otherwise it becomes ready
again at its original place, i.e. ahead of every message enqueued after it (normally the
head of the queue), so FIFO order is kept. In-flight messages stay in flight until acked or
nacked, also across restarts.

The queue named `inbox` is the user's inbox (see `inbox.py`); it belongs to the scheduler, and the
`queue` AgenTool refuses every operation on it: jobs post there only through the `notify` AgenTool,
which says which job posted. (`QueueStore`, the Python API, serves every queue.)

`dequeue` with a `timeout` waits for an `enqueue` (or a `nack` that requeues) in this process:
it sleeps on an event that those operations set. On PostgreSQL it also looks again every 0.2 s
(a bounded poll), for messages that other processes enqueued.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import anyio
import anyio.from_thread
import anyio.lowlevel
from pydantic import Field, JsonValue, field_validator, model_validator

from ..injector import get_injector
from ..models import BaseOperationInput, RoutingConfig
from ..redaction import scrub, scrub_text
from ..registry import AgenTool, AgenToolRegistry
from ._common import Name, ToolkitOutput, check_json, check_name, check_text, require_fields
from ._db import open_database
from .errors import MessageNotFoundError, QueueClosedError, QueueFullError

__all__ = [
    "AGENTOOL_NAME",
    "INBOX_QUEUE",
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
]

logger = logging.getLogger(__name__)

AGENTOOL_NAME = "queue"
INBOX_QUEUE = "inbox"
"""The queue that holds the user's inbox: reserved to the scheduler, refused by the `queue` AgenTool."""
_TABLE = "agentool_queue_messages"
_EVENTS = "agentool_queue_events"  # every enqueue, in order, for other processes on the same database
EVENTS_KEPT = 10_000
# Enqueues take this lock (on PostgreSQL a transaction-level advisory lock, see agentool_bridge.postgres)
# before drawing their numbers: a sequence hands them out in the order transactions *start*, and without
# the lock a reader of the feed could pass seq 11 before seq 10 commits and never see 10.
_FEED_LOCK = 3
EVENTS_CHANNEL = "agentool_queue"
"""On PostgreSQL every enqueue NOTIFYs this channel of its schema (payload: the store's `writer`), so that
followers of the feed (the scheduler's store LISTENs there too) read `events_since` at once."""
_REMOVE_BATCH = 500  # ids per DELETE: SQLite allows 999 parameters in older builds
_COLUMNS = "seq, message_id, payload, attempts, enqueued_at, state, max_retries, last_error, updated_at"

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


class _Waiter:
    """One `dequeue` waiting for a message. `wake()` may be called from any thread."""

    def __init__(self) -> None:
        self.event = anyio.Event()
        self._thread = threading.get_ident()
        self._loop: asyncio.AbstractEventLoop | None
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # another anyio backend
            self._loop = None
            self._token = anyio.lowlevel.current_token()

    def wake(self) -> None:
        if threading.get_ident() == self._thread:
            self.event.set()
            return
        try:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self.event.set)
            else:
                anyio.from_thread.run_sync(self.event.set, token=self._token)
        except RuntimeError:  # that event loop has finished: nobody is waiting any more
            pass


def _timestamp(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _message(row: Any) -> QueueMessage:
    """A row of `_COLUMNS` as a message."""
    return QueueMessage(row[1], json.loads(row[2]), row[3], _timestamp(row[4]))


_SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {_TABLE} (
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
    f"CREATE INDEX IF NOT EXISTS {_TABLE}_by_state ON {_TABLE} (queue_name, state, seq)",
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


class QueueStore:
    """The messages of every queue in one database: the typed API behind the `queue` AgenTool.

    `database`: a SQLite file, a `postgresql://` URL (tables in the first schema of its search_path),
    or None for a private in-memory SQLite database. Thread-safe. Callers in Python (the scheduler,
    the MCP server) use these methods directly; `agentool()` builds the `queue` AgenTool over the
    same store. Enqueue hooks (`add_enqueue_hook`) belong to this store and hear every message
    committed to it.
    """

    def __init__(self, database: str | os.PathLike[str] | None = None) -> None:
        self._db = open_database(database, name=AGENTOOL_NAME)
        self._lock = threading.RLock()
        self._waiters: dict[str, set[_Waiter]] = {}
        self._hooks: list[tuple[object, EnqueueHook]] = []
        self._closed = False
        self._limits: dict[str, tuple[int, str, str]] = {}  # queue name -> (most messages, flag, what to do)
        self.writer = uuid.uuid4().hex[:16]  # marks this store's enqueues, which `events_since` leaves out
        try:
            self._db.create_tables(_SCHEMA)
        except BaseException:
            self._db.close()
            raise

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
            waiters = [w for ws in self._waiters.values() for w in ws]
        for waiter in waiters:
            waiter.wake()

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

    def _wake(self, queue_name: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(queue_name, ()))
        for waiter in waiters:
            waiter.wake()

    def _counts(self, queue_name: str) -> QueueCounts:
        rows = self._db.execute(
            f"SELECT state, COUNT(*) FROM {_TABLE} WHERE queue_name = ? GROUP BY state", (queue_name,)
        )
        counts = {state: int(count) for state, count in rows.fetchall()}
        return QueueCounts(queue_name, counts.get("ready", 0), counts.get("in_flight", 0), counts.get("dead", 0))

    def _in_flight(self, queue_name: str, message_id: str) -> Any:
        """The row (`_COLUMNS`) of an in-flight message, locked until the transaction ends."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM {_TABLE} WHERE message_id = ? AND queue_name = ?{self._db.for_update}",
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
            f"SELECT COUNT(*) FROM {_TABLE} WHERE queue_name = ? AND state <> 'dead'", (queue_name,)
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
                self._db.lock(_FEED_LOCK)  # before any number is drawn: seq order is commit order
                if queue_name in self._limits:
                    self._check_room(queue_name)  # under the lock: enqueues of every process take turns
                self._db.execute(
                    f"INSERT INTO {_TABLE} (message_id, queue_name, payload, state, max_retries, enqueued_at, "
                    "updated_at) VALUES (?, ?, ?, 'ready', ?, ?, ?)",
                    (message_id, queue_name, payload, max_retries, now, now),
                )
                [seq] = self._db.execute(
                    f"INSERT INTO {_EVENTS} (queue_name, message_id, payload, level, enqueued_at, writer) "
                    "VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
                    (queue_name, message_id, payload, level, now, self.writer),
                ).fetchone()
                if seq % 1000 == 0:
                    self._db.execute(f"DELETE FROM {_EVENTS} WHERE seq <= ?", (seq - EVENTS_KEPT,))
                self._db.notify(EVENTS_CHANNEL, self.writer)  # delivered when the transaction commits
                size = self._counts(queue_name).size
        self._wake(queue_name)
        self._run_hooks(QueueMessageEvent(queue_name, message_id, json.loads(payload), _timestamp(now), level))
        return Enqueued(queue_name, message_id, size)

    def last_event(self) -> int:
        """The position of the newest enqueue (for `events_since`)."""
        with self._lock:
            self._check_open()
            row = self._db.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {_EVENTS}").fetchone()
        return int(row[0])

    def events_since(self, seq: int, limit: int = 1000) -> tuple[int, list[QueueMessageEvent]]:
        """Enqueues by other processes on the same database after position `seq` (at most `limit` read),
        and the new position: how a process announces messages that another one enqueued."""
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                f"SELECT seq, queue_name, message_id, payload, level, enqueued_at, writer FROM {_EVENTS} "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        if not rows:
            return seq, []
        events = [
            QueueMessageEvent(queue, message_id, json.loads(payload), _timestamp(enqueued_at), level)
            for _, queue, message_id, payload, level, enqueued_at, writer in rows
            if writer != self.writer
        ]
        return int(rows[-1][0]), events

    def take(self, queue_name: str, *, auto_ack: bool = True) -> QueueMessage | None:
        """The message at the head of a queue (None if it is empty), removed or left in flight.

        On PostgreSQL, rows that another process is taking are skipped: no message is taken twice.
        """
        check_name("queue_name", queue_name)
        with self._lock:
            self._check_open()
            with self._db.transaction():
                row = self._db.execute(
                    f"SELECT {_COLUMNS} FROM {_TABLE} WHERE queue_name = ? AND state = 'ready' "
                    f"ORDER BY seq LIMIT 1{self._db.skip_locked}",
                    (queue_name,),
                ).fetchone()
                if row is None:
                    return None
                if auto_ack:
                    self._db.execute(f"DELETE FROM {_TABLE} WHERE seq = ?", (row[0],))
                else:
                    self._db.execute(
                        f"UPDATE {_TABLE} SET state = 'in_flight', updated_at = ? WHERE seq = ?",
                        (time.time(), row[0]),
                    )
        return _message(row)

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
            waiter = _Waiter() if deadline is not None else None
            if waiter is not None:
                # Register before looking, so an enqueue between the look and the wait is not missed.
                with self._lock:
                    self._waiters.setdefault(queue_name, set()).add(waiter)
            try:
                taken = self.take(queue_name, auto_ack=auto_ack)
                remaining = deadline - anyio.current_time() if deadline is not None else 0.0
                if taken is not None or waiter is None or remaining <= 0:
                    return taken
                with anyio.move_on_after(remaining if poll is None else min(remaining, poll)):
                    await waiter.event.wait()
            finally:
                if waiter is not None:
                    with self._lock:
                        waiting = self._waiters.get(queue_name)
                        if waiting is not None:
                            waiting.discard(waiter)
                            if not waiting:
                                del self._waiters[queue_name]

    def ack(self, queue_name: str, message_id: str) -> None:
        """Remove an in-flight message for good: it was processed."""
        check_name("queue_name", queue_name)
        check_name("message_id", message_id)
        with self._lock:
            self._check_open()
            with self._db.transaction():
                row = self._in_flight(queue_name, message_id)
                self._db.execute(f"DELETE FROM {_TABLE} WHERE seq = ?", (row[0],))

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
                    f"UPDATE {_TABLE} SET state = ?, attempts = ?, last_error = ?, updated_at = ? WHERE seq = ?",
                    ("dead" if dead else "ready", attempts, error, time.time(), row[0]),
                )
        if not dead:
            self._wake(queue_name)
        return Nacked(queue_name, message_id, attempts, max_retries, dead)

    def peek(self, queue_name: str, count: int = 1) -> list[QueueMessage]:
        """The first `count` ready messages, not removed."""
        check_name("queue_name", queue_name)
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM {_TABLE} WHERE queue_name = ? AND state = 'ready' ORDER BY seq LIMIT ?",
                (queue_name, count),
            ).fetchall()
        return [_message(r) for r in rows]

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
                return int(self._db.execute(f"DELETE FROM {_TABLE} WHERE queue_name = ?", (queue_name,)).rowcount)

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
                        f"DELETE FROM {_TABLE} WHERE queue_name = ? AND state = 'ready' AND message_id IN ({marks})",
                        (queue_name, *batch),
                    ).rowcount)
        return removed

    def queues(self) -> list[QueueCounts]:
        """Every queue that holds messages, with its counts, sorted by name."""
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                f"SELECT queue_name, state, COUNT(*) FROM {_TABLE} GROUP BY queue_name, state ORDER BY queue_name"
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
                f"SELECT {_COLUMNS} FROM {_TABLE} WHERE queue_name = ? AND state = 'dead' "
                "ORDER BY updated_at, seq LIMIT ?",
                (queue_name, limit),
            ).fetchall()
            total = self._counts(queue_name).dead_lettered
        letters = [
            DeadLetter(r[1], json.loads(r[2]), r[3], _timestamp(r[4]), r[7], _timestamp(r[8]))
            for r in rows
        ]
        return letters, total

    def agentool(self) -> AgenTool:
        """The `queue` AgenTool over this store (not registered; closing it closes the store)."""
        return _queue_agentool(self)


def _name(queue_name: str | None) -> str:
    """A queue name as the store keeps it: inside a run, a revealed secret in it becomes its reference."""
    assert queue_name is not None  # required by every operation that names a queue
    return scrub_text(queue_name)


def _queue_agentool(store: QueueStore) -> AgenTool:
    def enqueue(queue_name: str, message: Any, max_retries: int) -> ToolkitOutput:
        done = store.enqueue(queue_name, message, max_retries=max_retries)
        return ToolkitOutput(
            operation="enqueue",
            message=f"Enqueued message {done.message_id} to {queue_name!r} at position {done.position}.",
            data={"queue_name": queue_name, "message_id": done.message_id, "position": done.position,
                  "size": done.position},
        )

    async def dequeue(queue_name: str, max_wait: float | None, auto_ack: bool) -> ToolkitOutput:
        taken = await store.dequeue(queue_name, wait=max_wait, auto_ack=auto_ack)
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
        store.ack(queue_name, message_id)
        return ToolkitOutput(
            operation="ack",
            message=f"Acknowledged message {message_id} of {queue_name!r}.",
            data={"queue_name": queue_name, "message_id": message_id, "acked": True},
        )

    def nack(queue_name: str, message_id: str, error: str | None) -> ToolkitOutput:
        done = store.nack(queue_name, message_id, error)
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
        with store._lock:  # one consistent view of the head and the size
            messages = store.peek(queue_name, count)
            size = store.counts(queue_name).size
        return ToolkitOutput(
            operation="peek",
            message=f"{len(messages)} of {size} messages at the head of {queue_name!r}.",
            data={"queue_name": queue_name, "messages": [m.as_dict() for m in messages], "count": len(messages),
                  "size": size},
        )

    def size(queue_name: str) -> ToolkitOutput:
        counts = store.counts(queue_name)
        return ToolkitOutput(
            operation="size",
            message=f"Queue {queue_name!r} has {counts.size} ready messages.",
            data=counts.as_dict(),
        )

    def clear(queue_name: str) -> ToolkitOutput:
        removed = store.clear(queue_name)
        return ToolkitOutput(
            operation="clear",
            message=f"Removed {removed} messages from {queue_name!r}.",
            data={"queue_name": queue_name, "removed": removed},
        )

    def list_queues() -> ToolkitOutput:
        queues = store.queues()
        return ToolkitOutput(
            operation="list_queues",
            message=f"{len(queues)} queues.",
            data={"queues": [q.as_dict() for q in queues], "count": len(queues)},
        )

    def get_dlq(queue_name: str, limit: int) -> ToolkitOutput:
        letters, total = store.dead_letters(queue_name, limit)
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


def create_queue_agent(
    database: str | os.PathLike[str] | None = None, *, registry: AgenToolRegistry | None = None
) -> AgenTool:
    """Register (or replace) the `queue` AgenTool, stored in `database` (a SQLite file, a PostgreSQL URL) or in memory.

    It goes into `registry` (default: the active injector's); replacing it closes the previous store.
    """
    return (registry or get_injector().registry).register(QueueStore(database).agentool())
