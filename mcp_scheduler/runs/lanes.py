"""Each job's runs in flight: its admitted fires, those buffered behind them, and its runs outside the schedule."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..jobs import Job
from .targets import PER_JOB_FLAG, concurrency_limit, runs_words

if TYPE_CHECKING:
    from ..scheduler.table import JobTable

__all__ = ["Fire", "JobLanes", "Lane"]


@dataclass(slots=True, eq=False)
class Fire:
    """A fire of a job on its way to a run: admitted (waiting for a slot, claiming, running), or buffered."""

    run_time: datetime
    task: asyncio.Task[Any] | None
    turn: asyncio.Future[None] | None = None  # a buffered fire's: resolved when it may go
    run_id: str | None = None  # a buffered fire's "waiting" record, which its run (or its end) replaces
    executing: bool = False  # inside execute(), which records how it ends
    displaced: bool = False  # cancel_other: a later fire took its place


@dataclass(slots=True)
class Lane:
    """The fires of one job: admitted ones, oldest first, and those buffered behind them, in order."""

    active: list[Fire] = field(default_factory=list)
    waiting: deque[Fire] = field(default_factory=deque)


class JobLanes:
    """At most `per_job` runs of one job in flight (--max-runs-per-job): its admitted fires (in its lane) and its
    run_now, retry and backfill runs (outside it) together."""

    def __init__(self, table: JobTable, per_job: int) -> None:
        self._table = table
        self.per_job = per_job
        self.lanes: dict[str, Lane] = {}  # jobs with fires admitted or buffered
        self._extra: Counter[str] = Counter()  # runs of a job in flight outside its lane
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}  # runs waiting for room in their job

    def lane(self, job_id: str) -> Lane:
        lane = self.lanes.get(job_id)
        if lane is None:
            lane = self.lanes[job_id] = Lane()
        return lane

    def has_room(self, job_id: str, lane: Lane | None) -> bool:
        """True if the job has fewer runs in flight than `per_job` (admitted fires and runs outside its lane)."""
        extra = self._extra.get(job_id, 0) if self._extra else 0
        return (len(lane.active) if lane is not None else 0) + extra < self.per_job

    def load(self, job_id: str) -> int:
        """The job's runs in flight: admitted fires and runs outside its lane."""
        lane = self.lanes.get(job_id)
        return (len(lane.active) if lane is not None else 0) + self._extra.get(job_id, 0)

    def busy(self, job: Job, lane: Lane, limit: int) -> str:
        """Why a fire found no room, in words (the start of a skipped fire's note)."""
        if len(lane.active) < limit or (limit >= self.per_job and limit != job.definition.max_instances):
            total = len(lane.active) + self._extra.get(job.job_id, 0)
            were = "was" if total == 1 else "were"
            return (f"{runs_words(total)} of the job {were} still in progress, the most one job may have "
                    f"({PER_JOB_FLAG} {self.per_job})")
        return f"max_instances ({limit}) runs were still in progress"

    def leave(self, job_id: str, fire: Fire) -> None:
        """A fire is done (or will not run): the buffered fires next in line get their turn."""
        lane = self.lanes.get(job_id)
        if lane is None:
            return
        if fire in lane.active:
            lane.active.remove(fire)
        elif fire in lane.waiting:
            lane.waiting.remove(fire)
        self._promote(job_id, lane)

    def _promote(self, job_id: str, lane: Lane) -> None:
        """Give the buffered fires of a job their turn while it has room; wake its runs waiting for room."""
        job = self._table.get(job_id)
        limit = concurrency_limit(job.definition, self.per_job) if job is not None else 1
        while lane.waiting and len(lane.active) < limit and self.has_room(job_id, lane):
            turn = lane.waiting.popleft()
            lane.active.append(turn)
            if turn.turn is not None and not turn.turn.done():
                turn.turn.set_result(None)
        if not lane.active and not lane.waiting:
            del self.lanes[job_id]
        if self._waiters:
            self.wake(job_id)

    async def enter(self, job_id: str, *, wait: bool) -> bool:
        """Take a place among the job's runs in flight outside its lane, waiting for one if `wait`; False if the
        job went (or there is no room and not `wait`)."""
        while not self.has_room(job_id, self.lanes.get(job_id)):
            if not wait:
                return False
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(job_id, []).append(waiter)
            try:
                await waiter
            finally:
                waiters = self._waiters.get(job_id)
                if waiters is not None:
                    waiters.remove(waiter)
                    if not waiters:
                        del self._waiters[job_id]
            if job_id not in self._table:
                return False
        self._extra[job_id] += 1
        return True

    def exit(self, job_id: str) -> None:
        """A run outside the job's lane ended: its place goes to a buffered fire or a waiting run."""
        self._extra[job_id] -= 1
        if self._extra[job_id] <= 0:
            del self._extra[job_id]
        lane = self.lanes.get(job_id)
        if lane is not None:
            self._promote(job_id, lane)
        elif self._waiters:
            self.wake(job_id)

    def wake(self, job_id: str) -> None:
        """Wake the runs waiting for room in the job (it has room, or it is gone)."""
        for waiter in self._waiters.get(job_id, ()):
            if not waiter.done():
                waiter.set_result(None)
