"""The queries: jobs (a page of them, or one with its latest runs), history, the scheduler's status, and previews
of schedules. They read the job table and the store; they change nothing but a standby's view of a job."""

from __future__ import annotations

import itertools
import logging
import operator
import re
from collections.abc import Iterable
from datetime import datetime

from .._engine import STATE_PAUSED, STATE_RUNNING
from ..clocks import Clock
from ..errors import JobNotFoundError
from ..fire_times import preview_fire_times
from ..history import HistoryWriter
from ..jobs import Job, RunStatus
from ..lease import RunnerLease
from ..models import JobInfo, RunRecord, SchedulePreview, SchedulerStatus
from ..owners import visible
from ..policies import PolicyInput, RunPolicy
from ..principals import acting
from ..runs import RunPath
from ..schedules import parse_moment, parse_schedule
from ..schedules.zones import zone_warning
from ..store import SchedulerStore
from .engine import EngineHandle
from .inputs import RequestChecks, policy_of, preview_note
from .replication import Replication
from .table import JobTable
from .views import JobViews

__all__ = ["JobQueries"]

logger = logging.getLogger(__name__)

_STATE_NAMES = {0: "stopped", 1: "running", 2: "paused"}
_RUN_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
"""A run id, or its first characters, as get_history and get_run take them (ids are 32 hex digits)."""
_STATE_OF = operator.attrgetter("state")


class JobQueries:
    """What the read tools answer (the service checks that it is open first)."""

    def __init__(
        self,
        *,
        timezone: str,
        table: JobTable,
        engine: EngineHandle,
        store: SchedulerStore,
        lease: RunnerLease,
        history: HistoryWriter,
        runs: RunPath,
        checks: RequestChecks,
        replication: Replication,
        views: JobViews,
        clock: Clock,
    ) -> None:
        self._timezone = timezone
        self._table = table
        self._engine = engine
        self._store = store
        self._lease = lease
        self._history = history
        self._runs = runs
        self._checks = checks
        self._replication = replication
        self._views = views
        self._clock = clock

    def list_jobs(
        self,
        *,
        state: str | None = None,
        agentool_name: str | None = None,
        offset: int = 0,
        limit: int | None = None,
        include_completed: bool = False,
    ) -> tuple[list[JobInfo], int]:
        """Jobs in creation order (filtered), one page of them, and the total that match."""

        # With 100,000 jobs a Python call per job made the first page ~50 ms: the count runs in C
        # (map + list.count) and the page stops at its last job.
        jobs: Iterable[Job] = self._table.jobs()
        admin = acting().admin
        if not admin:
            jobs = visible(jobs)  # the principal's own (counted below)
        if admin and agentool_name is None and (state is not None or not include_completed):
            states = list(map(_STATE_OF, self._table.jobs()))
            total = states.count(state) if state is not None else len(states) - states.count("completed")
        else:
            total = -1  # counted below
        if state is not None:
            jobs = (j for j in jobs if j.state == state)
        elif not include_completed:
            jobs = (j for j in jobs if j.state != "completed")
        if agentool_name is not None:
            jobs = (j for j in jobs if j.definition.agentool_name == agentool_name)
        if total < 0:
            selected = list(jobs)
            total, jobs = len(selected), selected
        start = min(offset, total)  # a cursor far past the end is an empty page (islice takes no huge ints)
        end = None if limit is None else min(offset + limit, total)
        page = list(itertools.islice(jobs, start, end)) if end is None or start < end else []
        return [self._views.info(j) for j in page], total

    def job_ids(self) -> list[str]:
        """Every job id the acting principal may see (for completions)."""
        return self._table.ids() if acting().admin else [job.job_id for job in visible(self._table.jobs())]

    def job_name(self, job_id: str) -> str | None:
        """The name of the job `job_id` (any owner's: for the operator's run events), None if it has none."""
        job = self._table.get(job_id)
        return None if job is None else job.definition.job_name

    def job_owner(self, job_id: str) -> str | None:
        """Who created the job `job_id` (for telling its events to its owner alone), None if it has no owner or there
        is no such job (the admins')."""
        job = self._table.get(job_id)
        return None if job is None else job.definition.owner

    async def get_job(self, job_id: str, history: int = 5) -> tuple[JobInfo, list[RunRecord]]:
        """A job with its next fire times and its latest runs."""
        await self._write_finished_runs()
        job = await self._replication.read_through(job_id)
        recent = await self._store.history(job_id, None, history)
        return self._views.info(job, previews=3), recent

    async def get_history(
        self,
        job_id: str | None = None,
        status: RunStatus | None = None,
        limit: int = 20,
        *,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        agentool_name: str | None = None,
        run_id: str | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first: one job's (also cancelled jobs and run_now ids, until pruned), or with no
        `job_id` those of every job, cancelled and finished ones included. `since` and `until` bound the
        run time: datetimes, or strings such as '2026-12-01T09:00' or '1h' (that long ago); `run_id`: the run of
        that id (or those whose id starts so)."""
        if run_id is not None and not _RUN_ID.fullmatch(run_id):
            return []  # no run has such an id (and a long or odd one is no pattern for the store to match)
        now = self._clock.now()
        start = parse_moment(since, "since", self._timezone, now) if isinstance(since, str) else since
        end = parse_moment(until, "until", self._timezone, now) if isinstance(until, str) else until
        await self._write_finished_runs()
        principal = acting()
        if job_id is not None and not principal.admin and await self._replication.lookup(job_id) is None:
            raise JobNotFoundError(job_id)  # another's, or gone: the history of a cancelled job is the admins'
        records = await self._store.history(
            job_id, status, limit, since=start, until=end, agentool_name=agentool_name, run_id=run_id,
            owner=None if principal.admin or job_id is not None else principal.subject,
        )
        if job_id is not None and not records and await self._replication.lookup(job_id) is None:
            if not await self._store.has_history(job_id):
                raise JobNotFoundError(job_id)
        return records

    async def _write_finished_runs(self) -> None:
        """Write the buffered records first, so that a read includes every finished run; a store that takes no
        writes now (a full disk, a lock held too long) does not fail the read: it answers with what is stored,
        and the rest is written with the next batch the store takes."""
        try:
            await self._history.flush()
        except Exception as exc:
            logger.warning("Reading history without the runs not yet written (%s)", exc)

    def status(self) -> SchedulerStatus:
        """The scheduler's state and counts. On a standby the state is the runner's: the jobs run there while a
        runner holds the lease (a standby that finds it free takes it within a moment); none while the store is
        out of reach; paused while the runner was stopped with stop_scheduler (it says so in the lease)."""
        runner = None
        if self._engine.runner:
            state = self._engine.engine.state if self._engine.engine is not None else 0
        elif (down := self._replication.unreachable_since) is not None:
            state = 0
            runner = (f"no runner: the store is unreachable since {down.isoformat(timespec='seconds')} (as this "
                      "process sees it; it takes the jobs over once the store answers and no other process holds "
                      "the lease)")
        elif (stopped := self._lease.holder_stopped()) is not None:
            state = STATE_PAUSED
            runner = (f"{self._lease.holder()}, stopped with stop_scheduler since {stopped}: no job runs until "
                      "start_scheduler there")
        else:
            runner = self._lease.holder()
            state = STATE_RUNNING
        active = [j for j in visible(self._table.jobs()) if j.state != "completed"]
        return SchedulerStatus(
            running=state == STATE_RUNNING,
            scheduler_state=state,
            state=_STATE_NAMES.get(state, "stopped"),  # type: ignore[arg-type]
            jobs_count=len(active),
            paused_jobs=sum(1 for j in active if j.state == "paused"),
            runs_in_progress=sum(self._runs.running.values()),
            timezone=self._timezone,
            database=self._store.location,
            role="runner" if self._engine.runner else "standby",
            runner=runner,
        )

    def preview(
        self,
        schedule_type: str,
        schedule: str,
        timezone: str | None = None,
        count: int = 3,
        policy: PolicyInput | None = None,
    ) -> SchedulePreview:
        """Describe a schedule and list its next fire times without creating a job; with a `policy`, the times
        a job with it would run: none before start_at, none after end_at, at most max_runs, and a note on
        the jitter window."""
        now = self._clock.now()
        parsed = parse_schedule(schedule_type, schedule, timezone, now=now, default_timezone=self._timezone)
        self._checks.check_spacing(parsed)
        note = None
        if policy is None:
            times = parsed.next_fire_times(count, now)
        else:
            bounds = policy_of(policy, RunPolicy(), parsed.timezone)
            times = preview_fire_times(parsed, count, now, start_at=bounds.start_at, end_at=bounds.end_at,
                                       max_runs=bounds.max_runs)
            note = preview_note(bounds, len(times) < count)
        return SchedulePreview(
            schedule_type=parsed.schedule_type,
            schedule=parsed.expression,
            timezone=parsed.timezone,
            description=parsed.description,
            next_runs=times,
            note="; ".join(part for part in (note, zone_warning(parsed.zone)) if part) or None,
        )
