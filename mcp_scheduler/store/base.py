"""The store interface: where a scheduler keeps its jobs and their run history.

The service depends on `SchedulerStore` only. Methods are async so that a store on a network
database (PostgreSQL) can implement them natively; the SQLite store runs its work on a thread of
its own. Several processes can share one store: each follows what the others write (a feed of
changed jobs, and the run records in order); one of them, the lease holder, fires the jobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..audit import AuditEntry, AuditQuery
from ..jobs import Job, JobState, RunStatus, RunTrigger
from ..models import RunRecord
from .conditions_table import ConditionRow
from .hooks_table import HookRow

if TYPE_CHECKING:
    from .run_swap import Swap

__all__ = ["Bookkeeping", "FeedRead", "FencedStore", "RunQuery", "SchedulerStore"]


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Which runs `SchedulerStore.history` returns: one job's (job_id) or every job's, filtered."""

    job_id: str | None = None
    status: RunStatus | None = None
    limit: int = 20
    since: datetime | None = None
    until: datetime | None = None
    agentool_name: str | None = None
    run_id: str | None = None  # a run id, or its first characters (letters, digits and -)
    owner: str | None = None  # the runs of the jobs this subject created (and that are not cancelled)

    def statement(
        self, mark: str, *, nulls_last: str = "", owner_of: str = "json_extract(definition, '$.owner')"
    ) -> tuple[str, list[object]]:
        """The SELECT of the runs' records (newest first, at most `limit`) and its parameters; `mark` is the
        driver's placeholder (`?` or `%s`). Runs without a time come last across jobs: `nulls_last` is what
        says so after DESC (PostgreSQL's " NULLS LAST"; SQLite puts NULLs last there already, and before 3.30
        cannot parse it). `owner_of`: the SQL of a job row's owner (the definition's `owner`)."""
        where: list[str] = []
        params: list[object] = []
        for column, op, value in (
            ("job_id", "=", self.job_id),
            ("status", "=", self.status),
            ("agentool", "=", self.agentool_name),
            ("at", ">=", None if self.since is None else self.since.timestamp()),
            ("at", "<", None if self.until is None else self.until.timestamp()),
            ("run_id", "LIKE", None if self.run_id is None else self.run_id.replace("%", "").replace("_", "") + "%"),
        ):
            if value is not None:
                where.append(f"{column} {op} {mark}")
                params.append(value)
        if self.owner is not None:
            where.append(f"job_id IN (SELECT job_id FROM scheduler_jobs WHERE {owner_of} = {mark})")
            params.append(self.owner)
        if self.job_id is not None:
            # A job's own runs: those after it was created, not those of an earlier job with its id.
            where.append(f"seq > COALESCE((SELECT runs_from FROM scheduler_jobs WHERE job_id = {mark}), 0)")
            params.append(self.job_id)
        order = "seq DESC" if self.job_id is not None else f"at DESC{nulls_last}, seq DESC"
        sql = f"SELECT record FROM scheduler_runs WHERE {' AND '.join(where) or '1 = 1'} ORDER BY {order} LIMIT {mark}"
        return sql, [*params, self.limit]


@dataclass(frozen=True, slots=True)
class Bookkeeping:
    """What firing changes on a stored job (written in batches with the run records)."""

    job_id: str
    state: JobState
    next_run_time: datetime | None
    last_run_at: datetime | None
    last_status: RunStatus | None
    progress: str | None = None  # Job.progress_json(): failures, runs, pause reason, pending retry

    @classmethod
    def of(cls, job: Job) -> Bookkeeping:
        return cls(job.job_id, job.state, job.next_run_time, job.last_run_at, job.last_status, job.progress_json())


@dataclass(frozen=True, slots=True)
class FeedRead:
    """What `SchedulerStore.feeds_since` read of both feeds: their new positions, the jobs other processes changed
    (None: those changes are no longer kept, reload every job), the run records they wrote, and whether more runs
    are left after `run_seq` (the read stopped at its limit)."""

    change_seq: int
    changed: set[str] | None
    run_seq: int
    runs: list[RunRecord]
    more_runs: bool


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

    async def insert_jobs(
        self, jobs: Sequence[Job], *, max_jobs: int | None = None, audit: AuditEntry | None = None
    ) -> None:
        """Store new jobs in one transaction (a job id that exists already fails the whole batch); with
        `max_jobs`, `TooManyJobsError` if the store would then hold more jobs than that (counted inside
        the transaction, so the limit holds for every process on the store).

        `audit` (here and in the other writes of jobs and hooks): the change's audit entry, inserted in the same
        transaction, so that the change and its entry commit together or not at all."""

    async def set_state(
        self,
        job_id: str,
        state: JobState,
        next_run_time: datetime | None,
        progress: str | None = None,
        *,
        audit: AuditEntry | None = None,
    ) -> None:
        """Change a job's state (pause, resume) and the next run time that goes with it; with `progress`
        (`Job.progress_json()`, "{}" for none) also the job's progress (None: leave it)."""

    async def update_job(self, job: Job, *, audit: AuditEntry | None = None) -> None:
        """Replace a stored job's definition, state and next run time (its history stays);
        `JobNotFoundError` if it is not stored."""

    async def delete_job(self, job_id: str, *, audit: AuditEntry | None = None) -> None:
        """Remove a job; its runs stay until pruned."""

    async def write_batch(
        self, runs: Iterable[RunRecord], bookkeeping: Iterable[Bookkeeping], history_limit: int, *,
        swaps: Sequence[Swap] = (),
    ) -> set[str]:
        """Write run records (a run_id seen before is replaced) and bookkeeping in one transaction,
        keeping the newest `history_limit` runs of each job; and, after the records, in the same transaction,
        `swaps` (`run_swap.py`: each `(expected, record)` written only if the stored record of its run is
        `expected`, None: none; a runner's writes, none made on PostgreSQL when the fencing token is stale).
        Returns the run ids of the swaps written."""

    async def interrupt_unfinished(
        self, note: str, *, keep_unstarted: Collection[RunTrigger] = ()
    ) -> list[RunRecord]:
        """Mark every run still stored as `running` (its scheduler stopped without finishing it) as `interrupted`
        with `note`, in one transaction; return those records, in the order they were written. A run of a trigger
        in `keep_unstarted` that never started (no `started_at`: a chained run decided but not started yet) stays
        `running` as it is, and is returned with them: the runner taking over starts it (docs/chains.md)."""
        ...

    async def history(
        self,
        job_id: str | None,
        status: RunStatus | None = None,
        limit: int = 20,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        agentool_name: str | None = None,
        run_id: str | None = None,
        owner: str | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first: a job's (those since it was created, when a job with that id exists now;
        otherwise every stored run of that id), or with `job_id` None every job's, newest by run time.
        `since` and `until` bound the run time (start, else when due); `agentool_name`, `status` and `run_id` (a run
        id or its first characters) filter; `owner`: only the runs of the jobs that subject created."""
        ...

    async def has_history(self, job_id: str) -> bool:
        """True if any run of `job_id` is stored."""
        ...

    # What other processes on the same store changed: every process follows these.

    async def changed(self) -> bool:
        """True if another process may have written since the last call (cheap: polled often)."""
        ...

    async def positions(self) -> tuple[int, int]:
        """Where the change feed and the run history end now: (change seq, run seq)."""
        ...

    async def changes_since(self, seq: int) -> tuple[int, set[str] | None]:
        """Jobs that other processes inserted, changed or deleted after change `seq`, and the new position;
        None instead of the set when those changes are no longer kept (reload every job)."""
        ...

    async def load_job(self, job_id: str) -> Job | None:
        """One job as stored now, or None."""
        ...

    async def load_jobs_by_id(self, job_ids: Collection[str]) -> dict[str, Job]:
        """The jobs of `job_ids` that are stored now, by id, read in one query."""
        ...

    async def feeds_since(self, change_seq: int, run_seq: int, limit: int = 1000) -> FeedRead:
        """`changes_since(change_seq)` and `runs_since(run_seq, limit)` in one read (one round trip)."""
        ...

    def read_mark(self) -> int | None:
        """A number that moves whenever another connection commits to the store; no I/O that can wait (the event
        loop calls it before each read that goes through the store). Equal marks mean nothing was written in
        between, so a read made at the first still holds. None where the store has no such cheap test
        (PostgreSQL: only a round trip could tell): read again."""
        ...

    async def runs_since(self, seq: int, limit: int = 1000) -> tuple[int, list[RunRecord]]:
        """Run records that other processes wrote after run `seq` (at most `limit` rows read), and the new
        position."""
        ...

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries to the audit log in a transaction of their own, in order (a change without a store
        write of its own; the others pass theirs to that write)."""

    async def read_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """The audit log's entries that `query` selects, oldest first."""
        ...

    # Inbound webhooks (`hooks_table.py`).
    async def add_hook(
        self, name: str, job_id: str, secret: str, at: float, *, audit: AuditEntry | None = None
    ) -> bool: ...
    async def get_hook(self, name: str) -> HookRow | None: ...
    async def hooks_of(self, job_id: str) -> list[str]: ...
    async def remove_hook(self, name: str, *, audit: AuditEntry | None = None) -> bool: ...
    async def note_delivery(self, hook: str, msg_id: str, at: float, forget_before: float) -> bool: ...

    # Runs asked of the runner (`run_swap.py`).
    async def replace_run(
        self, expected: RunRecord | None, record: RunRecord, *, fenced: bool = False
    ) -> bool: ...

    # Condition triggers (`conditions_table.py`).
    async def load_conditions(self) -> dict[str, ConditionRow]: ...
    async def note_condition(self, row: ConditionRow) -> bool: ...


@runtime_checkable
class FencedStore(Protocol):
    """A store on which a runner that lost its lease could still write (PostgreSQL: a network database): it
    checks the runner lease's fencing token with each write of the runner (a file lock needs no token)."""

    def fence_with(self, token: Callable[[], int | None]) -> None:
        """Check `token()` (see `RunnerLease.fencing_token`) with every batch of run records and bookkeeping."""
