"""A job's run policy after a run: count its failures in a row, and plan its next attempt."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..clocks import Clock
from ..jobs import FAILED, Job, PendingRetry, RunStatus
from ..policies import retry_delay
from .delivery import Outcome

if TYPE_CHECKING:
    from ..scheduler.table import JobTable

__all__ = ["RetryPolicy"]


class RetryPolicy:
    """Decides, by a job's policy, what a run's outcome means for it: a success, a failure counted toward
    pause_after_failures, or a retry planned (set on the job; `Retries` arms its timer)."""

    def __init__(self, table: JobTable, clock: Clock) -> None:
        self._table = table
        self._clock = clock

    def follow(
        self, job: Job, scheduled: datetime | None, attempt: int | None, outcome: Outcome
    ) -> PendingRetry | None:
        """Count the run's outcome for the job; return the retry it schedules (then set on the job), if any."""
        policy = job.definition.policy
        status = outcome.status
        if status == "success":
            self._table.succeeded(job)
        if policy.max_attempts > 1:
            outcome.notes.append(f"attempt {attempt or 1} of {policy.max_attempts}")
        if status not in FAILED:
            return None  # cancelled (the scheduler closed): neither a failure nor a success
        return self.plan(job, status, attempt, scheduled, outcome.notes)

    def plan(
        self, job: Job, status: RunStatus, attempt: int | None, nominal: datetime | None, notes: list[str],
        *, wait: float | None = None, why: str | None = None,
    ) -> PendingRetry | None:
        """After a failed run: set the job's next attempt (after the policy's delay, or `wait` seconds) if its
        policy retries `status` and attempts are left (and it has no retry pending already); otherwise count a
        failure. Notes say which; `why` goes into the note of the retry's record."""
        policy = job.definition.policy
        number = attempt or 1
        if status in policy.retry_on and number < policy.max_attempts and job.retry is None:
            at = self._clock.now() + timedelta(seconds=retry_delay(policy, number) if wait is None else wait)
            retry = PendingRetry(at, number + 1, nominal, why)
            self._table.retry_planned(job, retry)
            notes.append(f"attempt {number + 1} at {at.isoformat(timespec='milliseconds')}")
            return retry
        if policy.pause_after_failures is not None:
            self._table.failed(job)
        return None
