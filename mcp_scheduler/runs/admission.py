"""Admission: what happens when a job is due (or run outside its schedule) before its run starts.

The engine hands over a job's due times (`on_due`); catch-up decides which still run, the job's overlap policy
lets each go, buffers it or skips it (its lane), a run slot is taken, the fire is claimed (PostgreSQL), and
`Execution` runs it. Fires that do not run are recorded (`NotRunRecords`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..clocks import Clock
from ..errors import QuotaExceededError
from ..fire_times import next_fire_time
from ..history import HistoryWriter
from ..jobs import ASKED, Job, JobDefinition, RunStatus, RunTrigger
from ..models import RunRecord
from ..policies import BUFFER_LIMIT
from .catchup import CatchUp
from .flights import Flights
from .gaps import Gaps
from .lanes import Fire, JobLanes
from .not_run import NotRunRecords
from .retries import Retries
from .run import Execution, Taken
from .slots import RunSlots
from .targets import PER_JOB_FLAG, SLOTS_FLAG, RunTarget, concurrency_limit, runs_words

if TYPE_CHECKING:
    from ..scheduler.table import JobTable

__all__ = ["BUFFERED_LOST", "CANCELLED_BY_NEXT", "REPLACED_BY_NEXT", "Admission"]

logger = logging.getLogger(__name__)

CANCELLED_BY_NEXT = "cancelled by the next fire (overlap: cancel_other)"
REPLACED_BY_NEXT = "replaced by the next fire before it started (overlap: cancel_other)"
BUFFERED_LOST = ("it waited behind a run in progress (overlap policy) when the runner stopped; its fire was claimed "
                 "by that runner, so it is not run again")


class Admission:
    """Turns due fires and extra runs (run_now, backfill) into runs, within the scheduler's run slots and each
    job's runs in flight; the engine calls `on_due`, `on_skipped` and `slots.room`."""

    def __init__(
        self,
        *,
        table: JobTable,
        gaps: Gaps,
        catch_up: CatchUp,
        lanes: JobLanes,
        slots: RunSlots,
        flights: Flights,
        not_run: NotRunRecords,
        execution: Execution,
        retries: Retries,
        history: HistoryWriter,
        claim: Callable[[str, datetime], Awaitable[bool]] | None,
        clock: Clock,
    ) -> None:
        self._table = table
        self._gaps = gaps
        self._catch_up = catch_up
        self._lanes = lanes
        self._slots = slots
        self._flights = flights
        self._not_run = not_run
        self._execution = execution
        self._retries = retries
        self._history = history
        self._claim = claim
        self._clock = clock

    async def on_due(self, job_id: str, run_times: list[datetime]) -> None:
        """Run a job for its due times, by its catch-up and overlap policies; fires that do not run are recorded."""
        self._gaps.look_once()  # first: fires the machine slept through are told from fires late for lack of room
        job = self._table.get(job_id)
        if job is None:
            return
        definition = job.definition
        if job.state != "completed" and _last_fire(definition, run_times[-1]):
            self._execution.complete(job, last_fire=True)
        run_times = self._catch_up.select(job, run_times)
        max_runs = definition.policy.max_runs
        for index, run_time in enumerate(run_times):
            if max_runs is not None and job.runs >= max_runs:
                self._execution.complete(job)  # finished (max_runs lowered by an update): the fires due do not run
                break
            if self._catch_up.late(run_time, job):
                continue
            fire = self._admit(job, run_time)
            if fire is None:
                continue
            try:
                await self._go(job, fire)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                note = self._flights.cancel_notes.pop(task, None) if task is not None else None
                if not fire.displaced or note is None:
                    if not fire.executing:
                        why = note or "the scheduler shut down before the run could start" + (
                            " (it was buffered)" if fire.turn else "")
                        self._fire_not_run(job, fire, "missed", why)
                    raise
                if task is not None:
                    task.uncancel()  # cancel_other displaced this fire: the task goes on, the later fire runs
                if not fire.executing:
                    self._fire_not_run(job, fire, "skipped", REPLACED_BY_NEXT)
                self._not_run.record_many(job, run_times[index + 1:], "skipped", REPLACED_BY_NEXT)
                return
            else:
                stopped = self._flights.stopped
                if stopped and fire.task is not None and (why := stopped.pop(fire.task, "")):
                    # stop_runs stopped this fire's run: not the later ones
                    self._not_run.record_many(job, run_times[index + 1:], "missed", why.replace(
                        "while this run was in progress", "before this fire could run"))
                    return
            finally:
                if fire.displaced and fire.task is not None:
                    self._flights.cancel_notes.pop(fire.task, None)  # also when the run swallowed the cancellation
                self._lanes.leave(job_id, fire)

    def _admit(self, job: Job, run_time: datetime) -> Fire | None:
        """Let a fire go, buffer it, or record it as skipped, by the job's overlap policy (None: it does not run).

        Synchronous, so that the fires of one job are decided one at a time, in the order they come.
        """
        definition = job.definition
        overlap, limit = definition.policy.overlap, concurrency_limit(definition, self._lanes.per_job)
        lane = self._lanes.lane(job.job_id)
        fire = Fire(run_time, asyncio.current_task())
        if len(lane.active) < limit and not lane.waiting and self._lanes.has_room(job.job_id, lane):
            lane.active.append(fire)
            return fire
        if overlap in ("skip", "allow_all"):
            busy = self._lanes.busy(job, lane, limit)
            self._not_run.record(job, run_time, "skipped", f"{busy} (overlap: {overlap})")
            return None
        if overlap == "cancel_other":
            for other in [f for f in lane.waiting if not f.displaced]:
                self._displace(other, REPLACED_BY_NEXT)
            going = [f for f in lane.active if not f.displaced]
            if len(going) >= limit:
                self._displace(going[0], CANCELLED_BY_NEXT)
        elif len(lane.waiting) >= (1 if overlap == "buffer_one" else BUFFER_LIMIT):
            waiting = "a fire was already waiting" if overlap == "buffer_one" else f"{BUFFER_LIMIT} fires were waiting"
            self._not_run.record(job, run_time, "skipped",
                                 f"{waiting} behind the run in progress (overlap: {overlap})")
            return None
        fire.turn = asyncio.get_running_loop().create_future()
        lane.waiting.append(fire)
        return fire

    def _displace(self, fire: Fire, note: str) -> None:
        """cancel_other: cancel a fire of the job (running or not yet started) for the one that just came."""
        fire.displaced = True
        if fire.task is not None and fire.task is not asyncio.current_task():
            self._flights.cancel(fire.task, note)

    async def _go(self, job: Job, fire: Fire) -> None:
        """Run an admitted fire: wait for its turn if buffered, then for a slot; claim it; execute it."""
        job_id, run_time = job.job_id, fire.run_time
        if fire.turn is not None:
            if not await self._buffer(job, fire):
                return
            current = self._table.get(job_id)
            if current is None or current.state != "scheduled":
                why = "the job was cancelled" if current is None else f"the job was {current.state}"
                self._fire_not_run(job, fire, "missed", f"{why} while the fire waited behind a run in progress")
                return
            job = current
        waited = not self._slots.take_free()
        if waited:
            await self._slots.take(queued=True)
        try:
            # A buffered fire is late by its policy, not by the scheduler's load: it runs.
            if waited and fire.turn is None and self._catch_up.late(run_time, job, waited=True):
                return
            if fire.turn is None and job_id not in self._table:
                self._fire_not_run(job, fire, "missed", "the job was cancelled before the run could start")
                return
            if fire.turn is None and not (self._execution.lease_held() if self._claim is None
                                          else await self._claim(job_id, run_time)):
                self._unclaimed(job, fire)
                return
            fire.executing = True
            gap = self._gaps.gap_of(run_time)
            late = None if gap is None else gap.why(run_time, job.definition.schedule.zone, self._clock.now())
            ran = await self._execution.execute(job.definition, "schedule" if gap is None else "catch_up", run_time,
                                                run_id=fire.run_id, late=late)
            await self._retries.after(ran)
        finally:
            self._slots.give_back()

    async def _buffer(self, job: Job, fire: Fire) -> bool:
        """Claim a buffered fire, record it as waiting and wait for its turn; False if it is not to run.

        Claimed when it comes, as any fire: no other runner runs it. Its "waiting" record (status running,
        never started) is what a runner that takes over after a crash finds and records as missed.
        """
        if not (self._execution.lease_held() if self._claim is None else await self._claim(job.job_id, fire.run_time)):
            self._unclaimed(job, fire)
            return False
        fire.run_id = self._execution.run_ids()
        overlap = job.definition.policy.overlap
        self._history.record(RunRecord(
            run_id=fire.run_id,
            job_id=job.job_id,
            agentool_name=job.definition.agentool_name,
            trigger=self._gaps.trigger(fire.run_time),
            status="running",
            scheduled_time=fire.run_time,
            note=f"waiting behind the run in progress (overlap: {overlap})",
        ))
        assert fire.turn is not None
        await fire.turn
        return True

    def _unclaimed(self, job: Job, fire: Fire) -> None:
        """A fire whose claim failed: recorded as missed, or left to the next runner if the lease is lost."""
        if self._execution.lease_held():
            # Claimed by the runner before this one, which stopped before it recorded the start
            # (a run starts only after that): nobody ran it, and running it now could run it twice.
            self._fire_not_run(job, fire, "missed", "claimed by the previous runner, which stopped before it "
                               "started the run; not run again")
        else:
            logger.warning("Job %s: the runner lease is lost; the fire of %s is left to the next runner",
                           job.job_id, fire.run_time.isoformat())

    def _fire_not_run(self, job: Job, fire: Fire, status: RunStatus, note: str) -> None:
        """Record a fire that did not run; a buffered one replaces its "waiting" record."""
        if fire.run_id is None:
            self._not_run.record(job, fire.run_time, status, note)
        else:
            self._not_run.replace(job, fire.run_id, fire.run_time, status, note)

    def settle_interrupted(self, records: list[RunRecord]) -> list[RunRecord]:
        """Of the runs a stopped runner left unfinished, record those that never started (buffered fires
        waiting their turn) as missed; returns the records as they now are."""
        settled: list[RunRecord] = []
        for record in records:
            if record.started_at is None and record.trigger not in ASKED:  # requests of other processes: interrupted
                record = record.model_copy(update={"status": "missed", "note": BUFFERED_LOST})
                self._history.record(record, job_known=False)
            settled.append(record)
        return settled

    def cancel_waiting(self, why: str | None = None) -> None:
        """Cancel the fires still waiting for a slot or buffered behind a run (the scheduler is closing or stopped,
        or the lease is lost); they record themselves as missed, with `why` as the note if given."""
        buffered = [f.task for lane in self._lanes.lanes.values() for f in lane.waiting if f.task is not None]
        for task in [*self._slots.waiting, *buffered]:
            self._flights.cancel(task, why)

    def on_skipped(self, job_id: str, run_times: list[datetime]) -> None:
        """Record fires that did not start because `max_instances` runs were still going."""
        job = self._table.get(job_id)
        if job is None:
            return
        self._not_run.record_many(
            job, run_times, "skipped", f"max_instances ({job.definition.max_instances}) runs were still in progress"
        )

    async def run_extra(
        self,
        target: RunTarget,
        trigger: RunTrigger,
        scheduled: datetime | None,
        *,
        wait: bool,
        go: Callable[[], bool] | None = None,
        run_id: str | None = None,
        trigger_data: Mapping[str, Any] | None = None,
        note: str | None = None,
        taken: Taken | None = None,
    ) -> RunRecord | None:
        """Execute a run that is not a fire (run_now, backfill) in one of the scheduler's slots and within its
        job's room (`per_job`): `wait` for both, or refuse at once with `QuotaExceededError` naming the flag.
        Returns None, without running, if the job was cancelled (or `go()` turned false) while it waited.
        `run_id`: of the record the run replaces (a run another process asked for through the store);
        `trigger_data`: what the input's `!trigger:` references resolve from, `note` what the record's note says
        first, `taken`: what its start replaces in the store, exactly (`Execution.execute`: `StartRefusedError`
        if it is no longer there)."""
        job_id = target.job_id
        known = job_id in self._table
        if not wait:
            if self._slots.locked():
                raise QuotaExceededError(
                    f"{self._slots.size:,} runs are in progress, the most this scheduler runs at once "
                    f"({SLOTS_FLAG}): try again once some of them have finished, or ask the operator to raise "
                    f"{SLOTS_FLAG}."
                )
            if known and not self._lanes.has_room(job_id, self._lanes.lanes.get(job_id)):
                per_job = self._lanes.per_job
                raise QuotaExceededError(
                    f"Job {job_id!r} has {runs_words(self._lanes.load(job_id))} in progress, the most one job may "
                    f"have ({PER_JOB_FLAG} {per_job}): wait for them to finish (get_job shows them), stop them "
                    f"with cancel_job, or ask the operator to raise {PER_JOB_FLAG}."
                )
        if known and not await self._lanes.enter(job_id, wait=wait):
            return None
        try:
            await self._slots.take()
            try:
                if (known and job_id not in self._table) or (go is not None and not go()):
                    return None
                return (await self._execution.execute(target, trigger, scheduled, run_id=run_id,
                                                      trigger_data=trigger_data, note=note, taken=taken)).record
            finally:
                self._slots.give_back()
        finally:
            if known:
                self._lanes.exit(job_id)


def _last_fire(definition: JobDefinition, run_time: datetime) -> bool:
    """True if the fire at `run_time` is the job's last: a one-time job's, or the last before its end_at."""
    if definition.schedule.schedule_type == "once":
        return True
    policy = definition.policy
    if policy.end_at is None:
        return False
    following = next_fire_time(definition.schedule, run_time, run_time, end_at=policy.end_at)
    return following is None or following <= run_time
