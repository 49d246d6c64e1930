"""Stand-in AgenTools and an event recorder shared by the scheduler tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from agentool_bridge import AgenToolRegistry, BaseOperationInput, RoutingConfig, register_agentool
from mcp_scheduler import EventBus, JobEvent, RunEvent, SchedulerEvent, SchedulerInput

Predicate = Callable[[SchedulerEvent], bool]


class EventRecorder:
    """Records every event of a bus and lets a test wait (with a timeout) for the ones it expects."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[SchedulerEvent] = []
        self._waiters: list[tuple[Predicate, int, asyncio.Event]] = []
        self.unsubscribe = bus.subscribe(self._on_event)

    def _on_event(self, event: SchedulerEvent) -> None:
        self.events.append(event)
        for predicate, count, ready in self._waiters:
            if self._count(predicate) >= count:
                ready.set()

    def _count(self, predicate: Predicate) -> int:
        return sum(1 for e in self.events if predicate(e))

    def matching(self, predicate: Predicate) -> list[SchedulerEvent]:
        return [e for e in self.events if predicate(e)]

    async def wait_for(self, predicate: Predicate, count: int = 1, within: float = 5.0) -> list[SchedulerEvent]:
        """Wait until `count` recorded events match `predicate`; return them all."""
        ready = asyncio.Event()
        if self._count(predicate) >= count:
            ready.set()
        entry = (predicate, count, ready)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(ready.wait(), within)
        finally:
            self._waiters.remove(entry)
        return self.matching(predicate)

    def runs(self, job_id: str, kind: str = "finished") -> list[RunEvent]:
        return [e for e in self.events if isinstance(e, RunEvent) and e.kind == kind and e.job_id == job_id]

    def job_events(self, job_id: str) -> list[str]:
        return [e.kind for e in self.events if isinstance(e, JobEvent) and e.job_id == job_id]


def finished(job_id: str, status: str | None = None) -> Predicate:
    """Matches a finished run of `job_id` (with `status`, if given)."""

    def predicate(event: SchedulerEvent) -> bool:
        return (
            isinstance(event, RunEvent)
            and event.kind == "finished"
            and event.job_id == job_id
            and (status is None or event.record.status == status)
        )

    return predicate


def started(job_id: str) -> Predicate:
    """Matches a started run of `job_id`."""

    def predicate(event: SchedulerEvent) -> bool:
        return isinstance(event, RunEvent) and event.kind == "started" and event.job_id == job_id

    return predicate


# ----------------------------------------------------------------------------- stand-in AgenTools


class EchoInput(BaseOperationInput):
    """Returns its input."""

    operation: Literal["echo"] = Field(description="Echo the input back.")
    text: str = Field(description="Text to echo.")
    count: int = Field(default=1, description="A typed number, to test validation.")


class FailInput(BaseOperationInput):
    """Always raises."""

    operation: Literal["fail"] = Field(description="Raise StandInFailure.")
    reason: str = Field(default="on purpose", description="Put into the error message.")


class SlowInput(BaseOperationInput):
    """Waits until the test releases it."""

    operation: Literal["wait"] = Field(description="Wait for the release event.")
    label: str = Field(default="slow", description="Echoed back.")


class StandInFailure(RuntimeError):
    """What the `fail` AgenTool raises."""


@dataclass
class Calls:
    """Inputs a stand-in AgenTool received, in order."""

    inputs: list[dict[str, Any]] = field(default_factory=list)


def register_echo(name: str = "echo", registry: AgenToolRegistry | None = None) -> Calls:
    calls = Calls()

    def echo(operation: str, text: str, count: int) -> dict[str, Any]:
        data = {"operation": operation, "text": text, "count": count}
        calls.inputs.append(data)
        return data

    register_agentool(name, EchoInput, RoutingConfig(operation_map={"echo": ("echo", None)}), [echo], registry=registry)
    return calls


def register_fail(name: str = "fail") -> Calls:
    calls = Calls()

    def fail(operation: str, reason: str) -> dict[str, Any]:
        calls.inputs.append({"operation": operation, "reason": reason})
        raise StandInFailure(f"fail AgenTool failed: {reason}")

    register_agentool(name, FailInput, RoutingConfig(operation_map={"fail": ("fail", None)}), [fail])
    return calls


@dataclass
class Slow:
    """Control of the `slow` AgenTool: runs block until `release` is set."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: int = 0
    finished: int = 0


def register_slow(name: str = "slow") -> Slow:
    control = Slow()

    async def wait(operation: str, label: str) -> dict[str, Any]:
        control.started += 1
        await control.release.wait()
        control.finished += 1
        return {"label": label}

    register_agentool(name, SlowInput, RoutingConfig(operation_map={"wait": ("wait", None)}), [wait])
    return control


def register_recording(name: str, input_schema: type[BaseOperationInput]) -> Calls:
    """A stand-in for an AgenTool we do not ship (metrics, storage_fs, templates, config): records its input."""
    calls = Calls()

    def handle(**kwargs: Any) -> dict[str, Any]:
        calls.inputs.append(kwargs)
        return {"agentool": name, "received": kwargs}

    operations = input_schema.model_fields["operation"].annotation.__args__  # type: ignore[union-attr]
    register_agentool(
        name, input_schema, RoutingConfig(operation_map={op: ("handle", None) for op in operations}), [handle]
    )
    return calls


# Input schemas matching the seed's examples -------------------------------------------------------


class MetricsInput(BaseOperationInput):
    """Stand-in for the seed's `metrics` AgenTool."""

    operation: Literal["export"] = Field(description="Export metrics.")
    format: Literal["json", "prometheus"] = Field(description="Export format.")


class StorageFsInput(BaseOperationInput):
    """Stand-in for the seed's `storage_fs` AgenTool."""

    operation: Literal["copy"] = Field(description="Copy a path.")
    source: str = Field(description="Source path.")
    destination: str = Field(description="Destination path.")


class TemplatesInput(BaseOperationInput):
    """Stand-in for the seed's `templates` AgenTool."""

    operation: Literal["render"] = Field(description="Render a template.")
    template_name: str = Field(description="Template to render.")
    variables: dict[str, Any] = Field(default_factory=dict, description="Template variables.")


class ConfigInput(BaseOperationInput):
    """Stand-in for the seed's `config` AgenTool."""

    operation: Literal["get"] = Field(description="Read a key.")
    key: str = Field(description="Dotted key.")
    default: Any = Field(default=None, description="Value when the key is missing.")


ECHO = {"operation": "echo", "text": "hello"}
"""The input of the `echo` jobs that `request` builds."""


def request(
    job_id: str | None,
    schedule_type: str = "interval",
    schedule: str = "1 hour",
    agentool_name: str = "echo",
    input_data: dict[str, Any] | None = None,
    **extra: Any,
) -> SchedulerInput:
    """A `schedule` request; by default an hourly `echo` job."""
    return SchedulerInput(
        operation="schedule",
        job_id=job_id,
        schedule_type=schedule_type,  # type: ignore[arg-type]
        schedule=schedule,
        agentool_name=agentool_name,
        input_data=ECHO if input_data is None else input_data,
        **extra,
    )


def set_stored_next_run(database: str, job_id: str, when: datetime) -> None:
    """Edit a closed scheduler's database as if it had been down since before `when`."""
    with sqlite3.connect(database) as conn:
        changed = conn.execute(
            "UPDATE scheduler_jobs SET next_run_time = ? WHERE job_id = ?", (when.isoformat(), job_id)
        ).rowcount
    conn.close()
    assert changed == 1


class _VirtualTimer:
    """A callback of a `VirtualClock`, due at `due` on its monotonic clock."""

    __slots__ = ("callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], object]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A clock (`mcp_scheduler.clocks.Clock`) that moves only when told (`advance`), firing the timers that come
    due on the way in order, each with the clock at its own time. It starts at the real time (or `start`), so
    that the engine, which keeps wall time, fires nothing the test did not ask for. A timer due at once
    (`delay <= 0`) runs soon in the event loop, as the system clock's would, without an `advance`."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._mono = 1000.0
        self._timers: list[tuple[float, int, _VirtualTimer]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def call_later(self, delay: float, callback: Callable[[], object]) -> _VirtualTimer | asyncio.Handle:
        if delay <= 0:
            return asyncio.get_running_loop().call_soon(callback)
        timer = _VirtualTimer(self._mono + delay, callback)
        heapq.heappush(self._timers, (timer.due, next(self._order), timer))
        return timer

    def pending(self) -> list[float]:
        """Seconds from now until each timer that is still armed, soonest first."""
        return sorted(t.due - self._mono for _, _, t in self._timers if not t.cancelled)

    def advance(self, seconds: float) -> None:
        """Move both clocks `seconds` forward, calling each timer due by then at its time (the callbacks run
        now; tasks they start run when the test next awaits)."""
        end = self._mono + seconds
        while self._timers and self._timers[0][0] <= end:
            due, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self._move(due - self._mono)
                timer.callback()
        self._move(end - self._mono)

    def _move(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
