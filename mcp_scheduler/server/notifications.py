"""Scheduler events -> MCP notifications, in both protocol eras.

- 2026-07-28 era: events go to the server's `SubscriptionBus`; the SDK delivers them on the
  `subscriptions/listen` streams that asked for them.
- Handshake era (2024-11-05 .. 2025-11-25): `HandshakeSessions` keeps, per connection, the
  subscribed resource URIs and the `logging/setLevel` level, and sends
  `notifications/resources/updated`, `.../list_changed` and `notifications/message` itself.
  A connection is dropped when it closes (through the connection's exit stack).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from mcp.server.subscriptions import ResourcesListChanged, ResourceUpdated, SubscriptionBus

from ..events import EventBus, JobEvent, QueueEvent, RunEvent, SchedulerEvent

__all__ = ["HandshakeSessions", "Notifier", "job_uri", "history_uri", "queue_uri", "LOG_LEVELS"]

logger = logging.getLogger(__name__)

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
JOBS_URI = "scheduler://jobs"
QUEUES_URI = "scheduler://queues"
STATUS_URI = "scheduler://status"


def job_uri(job_id: str) -> str:
    return f"{JOBS_URI}/{job_id}"


def history_uri(job_id: str) -> str:
    return f"{JOBS_URI}/{job_id}/history"


def queue_uri(queue_name: str) -> str:
    return f"{QUEUES_URI}/{queue_name}"


@dataclass(eq=False)
class _Peer:
    connection: Any
    uris: set[str] = field(default_factory=set)
    level: str = "debug"


class HandshakeSessions:
    """Handshake-era connections: their resource subscriptions and log levels."""

    def __init__(self) -> None:
        self._peers: dict[int, _Peer] = {}

    def __len__(self) -> int:
        return len(self._peers)

    def track(self, connection: Any) -> _Peer:
        """Remember `connection` until it closes (idempotent)."""
        key = id(connection)
        peer = self._peers.get(key)
        if peer is None:
            peer = self._peers[key] = _Peer(connection)
            connection.exit_stack.callback(self._peers.pop, key, None)
        return peer

    def subscribe(self, connection: Any, uri: str) -> None:
        self.track(connection).uris.add(uri)

    def unsubscribe(self, connection: Any, uri: str) -> None:
        self.track(connection).uris.discard(uri)

    def set_level(self, connection: Any, level: str) -> None:
        self.track(connection).level = level

    async def resource_updated(self, uri: str) -> None:
        for peer in list(self._peers.values()):
            if uri in peer.uris:
                await peer.connection.send_resource_updated(uri)

    async def resources_list_changed(self) -> None:
        for peer in list(self._peers.values()):
            await peer.connection.send_resource_list_changed()

    async def log(self, level: str, data: Any, logger_name: str) -> None:
        rank = LOG_LEVELS.index(level)
        for peer in list(self._peers.values()):
            if rank >= LOG_LEVELS.index(peer.level):
                await peer.connection.log(level, data, logger_name)


class Notifier:
    """Forwards scheduler events to both eras from one task (listeners only enqueue; no polling)."""

    def __init__(self, bus: SubscriptionBus, sessions: HandshakeSessions) -> None:
        self.bus = bus
        self.sessions = sessions
        self._queue: asyncio.Queue[SchedulerEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None

    def start(self, events: EventBus) -> None:
        self._queue = asyncio.Queue()
        self._unsubscribe = events.subscribe(self._queue.put_nowait)
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

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self.deliver(event)
            except Exception:
                logger.exception("Could not deliver notification for %r", event)

    async def updated(self, *uris: str) -> None:
        for uri in uris:
            await self.bus.publish(ResourceUpdated(uri=uri))
            await self.sessions.resource_updated(uri)

    async def deliver(self, event: SchedulerEvent) -> None:
        """Send the notifications one scheduler event calls for."""
        if isinstance(event, RunEvent):
            if event.kind == "finished":
                await self.updated(job_uri(event.job_id), history_uri(event.job_id))
        elif isinstance(event, JobEvent):
            if event.kind in ("added", "removed", "completed"):
                await self.bus.publish(ResourcesListChanged())
                await self.sessions.resources_list_changed()
            await self.updated(JOBS_URI, job_uri(event.job_id))
        elif isinstance(event, QueueEvent):
            await self.updated(queue_uri(event.queue_name), QUEUES_URI)
            data = {"queue_name": event.queue_name, "message_id": event.message_id, "message": event.message}
            await self.sessions.log(event.level, data, f"mcp_scheduler.queue.{event.queue_name}")
