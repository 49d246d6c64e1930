"""Scheduler events -> MCP notifications, in both protocol eras.

- 2026-07-28 era: events go to the server's `SubscriptionBus`; the SDK delivers them on the
  `subscriptions/listen` streams that asked for them.
- Handshake era (2024-11-05 .. 2025-11-25): `HandshakeSessions` keeps, per connection, the
  subscribed resource URIs and the `logging/setLevel` level, and sends
  `notifications/resources/updated`, `.../list_changed` and `notifications/message` itself.
  A connection is dropped when it closes (through the connection's exit stack).

A message in a queue updates `scheduler://queues/<name>` and `scheduler://queues` and is a log message of logger
`mcp_scheduler.queue.<name>`, for the principals whose queue it is alone (`queue_owners`: its owner under the name
it gave, admins under the stored name; `seen_uris`, which `listen.py` applies too); a message in the inbox (queue
`inbox`) also updates `scheduler://inbox` and is logged instead as `mcp_scheduler.inbox`, at its own level (info,
warning, error), to the principals that may read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.server.subscriptions import ResourcesListChanged, ResourceUpdated, ServerEvent, SubscriptionBus

from agentool_bridge.toolkits.inbox import INBOX_QUEUE
from agentool_bridge.untrusted import CONTENT_LIMIT, clip_content

from ..events import EventBus, JobEvent, QueueEvent, RunEvent, SchedulerEvent
from ..principals import LOCAL, Principal
from ..queue_owners import queue_seen

__all__ = ["LOG_LEVELS", "HandshakeSessions", "Notifier", "history_uri", "job_uri", "queue_uri", "seen_events",
           "seen_uris"]

logger = logging.getLogger(__name__)

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
JOBS_URI = "scheduler://jobs"
QUEUES_URI = "scheduler://queues"
STATUS_URI = "scheduler://status"
INBOX_URI = "scheduler://inbox"
INBOX_LOGGER = "mcp_scheduler.inbox"
QUEUE_LOGGER = "mcp_scheduler.queue"
Told = Callable[[Principal], tuple[Any, str] | None]
"""What a principal is told of a message (its data and the logger's name), or None: nothing."""


def job_uri(job_id: str) -> str:
    return f"{JOBS_URI}/{job_id}"


def history_uri(job_id: str) -> str:
    return f"{JOBS_URI}/{job_id}/history"


def queue_uri(queue_name: str) -> str:
    return f"{QUEUES_URI}/{queue_name}"


def seen_uris(principal: Principal, uri: str) -> list[str]:
    """What `principal` is told is updated when `uri` is: a queue's resource (named by the stored name) under the
    name it knows the queue by, with the list of its queues, or nothing when the queue is not its own; the inbox's
    and any other URI as they are."""
    stored = uri.removeprefix(QUEUES_URI + "/")
    if stored == uri or stored == INBOX_QUEUE:
        return [uri]
    name = queue_seen(stored, principal)
    return [] if name is None else [queue_uri(name), QUEUES_URI]


def seen_events(principal: Principal, event: ServerEvent) -> list[ServerEvent]:
    """`event` of the subscription bus as `principal`'s listen streams get it (`seen_uris`)."""
    if isinstance(event, ResourceUpdated):
        return [ResourceUpdated(uri=uri) for uri in seen_uris(principal, event.uri)]
    return [event]


@dataclass(eq=False)
class _Peer:
    connection: Any
    principal: Principal = LOCAL  # whose session: its inbox messages are about that principal's jobs alone
    uris: set[str] = field(default_factory=set)
    level: str = "debug"


class HandshakeSessions:
    """Handshake-era connections: their resource subscriptions and log levels."""

    def __init__(self) -> None:
        self._peers: dict[int, _Peer] = {}

    def __len__(self) -> int:
        return len(self._peers)

    def track(self, connection: Any, principal: Principal | None = None) -> _Peer:
        """Remember `connection` (of `principal`, as its first request said) until it closes (idempotent)."""
        key = id(connection)
        peer = self._peers.get(key)
        if peer is None:
            peer = self._peers[key] = _Peer(connection, principal or LOCAL)
            connection.exit_stack.callback(self._peers.pop, key, None)
        return peer

    def subscribe(self, connection: Any, uri: str) -> None:
        self.track(connection).uris.add(uri)

    def unsubscribe(self, connection: Any, uri: str) -> None:
        self.track(connection).uris.discard(uri)

    def set_level(self, connection: Any, level: str) -> None:
        self.track(connection).level = level

    async def resource_updated(self, uri: str) -> None:
        """`notifications/resources/updated` to each connection subscribed to `uri` as its principal sees it."""
        for peer in list(self._peers.values()):
            for seen in seen_uris(peer.principal, uri):
                if seen in peer.uris:
                    await peer.connection.send_resource_updated(seen)

    async def resources_list_changed(self) -> None:
        for peer in list(self._peers.values()):
            await peer.connection.send_resource_list_changed()

    async def log(self, level: str, told: Told) -> None:
        """`notifications/message` to each connection at `level` or below: what `told` gives its principal (the data
        and the logger's name), if anything."""
        rank = LOG_LEVELS.index(level)
        for peer in list(self._peers.values()):
            if rank >= LOG_LEVELS.index(peer.level) and (said := told(peer.principal)) is not None:
                await peer.connection.log(level, *said)


def _inbox_log(event: QueueEvent, content_chars: int) -> tuple[str, Any, str]:
    """An inbox message as a log message: at its own level (info, warning, error), the message as data."""
    message = event.message if isinstance(event.message, dict) else {"message": event.message}
    level = message.get("level")
    if level not in ("info", "warning", "error"):
        level = event.level
    return level, clip_content({"id": event.message_id, **message}, content_chars), INBOX_LOGGER


def _inbox_told(event: QueueEvent, content_chars: int, may_read: Callable[[Principal, str | None], bool] | None
                ) -> tuple[str, Told]:
    """An inbox message's level, and what each principal is told of it: all of it if it may read the message (one
    about its own job, or any for an admin), else nothing."""
    level, data, name = _inbox_log(event, content_chars)
    job = event.message.get("job_id") if isinstance(event.message, dict) else None
    job = job if isinstance(job, str) else None
    return level, lambda principal: (data, name) if may_read is None or may_read(principal, job) else None


def _queue_told(event: QueueEvent, content_chars: int) -> Told:
    """What each principal is told of a message in a queue: the message under the name it knows the queue by, if
    the queue is its own (any for an admin), else nothing."""
    message = clip_content(event.message, content_chars)

    def told(principal: Principal) -> tuple[Any, str] | None:
        name = queue_seen(event.queue_name, principal)
        if name is None:
            return None
        return {"queue_name": name, "message_id": event.message_id, "message": message}, f"{QUEUE_LOGGER}.{name}"

    return told


class Notifier:
    """Forwards scheduler events to both eras from one task; it never falls behind without bound.

    Listeners only note what changed: a resource updated many times before the task gets to it
    is announced once, the list change once, and queue messages (`notifications/message`) are kept
    up to `MAX_PENDING_MESSAGES`, the oldest dropped first and counted in a log line.
    """

    MAX_PENDING_MESSAGES = 1000

    def __init__(
        self, bus: SubscriptionBus, sessions: HandshakeSessions, content_chars: int = CONTENT_LIMIT,
        may_read: Callable[[Principal, str | None], bool] | None = None,
    ) -> None:
        """`may_read(principal, job_id)`: whether a principal's sessions are told an inbox message about `job_id`
        (None: every session is told every message)."""
        self.bus = bus
        self._may_read = may_read
        self.content_chars = content_chars  # labelled outside content in a queue message is cut to this
        self.sessions = sessions
        self._updated: dict[str, None] = {}  # an ordered set of URIs
        self._list_changed = False
        self._messages: deque[tuple[str, Told]] = deque(maxlen=self.MAX_PENDING_MESSAGES)
        self._dropped = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None

    def start(self, events: EventBus) -> None:
        self._wake = asyncio.Event()
        self._unsubscribe = events.subscribe(self.note)
        self._task = asyncio.create_task(self._run(), name="mcp-scheduler-notify")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def note(self, event: SchedulerEvent) -> None:
        """Record what `event` changed, for the next delivery (called synchronously by the event bus)."""
        if isinstance(event, RunEvent):
            if event.kind == "finished":
                self._updated[job_uri(event.job_id)] = None
                self._updated[history_uri(event.job_id)] = None
        elif isinstance(event, JobEvent):
            if event.kind in ("added", "removed", "completed"):
                self._list_changed = True
            self._updated[JOBS_URI] = None
            self._updated[job_uri(event.job_id)] = None
        elif isinstance(event, QueueEvent):
            # A queue's URI names its stored name: `seen_uris` tells each principal of its own queues alone.
            self._updated[queue_uri(event.queue_name)] = None
            if len(self._messages) == self._messages.maxlen:
                self._dropped += 1
            if event.queue_name == INBOX_QUEUE:
                self._updated[QUEUES_URI] = None
                self._updated[INBOX_URI] = None
                self._messages.append(_inbox_told(event, self.content_chars, self._may_read))
            else:
                self._messages.append((event.level, _queue_told(event, self.content_chars)))
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.deliver()
            except Exception:
                logger.exception("Could not deliver notifications")

    async def deliver(self) -> None:
        """Send the notifications for everything noted so far."""
        list_changed, self._list_changed = self._list_changed, False
        updated, self._updated = self._updated, {}
        messages = list(self._messages)
        self._messages.clear()
        dropped, self._dropped = self._dropped, 0
        if list_changed:
            await self.bus.publish(ResourcesListChanged())
            await self.sessions.resources_list_changed()
        for uri in updated:
            await self.bus.publish(ResourceUpdated(uri=uri))
            await self.sessions.resource_updated(uri)
        if dropped:
            logger.warning("%d queue notification(s) dropped: clients could not keep up", dropped)
        for level, told in messages:
            await self.sessions.log(level, told)
