"""Scheduler events -> MCP notifications, in both protocol eras.

- 2026-07-28 era: events go to the server's `SubscriptionBus`; the SDK delivers them on the
  `subscriptions/listen` streams that asked for them.
- Handshake era (2024-11-05 .. 2025-11-25): `HandshakeSessions` keeps, per connection, the
  subscribed resource URIs and the `logging/setLevel` level, and sends
  `notifications/resources/updated`, `.../list_changed` and `notifications/message` itself.
  A connection is dropped when it closes (through the connection's exit stack).

What is about a job goes only to the sessions whose principal may see it (`owners.sees_owners`: its creator's, and
admins'): `resources/updated` of `scheduler://jobs`, `scheduler://jobs/{id}` and its history, and
`resources/list_changed` (jobs added, removed or completed) carry the owners of the jobs they are about (`Owners`;
a job's from its event, a run's from its job, so that a run of a job gone, or of no job, is the admins', as its
history is). A subscription to a resource its principal may not read is taken as any other and is never told
anything: the answer is the same whether the job exists or not, and the owner is checked when each change is told.
A message in a queue updates `scheduler://queues/<name>` and `scheduler://queues` and is a log message of logger
`mcp_scheduler.queue.<name>`, for the principals whose queue it is alone (`queue_owners`: its owner under the name
it gave, admins under the stored name; `seen_uris`, which `listen.py` applies too); a message in the inbox (queue
`inbox`) also updates `scheduler://inbox` and is logged instead as `mcp_scheduler.inbox`, at its own level (info,
warning, error), to the principals that may read it (`inbox.readable`: those of the job it is about, and admins),
as are the updates of the inbox's resources.
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
from ..owners import sees_owners
from ..principals import LOCAL, Principal
from ..queue_owners import queue_seen

__all__ = ["LOG_LEVELS", "HandshakeSessions", "Notifier", "OwnedListChanged", "OwnedUpdate", "Owners", "history_uri",
           "job_uri", "queue_uri", "seen_events", "seen_uris", "told_of"]

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
Owners = frozenset[str | None] | None
"""Whose jobs a notification is about: told to their principals' sessions and to admins' (an empty set, or one of
None alone: to admins'); None: to any session (a queue's, which `seen_uris` tells its owner alone)."""


def told_of(principal: Principal, owners: Owners) -> bool:
    """Whether `principal`'s sessions are told of a change about the jobs of `owners`."""
    return owners is None or sees_owners(principal, owners)


def _joined(told: Owners, more: Owners) -> Owners:
    """The owners of two changes told as one."""
    return None if told is None or more is None else told | more


@dataclass(frozen=True)
class OwnedUpdate(ResourceUpdated):
    """`ResourceUpdated` for the subscription bus, with the owners of the jobs it is about (`seen_events`)."""

    owners: Owners


@dataclass(frozen=True)
class OwnedListChanged(ResourcesListChanged):
    """`ResourcesListChanged` for the subscription bus, with the owners of the jobs added, removed or completed."""

    owners: Owners


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
    """`event` of the subscription bus as `principal`'s listen streams get it: nothing about jobs it may not see
    (`told_of`), a queue's update under the name it knows the queue by (`seen_uris`)."""
    if isinstance(event, OwnedUpdate | OwnedListChanged) and not told_of(principal, event.owners):
        return []
    if isinstance(event, ResourceUpdated):
        return [ResourceUpdated(uri=uri) for uri in seen_uris(principal, event.uri)]
    if isinstance(event, ResourcesListChanged):
        return [ResourcesListChanged()]
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

    async def resource_updated(self, uri: str, owners: Owners) -> None:
        """`notifications/resources/updated` to each connection subscribed to `uri` as its principal sees it, if it
        may see the jobs of `owners` (`told_of`)."""
        for peer in list(self._peers.values()):
            if told_of(peer.principal, owners):
                for seen in seen_uris(peer.principal, uri):
                    if seen in peer.uris:
                        await peer.connection.send_resource_updated(seen)

    async def resources_list_changed(self, owners: Owners) -> None:
        """`notifications/resources/list_changed` to each connection whose principal may see the jobs of `owners`."""
        for peer in list(self._peers.values()):
            if told_of(peer.principal, owners):
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


def _inbox_owners(event: QueueEvent, owner_of: Callable[[str], str | None]) -> frozenset[str | None]:
    """Who may read an inbox message (`inbox.readable`): the owner of the job it is about (and admins); a message
    about no job, or a job gone, is the admins'."""
    job = event.message.get("job_id") if isinstance(event.message, dict) else None
    return frozenset({owner_of(job)}) if isinstance(job, str) else frozenset()


def _inbox_told(event: QueueEvent, content_chars: int, owners: Owners) -> tuple[str, Told]:
    """An inbox message's level, and what each principal is told of it: all of it if it may read the message (one
    about its own job, or any for an admin), else nothing."""
    level, data, name = _inbox_log(event, content_chars)
    return level, lambda principal: (data, name) if told_of(principal, owners) else None


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
        self, bus: SubscriptionBus, sessions: HandshakeSessions, owner_of: Callable[[str], str | None],
        content_chars: int = CONTENT_LIMIT,
    ) -> None:
        """`owner_of(job_id)`: who created the job now (None: nobody, or no such job), whose sessions are told of its
        runs and of inbox messages about it (with admins')."""
        self.bus = bus
        self._owner_of = owner_of
        self.content_chars = content_chars  # labelled outside content in a queue message is cut to this
        self.sessions = sessions
        self._updated: dict[str, Owners] = {}  # the URIs updated, in order, and whose jobs they are about
        self._list_changed: frozenset[str | None] | None = None  # None: unchanged; else the owners told
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

    def _update(self, owners: Owners, *uris: str) -> None:
        for uri in uris:
            self._updated[uri] = _joined(self._updated.get(uri, frozenset()), owners)

    def note(self, event: SchedulerEvent) -> None:
        """Record what `event` changed, for the next delivery (called synchronously by the event bus)."""
        if isinstance(event, RunEvent):
            if event.kind == "finished":  # its job's owner's while the job is there, as the history is
                self._update(frozenset({self._owner_of(event.job_id)}), job_uri(event.job_id),
                             history_uri(event.job_id))
        elif isinstance(event, JobEvent):
            owners = frozenset({event.owner})
            if event.kind in ("added", "removed", "completed"):
                self._list_changed = owners if self._list_changed is None else self._list_changed | owners
            self._update(owners, JOBS_URI, job_uri(event.job_id))
        elif isinstance(event, QueueEvent):
            if len(self._messages) == self._messages.maxlen:
                self._dropped += 1
            if event.queue_name == INBOX_QUEUE:
                owners = _inbox_owners(event, self._owner_of)
                self._update(owners, queue_uri(INBOX_QUEUE), QUEUES_URI, INBOX_URI)
                self._messages.append(_inbox_told(event, self.content_chars, owners))
            else:
                # A queue's URI names its stored name: `seen_uris` tells each principal of its own queues alone.
                self._update(None, queue_uri(event.queue_name))
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
        list_changed, self._list_changed = self._list_changed, None
        updated, self._updated = self._updated, {}
        messages = list(self._messages)
        self._messages.clear()
        dropped, self._dropped = self._dropped, 0
        if list_changed is not None:
            await self.bus.publish(OwnedListChanged(owners=list_changed))
            await self.sessions.resources_list_changed(list_changed)
        for uri, owners in updated.items():
            await self.bus.publish(OwnedUpdate(uri=uri, owners=owners))
            await self.sessions.resource_updated(uri, owners)
        if dropped:
            logger.warning("%d queue notification(s) dropped: clients could not keep up", dropped)
        for level, told in messages:
            await self.sessions.log(level, told)
