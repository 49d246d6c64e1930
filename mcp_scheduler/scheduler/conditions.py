"""Condition triggers: a job whose `policy.when` names an http or mcp check runs when the check turns true
(docs/triggers.md).

`check_when` refuses, when a job is scheduled or updated, a check that the caller may not make (the kind's scope),
whose input the kind refuses, or whose `holds` does not fit the kind. `ConditionWatch` makes the checks in the runner
only, while it processes jobs, and starts a run (trigger `condition`) on each change to true: from false, or on the
first answer of a condition not seen before. A check that fails (raises, times out) changes nothing. What was seen is
stored (`scheduler_conditions`) before the run starts, so a restart or a takeover does not fire the same change
again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any, Protocol

from agentool_bridge.redaction import scrub

from .._engine import STATE_RUNNING
from ..clocks import Clock, Timer
from ..errors import InvalidJobInputError
from ..events import EventBus, JobEvent, SchedulerEvent
from ..jobs import Job, JobDefinition
from ..policies import RunPolicy
from ..principals import require_kind
from ..runs.probe import Observation, probe
from ..store import SchedulerStore
from ..store.conditions_table import ConditionRow
from ..success import check_fits
from .engine import EngineHandle
from .inputs import RequestChecks
from .table import JobTable

__all__ = ["CHECK_TIMEOUT", "LOOK_EVERY", "ConditionWatch", "check_when", "condition_key"]

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 60.0
"""Most seconds one check may take (less when the condition is checked more often: its `every`)."""
LOOK_EVERY = 1.0
"""Seconds between looks at whether this process processes jobs (the runner, not stopped) while jobs are watched."""


async def check_when(policy: RunPolicy, checks: RequestChecks) -> tuple[RunPolicy, list[str]]:
    """`policy` with its `when` checked as a job of the check's kind would be (the caller's scope for the kind, the
    input against the kind's schema and its check, the `!env:` secrets allowed, `holds` fitting the kind), and the
    warnings of that check; raises `MissingScopeError` or `InvalidJobInputError`, naming policy.when."""
    when = policy.when
    if when is None:
        return policy, []
    require_kind(when.agentool_name, "a condition check (policy.when)")
    try:
        check_fits(when.holds, when.agentool_name)
        input_data = scrub(when.input_data)  # a secret a run resolved goes back to its reference
        warnings = await checks.check_job_input(when.agentool_name, input_data)
    except InvalidJobInputError as exc:
        raise InvalidJobInputError(f"policy.when: {exc}") from None
    checked = policy.model_copy(update={"when": when.model_copy(update={"input_data": input_data})})
    return checked, [f"policy.when: {warning}" for warning in warnings]


def condition_key(definition: JobDefinition) -> str:
    """The identity of a job's condition: its creation time and its `when` (a changed condition, or a new job of the
    same id, starts afresh)."""
    when = definition.policy.when
    text = json.dumps([definition.created_at.isoformat(), None if when is None else when.model_dump(mode="json")],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class _Starter(Protocol):
    @property
    def accepting(self) -> bool: ...

    def start_triggered(self, job: Job, trigger: Any, trigger_data: dict[str, Any], *, note: str | None = None
                        ) -> str: ...


def _at(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


class ConditionWatch:
    """Checks the conditions of the scheduled jobs that have one, each every `when.every` seconds, while this process
    is the runner and processes jobs; starts a run of a job when its condition turns true (`start()` / `stop()`)."""

    def __init__(self, *, table: JobTable, engine: EngineHandle, store: SchedulerStore, checks: RequestChecks,
                 starter: _Starter, clock: Clock, events: EventBus) -> None:
        self._table = table
        self._engine = engine
        self._store = store
        self._checks = checks
        self._starter = starter
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._checking: dict[str, asyncio.Task[None]] = {}  # the check in progress of each job
        self._due: dict[str, tuple[str, float]] = {}  # job id -> (its condition's key, when it is checked next)
        self._watched: list[str] | None = None  # the ids of the jobs with a condition, found again after job changes
        self._seen: dict[str, ConditionRow] | None = None  # as stored; read when this process starts processing jobs
        self._failed: dict[str, tuple[float, str]] = {}  # job id -> when its last check failed, and why
        self.checked = 0
        """How many checks this watch made and judged (failed ones included)."""
        self._wake = asyncio.Event()
        events.subscribe(self._heard)

    def start(self) -> None:
        """Watch from now on (the scheduler opened); checks are made only while this process processes jobs."""
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="mcp-scheduler-conditions")

    def stop(self) -> set[asyncio.Task[Any]]:
        """Stop watching (the scheduler closes): the watch and the checks in progress are cancelled; their tasks."""
        tasks: set[asyncio.Task[Any]] = set(self._checking.values())
        if self._task is not None:
            tasks.add(self._task)
        for task in tasks:
            task.cancel()
        self._task, self._seen = None, None
        self._checking.clear()
        self._due.clear()
        return tasks

    @property
    def busy(self) -> bool:
        """True while a check is in progress (or what it saw is being stored, or its run started)."""
        return bool(self._checking)

    def note(self, job_id: str) -> str | None:
        """What this process last saw of the job's condition, in words (None when it does not watch it)."""
        seen = self._seen.get(job_id) if self._seen is not None and job_id in self._due else None
        failed = self._failed.get(job_id)
        parts = []
        if seen is not None:
            parts.append(f"its check was {str(seen.holds).lower()} from {_at(seen.since)}")
        if failed is not None:
            parts.append(f"its last check, at {_at(failed[0])}, failed (no change): {failed[1]}")
        return "; ".join(parts) or None

    def _heard(self, event: SchedulerEvent) -> None:
        if isinstance(event, JobEvent):
            self._watched = None  # added, changed, paused, removed: which jobs have a condition is looked at again
            self._wake.set()

    def _processing(self) -> bool:
        engine = self._engine.engine
        return engine is not None and engine.state == STATE_RUNNING

    async def _watch(self) -> None:
        while True:
            self._wake.clear()
            try:
                delay = await self._turn()
            except Exception:
                logger.exception("The condition watch could not read the store; it tries again in %s s", LOOK_EVERY)
                delay = LOOK_EVERY
            timer: Timer | None = None if delay is None else self._clock.call_later(delay, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()

    async def _turn(self) -> float | None:
        """Start the checks that are due; the seconds until the next look (None: none until a job changes)."""
        if self._watched is None:
            self._watched = [job.job_id for job in self._table.jobs() if job.definition.policy.when is not None]
        jobs = [job for job_id in self._watched if (job := self._table.get(job_id)) is not None
                and job.state == "scheduled"]
        if not jobs or not self._processing():
            self._seen = None  # read from the store again once this process processes jobs (a takeover, a start)
            self._due.clear()
            return LOOK_EVERY if jobs else None
        if self._seen is None:
            self._seen = await self._store.load_conditions()
        now = self._clock.monotonic()
        due: dict[str, tuple[str, float]] = {}
        for job in jobs:
            when = job.definition.policy.when
            assert when is not None
            key = condition_key(job.definition)
            known = self._due.get(job.job_id)
            at = known[1] if known is not None and known[0] == key else now  # a new condition: checked at once
            if at <= now:
                if job.job_id not in self._checking:
                    task = asyncio.create_task(self._check(job, key), name=f"mcp-scheduler-condition-{job.job_id}")
                    self._checking[job.job_id] = task
                at = now + when.every
            due[job.job_id] = (key, at)
        self._due = due
        return min(LOOK_EVERY, max(0.0, min(at for _, at in due.values()) - now))

    async def _check(self, job: Job, key: str) -> None:
        definition = job.definition
        when = definition.policy.when
        assert when is not None
        try:
            seen = await probe(self._checks.injector, definition, when, environ=self._checks.environ,
                               secret_names=self._checks.secret_names, within=min(when.every, CHECK_TIMEOUT))
            await self._observed(job, key, seen)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Job %s: what its condition check saw could not be recorded", job.job_id)
        finally:
            self.checked += 1
            if self._checking.get(job.job_id) is asyncio.current_task():
                del self._checking[job.job_id]

    async def _observed(self, job: Job, key: str, seen: Observation) -> None:
        """Keep what a check saw; on a change to true, store it, then start the job's run."""
        rows = self._seen
        if rows is None or self._table.get(job.job_id) is not job or job.state != "scheduled" \
                or not self._processing():
            return  # changed, paused or gone meanwhile, or this process stopped processing jobs: not seen
        now = self._clock.now().timestamp()
        if seen.holds is None:
            if job.job_id not in self._failed:
                logger.warning("Job %s: its condition check failed, which changes nothing (it is checked again at its "
                               "next turn): %s", job.job_id, seen.error)
            self._failed[job.job_id] = (now, seen.error or "")
            return
        if self._failed.pop(job.job_id, None) is not None:
            logger.info("Job %s: its condition check answers again", job.job_id)
        last = rows.get(job.job_id)
        if last is not None and last.key != key:
            last = None  # stored for another condition of the job (or a former job of that id)
        if last is not None and last.holds == seen.holds:
            return
        row = ConditionRow(job.job_id, key, seen.holds, now, now)
        # First: a restart or a takeover does not fire this change again. Refused once this process lost the runner
        # lease (PostgreSQL's fencing token): the change is the next runner's to see and fire.
        if not await self._store.note_condition(row):
            return
        rows[job.job_id] = row
        if not seen.holds or not self._starter.accepting:
            return
        was = "its first answer" if last is None else f"false since {_at(last.since)}"
        run_id = self._starter.start_triggered(
            job, "condition", {"result": seen.result, "checked_at": _at(now)},
            note=f"its condition turned true at {_at(now)} ({was})",
        )
        logger.info("Job %s: condition turned true; run %s started", job.job_id, run_id)
