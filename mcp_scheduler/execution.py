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
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import anyio
import pydantic_core
from pydantic import BaseModel, TypeAdapter

from agentool_bridge import AgenToolInjector
from agentool_bridge.context import RunInfo, running
from agentool_bridge.redaction import revealing
from agentool_bridge.secrets import Secrets, redact, resolve_env
from agentool_bridge.toolkits import AddressRules, QueueStore
from agentool_bridge.toolkits.inbox import INBOX_QUEUE, InboxLevel, post_to_inbox
from agentool_bridge.untrusted import clip_content, untrusted

from .clocks import CLOCK_CHECK_EVERY, ClockJump, ClockWatch
from .downtime import DEFAULT_CATCHUP_WINDOW, Downtime, Gap, Window, catchup_window, duration_words, missed_message
from .errors import QuotaExceededError
from .events import EventBus, JobEvent, RunEvent
from .fire_times import jitter_delay, next_fire_time
from .history import HistoryWriter
from .jobs import FAILED, Job, JobDefinition, PendingRetry, RunStatus, RunTrigger
from .models import ErrorInfo, RunRecord
from .policies import BUFFER_LIMIT, retry_delay
from .timestamps import utcnow

__all__ = ["AdHocRun", "RunExecutor", "RunTarget", "concurrency_limit", "engine_instances"]

logger = logging.getLogger(__name__)

MAX_RESULT_BYTES = 64 * 1024
MIN_GRACE_SECONDS = 1.0
# Fires of one job that do not run (missed, skipped) are recorded per window of NOT_RUN_WINDOW seconds:
# the first of a window gets a record of its own, the others share one record, rewritten at most every
# NOT_RUN_WRITE_EVERY seconds. A job that keeps missing then costs a counter, not a row per fire.
NOT_RUN_WINDOW = 60.0
NOT_RUN_WRITE_EVERY = 15.0
_JSON = TypeAdapter(Any)
CANCELLED_BY_NEXT = "cancelled by the next fire (overlap: cancel_other)"
REPLACED_BY_NEXT = "replaced by the next fire before it started (overlap: cancel_other)"
PER_JOB_FLAG = "--max-runs-per-job"
SLOTS_FLAG = "--max-concurrent-runs"
BUFFERED_LOST = ("it waited behind a run in progress (overlap policy) when the runner stopped; its fire was claimed "
                 "by that runner, so it is not run again")


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def concurrency_limit(definition: JobDefinition, per_job: int = BUFFER_LIMIT) -> int:
    """Scheduled runs of a job that may go at once: max_instances; with overlap allow_all and max_instances left
    at 1, BUFFER_LIMIT (allow_all means overlapping fires run, so one at a time would be skip by another name);
    never more than `per_job`, the operator's limit of runs of one job in flight (--max-runs-per-job)."""
    if definition.policy.overlap == "allow_all" and definition.max_instances <= 1:
        return max(1, min(BUFFER_LIMIT, per_job))
    return max(1, min(definition.max_instances, per_job))


def engine_instances(definition: JobDefinition) -> int:
    """How many fires of a job the engine may have in progress: enough that the executor sees each fire and
    decides by the job's overlap policy (runs beyond max_instances are skipped, buffered or cancel another)."""
    return concurrency_limit(definition) + BUFFER_LIMIT + 1


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
    @property
    def address_policy(self) -> AddressRules | None: ...


@dataclass(frozen=True, slots=True)
class AdHocRun:
    """A run_now of an AgenTool that is not a scheduled job (it runs under its process's own address policy)."""

    job_id: str
    agentool_name: str
    input_data: dict[str, Any]
    timeout: float | None = None
    result_queue: str | None = None
    error_queue: str | None = None
    address_policy: AddressRules | None = None


@dataclass(slots=True, eq=False)
class _Fire:
    """A fire of a job on its way to a run: admitted (waiting for a slot, claiming, running), or buffered."""

    run_time: datetime
    task: asyncio.Task[Any] | None
    turn: asyncio.Future[None] | None = None  # a buffered fire's: resolved when it may go
    run_id: str | None = None  # a buffered fire's "waiting" record, which its run (or its end) replaces
    executing: bool = False  # inside execute(), which records how it ends
    displaced: bool = False  # cancel_other: a later fire took its place


@dataclass(slots=True)
class _Lane:
    """The fires of one job: admitted ones, oldest first, and those buffered behind them, in order."""

    active: list[_Fire] = field(default_factory=list)
    waiting: deque[_Fire] = field(default_factory=deque)


@dataclass(slots=True, eq=False)
class _Flight:
    """A run between the commit of its start and its record: what `stop_runs` cancels (cancel_job, update_job,
    stop_scheduler), with the note its record gets; `recorded` is resolved once the record is handed over."""

    job_id: str
    task: asyncio.Task[Any]
    recorded: asyncio.Future[None] | None = None
    why: str | None = None  # set when stopped
    uncancelled: bool = False


@dataclass(slots=True)
class _Streak:
    """Fires of one job in one window that did not run, for one status (missed, or skipped)."""

    agentool_name: str
    opened: float  # time.monotonic() of the window's first fire
    count: int = 1
    run_id: str = ""  # the shared record of the fires after the window's first
    first: datetime | None = None
    last: datetime | None = None
    reason: str = ""
    pending: bool = False  # changed since its record was last written
    written: float = float("-inf")  # time.monotonic() of that write


class _NotRunLog:
    """Log lines about fires that did not run: the first at once, then one summary per `every` seconds."""

    def __init__(self, every: float = 60.0) -> None:
        self._every = every
        self._counts: Counter[RunStatus] = Counter()
        self._jobs: dict[RunStatus, set[str]] = {}
        self._last = -every

    def note(self, job_id: str, status: RunStatus, why: str) -> None:
        self._counts[status] += 1
        jobs = self._jobs.setdefault(status, set())
        if len(jobs) < 10_000:
            jobs.add(job_id)
        now = time.monotonic()
        if now - self._last < self._every:
            return
        if sum(self._counts.values()) == 1:
            logger.warning("Job %s: a fire was %s: %s", job_id, status, why)
        else:
            logger.warning(
                "Fires not run in the last %.0f s: %s (each is in its job's history)",
                now - self._last if self._last >= 0 else self._every,
                "; ".join(f"{n} {status} ({len(self._jobs[status])} jobs)" for status, n in self._counts.items()),
            )
        self._counts.clear()
        self._jobs.clear()
        self._last = now


@dataclass
class _Outcome:
    status: RunStatus
    result: Any = None
    error: ErrorInfo | None = None
    notes: list[str] = field(default_factory=list)
    revealed: Secrets = field(default_factory=dict)  # `!env:` values the run saw: kept out of its record


INBOX_TEXT_LIMIT = 4000
"""Most characters of a run's result or error (as JSON text) that a message to the inbox carries."""


def _jsonable(value: Any, revealed: Secrets | None = None) -> Any:
    """`value` in JSON form, its `revealed` secrets redacted (before a too long one is cut to a preview)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        value = _JSON.dump_python(value, mode="json")
    except Exception:
        value = repr(value)
    if revealed:
        value = redact(value, revealed)
    text = pydantic_core.to_json(value, fallback=str)
    if len(text) > MAX_RESULT_BYTES:
        return {"truncated": True, "bytes": len(text), "preview": text[:4000].decode(errors="replace")}
    return value


def _settled(outcome: _Outcome) -> _Outcome:
    """The outcome with its result in JSON form (as history, queues and events carry it)."""
    if outcome.status == "success":
        outcome.result = _jsonable(outcome.result, outcome.revealed)
    return outcome


class RunExecutor:
    """Executes runs through the injector and records each one; the engine calls `on_due` and `on_skipped`.

    At most `max_concurrent_runs` runs go at a time (scheduled ones, retries, backfills and run_now). The
    engine asks `room()` and hands over no more due jobs than that (the rest stay due, in order, until
    `on_room` says a run ended); a fire that still has to wait for a slot, or cannot start within its job's
    misfire_grace_time, is recorded as missed. The event loop then has room for tool calls however many jobs
    are due, and no fire is skipped or recorded just because the scheduler is busy.

    At most `max_runs_per_job` runs of one job are in flight at a time, whatever its max_instances and
    overlap policy ask: its scheduled runs (admitted fires) and its run_now, retry and backfill runs together.

    A fire due while nothing ran (`downtime`: before this runner opened, or while the machine slept or the
    clock jumped forward, as `watch` sees it) is a catch-up fire: it runs late within its job's catch-up window
    (`catchup_window` is the server's), its record says how late and why, and beyond the window it is recorded
    missed and the inbox is told, once per job and gap.
    """

    def __init__(
        self,
        *,
        injector: AgenToolInjector,
        queues: Callable[[], QueueStore] | None,
        history: HistoryWriter,
        events: EventBus,
        jobs: Mapping[str, Job],
        max_concurrent_runs: int = 1000,
        max_runs_per_job: int = BUFFER_LIMIT,
        claim: Callable[[str, datetime], Awaitable[bool]] | None = None,
        lease_held: Callable[[], bool] | None = None,
        environ: Mapping[str, str] | None = None,
        secret_names: Collection[str] = (),
        catchup_window: float = DEFAULT_CATCHUP_WINDOW,
        watch: ClockWatch | None = None,
    ) -> None:
        self._injector = injector
        self._environ: Mapping[str, str] = environ if environ is not None else {}
        self._secret_names = secret_names
        self._queues = queues
        self._history = history
        self._events = events
        self._jobs = jobs
        self._max_concurrent = max_concurrent_runs
        self.per_job = max_runs_per_job
        self._claim = claim
        self._lease_held = lease_held
        self._in_use = 0  # slots taken
        self._full_at = float("-inf")  # time.monotonic() when room() last found no room
        self.on_room: Callable[[], None] | None = None  # called when a slot frees (the engine may hold fires)
        self._slots = asyncio.Semaphore(max_concurrent_runs)
        self._waiting: set[asyncio.Task[Any]] = set()
        self._streaks: dict[tuple[str, RunStatus], _Streak] = {}
        self._streak_timer: asyncio.TimerHandle | None = None
        self._not_run_log = _NotRunLog()
        self.running: Counter[str] = Counter()
        self.catchup_window = catchup_window
        self.downtime = Downtime(utcnow())
        self._watch = watch or ClockWatch()
        self._clock_timer: asyncio.TimerHandle | None = None
        self.on_clock_jump: Callable[[], None] | None = None  # the engine looks at due jobs at once
        self._told: set[tuple[str, Gap]] = set()  # (job, gap) whose missed fires the inbox was told about
        self._lanes: dict[str, _Lane] = {}  # jobs with fires admitted or buffered
        self._cancel_notes: dict[asyncio.Task[Any], str] = {}  # why cancel_other cancelled a task's fire
        self._flights: dict[str, set[_Flight]] = {}  # runs in flight, by job (stop_runs cancels them)
        self._stopped: dict[asyncio.Task[Any], str] = {}  # fires' tasks whose run stop_runs stopped
        self._extra: Counter[str] = Counter()  # runs of a job in flight outside its lane: run_now, retry, backfill
        self._job_waiters: dict[str, list[asyncio.Future[None]]] = {}  # runs waiting for room in their job
        # Run policies: the service pauses a job after its failures and drops a finished job from the engine.
        self.on_pause: Callable[[Job, str, str], Awaitable[None]] | None = None  # (job, why, its last error)
        self.on_complete: Callable[[str], None] | None = None
        self._retry_timers: dict[str, asyncio.TimerHandle] = {}
        self._retry_runs: set[asyncio.Task[None]] = set()
        self.hold_retries = False  # the scheduler is stopped: pending retries wait for its start

    def _trigger(self, scheduled: datetime) -> RunTrigger:
        return "catch_up" if self.downtime.gap_of(scheduled) is not None else "schedule"

    # ------------------------------------------------------------------ downtime: opening, sleep, clock jumps

    def reopen(self) -> None:
        """This process starts running the jobs (it opened, or took over): what came due before now fell in the
        downtime before it."""
        self.downtime = Downtime(utcnow())
        self._told.clear()
        self._watch.reset()

    def watch_clocks(self) -> None:
        """Look at the clocks every CLOCK_CHECK_EVERY seconds (on the runner), to notice sleep and clock jumps."""
        self.unwatch_clocks()
        self._watch.reset()
        self._clock_timer = asyncio.get_running_loop().call_later(CLOCK_CHECK_EVERY, self._clock_tick)

    def unwatch_clocks(self) -> None:
        if self._clock_timer is not None:
            self._clock_timer.cancel()
            self._clock_timer = None

    def _clock_tick(self) -> None:
        self._clock_timer = asyncio.get_running_loop().call_later(CLOCK_CHECK_EVERY, self._clock_tick)
        self._look_at_clocks()

    def _look_at_clocks(self) -> None:
        jump = self._watch.check()
        if jump is not None:
            self._clocks_moved(jump)

    def _clocks_moved(self, jump: ClockJump) -> None:
        """A sleep or a clock set forward becomes a gap, whose fires are caught up; a clock set back is logged."""
        gap = self.downtime.jumped(jump)
        if gap is not None:
            logger.warning(
                "The wall clock moved %s more than the monotonic clock between %s and %s (the machine was asleep, or "
                "the clock was set forward): fires due then run late within their jobs' catch-up window",
                duration_words(jump.seconds), jump.start.isoformat(timespec="seconds"),
                jump.end.isoformat(timespec="seconds"))
            if self.on_clock_jump is not None:
                self.on_clock_jump()
            return
        logger.warning(
            "The clock was set back by %s (to %s): each job waits until the clock reaches its next fire time again; "
            "no fire that already ran runs again", duration_words(-jump.seconds),
            jump.end.isoformat(timespec="seconds"))

    def _window(self, job: Job) -> Window:
        return catchup_window(job.definition, self.catchup_window)

    async def on_due(self, job_id: str, run_times: list[datetime]) -> None:
        """Run a job for its due times, by its catch-up and overlap policies; fires that do not run are recorded."""
        self._look_at_clocks()  # first: fires the machine slept through are told from fires late for lack of room
        job = self._jobs.get(job_id)
        if job is None:
            return
        definition = job.definition
        if job.state != "completed" and self._last_fire(definition, run_times[-1]):
            job.state = "completed"
            self._history.touch(job_id)
            self._events.publish(JobEvent("completed", job_id))
        run_times = self._catch_up(job, run_times)
        max_runs = definition.policy.max_runs
        for index, run_time in enumerate(run_times):
            if max_runs is not None and job.runs >= max_runs:
                self._complete(job)  # finished (max_runs lowered by an update): the fires still due do not run
                break
            if self._late(run_time, job):
                continue
            fire = self._admit(job, run_time)
            if fire is None:
                continue
            try:
                await self._go(job, fire)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                note = self._cancel_notes.pop(task, None) if task is not None else None
                if not fire.displaced or note is None:
                    if not fire.executing:
                        why = note or "the scheduler shut down before the run could start" + (
                            " (it was buffered)" if fire.turn else "")
                        self._not_run(job, fire, "missed", why)
                    raise
                if task is not None:
                    task.uncancel()  # cancel_other displaced this fire: the task goes on, the later fire runs
                if not fire.executing:
                    self._not_run(job, fire, "skipped", REPLACED_BY_NEXT)
                for older in run_times[index + 1:]:
                    self._record_not_run(job, older, "skipped", REPLACED_BY_NEXT)
                return
            else:
                if self._stopped and fire.task is not None and (why := self._stopped.pop(fire.task, "")):
                    for later in run_times[index + 1:]:  # stop_runs stopped this fire's run: not the later ones
                        self._record_not_run(job, later, "missed", why.replace("while this run was in progress",
                                                                              "before this fire could run"))
                    return
            finally:
                if fire.displaced and fire.task is not None:
                    self._cancel_notes.pop(fire.task, None)  # also when the run swallowed the cancellation
                self._leave(job_id, fire)

    def _catch_up(self, job: Job, run_times: list[datetime]) -> list[datetime]:
        """The due times to go on with, by the job's catch-up policy; the missed fires it drops are recorded.

        The engine hands over every time due since the job last fired. The newest is the current fire, unless it
        came due in a gap (before this runner opened, or while the machine slept): then it too was missed. A missed
        fire of a gap may run within the job's catch-up window; one held back while the scheduler ran (stopped, or
        without a free slot) within its misfire_grace_time. Missed fires beyond that are recorded missed (and those
        of a gap told in the inbox) unless a later fire runs in their place (`latest`).
        """
        gap_of = self.downtime.gap_of
        if len(run_times) == 1 and gap_of(run_times[0]) is None:
            return run_times
        definition = job.definition
        catchup = definition.policy.catchup or ("latest" if definition.coalesce else "all")
        current = run_times[-1:] if gap_of(run_times[-1]) is None else []
        missed = run_times[: len(run_times) - len(current)]
        now = utcnow()
        window, grace = self._window(job), definition.misfire_grace_time
        within: list[datetime] = []
        beyond: list[datetime] = []
        for moment in missed:
            lateness = (now - moment).total_seconds()
            if gap_of(moment) is not None:
                late = not window.covers(lateness, MIN_GRACE_SECONDS)
            else:
                late = grace is not None and lateness > max(float(grace), MIN_GRACE_SECONDS)
            (beyond if late else within).append(moment)
        if catchup == "latest":
            if not current and not within:
                self._overdue(job, beyond, now)  # every missed fire is too old: none runs
                return []
            keep = [] if current else within[-1:]  # as coalesce did: the later run replaces the older fires
            note = "coalesced: a later run time replaced it (catchup: latest)"
            for dropped in missed:
                if dropped not in keep:
                    self._record_not_run(job, dropped, "missed", note)
            return keep + current
        if catchup == "all":
            self._overdue(job, beyond, now)
            keep = within[-BUFFER_LIMIT:]
            note = f"catchup: all runs the latest {BUFFER_LIMIT} missed fires; this one was older"
            for dropped in within[: len(within) - len(keep)]:
                self._record_not_run(job, dropped, "missed", note)
            return keep + current
        for dropped in missed:
            self._record_not_run(job, dropped, "missed", "catchup: none")
        return current

    def _overdue(self, job: Job, fires: list[datetime], now: datetime, *, waited: bool = False) -> None:
        """Record fires too late to run as missed, saying why; tell the inbox about those of a gap, once per
        job and gap."""
        by_gap: dict[Gap, list[datetime]] = {}
        zone = job.definition.schedule.zone
        for moment in fires:
            lateness = (now - moment).total_seconds()
            if jitter := job.definition.policy.jitter:
                lateness -= jitter_delay(job.job_id, moment, jitter)
            gap = self.downtime.gap_of(moment)
            if gap is None:
                grace = job.definition.misfire_grace_time
                why = f"due {lateness:.1f} s ago, beyond misfire_grace_time {grace} s"
                if waited or time.monotonic() - self._full_at <= lateness:
                    why += f" (it waited for one of the {self._max_concurrent} runs the scheduler does at a time)"
            else:
                window = self._window(job)
                why = (f"due {duration_words(lateness)} ago, longer ago than its catch-up window ({window.words()}): "
                       f"{gap.why(moment, zone, now)}")
                by_gap.setdefault(gap, []).append(moment)
            self._record_not_run(job, moment, "missed", why)
        for gap, missed in by_gap.items():
            self._tell(job, gap, missed, now)

    def _tell(self, job: Job, gap: Gap, fires: list[datetime], now: datetime) -> None:
        """Say in the inbox (source `scheduler`) that fires of `job` due in `gap` will not run; once per job and gap."""
        key = (job.job_id, gap)
        if key in self._told or self._queues is None:
            return
        self._told.add(key)
        definition = job.definition
        title, text = missed_message(definition.job_name or job.job_id, fires, self._window(job), gap,
                                     definition.schedule.zone, now)
        try:
            post_to_inbox(self._queues(), text, title=title, level="warning", source="scheduler", job_id=job.job_id,
                          job_name=definition.job_name)
        except Exception as exc:
            logger.warning("Job %s: could not tell the inbox about its missed runs: %s", job.job_id, exc)

    def _admit(self, job: Job, run_time: datetime) -> _Fire | None:
        """Let a fire go, buffer it, or record it as skipped, by the job's overlap policy (None: it does not run).

        Synchronous, so that the fires of one job are decided one at a time, in the order they come.
        """
        definition = job.definition
        overlap, limit = definition.policy.overlap, concurrency_limit(definition, self.per_job)
        lane = self._lanes.get(job.job_id)
        if lane is None:
            lane = self._lanes[job.job_id] = _Lane()
        fire = _Fire(run_time, asyncio.current_task())
        if len(lane.active) < limit and not lane.waiting and self._job_has_room(job.job_id, lane):
            lane.active.append(fire)
            return fire
        if overlap in ("skip", "allow_all"):
            self._record_not_run(job, run_time, "skipped", f"{self._busy(job, lane, limit)} (overlap: {overlap})")
            return None
        if overlap == "cancel_other":
            for other in [f for f in lane.waiting if not f.displaced]:
                self._displace(other, REPLACED_BY_NEXT)
            going = [f for f in lane.active if not f.displaced]
            if len(going) >= limit:
                self._displace(going[0], CANCELLED_BY_NEXT)
        elif len(lane.waiting) >= (1 if overlap == "buffer_one" else BUFFER_LIMIT):
            waiting = "a fire was already waiting" if overlap == "buffer_one" else f"{BUFFER_LIMIT} fires were waiting"
            self._record_not_run(job, run_time, "skipped", f"{waiting} behind the run in progress (overlap: {overlap})")
            return None
        fire.turn = asyncio.get_running_loop().create_future()
        lane.waiting.append(fire)
        return fire

    def _displace(self, fire: _Fire, note: str) -> None:
        """cancel_other: cancel a fire of the job (running or not yet started) for the one that just came."""
        fire.displaced = True
        if fire.task is not None and fire.task is not asyncio.current_task():
            self._cancel_notes[fire.task] = note
            fire.task.cancel()

    def _job_has_room(self, job_id: str, lane: _Lane | None) -> bool:
        """True if the job has fewer runs in flight than `per_job` (admitted fires and runs outside its lane)."""
        extra = self._extra.get(job_id, 0) if self._extra else 0
        return (len(lane.active) if lane is not None else 0) + extra < self.per_job

    def _busy(self, job: Job, lane: _Lane, limit: int) -> str:
        """Why a fire found no room, in words (the start of a skipped fire's note)."""
        if len(lane.active) < limit or (limit >= self.per_job and limit != job.definition.max_instances):
            total = len(lane.active) + self._extra.get(job.job_id, 0)
            were = "was" if total == 1 else "were"
            return (f"{_runs(total)} of the job {were} still in progress, the most one job may have "
                    f"({PER_JOB_FLAG} {self.per_job})")
        return f"max_instances ({limit}) runs were still in progress"

    def _leave(self, job_id: str, fire: _Fire) -> None:
        """A fire is done (or will not run): the buffered fires next in line get their turn."""
        lane = self._lanes.get(job_id)
        if lane is None:
            return
        if fire in lane.active:
            lane.active.remove(fire)
        elif fire in lane.waiting:
            lane.waiting.remove(fire)
        self._promote(job_id, lane)

    def _promote(self, job_id: str, lane: _Lane) -> None:
        """Give the buffered fires of a job their turn while it has room; wake its runs waiting for room."""
        job = self._jobs.get(job_id)
        limit = concurrency_limit(job.definition, self.per_job) if job is not None else 1
        while lane.waiting and len(lane.active) < limit and self._job_has_room(job_id, lane):
            turn = lane.waiting.popleft()
            lane.active.append(turn)
            if turn.turn is not None and not turn.turn.done():
                turn.turn.set_result(None)
        if not lane.active and not lane.waiting:
            del self._lanes[job_id]
        if self._job_waiters:
            self._wake_job(job_id)

    async def _go(self, job: Job, fire: _Fire) -> None:
        """Run an admitted fire: wait for its turn if buffered, then for a slot; claim it; execute it."""
        job_id, run_time = job.job_id, fire.run_time
        if fire.turn is not None:
            if not await self._buffer(job, fire):
                return
            current = self._jobs.get(job_id)
            if current is None or current.state != "scheduled":
                why = "the job was cancelled" if current is None else f"the job was {current.state}"
                self._not_run(job, fire, "missed", f"{why} while the fire waited behind a run in progress")
                return
            job = current
        if self._slots.locked():
            task = asyncio.current_task()
            if task is not None:
                self._waiting.add(task)
            try:
                await self._slots.acquire()
            finally:
                if task is not None:
                    self._waiting.discard(task)
            # A buffered fire is late by its policy, not by the scheduler's load: it runs.
            if fire.turn is None and self._late(run_time, job, waited=True):
                self._slots.release()
                if self.on_room is not None:
                    self.on_room()
                return
        else:
            await self._slots.acquire()  # free: returns at once, without letting others run first
        self._in_use += 1
        try:
            if fire.turn is None and job_id not in self._jobs:
                self._not_run(job, fire, "missed", "the job was cancelled before the run could start")
                return
            if fire.turn is None and self._claim is not None and not await self._claim(job_id, run_time):
                self._unclaimed(job, fire)
                return
            fire.executing = True
            gap = self.downtime.gap_of(run_time)
            late = None if gap is None else gap.why(run_time, job.definition.schedule.zone, utcnow())
            await self.execute(job.definition, "schedule" if gap is None else "catch_up", run_time,
                               run_id=fire.run_id, late=late)
        finally:
            self._in_use -= 1
            self._slots.release()
            if self.on_room is not None:
                self.on_room()

    async def _buffer(self, job: Job, fire: _Fire) -> bool:
        """Claim a buffered fire, record it as waiting and wait for its turn; False if it is not to run.

        Claimed when it comes, as any fire: no other runner runs it. Its "waiting" record (status running,
        never started) is what a runner that takes over after a crash finds and records as missed.
        """
        if self._claim is not None and not await self._claim(job.job_id, fire.run_time):
            self._unclaimed(job, fire)
            return False
        fire.run_id = secrets.token_hex(16)
        overlap = job.definition.policy.overlap
        self._history.record(RunRecord(
            run_id=fire.run_id,
            job_id=job.job_id,
            agentool_name=job.definition.agentool_name,
            trigger=self._trigger(fire.run_time),
            status="running",
            scheduled_time=fire.run_time,
            note=f"waiting behind the run in progress (overlap: {overlap})",
        ))
        assert fire.turn is not None
        await fire.turn
        return True

    def _unclaimed(self, job: Job, fire: _Fire) -> None:
        """A fire whose claim failed: recorded as missed, or left to the next runner if the lease is lost."""
        if self._lease_held is None or self._lease_held():
            # Claimed by the runner before this one, which stopped before it recorded the start
            # (a run starts only after that): nobody ran it, and running it now could run it twice.
            self._not_run(job, fire, "missed", "claimed by the previous runner, which stopped before it started "
                          "the run; not run again")
        else:
            logger.warning("Job %s: the runner lease is lost; the fire of %s is left to the next runner",
                           job.job_id, fire.run_time.isoformat())

    def _not_run(self, job: Job, fire: _Fire, status: RunStatus, note: str) -> None:
        """Record a fire that did not run; a buffered one replaces its "waiting" record."""
        if fire.run_id is None:
            self._record_not_run(job, fire.run_time, status, note)
            return
        job.last_status = status
        self._not_run_log.note(job.job_id, status, note)
        self._publish_not_run(job.job_id, job.definition.agentool_name, fire.run_id, status, fire.run_time, note)

    def settle_interrupted(self, records: list[RunRecord]) -> list[RunRecord]:
        """Of the runs a stopped runner left unfinished, record those that never started (buffered fires
        waiting their turn) as missed; returns the records as they now are."""
        settled: list[RunRecord] = []
        for record in records:
            if record.started_at is None and record.trigger != "run_now":
                record = record.model_copy(update={"status": "missed", "note": BUFFERED_LOST})
                self._history.record(record, job_known=False)
            settled.append(record)
        return settled

    @staticmethod
    def _last_fire(definition: JobDefinition, run_time: datetime) -> bool:
        """True if the fire at `run_time` is the job's last: a one-time job's, or the last before its end_at."""
        if definition.schedule.schedule_type == "once":
            return True
        policy = definition.policy
        if policy.end_at is None:
            return False
        following = next_fire_time(definition.schedule, run_time, run_time, end_at=policy.end_at)
        return following is None or following <= run_time

    def _late(self, run_time: datetime, job: Job, *, waited: bool = False) -> bool:
        """True (and recorded as missed) if the fire is too late to start: due longer ago than its job's catch-up
        window (a fire of a gap) or misfire_grace_time (a fire due while the scheduler ran). A fire is due at its fire
        time plus its jitter delay."""
        now = utcnow()
        lateness = (now - run_time).total_seconds()
        if jitter := job.definition.policy.jitter:
            lateness -= jitter_delay(job.job_id, run_time, jitter)
        if self.downtime.gap_of(run_time) is not None:
            if self._window(job).covers(lateness, MIN_GRACE_SECONDS):
                return False
        else:
            grace = job.definition.misfire_grace_time
            if grace is None or lateness <= max(float(grace), MIN_GRACE_SECONDS):
                return False
        self._overdue(job, [run_time], now, waited=waited)
        return True

    def room(self) -> int:
        """How many more fires can start now (what the engine hands over at most)."""
        room = self._max_concurrent - self._in_use - len(self._waiting)
        if room <= 0:
            self._full_at = time.monotonic()
        return room

    def cancel_waiting(self, why: str | None = None) -> None:
        """Cancel the fires still waiting for a slot or buffered behind a run (the scheduler is closing or stopped,
        or the lease is lost); they record themselves as missed, with `why` as the note if given."""
        buffered = [f.task for lane in self._lanes.values() for f in lane.waiting if f.task is not None]
        for task in [*self._waiting, *buffered]:
            if why is not None:
                self._cancel_notes[task] = why
            task.cancel()

    def on_skipped(self, job_id: str, run_times: list[datetime]) -> None:
        """Record fires that did not start because `max_instances` runs were still going."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        for run_time in run_times:
            self._record_not_run(
                job, run_time, "skipped", f"max_instances ({job.definition.max_instances}) runs were still in progress"
            )

    def forget(self, job_id: str) -> None:
        """Write and drop the not-run records still gathering for a job (it is gone), and its retry timer."""
        self.disarm_retry(job_id)
        self._wake_job(job_id)  # runs waiting for room in the job see it gone
        for status in ("missed", "skipped"):
            streak = self._streaks.pop((job_id, status), None)
            if streak is not None and streak.pending:
                self._write_streak(job_id, status, streak)

    def _record_not_run(self, job: Job, scheduled: datetime, status: RunStatus, note: str) -> None:
        """Record a fire that did not run: see NOT_RUN_WINDOW."""
        job.last_status = status
        self._not_run_log.note(job.job_id, status, note)
        key = (job.job_id, status)
        now = time.monotonic()
        streak = self._streaks.get(key)
        if streak is None or now - streak.opened >= NOT_RUN_WINDOW:
            if streak is not None and streak.pending:
                self._write_streak(job.job_id, status, streak)
            name = job.definition.agentool_name
            self._streaks[key] = _Streak(agentool_name=name, opened=now)
            self._publish_not_run(job.job_id, name, secrets.token_hex(16), status, scheduled, note)
            return
        streak.count += 1
        if not streak.run_id:
            streak.run_id, streak.first = secrets.token_hex(16), scheduled
        streak.last, streak.reason, streak.pending = scheduled, note, True
        if now - streak.written >= NOT_RUN_WRITE_EVERY:
            self._write_streak(job.job_id, status, streak)
        elif self._streak_timer is None:
            self._streak_timer = asyncio.get_running_loop().call_later(NOT_RUN_WRITE_EVERY, self._write_due_streaks)

    def _write_due_streaks(self) -> None:
        """Write the shared records that changed, and drop the windows that have closed."""
        self._streak_timer = None
        self.write_streaks()
        now = time.monotonic()
        for key in [k for k, streak in self._streaks.items() if now - streak.opened >= NOT_RUN_WINDOW]:
            del self._streaks[key]

    def _write_streak(self, job_id: str, status: RunStatus, streak: _Streak) -> None:
        first, last = streak.first or streak.last, streak.last or streak.first
        assert first is not None and last is not None
        fires = streak.count - 1
        note = streak.reason if fires == 1 else (
            f"{fires} fires {status} from {first.isoformat()} to {last.isoformat()} (one record for all"
            f"; the last said: {streak.reason})"
        )
        streak.pending, streak.written = False, time.monotonic()
        self._publish_not_run(job_id, streak.agentool_name, streak.run_id, status, first, note)

    def _publish_not_run(
        self, job_id: str, agentool_name: str, run_id: str, status: RunStatus, scheduled: datetime, note: str
    ) -> None:
        record = RunRecord(
            run_id=run_id,
            job_id=job_id,
            agentool_name=agentool_name,
            trigger=self._trigger(scheduled),
            status=status,
            scheduled_time=scheduled,
            note=note,
        )
        self._history.record(record, job_known=job_id in self._jobs)
        self._events.publish(RunEvent("finished", record))

    def write_streaks(self) -> None:
        """Write the shared not-run records that changed since they were last written (before closing too)."""
        if self._streak_timer is not None:
            self._streak_timer.cancel()
            self._streak_timer = None
        for (job_id, status), streak in self._streaks.items():
            if streak.pending:
                self._write_streak(job_id, status, streak)

    async def execute(
        self, target: RunTarget, trigger: RunTrigger, scheduled: datetime | None, *, run_id: str | None = None,
        attempt: int | None = None, late: str | None = None,
    ) -> RunRecord:
        """Run `target` once and record it; returns the record (a failed run is a record, not an exception).

        The start of the run (and the state of its job: next run time, a one-time job completed) is
        committed before the AgenTool is called, so that after a crash the run is found `interrupted`
        instead of run again. The finished record is committed before a run_now returns and before a
        result or error goes to a queue; otherwise it is written with the next batch. Cancellation
        (the scheduler shutting down, or cancel_other) records the run as cancelled and propagates.
        `run_id`: of the record the run replaces (a buffered fire's "waiting" record). `late`: why a catch-up fire
        runs late ("nothing was running at 09:00 UTC"): its record's note says how late, and why.

        A scheduled run (not run_now) follows its job's run policy: it counts towards max_runs (retries do
        not), a failure with attempts left schedules the next attempt (`attempt` is this one's number) and
        keeps the error from the error queue, and failures in a row can pause the job.
        """
        # This path runs once per fire: when a thousand jobs are due at once, each microsecond here
        # makes the last of them start a millisecond later.
        job_id = target.job_id
        base: dict[str, Any] = {
            "run_id": run_id or secrets.token_hex(16),
            "job_id": job_id,
            "agentool_name": target.agentool_name,
            "trigger": trigger,
            "scheduled_time": scheduled,
            "started_at": utcnow(),
        }
        job = self._jobs.get(job_id)
        policed = job if job is not None and trigger in ("schedule", "catch_up", "retry") else None
        if job is not None:
            job.last_run_at = base["started_at"]
            job.last_status = "running"
        if policed is not None:
            policy = policed.definition.policy
            if policy.max_attempts > 1:
                base["attempt"] = attempt = attempt or 1
            # Counted only under a policy that uses the count: a job without one has no progress to store.
            if trigger != "retry" and policy.max_runs is not None:
                policed.runs += 1
                if policed.runs >= policy.max_runs:
                    self._complete(policed)  # with its last run's start, in the commit below
        lead = None
        if late is not None and scheduled is not None:
            lead = f"ran {duration_words((base['started_at'] - scheduled).total_seconds())} late: {late}"
        started = RunRecord(status="running", note=lead, **base)
        t0 = time.perf_counter()
        flight = self._take_off(job_id)
        try:
            try:
                await self._history.commit(started, job_id=job_id if job is not None else None)
            except asyncio.CancelledError:
                record = self._cut_short(base, t0, flight, "the scheduler shut down before the run started")
                if self._absorbed(flight, trigger):
                    return record
                raise
            except Exception:
                # The record stays buffered and is written with a later batch; the run goes ahead.
                logger.exception("Job %s: could not commit the start of its run", job_id)
            if trigger != "run_now" and self._lease_held is not None and not self._lease_held():
                # Fencing: the lease went while the start was being written (the process was frozen or cut off);
                # another runner may own this fire's job by now.
                return self._finish(base, _Outcome("interrupted", notes=["the runner lease was lost before the run "
                                                                         "started; not run"]), t0)
            self._events.publish(RunEvent("started", started))
            self.running[job_id] += 1
            outcome: _Outcome
            try:
                # The job's stored address policy goes with the run: http and webhooks obey it as well as this
                # process's.
                info = RunInfo(job_id, base["run_id"], trigger, scheduled, getattr(target, "job_name", None),
                               target.address_policy)
                with running(info):
                    outcome = await self._call(target)
                if lead is not None:
                    outcome.notes.insert(0, lead)
            except asyncio.CancelledError:
                record = self._cut_short(base, t0, flight, "the scheduler shut down while the run was in progress")
                if self._absorbed(flight, trigger):
                    return record
                raise
            finally:
                self.running[job_id] -= 1
                if self.running[job_id] <= 0:
                    del self.running[job_id]
        finally:
            self._land(flight)
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
        retry = None if policed is None else self._follow_policy(policed, scheduled, attempt, outcome)
        record = self._finish(base, outcome, t0)
        # A failure that is retried goes to no queue: the error queue gets the final failure only.
        queue = target.result_queue if outcome.status == "success" else None if retry else target.error_queue
        if trigger == "run_now" or queue or retry:
            # What run_now answers, a run whose result a queue announces, and a pending retry are committed first.
            await self._history.commit()
        if queue:
            note = self._send_to_queue(target, record, queue)
            if note is not None:
                outcome.notes.append(note)
                record = self._finish(base, outcome, t0, publish=False)
        if policed is not None:
            if retry is not None and (self._lease_held is None or self._lease_held()):
                self.arm_retry(policed)
            await self.pause_if_failing(policed, record)
        return record

    def _cut_short(self, base: dict[str, Any], t0: float, flight: _Flight | None, default: str) -> RunRecord:
        """Record a run that was cancelled: why (the job was cancelled or updated, the scheduler stopped or
        shut down: `default`)."""
        return self._finish(base, _Outcome("cancelled", notes=[self._cancel_note(default, flight)]), t0)

    def _cancel_note(self, default: str, flight: _Flight | None = None) -> str:
        """Why the current task was cancelled: `stop_runs`'s note, cancel_other's, else `default` (the scheduler
        shut down)."""
        if flight is not None and flight.why is not None:
            return flight.why
        task = asyncio.current_task()
        return (self._cancel_notes.get(task) if task is not None else None) or default

    # ------------------------------------------------------------------ runs in flight, and stopping them

    def _take_off(self, job_id: str) -> _Flight | None:
        """Note the current task's run of `job_id` as in flight (until `_land`)."""
        task = asyncio.current_task()
        if task is None:
            return None
        flight = _Flight(job_id, task)
        flights = self._flights.get(job_id)
        if flights is None:
            self._flights[job_id] = {flight}
        else:
            flights.add(flight)
        return flight

    def _land(self, flight: _Flight | None) -> None:
        """The run is recorded (or on its way out by an exception): it is no longer in flight."""
        if flight is None:
            return
        flights = self._flights.get(flight.job_id)
        if flights is not None:
            flights.discard(flight)
            if not flights:
                del self._flights[flight.job_id]
        if flight.why is not None:
            if not flight.uncancelled:  # the AgenTool swallowed the cancellation and finished
                flight.uncancelled = True
                flight.task.uncancel()
            if flight.recorded is not None and not flight.recorded.done():
                flight.recorded.set_result(None)

    def _absorbed(self, flight: _Flight | None, trigger: RunTrigger) -> bool:
        """After a cancellation of a run and its record: True if `stop_runs` asked for it alone (the caller then
        goes on with the record: a run_now answers with it, a fire's task ends); False to propagate it."""
        if flight is None or flight.why is None:
            return False
        flight.uncancelled = True
        if flight.task.uncancel() > 0:
            return False  # cancelled for another reason too (the scheduler closing): that one goes on
        if trigger in ("schedule", "catch_up"):
            self._stopped[flight.task] = flight.why
        return True

    def stop_runs(self, job_id: str | None, reason: str) -> list[asyncio.Future[None]]:
        """Cancel the runs in flight of `job_id` (None: of every job); each is recorded `cancelled` with the note
        "<reason> while this run was in progress". Returns futures resolved as each is recorded (to wait for
        before the record is committed). The current task's own run, if any, is left alone."""
        if job_id is None:
            flights = [f for group in self._flights.values() for f in group]
        else:
            flights = list(self._flights.get(job_id, ()))
        current = asyncio.current_task()
        waits: list[asyncio.Future[None]] = []
        for flight in flights:
            if flight.task is current:
                continue
            if flight.recorded is None:
                flight.recorded = asyncio.get_running_loop().create_future()
            if flight.why is None:
                flight.why = f"{reason} while this run was in progress"
                flight.task.cancel()
            waits.append(flight.recorded)
        return waits

    # ------------------------------------------------------------------ run policies

    def _complete(self, job: Job) -> None:
        """The job ran its last scheduled run (policy.max_runs): it finishes and stays readable."""
        if job.state == "completed":
            return
        job.state = "completed"
        self._history.touch(job.job_id)
        if self.on_complete is not None:
            self.on_complete(job.job_id)
        self._events.publish(JobEvent("completed", job.job_id))

    def _follow_policy(
        self, job: Job, scheduled: datetime | None, attempt: int | None, outcome: _Outcome
    ) -> PendingRetry | None:
        """Count the run's outcome for the job; return the retry it schedules (then set on the job), if any."""
        policy = job.definition.policy
        status = outcome.status
        if status == "success":
            job.failures = 0
        if policy.max_attempts > 1:
            outcome.notes.append(f"attempt {attempt or 1} of {policy.max_attempts}")
        if status not in FAILED:
            return None  # cancelled (the scheduler closed): neither a failure nor a success
        return self.plan_retry(job, status, attempt, scheduled, outcome.notes)

    def plan_retry(
        self, job: Job, status: RunStatus, attempt: int | None, nominal: datetime | None, notes: list[str],
        *, at_once: bool = False,
    ) -> PendingRetry | None:
        """After a failed run: set the job's next attempt (after the policy's delay, or `at_once`) if its policy
        retries `status` and attempts are left (and it has no retry pending already); otherwise count a
        failure. Notes say which."""
        policy = job.definition.policy
        number = attempt or 1
        if status in policy.retry_on and number < policy.max_attempts and job.retry is None:
            at = utcnow() + timedelta(seconds=0 if at_once else retry_delay(policy, number))
            job.retry = PendingRetry(at, number + 1, nominal)
            notes.append(f"attempt {number + 1} at {at.isoformat(timespec='milliseconds')}")
            return job.retry
        if policy.pause_after_failures is not None:
            job.failures += 1
        return None

    async def pause_if_failing(self, job: Job, record: RunRecord) -> None:
        """Pause the job (through `on_pause`) once it has failed `policy.pause_after_failures` times in a row."""
        limit = job.definition.policy.pause_after_failures
        if limit is None or job.failures < limit or job.state != "scheduled" or self.on_pause is None:
            return
        last = record.error.message if record.error else record.status
        failures = f"{job.failures} failure{'s' if job.failures > 1 else ''}"
        try:
            await self.on_pause(job, f"paused after {failures} in a row", last)
        except Exception:
            logger.exception("Job %s: could not pause it after %d failures in a row", job.job_id, job.failures)

    def arm_retry(self, job: Job) -> None:
        """Start the timer of the job's pending retry (on the runner; a paused job's waits until resumed)."""
        self.disarm_retry(job.job_id)
        retry = job.retry
        if retry is None or job.state == "paused" or self.hold_retries:
            return
        delay = max(0.0, (retry.at - utcnow()).total_seconds())
        loop = asyncio.get_running_loop()
        self._retry_timers[job.job_id] = loop.call_later(delay, self._retry_due, job.job_id, retry)

    def disarm_retry(self, job_id: str) -> None:
        handle = self._retry_timers.pop(job_id, None)
        if handle is not None:
            handle.cancel()

    def stop_retries(self) -> set[asyncio.Task[None]]:
        """Cancel every retry timer (the retries stay stored); returns the retries in progress."""
        for handle in self._retry_timers.values():
            handle.cancel()
        self._retry_timers.clear()
        return set(self._retry_runs)

    def _retry_due(self, job_id: str, retry: PendingRetry) -> None:
        self._retry_timers.pop(job_id, None)
        task = asyncio.create_task(self._run_retry(job_id, retry), name=f"mcp-scheduler-retry-{job_id}")
        self._retry_runs.add(task)
        task.add_done_callback(self._retry_runs.discard)

    async def _run_retry(self, job_id: str, retry: PendingRetry) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.retry != retry or job.state == "paused":
            return  # gone, changed, or waiting for its job to be resumed
        if not await self._job_turn(job_id, wait=True):
            return
        try:
            await self._slots.acquire()
            self._in_use += 1
            try:
                if self.hold_retries:
                    return  # the scheduler was stopped while it waited: it waits for the start (still stored)
                # Claimed by its own time: a fire's claim is by its scheduled time, this retry's by when it is due.
                if self._claim is not None and not await self._claim(job_id, retry.at):
                    if self._lease_held is None or self._lease_held():
                        job.retry = None
                        self._history.touch(job_id)
                        self._record_not_run(job, retry.nominal or retry.at, "missed", "a retry claimed by the "
                                             "previous runner, which stopped before it started the run; not run again")
                    return
                if job.retry != retry or job.state == "paused" or self._jobs.get(job_id) is not job:
                    return
                job.retry = None  # stored with the start of the run
                await self.execute(job.definition, "retry", retry.nominal, attempt=retry.attempt)
            finally:
                self._in_use -= 1
                self._slots.release()
                if self.on_room is not None:
                    self.on_room()
        finally:
            self._done_extra(job_id)

    # ------------------------------------------------------------------ runs outside the schedule

    async def run_extra(
        self,
        target: RunTarget,
        trigger: RunTrigger,
        scheduled: datetime | None,
        *,
        wait: bool,
        go: Callable[[], bool] | None = None,
    ) -> RunRecord | None:
        """Execute a run that is not a fire (run_now, backfill) in one of the scheduler's slots and within its
        job's room (`per_job`): `wait` for both, or refuse at once with `QuotaExceededError` naming the flag.
        Returns None, without running, if the job was cancelled (or `go()` turned false) while it waited."""
        job_id = target.job_id
        known = job_id in self._jobs
        if not wait:
            if self._slots.locked():
                raise QuotaExceededError(
                    f"{self._max_concurrent:,} runs are in progress, the most this scheduler runs at once "
                    f"({SLOTS_FLAG}): try again once some of them have finished, or ask the operator to raise "
                    f"{SLOTS_FLAG}."
                )
            if known and not self._job_has_room(job_id, self._lanes.get(job_id)):
                raise QuotaExceededError(
                    f"Job {job_id!r} has {_runs(self._job_load(job_id))} in progress, the most one job may have "
                    f"({PER_JOB_FLAG} {self.per_job}): wait for them to finish (get_job shows them), stop them "
                    f"with cancel_job, or ask the operator to raise {PER_JOB_FLAG}."
                )
        if known and not await self._job_turn(job_id, wait=wait):
            return None
        try:
            await self._slots.acquire()
            self._in_use += 1
            try:
                if (known and job_id not in self._jobs) or (go is not None and not go()):
                    return None
                return await self.execute(target, trigger, scheduled)
            finally:
                self._in_use -= 1
                self._slots.release()
                if self.on_room is not None:
                    self.on_room()
        finally:
            if known:
                self._done_extra(job_id)

    def _job_load(self, job_id: str) -> int:
        """The job's runs in flight: admitted fires and runs outside its lane."""
        lane = self._lanes.get(job_id)
        return (len(lane.active) if lane is not None else 0) + self._extra.get(job_id, 0)

    async def _job_turn(self, job_id: str, *, wait: bool) -> bool:
        """Take a place among the job's runs in flight, waiting for one if `wait`; False if the job went."""
        while not self._job_has_room(job_id, self._lanes.get(job_id)):
            if not wait:
                return False
            waiter = asyncio.get_running_loop().create_future()
            self._job_waiters.setdefault(job_id, []).append(waiter)
            try:
                await waiter
            finally:
                waiters = self._job_waiters.get(job_id)
                if waiters is not None:
                    waiters.remove(waiter)
                    if not waiters:
                        del self._job_waiters[job_id]
            if job_id not in self._jobs:
                return False
        self._extra[job_id] += 1
        return True

    def _done_extra(self, job_id: str) -> None:
        """A run outside the job's lane ended: its place goes to a buffered fire or a waiting run."""
        self._extra[job_id] -= 1
        if self._extra[job_id] <= 0:
            del self._extra[job_id]
        lane = self._lanes.get(job_id)
        if lane is not None:
            self._promote(job_id, lane)
        elif self._job_waiters:
            self._wake_job(job_id)

    def _wake_job(self, job_id: str) -> None:
        for waiter in self._job_waiters.get(job_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    async def _call(self, target: RunTarget) -> _Outcome:
        injector = self._injector
        revealed: Secrets = {}
        try:
            # `!env:` secrets exist only here, for this run, and only those the operator allows; what the run
            # returns is redacted below, and what it hands to a store or quotes in an error while it runs is
            # redacted there (they are revealed to this context).
            input_data, revealed = resolve_env(target.input_data, self._environ, self._secret_names)
            # AgenTools that call others through get_injector() reach this scheduler's injector.
            with injector.activate(), revealing(revealed):
                if target.timeout is None:
                    result = await injector.run(target.agentool_name, input_data)
                else:
                    with anyio.move_on_after(target.timeout) as scope:
                        result = await injector.run(target.agentool_name, input_data)
                    if scope.cancelled_caught:
                        message = f"the run took longer than {target.timeout} s"
                        return _Outcome("timeout", error=ErrorInfo(type="TimeoutError", message=message))
        except Exception as exc:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            message = str(exc)
            if revealed:  # before the traceback is cut to its end, so that the cut leaves no part of one
                tb, message = redact(tb, revealed), redact(message, revealed)
            return _Outcome("error", error=ErrorInfo(type=type(exc).__name__, message=message, traceback=tb[-4000:]))
        return _Outcome("success", result=result, revealed=revealed)  # made JSON (and redacted) by _settled

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
            if queue == INBOX_QUEUE:  # the human's inbox: a message in its own shape, readable as is
                self._post_to_inbox(target, record, message)
            else:
                self._queues().enqueue(queue, message, level="info" if record.status == "success" else "error")
        except Exception as exc:
            logger.warning("Job %s: could not send to queue %r: %s", target.job_id, queue, exc)
            return f"could not send to queue {queue!r}: {exc}"
        return None

    def _post_to_inbox(self, target: RunTarget, record: RunRecord, message: dict[str, Any]) -> None:
        """A run's result or error as an inbox message of source `job`: the title and message are the server's
        words; what the run returned (or the error it raised) is labelled untrusted, whoever produced it."""
        assert self._queues is not None
        job_name = getattr(target, "job_name", None)
        name = job_name or target.job_id
        origin = f"job {name!r} ({target.agentool_name})"
        level: InboxLevel
        if record.status == "success":
            title, level, content = f"{name}: done", "info", record.result
            text = f"A run of job {name!r} ({target.agentool_name}) succeeded; its result is in `untrusted`."
        else:
            title, level, content = f"{name}: {record.status}", "error", str(message["error"])
            kind = f" ({record.error.type})" if record.error else ""
            text = (f"A run of job {name!r} ({target.agentool_name}) ended with status {record.status}{kind}; its "
                    "error message is in `untrusted`.")
        post_to_inbox(
            self._queues(), text, title=title, level=level, source="job", job_id=target.job_id, job_name=job_name,
            run_id=record.run_id, untrusted=clip_content(untrusted(content, origin), INBOX_TEXT_LIMIT),
        )

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
