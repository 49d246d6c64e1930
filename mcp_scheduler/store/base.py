"""The store interface: where a scheduler keeps its jobs and their run history.

The service depends on `SchedulerStore` only. Methods are async so that a store on a network
database (PostgreSQL) can implement them natively; the SQLite store runs its work on a thread of
its own. What several processes on one store will add (fire claims, a change feed that tells a
runner about jobs changed elsewhere) belongs here too, beside the jobs and runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..jobs import Job, JobState, RunStatus
from ..models import RunRecord

__all__ = ["Bookkeeping", "SchedulerStore"]


@dataclass(frozen=True, slots=True)
class Bookkeeping:
    """What firing changes on a stored job (written in batches with the run records)."""

    job_id: str
    state: JobState
    next_run_time: datetime | None
    last_run_at: datetime | None
    last_status: RunStatus | None

    @classmethod
    def of(cls, job: Job) -> Bookkeeping:
        return cls(job.job_id, job.state, job.next_run_time, job.last_run_at, job.last_status)


class SchedulerStore(Protocol):
    """Jobs (definition plus state) and run history, durable once a method has returned."""

    @property
    def location(self) -> str | None:
        """Where the data lives, for messages (a file path; None in memory)."""
        ...

    async def open(self) -> None:
        """Connect and create the tables if needed."""

    async def close(self) -> None:
        """Disconnect (idempotent)."""

    def load_jobs(self, page_size: int = 5000) -> AsyncIterator[list[Job]]:
        """Every stored job in creation order, a page at a time."""
        ...

    async def insert_jobs(self, jobs: Sequence[Job]) -> None:
        """Store new jobs in one transaction (a job id that exists already fails the whole batch)."""

    async def set_state(self, job_id: str, state: JobState, next_run_time: datetime | None) -> None:
        """Change a job's state (pause, resume) and the next run time that goes with it."""

    async def delete_job(self, job_id: str) -> None:
        """Remove a job; its runs stay until pruned."""

    async def write_batch(
        self, runs: Iterable[RunRecord], bookkeeping: Iterable[Bookkeeping], history_limit: int
    ) -> None:
        """Write run records (a run_id seen before is replaced) and bookkeeping in one transaction,
        keeping the newest `history_limit` runs of each job."""

    async def interrupt_unfinished(self, note: str) -> list[RunRecord]:
        """Mark every run still stored as `running` (its scheduler stopped without finishing it) as
        `interrupted` with `note`; return the changed records."""
        ...

    async def history(self, job_id: str, status: RunStatus | None = None, limit: int = 20) -> list[RunRecord]:
        """A job's runs, newest first."""
        ...

    async def has_history(self, job_id: str) -> bool:
        """True if any run of `job_id` is stored."""
        ...
