"""The job table: the one owner of the jobs' in-memory state.

Every change of a `Job` in memory goes through a named transition here (added, started, finished, paused,
resumed, completed, removed, replaced from the store, ...); the rest of the scheduler reads through it. What is
stored, and when, is decided by the callers (the commands, the run path, the follower); the table only holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from ..jobs import Job, PendingRetry, RunStatus

__all__ = ["JobTable"]


class JobTable:
    """The jobs of one scheduler, by id, in creation order."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    # ------------------------------------------------------------------ reading

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[str]:
        return iter(self._jobs)

    def jobs(self) -> Iterable[Job]:
        """Every job, in creation order (a view: do not change the table while iterating)."""
        return self._jobs.values()

    def ids(self) -> list[str]:
        return list(self._jobs)

    # ------------------------------------------------------------------ membership

    def loaded(self, jobs: Iterable[Job]) -> None:
        """Replace every job with the stored ones."""
        self._jobs = {job.job_id: job for job in jobs}

    def cleared(self) -> None:
        self._jobs.clear()

    def added(self, job: Job) -> None:
        """A job scheduled here, or by another process."""
        self._jobs[job.job_id] = job

    def removed(self, job_id: str) -> Job | None:
        """A job cancelled (here or by another process), or whose scheduling failed."""
        return self._jobs.pop(job_id, None)

    def restored(self, job: Job, before: Job) -> None:
        """A change whose store write failed, undone: the job is `before` again (its copy from before the change), in
        the table."""
        job.definition, job.state, job.next_run_time = before.definition, before.state, before.next_run_time
        job.copy_progress(before)
        self._jobs[job.job_id] = job

    def replaced(self, job: Job, stored: Job) -> None:
        """The job's definition, state and next run time become `stored`'s (an update, here or elsewhere)."""
        job.definition, job.state, job.next_run_time = stored.definition, stored.state, stored.next_run_time

    def refreshed(self, job: Job, stored: Job) -> None:
        """On a standby: show what the runner stored of the job (its bookkeeping and progress)."""
        if stored.state == "completed" or stored.state == job.state:
            job.state, job.next_run_time = stored.state, stored.next_run_time
        job.last_run_at, job.last_status = stored.last_run_at, stored.last_status
        job.copy_progress(stored)

    def progress_copied(self, job: Job, stored: Job) -> None:
        """The runner's count of runs and pending retry (a standby resuming a job keeps them)."""
        job.copy_progress(stored)

    # ------------------------------------------------------------------ state

    def paused(self, job: Job, reason: str | None = None) -> None:
        job.state, job.next_run_time = "paused", None
        if reason is not None:
            job.pause_reason = reason

    def resumed(self, job: Job, next_run: datetime | None, *, may_complete: bool = True) -> None:
        """Scheduled again from `next_run`, failures forgotten; completed if it has nothing left (past end_at) and
        `may_complete` (False: as another process stored it)."""
        job.state, job.next_run_time = "scheduled", next_run
        job.failures, job.pause_reason = 0, None
        if may_complete and next_run is None and job.definition.policy.end_at is not None:
            job.state = "completed"

    def completed(self, job: Job) -> bool:
        """The job ran its last fire; False if it already had."""
        if job.state == "completed":
            return False
        job.state = "completed"
        return True

    def next_run_noted(self, job: Job, when: datetime | None) -> None:
        job.next_run_time = when

    # ------------------------------------------------------------------ runs

    def started(self, job: Job, at: datetime) -> None:
        job.last_run_at, job.last_status = at, "running"

    def counted(self, job: Job) -> bool:
        """One more scheduled run toward policy.max_runs; True when that was its last."""
        job.runs += 1
        limit = job.definition.policy.max_runs
        return limit is not None and job.runs >= limit

    def ended(self, job: Job, status: RunStatus) -> None:
        """A run or a fire that did not run ended with `status`."""
        job.last_status = status

    def seen_run(self, job: Job, started_at: datetime | None, status: RunStatus) -> None:
        """On a standby: a run record another process wrote."""
        job.last_run_at, job.last_status = started_at or job.last_run_at, status

    def succeeded(self, job: Job) -> None:
        job.failures = 0

    def failed(self, job: Job) -> None:
        """A failure in a row, toward policy.pause_after_failures."""
        job.failures += 1

    def retry_planned(self, job: Job, retry: PendingRetry) -> None:
        job.retry = retry

    def retry_taken(self, job: Job) -> None:
        """The pending retry runs now (or is dropped)."""
        job.retry = None
