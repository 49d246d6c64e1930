"""The in-process event stream of the scheduler (what the MCP server turns into notifications)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from agentool_bridge.toolkits import QueueLevel

from .models import RunRecord

__all__ = ["SchedulerEvent", "JobEvent", "RunEvent", "QueueEvent", "EventBus", "Meter"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobEvent:
    """A job was added, updated, removed, paused, resumed or completed.

    `owner`: who created the job (`JobDefinition.owner`; None: a job stored without one, whose events are told to
    admins alone), carried because a removed job is gone by the time its event is told; `reason`: why a job was
    paused by the scheduler (after failures), None when a user paused it; `remote`: the change was made by another
    process and read from the store.
    """

    kind: Literal["added", "updated", "removed", "paused", "resumed", "completed"]
    job_id: str
    owner: str | None
    reason: str | None = None
    remote: bool = False


@dataclass(frozen=True, slots=True)
class RunEvent:
    """A run started or finished (`record.status` tells how); `traceparent`: the finished run's span, if traced;
    `remote`: in another process, read from the store."""

    kind: Literal["started", "finished"]
    record: RunRecord
    traceparent: str | None = None
    remote: bool = False

    @property
    def job_id(self) -> str:
        return self.record.job_id


@dataclass(frozen=True, slots=True)
class QueueEvent:
    """A message landed in a queue: a job's result (`info`) or failure (`error`)."""

    queue_name: str
    message_id: str
    message: Any
    level: QueueLevel = "info"


SchedulerEvent = JobEvent | RunEvent | QueueEvent
Listener = Callable[[SchedulerEvent], None]


class Meter(Protocol):
    """What the run path measures that no event carries (the metrics, when they are on: `EventBus.meter`)."""

    def fire_not_run(self, job_id: str, status: str, note: str, count: int = 1) -> None:
        """`count` fires did not run (`status` missed, skipped or interrupted; `note` says why)."""

    def store_write(self, seconds: float) -> None:
        """One batch of run records and bookkeeping took `seconds` to commit."""


class EventBus:
    """Synchronous fan-out of events to listeners; a failing listener is logged and skipped.

    Listeners must not block: an async consumer should hand events to its own task (for
    example through an anyio memory object stream).
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self.meter: Meter | None = None
        """Set while metrics are on; None costs the run path one attribute read."""

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(event)` for every event; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def publish(self, event: SchedulerEvent) -> None:
        """Deliver `event` to every listener."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("Event listener %r failed on %r", listener, event)
