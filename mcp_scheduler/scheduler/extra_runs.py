"""Runs outside the schedule: run_now (a job's, or an AgenTool's once), backfills of past fire times, and the runs
events start (webhooks, chains, queue messages: queue_trigger.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agentool_bridge.toolkits import QueueStore

from ..clocks import Clock
from ..errors import JobExecutionError, JobNotFoundError, QuotaExceededError, StartRefusedError
from ..events import EventBus
from ..history import HistoryWriter
from ..jobs import EventTrigger, Job, JobDefinition
from ..models import BackfillOverlap, BackfillSummary, RunRecord, SchedulerInput
from ..principals import require_kind
from ..queue_owners import check_queues
from ..runs import AdHocRun, RunPath, RunTarget, Taken
from ..store import SchedulerStore
from .audit_log import AuditLog
from .backfills import Backfills
from .chains import ChainStarts, waiting_run
from .conditions import ConditionWatch
from .engine import EngineHandle
from .hand_overs import REQUEST_START_WITHIN, HandOvers
from .inputs import RequestChecks
from .queue_trigger import QueueTriggers
from .replication import Replication
from .run_requests import RUNNER_GONE, RunRequest, taken_by
from .table import JobTable

__all__ = ["REQUEST_START_WITHIN", "ExtraRuns"]

logger = logging.getLogger(__name__)

STARTED_KEPT = 10_000  # ids of the chained and handed-over runs started here, remembered so that none starts twice


class ExtraRuns:
    """run_now, backfills (backfills.py) and the runs events start, and the tasks of those in progress (which
    `close()` waits for). A backfill ends when its job goes, when this process stops being the runner, or when the
    scheduler is stopped (`stopped()`) or closed (`closed()`)."""

    def __init__(
        self,
        *,
        table: JobTable,
        engine: EngineHandle,
        runs: RunPath,
        checks: RequestChecks,
        replication: Replication,
        history: HistoryWriter,
        store: SchedulerStore,
        history_limit: int,
        per_job: int,
        clock: Clock,
        audit: AuditLog,
        events: EventBus,
        queues: Callable[[], QueueStore] | None = None,
    ) -> None:
        self._audit = audit
        self._table = table
        self._history = history
        self._store = store
        self._history_limit = history_limit
        self._engine = engine
        self._runs = runs
        self._checks = checks
        self._replication = replication
        self._per_job = per_job
        self._clock = clock
        self.manual_runs: set[asyncio.Task[Any]] = set()  # tasks inside run_now, and runs asked for (take_request)
        self._open = False
        self._backfills = Backfills(table=table, engine=engine, runs=runs, replication=replication, clock=clock,
                                    audit=audit, per_job=per_job, is_open=lambda: self._open)
        self._hand_overs = HandOvers(store=store, history=history, history_limit=history_limit, events=events)
        self._started: dict[str, None] = {}  # see `_first_start`, oldest first
        ChainStarts(table=table, starter=self, events=events)
        self.conditions = ConditionWatch(table=table, engine=engine, store=store, checks=checks, starter=self,
                                         clock=clock, events=events)
        self._queue_triggers = QueueTriggers(table=table, engine=engine, runs=runs, store=store, queues=queues,
                                             events=events, per_job=per_job, clock=clock, tasks=self.manual_runs)

    @property
    def accepting(self) -> bool:
        """True while the scheduler is open: runs started now are waited for when it closes."""
        return self._open

    @property
    def runner(self) -> bool:
        """True while this process holds the runner lease (the runs of chains and webhooks start here)."""
        return self._engine.runner

    def _first_start(self, run_id: str) -> bool:
        """False if a run of `run_id` was started here already: a chained run that a runner taking over found
        waiting (`Replication.become_runner`) may be read again by its follower, once, when the last runner wrote
        it after the point the follower reads from."""
        if run_id in self._started:
            return False
        self._started[run_id] = None
        if len(self._started) > STARTED_KEPT:
            del self._started[next(iter(self._started))]
        return True

    def opened(self) -> None:
        """The scheduler opens: runs may start from now on (chained runs a last runner left, as it takes over)."""
        self._open = True

    def serving(self) -> None:
        """The scheduler has opened (its jobs loaded): conditions and queue triggers are watched from now on."""
        self.conditions.start()
        self._queue_triggers.start()

    def closed(self) -> None:
        self._open = False
        self._hand_overs.closed()
        for task in self.conditions.stop():  # cancelled: close() waits for them with the runs
            self.manual_runs.add(task)
            task.add_done_callback(self.manual_runs.discard)
        if (consumer := self._queue_triggers.close()) is not None:
            self.manual_runs.add(consumer)  # waited for by close (it ends at once)
            consumer.add_done_callback(self.manual_runs.discard)

    def stopped(self) -> None:
        self._backfills.stopped()
        self._queue_triggers.stopped()

    async def run_now(self, request: SchedulerInput, *, run_id: str | None = None) -> RunRecord:
        """Run a job's AgenTool now (schedule unchanged), or a given AgenTool once; raise if it fails. `run_id`: the
        id its record gets (drawn when None), known to the caller before the run starts (a task follows it).

        On a standby a job's run is asked of the runner through the store (`run_requests.py`), as the CLI's
        `run` does: it runs with the runner's flags and environment, and the job's last run and status that the
        runner keeps are this run's everywhere. A given AgenTool (no job) runs here.
        """
        job = await self._replication.lookup(request.job_id) if request.job_id else None
        target: RunTarget
        if job is not None:
            target = job.definition
            require_kind(target.agentool_name, "running a job")
        else:
            if request.agentool_name is None or (request.job_id and request.job_id in self._table):
                raise JobNotFoundError(request.job_id or "")  # (a job id another principal's job has)
            target = AdHocRun(
                job_id=request.job_id or f"run_now-{uuid.uuid4().hex[:12]}",
                agentool_name=request.agentool_name,
                input_data=request.input_data or {},
                timeout=request.timeout,
                result_queue=request.result_queue,
                error_queue=request.error_queue,
            )
            require_kind(target.agentool_name, "running a job")
            check_queues(target)
            await self._checks.check_job_input(target.agentool_name, target.input_data)
        await self._audit.record(
            "run_now", target.job_id, **({} if job is not None else {"agentool_name": target.agentool_name})
        )
        task = asyncio.current_task()
        if task is not None:
            self.manual_runs.add(task)
        try:
            if job is not None and not self._engine.runner:
                record: RunRecord | None = await self._ask_runner(job, run_id)
            else:
                record = await self._runs.admission.run_extra(target, "run_now", None, wait=False, run_id=run_id)
        finally:
            if task is not None:
                self.manual_runs.discard(task)
        if record is None:
            raise JobNotFoundError(target.job_id)
        if record.status != "success":
            err = record.error.message if record.error else f"{record.status}: {record.note}" if record.note \
                else record.status
            if record.status == "cancelled" and record.started_at is not None:  # stopped midway
                err += (". The run was stopped before it finished and is recorded 'cancelled'; it may have done part "
                        "of its work: check what it did before running it again")
            raise JobExecutionError(
                f"Failed to run job kind {target.agentool_name!r} (job {target.job_id!r}, "
                f"run {record.run_id}): {err}"
            )
        return record

    async def _ask_runner(self, job: Job, run_id: str | None) -> RunRecord:
        """On a standby: have the runner run `job` now and wait for its record (see `run_now`)."""
        asked = RunRequest(self._store, job, history_limit=self._history_limit, run_id=run_id,
                           asked_by=f"run_now on a standby (pid {os.getpid()} on {socket.gethostname()})")
        await asked.send()

        async def runner_alive() -> bool:
            # Once this process took the lease, the runner that had the run stopped (it is recorded interrupted).
            return not self._engine.runner

        record = await asked.wait(start_within=REQUEST_START_WITHIN, runner_alive=runner_alive)
        if record.status == "running":  # the runner stopped during the run
            raise JobExecutionError(f"Job {job.job_id!r}, run {record.run_id}: {RUNNER_GONE}; get_history "
                                    "shows it once recorded.")
        return record

    def take_request(self, request: RunRecord) -> None:
        """Run a run_now that another process asked for through the store (`run_requests.py`), under the
        request's run id, with this runner's flags; a request that cannot run is recorded `skipped`, saying why. A
        webhook's or a chain's run handed over by a standby runs as it would have there (`start_triggered`), as does a
        chained run that the last runner decided and did not start."""
        if not self._first_start(request.run_id):
            return
        self._hand_overs.taken_here(request.run_id)
        work = self._requested(request) if request.trigger == "run_now" else self._take_handed(request)
        task = asyncio.create_task(work, name=f"mcp-scheduler-requested-{request.job_id}")
        self.manual_runs.add(task)
        task.add_done_callback(self.manual_runs.discard)

    async def _took(self, request: RunRecord) -> RunRecord | None:
        """Take the request in the store before running it; the record it is taken as, or None (not to be run) if
        its asker withdrew it first, or another runner took it since it was read. Taken, it can no longer be
        withdrawn; it stays never started until its start replaces it, so that a runner taking over from this one
        starts it (KEPT_UNSTARTED); that start is a swap from the record returned (`Taken`), so that of this runner
        and one that took the run over, exactly one starts it."""
        taker = f"the runner (pid {os.getpid()} on {socket.gethostname()})"
        taken = taken_by(request, taker)
        try:
            if await self._store.replace_run(request, taken, fenced=True):
                return taken
        except Exception:  # the store out of reach: the request stays for its asker to withdraw, or the next runner
            logger.exception("Job %s: run %s (%s) asked for by another process could not be taken", request.job_id,
                             request.run_id, request.trigger)
            return None
        logger.warning("Job %s: run %s (%s) asked for by another process is not run here: it was withdrawn or "
                       "taken by another runner first", request.job_id, request.run_id, request.trigger)
        return None

    async def _requested(self, request: RunRecord) -> None:
        if (taken := await self._took(request)) is None:
            return
        try:
            job = await self._replication.lookup(request.job_id)
            if job is None:
                raise JobNotFoundError(request.job_id)
            record = await self._runs.admission.run_extra(job.definition, "run_now", None, wait=False,
                                                          run_id=request.run_id, taken=Taken(taken))
            if record is None:
                raise JobNotFoundError(request.job_id)
        except StartRefusedError as exc:
            logger.warning("%s", exc)
        except (JobNotFoundError, QuotaExceededError) as exc:
            await self._not_run(request, "the run asked for by another process", exc, taken=taken)
        except Exception:  # the store out of reach, say: the asking process withdraws the request in time
            logger.exception("Job %s: the run asked for by another process could not be started", request.job_id)

    async def _not_run(
        self, record: RunRecord, what: str, exc: JobNotFoundError | QuotaExceededError, *,
        taken: RunRecord | None = None,
    ) -> None:
        """Record `record` `skipped`, saying why (`exc`). A run the store holds for this runner (`taken`, as it
        took it) is recorded by a swap from that record: once another runner took it over, nothing is written here
        (if the store is out of reach, the record is written with the next batch it takes)."""
        why = "the job was cancelled" if isinstance(exc, JobNotFoundError) else str(exc)
        skipped = record.model_copy(update={"status": "skipped", "finished_at": self._clock.now(),
                                            "note": "; ".join(filter(None, (record.note, f"not run: {why}")))})
        if taken is None:
            logger.warning("Job %s: %s was not run: %s", record.job_id, what, why)
            await self._history.commit(skipped)
            return
        try:
            swapped = await self._history.swap(taken, skipped)
        except Exception as error:
            logger.warning("Job %s: %s was not run (%s); its record is written once the store takes writes: %s",
                           record.job_id, what, why, error)
            self._history.record(skipped, job_known=False)
            return
        if swapped:
            logger.warning("Job %s: %s was not run: %s", record.job_id, what, why)
        else:
            logger.warning("Job %s: %s is not run here (%s); the runner that took it over runs it", record.job_id,
                           what, why)

    def start_triggered(
        self, job: Job, trigger: EventTrigger, trigger_data: dict[str, Any], *, note: str | None = None,
        run_id: str | None = None,
    ) -> str:
        """Start a run of `job` that an event asked for (trigger `webhook`: an accepted delivery; `chain`: a run of
        the job its policy.after names ended; `condition`: its policy.when turned true), in the background, in the
        runner; its run id. `trigger_data`: what its input's `!trigger:` references resolve from; `note`: what its
        record's note says first. Its overlap policy applies: `skip` records the run `skipped` while another run of
        the job is in progress, `buffer_one` and `buffer_all` wait for room, the others run at once within
        max_runs_per_job (else `skipped`, naming the flag). In a process that is not the runner, the run is handed
        to it through the store (`HandOvers`). `run_id`: the run's id (a chained run's is `chain_run_id`; drawn when
        None); one started here already is not again.

        Called as a run finishes (a chained run), the record that hands the run over, or in the runner a chained
        run's waiting record (`waiting_run`), is buffered at once: it is committed in the batch that holds the
        finished record, so that no kill between the two loses the chained run. The runner's start replaces that
        waiting record by a swap from it (`Taken`), as a taken request's does."""
        run_id = run_id or uuid.uuid4().hex
        task: asyncio.Task[Any]
        if not self._engine.runner:
            task = self._hand_overs.buffered(job, trigger, trigger_data, note=note, run_id=run_id)
        elif not self._first_start(run_id):
            return run_id
        else:
            definition = job.definition
            waiting = None
            if trigger == "chain":
                waiting = waiting_run(job, run_id, trigger_data, note or "chained")
                self._history.record(waiting, job_known=False)
            record = RunRecord(run_id=run_id, job_id=job.job_id, agentool_name=definition.agentool_name,
                               trigger=trigger, status="running", note=note)
            task = asyncio.create_task(self._triggered(definition, record, trigger_data, taken=waiting),
                                       name=f"mcp-scheduler-{trigger}-{job.job_id}")
        self.manual_runs.add(task)
        task.add_done_callback(self.manual_runs.discard)
        return run_id

    async def trigger(
        self, job: Job, trigger: EventTrigger, trigger_data: dict[str, Any], *, note: str | None = None
    ) -> str:
        """`start_triggered`, returning once the run is started here or, on a standby, its request is committed."""
        if self._engine.runner:
            return self.start_triggered(job, trigger, trigger_data, note=note)
        return await self._hand_overs.hand_over(job, trigger, trigger_data, note=note)

    async def _take_handed(self, request: RunRecord) -> None:
        """Run a webhook's, a condition's or a chain's run that another process handed over (`HandOvers`), or that
        the last runner left never started."""
        if (taken := await self._took(request)) is None:
            return
        carried = request.result if isinstance(request.result, dict) else {}
        record = request.model_copy(update={"result": None, "note": carried.get("note")})
        try:
            job = await self._replication.lookup(request.job_id)
            if job is None:
                raise JobNotFoundError(request.job_id)
        except JobNotFoundError as exc:
            await self._not_run(record, f"a {request.trigger} run asked for by another process", exc, taken=taken)
            return
        logger.info("Job %s: run %s (%s) asked for by another process runs here (pid %d)", request.job_id,
                    request.run_id, request.trigger, os.getpid())
        await self._triggered(job.definition, record, carried.get("trigger_data") or {}, taken=taken)

    async def _triggered(
        self, definition: JobDefinition, record: RunRecord, trigger_data: dict[str, Any], *,
        taken: RunRecord | None = None,
    ) -> None:
        """Run `record`'s run of `definition`; `taken`: the record the store holds for this runner, which its start
        (or its skipped record) replaces by a swap (a request taken, a chained run's waiting record)."""
        overlap = definition.policy.overlap
        what = {"webhook": "a webhook delivery's run", "condition": "a condition's run"}.get(record.trigger,
                                                                                           "a chained run")
        try:
            if overlap == "skip" and self._runs.running[definition.job_id]:
                raise QuotaExceededError("a run of the job was in progress (its overlap policy is skip)")
            # A chained run, and one taken from the store (`taken`), waits for room in the runner only: one that
            # lost the lease meanwhile leaves it to the next runner, which finds it waiting in the store (chains.py).
            go = (lambda: self._engine.runner) if record.trigger == "chain" or taken is not None else None
            ran = await self._runs.admission.run_extra(definition, record.trigger, None,
                                                       wait=overlap.startswith("buffer"), run_id=record.run_id,
                                                       trigger_data=trigger_data, note=record.note, go=go,
                                                       taken=None if taken is None else Taken(taken))
            if ran is None and go is not None and not go() and definition.job_id in self._table:
                logger.warning("Job %s: %s %s is left to the next runner: this process lost the runner lease "
                               "before it started", definition.job_id, what, record.run_id)
                return
            if ran is None:
                raise JobNotFoundError(definition.job_id)
        except StartRefusedError as exc:
            logger.warning("%s", exc)
        except (JobNotFoundError, QuotaExceededError) as exc:
            await self._not_run(record, what, exc, taken=taken)
        except Exception:
            logger.exception("Job %s: %s could not be started", definition.job_id, what)

    async def backfill(
        self,
        job_id: str,
        since: str | datetime,
        until: str | datetime | None = None,
        overlap: BackfillOverlap = "buffer_all",
        *,
        wait: bool = False,
    ) -> BackfillSummary:
        """`Backfills.backfill` (backfills.py)."""
        return await self._backfills.backfill(job_id, since, until, overlap, wait=wait)

    @property
    def backfills(self) -> set[asyncio.Task[Counter[str]]]:
        """The backfills in progress."""
        return self._backfills.tasks
