"""Run execution: what happens when a job is due, or run by hand.

Every execution becomes one `RunRecord` with the truth (scheduled time, start, end, duration,
status, result or error), sent to the job's result or error queue where it has one, announced on
the event bus and handed to the history writer. Runs that do not happen (missed, coalesced,
skipped) are recorded too.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import anyio
import pydantic_core
from pydantic import BaseModel, TypeAdapter

from agentool_bridge import AgenToolInjector
from agentool_bridge.toolkits import QueueStore

from .events import EventBus, JobEvent, RunEvent
from .history import HistoryWriter
from .jobs import Job, RunStatus, RunTrigger
from .models import ErrorInfo, RunRecord
from .timestamps import utcnow

__all__ = ["AdHocRun", "RunExecutor", "RunTarget"]

logger = logging.getLogger(__name__)

MAX_RESULT_BYTES = 64 * 1024
MIN_GRACE_SECONDS = 1.0
_JSON = TypeAdapter(Any)


class RunTarget(Protocol):
    """What a run executes: a `JobDefinition`, or an `AdHocRun` for run_now without a job."""

    @property
    def job_id(self) -> str: ...
    @property
    def agentool_name(self) -> str: ...
    @property
    def input_data(self) -> dict[str, Any]: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def result_queue(self) -> str | None: ...
    @property
    def error_queue(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class AdHocRun:
    """A run_now of an AgenTool that is not a scheduled job."""

    job_id: str
    agentool_name: str
    input_data: dict[str, Any]
    timeout: float | None = None
    result_queue: str | None = None
    error_queue: str | None = None


@dataclass
class _Outcome:
    status: RunStatus
    result: Any = None
    error: ErrorInfo | None = None
    notes: list[str] = field(default_factory=list)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        value = _JSON.dump_python(value, mode="json")
    except Exception:
        value = repr(value)
    text = pydantic_core.to_json(value, fallback=str)
    if len(text) > MAX_RESULT_BYTES:
        return {"truncated": True, "bytes": len(text), "preview": text[:4000].decode(errors="replace")}
    return value


def _settled(outcome: _Outcome) -> _Outcome:
    """The outcome with its result in JSON form (as history, queues and events carry it)."""
    if outcome.status == "success":
        outcome.result = _jsonable(outcome.result)
    return outcome


class RunExecutor:
    """Executes runs through the injector and records each one; the engine calls `on_due` and `on_skipped`."""

    def __init__(
        self,
        *,
        injector: AgenToolInjector,
        queues: Callable[[], QueueStore] | None,
        history: HistoryWriter,
        events: EventBus,
        jobs: Mapping[str, Job],
    ) -> None:
        self._injector = injector
        self._queues = queues
        self._history = history
        self._events = events
        self._jobs = jobs
        self.running: Counter[str] = Counter()
        self.opened_at = utcnow()

    def _trigger(self, scheduled: datetime) -> RunTrigger:
        return "catch_up" if scheduled < self.opened_at else "schedule"

    async def on_due(self, job_id: str, run_times: list[datetime]) -> None:
        """Run a job for its due times: missed ones are recorded, coalesced ones combined."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        definition = job.definition
        if definition.schedule.schedule_type == "once" and job.state != "completed":
            job.state = "completed"
            self._history.touch(job_id)
            self._events.publish(JobEvent("completed", job_id))
        if definition.coalesce and len(run_times) > 1:
            for missed in run_times[:-1]:
                self._record_not_run(job, missed, "missed", "coalesced: a later run time replaced it")
            run_times = run_times[-1:]
        for run_time in run_times:
            lateness = (utcnow() - run_time).total_seconds()
            grace = definition.misfire_grace_time
            if grace is not None and lateness > max(float(grace), MIN_GRACE_SECONDS):
                self._record_not_run(
                    job, run_time, "missed", f"due {lateness:.1f} s ago, beyond misfire_grace_time {grace} s"
                )
                continue
            await self.execute(definition, self._trigger(run_time), run_time)

    def on_skipped(self, job_id: str, run_times: list[datetime]) -> None:
        """Record fires that did not start because `max_instances` runs were still going."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        for run_time in run_times:
            self._record_not_run(
                job, run_time, "skipped", f"max_instances ({job.definition.max_instances}) runs were still in progress"
            )

    def _record_not_run(self, job: Job, scheduled: datetime, status: RunStatus, note: str) -> None:
        record = RunRecord(
            run_id=secrets.token_hex(16),
            job_id=job.job_id,
            agentool_name=job.definition.agentool_name,
            trigger=self._trigger(scheduled),
            status=status,
            scheduled_time=scheduled,
            note=note,
        )
        job.last_status = status
        self._history.record(record)
        self._events.publish(RunEvent("finished", record))

    async def execute(self, target: RunTarget, trigger: RunTrigger, scheduled: datetime | None) -> RunRecord:
        """Run `target` once and record it; returns the record (a failed run is a record, not an exception).

        The start of the run (and the state of its job: next run time, a one-time job completed) is
        committed before the AgenTool is called, so that after a crash the run is found `interrupted`
        instead of run again. The finished record is committed before a run_now returns and before a
        result or error goes to a queue; otherwise it is written with the next batch. Cancellation
        (the scheduler shutting down) records the run as cancelled and propagates.
        """
        # This path runs once per fire: when a thousand jobs are due at once, each microsecond here
        # makes the last of them start a millisecond later.
        job_id = target.job_id
        base: dict[str, Any] = {
            "run_id": secrets.token_hex(16),
            "job_id": job_id,
            "agentool_name": target.agentool_name,
            "trigger": trigger,
            "scheduled_time": scheduled,
            "started_at": utcnow(),
        }
        job = self._jobs.get(job_id)
        if job is not None:
            job.last_run_at = base["started_at"]
            job.last_status = "running"
        started = RunRecord(status="running", **base)
        t0 = time.perf_counter()
        try:
            await self._history.commit(started, job_id=job_id if job is not None else None)
        except asyncio.CancelledError:
            self._finish(base, _Outcome("cancelled", notes=["the scheduler shut down before the run started"]), t0)
            raise
        except Exception:
            # The record stays buffered and is written with a later batch; the run goes ahead.
            logger.exception("Job %s: could not commit the start of its run", job_id)
        self._events.publish(RunEvent("started", started))
        self.running[job_id] += 1
        outcome: _Outcome
        try:
            outcome = await self._call(target)
        except asyncio.CancelledError:
            outcome = _Outcome("cancelled", notes=["the scheduler shut down while the run was in progress"])
            self._finish(base, outcome, t0)
            raise
        finally:
            self.running[job_id] -= 1
            if self.running[job_id] <= 0:
                del self.running[job_id]
        if trigger != "run_now":
            # A run that finished without suspending lets the other runs due now start before its
            # bookkeeping (result queue, history record, events): many jobs due at once then start
            # without waiting behind each other's records. run_now callers wait for the record.
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                self._finish(base, _settled(outcome), t0)
                raise
        outcome = _settled(outcome)
        record = self._finish(base, outcome, t0)
        queue = target.result_queue if outcome.status == "success" else target.error_queue
        if trigger == "run_now" or queue:
            # What run_now answers, and a run whose result a queue announces, is committed first.
            await self._history.commit()
        if queue:
            note = self._send_to_queue(target, record, queue)
            if note is not None:
                outcome.notes.append(note)
                record = self._finish(base, outcome, t0, publish=False)
        return record

    async def _call(self, target: RunTarget) -> _Outcome:
        injector = self._injector
        try:
            # AgenTools that call others through get_injector() reach this scheduler's injector.
            with injector.activate():
                if target.timeout is None:
                    result = await injector.run(target.agentool_name, target.input_data)
                else:
                    with anyio.move_on_after(target.timeout) as scope:
                        result = await injector.run(target.agentool_name, target.input_data)
                    if scope.cancelled_caught:
                        message = f"the run took longer than {target.timeout} s"
                        return _Outcome("timeout", error=ErrorInfo(type="TimeoutError", message=message))
        except Exception as exc:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]
            return _Outcome("error", error=ErrorInfo(type=type(exc).__name__, message=str(exc), traceback=tb))
        return _Outcome("success", result=result)  # made JSON by _settled, after the run has let others start

    def _send_to_queue(self, target: RunTarget, record: RunRecord, queue: str) -> str | None:
        """Send the outcome to `queue`; returns why that failed, or None."""
        message: dict[str, Any] = {
            "job_id": target.job_id,
            "run_id": record.run_id,
            "agentool_name": target.agentool_name,
        }
        if record.status == "success":
            message |= {"status": "success", "result": record.result}
        else:
            message |= {
                "status": record.status,
                "error": record.error.message if record.error else record.status,
                "error_type": record.error.type if record.error else None,
            }
        message["timestamp"] = utcnow().isoformat()
        try:
            if self._queues is None:
                raise RuntimeError("this scheduler has no queue store")
            self._queues().enqueue(queue, message, level="info" if record.status == "success" else "error")
        except Exception as exc:
            logger.warning("Job %s: could not send to queue %r: %s", target.job_id, queue, exc)
            return f"could not send to queue {queue!r}: {exc}"
        return None

    def _finish(self, base: dict[str, Any], outcome: _Outcome, t0: float, *, publish: bool = True) -> RunRecord:
        record = RunRecord(
            status=outcome.status,
            finished_at=utcnow(),
            duration_ms=round((time.perf_counter() - t0) * 1000, 3),
            result=outcome.result,
            error=outcome.error,
            note="; ".join(outcome.notes) or None,
            **base,
        )
        job = self._jobs.get(record.job_id)
        if job is not None:
            job.last_status = outcome.status
        self._history.record(record, job_known=job is not None)
        if publish:
            self._events.publish(RunEvent("finished", record))
        return record
