"""Queue triggers: a job whose `policy.on_message` names a queue runs once for each message on it (docs/triggers.md).

`check_on_message` refuses, when a job is scheduled or updated, a name that is no queue name, the user's inbox, and a
second job of one owner on one queue. `QueueTriggers` consumes, in the runner only (the process that holds the lease
and processes jobs): woken by enqueues (this process's enqueue hook, the queue feed the follower reads), by changes of
the consuming jobs and by the end of their runs, with a bounded poll behind them.

Exactly one run per message, across a kill -9 of the runner: the message is taken in flight with a claim naming a run
id drawn first (`QueueStore.take(claim=...)`: one transaction); the run's start is committed under that id
(`Execution.execute`), only if no record of it is stored yet and, on PostgreSQL, only while this process holds the
runner lease (`Taken`, fenced: a runner that lost its lease meanwhile starts nothing, and the next runner finds the
claim without a start), and only then is the message acked. A runner that opens or takes over reads the claims left
in flight: a claim whose run has a record that started is acked (the run happened, or was cut short and is recorded
`interrupted`: it is not run again); any other is released to its place at the head of its queue and runs once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agentool_bridge.errors import clip
from agentool_bridge.toolkits import QueueMessage, QueueStore, ToolkitError
from agentool_bridge.toolkits.queue import INBOX_QUEUE

from .._engine import STATE_RUNNING
from .._waits import wait_set
from ..backoff import Backoff
from ..clocks import Clock
from ..errors import InvalidJobInputError, StartRefusedError
from ..events import EventBus, JobEvent, QueueEvent, SchedulerEvent
from ..jobs import Job, JobDefinition
from ..models.request import is_queue_name
from ..policies import RunPolicy
from ..queue_owners import job_queue
from ..runs import RunPath, Taken, concurrency_limit
from ..store import SchedulerStore
from .engine import EngineHandle
from .table import JobTable

__all__ = ["CLAIM_PREFIX", "POLL_EVERY", "QueueTriggers", "check_on_message", "message_data"]

logger = logging.getLogger(__name__)

CLAIM_PREFIX = "mcp-scheduler run "
"""How a queue trigger's claims start: `mcp-scheduler run <run id> of <job id>`."""
POLL_EVERY = 1.0
"""Seconds between looks at the consumed queues when nothing woke the consumer (and at whether this process is the
runner); enqueues and the end of runs wake it at once."""
NO_RECORD = Taken(None)  # a message's run starts only if no record of its run id is stored (the claim's id)


def check_on_message(job_id: str, policy: RunPolicy, jobs: Iterable[Job], owner: str | None) -> None:
    """Raise `InvalidJobInputError` if `policy.on_message` names no usable queue, the inbox, or a queue from which
    another job of `owner` already runs (the message names that job)."""
    on_message = policy.on_message
    if on_message is None:
        return
    name = on_message.queue
    if not is_queue_name(name):
        raise InvalidJobInputError(
            f"policy.on_message.queue {clip(name)} is not a usable queue name: use 1 to 200 letters, digits and "
            ". _ : @ / -, starting with a letter or digit, e.g. 'orders'."
        )
    if name == INBOX_QUEUE:
        raise InvalidJobInputError(
            "policy.on_message cannot name 'inbox': it is the user's inbox (read_inbox), which jobs do not consume. "
            "Name the queue that jobs or other programs enqueue to."
        )
    for job in jobs:
        other = job.definition.policy.on_message
        if other is not None and other.queue == name and job.job_id != job_id and job.definition.owner == owner:
            raise InvalidJobInputError(
                f"Queue {name!r} already starts job {job.job_id!r} (its policy.on_message): one job per queue, "
                "else each message would run only one of them. Change or cancel that job, or name another queue."
            )


def message_data(queue: str, message: QueueMessage) -> dict[str, Any]:
    """The trigger data of a run started by `message` of `queue`: `!trigger:message` (its body), `message_id`,
    `queue`."""
    return {"message": message.message, "message_id": message.message_id, "queue": queue}


def _claim(run_id: str, job_id: str) -> str:
    return f"{CLAIM_PREFIX}{run_id} of {job_id}"


def _run_id_of(claim: str) -> str:
    return claim.removeprefix(CLAIM_PREFIX).split(" ", 1)[0]


@dataclass(frozen=True, slots=True)
class _Taken:
    """A message taken in flight for a run that has not started yet."""

    job_id: str
    queue: str
    message_id: str
    claim: str


class QueueTriggers:
    """Runs the jobs of `policy.on_message` for the messages of their queues, in the runner (see the module).

    `tasks`: where the runs' tasks go (ExtraRuns.manual_runs: a close waits for them, then cancels them)."""

    def __init__(
        self,
        *,
        table: JobTable,
        engine: EngineHandle,
        runs: RunPath,
        store: SchedulerStore,
        queues: Callable[[], QueueStore] | None,
        events: EventBus,
        per_job: int,
        clock: Clock,
        tasks: set[asyncio.Task[Any]],
    ) -> None:
        self._table = table
        self._engine = engine
        self._runs = runs
        self._store = store
        self._queues = queues
        self._per_job = per_job
        self._tasks = tasks
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._active = False  # consuming (the runner, processing jobs) as of the last turn
        self._epoch = 0  # moves on each change of _active and each stop: runs not started by then do not start
        self._pending: dict[str, _Taken] = {}  # by run id: messages whose run has not started yet
        self._consumers: dict[str, str] | None = None  # job id -> queue, of the jobs with on_message (None: stale)
        self._queue_names: frozenset[str] = frozenset()
        self._rest: dict[str, float] = {}  # job id -> monotonic time before which it takes no message
        self._clock = clock
        self._backoff = Backoff("Consuming the queues of queue-triggered jobs", logger, clock, base=POLL_EVERY,
                                cap=30.0)
        events.subscribe(self._heard)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start consuming whenever this process is the runner and processes jobs (from the event loop)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._wake.set()  # a first turn at once: a runner that opens settles what the last one left, then consumes
        self._task = asyncio.create_task(self._consume(), name="mcp-scheduler-queue-triggers")

    def close(self) -> asyncio.Task[None] | None:
        """Stop consuming (runs already started go on); returns the consumer's task, cancelled, to wait for."""
        task, self._task = self._task, None
        self._epoch += 1
        if task is not None:
            task.cancel()
        return task

    def stopped(self) -> None:
        """stop_scheduler: messages taken whose runs have not started go back to their queues."""
        self._epoch += 1
        self._wake_up()

    # ------------------------------------------------------------------ events

    def _wake_up(self) -> None:
        """Wake the consumer; from any thread (an enqueue hook runs in the thread that enqueued)."""
        loop = self._loop
        if loop is None:
            return
        try:
            if asyncio.get_running_loop() is loop:
                self._wake.set()
                return
        except RuntimeError:
            pass
        with contextlib.suppress(RuntimeError):  # that loop has finished
            loop.call_soon_threadsafe(self._wake.set)

    def _heard(self, event: SchedulerEvent) -> None:
        if isinstance(event, QueueEvent):
            if event.queue_name in self._queue_names or self._consumers is None:
                self._wake_up()
        elif isinstance(event, JobEvent):
            job = self._table.get(event.job_id)
            if (self._consumers is None or event.job_id in self._consumers
                    or (job is not None and job.definition.policy.on_message is not None)):
                self._consumers = None
                self._wake_up()
        elif not event.remote:
            if event.kind == "started":
                taken = self._pending.pop(event.record.run_id, None)
                if taken is not None:
                    self._settle(taken, done=True)  # its start is committed: the message is done with
            elif self._consumers is not None and event.job_id in self._consumers:
                self._wake_up()  # a run of a consumer ended: room for the next message

    def _settle(self, taken: _Taken, *, done: bool) -> None:
        if self._queues is None:
            return
        try:
            if not self._queues().settle(taken.queue, taken.message_id, taken.claim, done=done):
                logger.warning("Job %s: message %s of queue %r was no longer in flight under its claim (acked, "
                               "nacked or cleared by other means)", taken.job_id, taken.message_id, taken.queue)
        except (ToolkitError, OSError, RuntimeError) as exc:  # the next runner settles it from its claim
            logger.warning("Job %s: message %s of queue %r could not be %s (%s); the runner that next opens the "
                           "store settles it", taken.job_id, taken.message_id, taken.queue,
                           "acked" if done else "released", exc)

    # ------------------------------------------------------------------ consuming

    def _consumers_now(self) -> dict[str, str]:
        consumers = self._consumers
        if consumers is None:
            consumers = {job.job_id: job_queue(job.definition, job.definition.policy.on_message.queue)
                         for job in self._table.jobs() if job.definition.policy.on_message is not None}
            self._consumers, self._queue_names = consumers, frozenset(consumers.values())
        return consumers

    async def _consume(self) -> None:
        while True:
            await wait_set(self._wake, self._backoff.delay())
            self._wake.clear()
            try:
                await self._turn()
            except Exception as exc:
                self._backoff.failed(exc)
            else:
                self._backoff.succeeded()

    async def _turn(self) -> None:
        engine = self._engine.engine
        active = self._engine.runner and engine is not None and engine.state == STATE_RUNNING
        if active != self._active:
            self._epoch += 1
            self._consumers = None  # a takeover reloads the jobs without an event
            if active:
                await self._recover()  # if it fails, the next turn tries again before taking anything
            self._active = active
        if not active or self._queues is None:
            return
        queues = self._queues()
        for job_id, queue in list(self._consumers_now().items()):
            job = self._table.get(job_id)
            if job is not None:
                self._take(job, queue, queues)

    async def _recover(self) -> None:
        """The claims left in flight by a runner before this one (or by this one before a stop): ack those whose
        run started, release the others (they run again, once)."""
        if self._queues is None:
            return
        queues = self._queues()
        for claimed in queues.claimed(CLAIM_PREFIX):
            run_id = _run_id_of(claimed.claim)
            if run_id in self._pending:
                continue  # this process's run, about to start or to give the message back
            found = await self._store.history(None, run_id=run_id, limit=1)
            ran = bool(found) and found[0].run_id == run_id and found[0].started_at is not None
            if queues.settle(claimed.queue_name, claimed.message_id, claimed.claim, done=ran):
                logger.warning("Message %s of queue %r was in flight when the last runner stopped: %s",
                               claimed.message_id, claimed.queue_name,
                               f"its run {run_id} had started, so it is not run again" if ran
                               else "its run had not started; it runs now")

    def _take(self, job: Job, queue: str, queues: QueueStore) -> None:
        """Take the job's messages while its overlap policy lets a run start: one at a time (skip, buffer_*,
        cancel_other: a message never cancels a run), up to its concurrency limit with allow_all."""
        definition = job.definition
        if job.state != "scheduled" or self._rest.get(job.job_id, 0.0) > self._clock.monotonic():
            return
        limit = concurrency_limit(definition, self._per_job) if definition.policy.overlap == "allow_all" else 1
        waiting = sum(1 for taken in self._pending.values() if taken.job_id == job.job_id)
        while self._runs.running[job.job_id] + waiting < limit:
            run_id = secrets.token_hex(16)
            claim = _claim(run_id, job.job_id)
            message = queues.take(queue, auto_ack=False, claim=claim)
            if message is None:
                return
            taken = self._pending[run_id] = _Taken(job.job_id, queue, message.message_id, claim)
            waiting += 1
            task = asyncio.create_task(self._run(definition, taken, message, run_id),
                                       name=f"mcp-scheduler-queue-{job.job_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, definition: JobDefinition, taken: _Taken, message: QueueMessage, run_id: str) -> None:
        epoch, job_id = self._epoch, definition.job_id
        on_message = definition.policy.on_message
        queue = on_message.queue if on_message is not None else taken.queue  # as its owner calls it, not as stored

        def going() -> bool:
            job = self._table.get(job_id)
            return self._epoch == epoch and job is not None and job.state == "scheduled"

        record = None
        try:
            record = await self._runs.admission.run_extra(
                definition, "queue", None, wait=True, go=going, run_id=run_id,
                trigger_data=message_data(queue, message),
                note=f"message {message.message_id} of queue {queue!r}", taken=NO_RECORD,
            )
        except StartRefusedError as exc:  # this process lost the lease: the next runner settles the claim
            logger.warning("%s", exc)
        except Exception:
            logger.exception("Job %s: the run of message %s of queue %r could not be started", job_id,
                             message.message_id, taken.queue)
        finally:
            if self._pending.pop(run_id, None) is not None:  # it did not start: the message waits at its place
                if record is not None:  # the store refused the start: look again later, not at once
                    self._rest[job_id] = self._clock.monotonic() + POLL_EVERY
                if self._engine.runner:  # else the next runner settles it from its claim
                    self._settle(taken, done=False)
                self._wake_up()
