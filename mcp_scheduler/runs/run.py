"""One run: commit its start, call the AgenTool under the job's timeout, record the outcome, deliver it.

Every execution becomes one `RunRecord` with the truth (scheduled time, start, end, duration, status, result
or error), sent to the job's result or error queue where it has one, announced on the event bus and handed to
the history writer.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio

from agentool_bridge import AgenToolInjector
from agentool_bridge.context import RunInfo, running
from agentool_bridge.errors import clip
from agentool_bridge.redaction import revealing
from agentool_bridge.secrets import Secrets, redact, resolve_env

from ..clocks import Clock
from ..downtime import duration_words
from ..errors import StartRefusedError
from ..events import EventBus, JobEvent, RunEvent
from ..history import HistoryWriter
from ..jobs import Job, PendingRetry, RunTrigger
from ..models import ErrorInfo, RunRecord
from ..owners import run_principal
from ..principals import acting_as
from ..queue_owners import target_namespace
from ..tracing import current_traceparent, run_span
from .checks import judged
from .delivery import Delivery, Outcome, settled
from .flights import Flight, Flights
from .not_run import NotRunLog
from .ports import EnginePort
from .retry_policy import RetryPolicy
from .run_ids import RunIds
from .targets import RunTarget
from .trigger_refs import resolve_trigger

if TYPE_CHECKING:
    from ..scheduler.table import JobTable

__all__ = ["Execution", "Ran", "START_NOT_WRITTEN", "Taken"]

logger = logging.getLogger(__name__)

START_NOT_WRITTEN = "the store could not be written when the run was to start ({error}); not run"
LEASE_LOST = "the runner lease was lost before the run started; not run"


@dataclass(frozen=True, slots=True)
class Ran:
    """A run's record and, for a scheduled run under its job's policy, the job and the retry it planned."""

    record: RunRecord
    policed: Job | None = None
    retry: PendingRetry | None = None


@dataclass(frozen=True, slots=True)
class Taken:
    """What the start of a run that the store holds for one runner replaces: `record`, the record this runner
    wrote when it took the run (a request another process handed over, a chained run it decided), or None, no
    record at all (a queue message's run, under the id its claim names). The start is a swap from it, fenced on
    PostgreSQL (`HistoryWriter.swap`): of this runner and one that took over and took the run again, exactly one
    starts it."""

    record: RunRecord | None


class _Start:
    """The record of a run's start, built when first needed (by the batch that commits it, or for the "started"
    event after that commit) rather than before the other fires due at the same moment have started."""

    __slots__ = ("_fields", "_record")

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields
        self._record: RunRecord | None = None

    def __call__(self) -> RunRecord:
        if self._record is None:
            self._record = RunRecord(**self._fields)
        return self._record


class Execution:
    """Executes one run through the injector and records it (`execute`); counts the runs in progress per job."""

    def __init__(
        self,
        *,
        injector: AgenToolInjector,
        environ: Mapping[str, str],
        secret_names: Collection[str],
        table: JobTable,
        history: HistoryWriter,
        events: EventBus,
        delivery: Delivery,
        flights: Flights,
        policy: RetryPolicy,
        engine: EnginePort,
        lease_held: Callable[[], bool] | None,
        clock: Clock,
    ) -> None:
        self._injector = injector
        self._environ = environ
        self._secret_names = secret_names
        self._table = table
        self._history = history
        self._events = events
        self._delivery = delivery
        self._flights = flights
        self._policy = policy
        self._engine = engine
        self._lease_held = lease_held
        self._clock = clock
        self._not_started = NotRunLog(clock)  # one line per minute while the store refuses writes
        self.running: Counter[str] = Counter()
        self.run_ids = RunIds()
        self._completed: list[tuple[str, str | None]] = []  # (job, owner): ran its last fire, told next turn

    def lease_held(self) -> bool:
        return self._lease_held is None or self._lease_held()

    def complete(self, job: Job, *, last_fire: bool = False) -> None:
        """The job ran its last fire (`last_fire`), or its last scheduled run (policy.max_runs, and the engine
        drops it): it finishes and stays readable."""
        if not self._table.completed(job):
            return
        self._history.touch(job.job_id)
        if not last_fire:
            self._engine.remove_job(job.job_id)
        # Told on the loop's next turn, all at once: this is on the path of every one-time fire, and telling the
        # listeners (notifications, the dashboard, triggers) made each fire due at the same moment start later.
        if not self._completed:
            asyncio.get_running_loop().call_soon(self._tell_completed)
        self._completed.append((job.job_id, job.definition.owner))

    def _tell_completed(self) -> None:
        completed, self._completed = self._completed, []
        for job_id, owner in completed:
            self._events.publish(JobEvent("completed", job_id, owner))

    async def execute(
        self, target: RunTarget, trigger: RunTrigger, scheduled: datetime | None, *, run_id: str | None = None,
        attempt: int | None = None, late: str | None = None, note: str | None = None,
        trigger_data: Mapping[str, Any] | None = None, taken: Taken | None = None,
    ) -> Ran:
        """Run `target` once and record it; returns the record (a failed run is a record, not an exception).

        The start of the run (and the state of its job: next run time, a one-time job completed) is committed
        before the AgenTool is called, so that after a crash the run is found `interrupted` instead of run again;
        if that commit fails the run does not start: it is recorded `skipped` (written once the store takes writes
        again). The finished record is committed before a run_now returns and before a result or error goes to a
        queue; otherwise it is written with the next batch. Cancellation (the scheduler shutting down, or
        cancel_other) records the run as cancelled and propagates. `run_id`: of the record the run replaces (a
        buffered fire's "waiting" record). `late`: why a catch-up fire runs late: its record's note says how late.
        `note`: what else the record's note says first (why a retry waited). `trigger_data`: what `!trigger:`
        references in the input resolve from (`trigger_refs.py`; None: the input as written). `taken`: the start
        is a swap from that record, in the history batch's transaction; if it is not made (another runner took the
        run, or the lease is lost), nothing runs or is recorded here and `StartRefusedError` is raised.

        A scheduled run (not run_now) follows its job's run policy: it counts towards max_runs (retries do not),
        a failure with attempts left plans the next attempt (`attempt` is this one's number; the caller arms it,
        see `Retries.after`) and keeps the error from the error queue.
        """
        # This path runs once per fire: when a thousand jobs are due at once, each microsecond here
        # makes the last of them start a millisecond later.
        job_id = target.job_id
        base: dict[str, Any] = {
            "run_id": run_id or self.run_ids(),
            "job_id": job_id,
            "agentool_name": target.agentool_name,
            "trigger": trigger,
            "scheduled_time": scheduled,
            "started_at": self._clock.now(),
        }
        job = self._table.get(job_id)
        policed = job if job is not None and trigger in ("schedule", "catch_up", "retry") else None
        if job is not None and taken is None:
            self._table.started(job, base["started_at"])
        if policed is not None:
            policy = policed.definition.policy
            if policy.max_attempts > 1:
                base["attempt"] = attempt = attempt or 1
            # Counted only under a policy that uses the count: a job without one has no progress to store.
            if trigger != "retry" and policy.max_runs is not None and self._table.counted(policed):
                self.complete(policed)  # with its last run's start, in the commit below
        lead = None
        if late is not None and scheduled is not None:
            lead = f"ran {duration_words((base['started_at'] - scheduled).total_seconds())} late: {late}"
        if note is not None:
            lead = note if lead is None else f"{note}; {lead}"
        started = _Start({**base, "status": "running", "note": lead})
        t0 = time.perf_counter()
        flight = self._flights.take_off(job_id, trigger, base["run_id"])
        try:
            try:
                if taken is None:
                    await self._history.commit(run_id=base["run_id"], build=started,
                                               job_id=job_id if job is not None else None)
                elif await self._history.swap(taken.record, started(), job_id=job_id if job is not None else None):
                    if job is not None:
                        self._table.started(job, base["started_at"])
                else:
                    raise StartRefusedError(job_id, base["run_id"], trigger)
            except StartRefusedError:
                raise
            except asyncio.CancelledError:
                record = self._cut_short(base, t0, flight, "the scheduler shut down before the run started")
                if self._flights.absorbed(flight, trigger):
                    return Ran(record)
                raise
            except Exception as exc:
                # Not run: a run whose start is not stored could run again after a crash. Its record replaces the
                # buffered start and is written with the first batch the store takes.
                why = START_NOT_WRITTEN.format(error=f"{type(exc).__name__}: {exc}")
                self._not_started.note(job_id, "skipped", why)
                base["started_at"] = None
                if (meter := self._events.meter) is not None:
                    meter.fire_not_run(job_id, "skipped", why)
                return Ran(self._finish(base, Outcome("skipped", notes=[why]), t0))
            if trigger not in ("run_now", "webhook", "condition") and not self.lease_held():
                # Fencing: the lease went while the start was being written (the process was frozen or cut off);
                # another runner may own this fire's job by now, or have started this chained run.
                if (meter := self._events.meter) is not None:
                    meter.fire_not_run(job_id, "interrupted", LEASE_LOST)
                return Ran(self._finish(base, Outcome("interrupted", notes=[LEASE_LOST]), t0))
            self._events.publish(RunEvent("started", started()))
            self.running[job_id] += 1
            outcome: Outcome
            traced: str | None = None
            try:
                # The job's stored address policy goes with the run: http and webhooks obey it as well as this
                # process's; and its owner's namespace, which the queue and storage_kv kinds use.
                info = RunInfo(job_id, base["run_id"], trigger, scheduled, getattr(target, "job_name", None),
                               target.address_policy, target_namespace(target))
                parent = trigger_data.get("traceparent") if trigger == "chain" and trigger_data else None
                with running(info), run_span(job_id=job_id, job_name=info.job_name, run_id=base["run_id"],
                                             agentool_name=target.agentool_name, trigger=trigger,
                                             traceparent=getattr(target, "traceparent", None),
                                             parent=parent) as span:
                    traced = current_traceparent()  # this run's span, the parent of the runs chained after it
                    outcome = await self._call(target, trigger_data)
                    if target.success is not None:  # the result, once settled, must pass the job's checks
                        outcome = judged(settled(outcome), target.success, target.agentool_name)
                    span.ended(outcome.status, outcome.error.type if outcome.error is not None else None)
                if lead is not None:
                    outcome.notes.insert(0, lead)
            except asyncio.CancelledError:
                record = self._cut_short(base, t0, flight, "the scheduler shut down while the run was in progress")
                if self._flights.absorbed(flight, trigger):
                    return Ran(record)
                raise
            finally:
                self.running[job_id] -= 1
                if self.running[job_id] <= 0:
                    del self.running[job_id]
        finally:
            self._flights.land(flight)
        if trigger != "run_now":
            # A run that finished without suspending lets the other runs due now start before its
            # bookkeeping (result queue, history record, events): many jobs due at once then start
            # without waiting behind each other's records. run_now callers wait for the record.
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                self._finish(base, settled(outcome), t0)
                raise
        outcome = settled(outcome)
        retry = None if policed is None else self._policy.follow(policed, scheduled, attempt, outcome)
        record = self._finish(base, outcome, t0, traceparent=traced)
        # A failure that is retried goes to no queue: the error queue gets the final failure only.
        queue = target.result_queue if outcome.status == "success" else None if retry else target.error_queue
        if trigger == "run_now" or queue or retry:
            # What run_now answers, a run whose result a queue announces, and a pending retry are committed first.
            await self._history.commit()
        if queue:
            note = self._delivery.send(target, record, queue)
            if note is not None:
                outcome.notes.append(note)
                record = self._finish(base, outcome, t0, publish=False)
        return Ran(record, policed, retry)

    def _cut_short(self, base: dict[str, Any], t0: float, flight: Flight | None, default: str) -> RunRecord:
        """Record a run that was cancelled: why (the job was cancelled or updated, the scheduler stopped or
        shut down: `default`)."""
        return self._finish(base, Outcome("cancelled", notes=[self._flights.note(default, flight)]), t0)

    async def _call(self, target: RunTarget, trigger_data: Mapping[str, Any] | None) -> Outcome:
        injector = self._injector
        revealed: Secrets = {}
        try:
            # `!env:` secrets exist only here, for this run, and only those the operator allows; what the run
            # returns is redacted below, and what it hands to a store or quotes in an error while it runs is
            # redacted there (they are revealed to this context).
            input_data, revealed = resolve_env(target.input_data, self._environ, self._secret_names)
            if trigger_data is not None:  # after the secrets: what a trigger inserts is never resolved as one
                input_data = resolve_trigger(input_data, trigger_data)
            # AgenTools that call others through get_injector() reach this scheduler's injector.
            # A run acts as its job's owner: the `scheduler` AgenTool in it sees and changes that owner's jobs only.
            with injector.activate(), revealing(revealed), acting_as(run_principal(target)):
                if target.timeout is None:
                    result = await injector.run(target.agentool_name, input_data)
                else:
                    with anyio.move_on_after(target.timeout) as scope:
                        result = await injector.run(target.agentool_name, input_data)
                    if scope.cancelled_caught:
                        message = f"the run took longer than {target.timeout} s"
                        return Outcome("timeout", error=ErrorInfo(type="TimeoutError", message=message,
                                                                  where=_where(target)))
        except Exception as exc:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            message = str(exc)
            if revealed:  # before the traceback is cut to its end, so that the cut leaves no part of one
                tb, message = redact(tb, revealed), redact(message, revealed)
            where = _where(target)
            return Outcome("error", error=ErrorInfo(type=type(exc).__name__, message=message, where=where,
                                                    traceback=tb[-4000:]))
        return Outcome("success", result=result, revealed=revealed)  # made JSON (and redacted) by settled()

    def _finish(
        self, base: dict[str, Any], outcome: Outcome, t0: float, *, publish: bool = True, traceparent: str | None = None
    ) -> RunRecord:
        record = RunRecord(
            status=outcome.status,
            finished_at=self._clock.now(),
            duration_ms=round((time.perf_counter() - t0) * 1000, 3),
            result=outcome.result,
            summary=outcome.summary,
            error=outcome.error,
            note="; ".join(outcome.notes) or None,
            **base,
        )
        job = self._table.get(record.job_id)
        if job is not None:
            self._table.ended(job, outcome.status)
        self._history.record(record, job_known=job is not None)
        if publish:
            self._events.publish(RunEvent("finished", record, traceparent))
        return record


def _where(target: RunTarget) -> str:
    """Where a run failed, in the job's terms: its kind and the operation it was asked for."""
    operation = target.input_data.get("operation") if isinstance(target.input_data, Mapping) else None
    if isinstance(operation, str) and operation:
        return f"operation {clip(operation, 60)} of job kind '{target.agentool_name}'"
    return f"job kind '{target.agentool_name}'"
