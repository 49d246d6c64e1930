"""Chains: a job whose `policy.after` names another runs when a run of that job ends (docs/chains.md).

`check_after` refuses, when a job is scheduled or updated, a job named that the caller cannot see and a cycle;
`ChainStarts` listens for finished runs in this process and starts the runs of the jobs chained after them.

A chained run is started exactly once, across a kill of the runner: its run id is drawn from what it is chained to
(`chain_run_id`: the run it follows and its job), and its record (`running`, not started yet, carrying its trigger
data: in the runner its waiting record, elsewhere the request that hands it to the runner) goes into the very batch
of the history writer that holds the finished record of the run it follows (`ExtraRuns.start_triggered`). A runner
that takes over finds the chained runs that were decided but never started still `running` in the store
(`SchedulerStore.interrupt_unfinished` keeps them) and starts them; those that started are `interrupted`. A start is
a swap from the waiting record (fenced on PostgreSQL), so that of a runner that lost its lease and the one that
took the run over, exactly one starts it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..errors import InvalidJobInputError
from ..events import EventBus, JobEvent, RunEvent, SchedulerEvent
from ..jobs import FAILED, Job
from ..models import RunRecord
from ..policies import RunPolicy
from .table import JobTable

__all__ = ["ChainStarts", "chain_data", "chain_run_id", "check_after", "follows", "waiting_run"]

logger = logging.getLogger(__name__)


async def check_after(job_id: str, policy: RunPolicy, lookup: Callable[[str], Awaitable[Job | None]]) -> None:
    """Raise `InvalidJobInputError` if `policy.after` names a job `lookup` does not find (missing, or another
    principal's), or if following the `after` links from it comes back to `job_id` (the message names the cycle)."""
    after = policy.after
    if after is None:
        return
    path = [job_id]
    name: str | None = after.job
    while name is not None:
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise InvalidJobInputError(
                f"policy.after would make a cycle of chained jobs ({cycle}, each running after the next): "
                "chain a job after one that does not come back to it, or set policy.after to null."
            )
        job = await lookup(name)
        if job is None:
            if name == after.job:
                raise InvalidJobInputError(
                    f"policy.after names job {name!r}, which does not exist (list_jobs shows the jobs you may "
                    "chain after): schedule it first or give its id."
                )
            return  # further up the chain a job is gone: no cycle can pass through it
        path.append(name)
        name = job.definition.policy.after.job if job.definition.policy.after is not None else None


def follows(job: Job, record: RunRecord) -> bool:
    """True if `record`, a finished run, starts a run of `job`: `job` is scheduled (not paused or completed), its
    policy.after names the record's job, and the outcome is the one it waits for. A failure that its job's retry
    policy retries does not count (the last attempt's does)."""
    after = job.definition.policy.after
    if after is None or after.job != record.job_id or job.state != "scheduled":
        return False
    failed = record.status in FAILED
    if after.on == "success":
        return record.status == "success"
    return failed if after.on == "failure" else failed or record.status == "success"


def _retried(record: RunRecord, policy: RunPolicy) -> bool:
    """True if the failed `record` will be tried again (its job's retry policy)."""
    return record.attempt is not None and record.attempt < policy.max_attempts and record.status in policy.retry_on


def chain_data(record: RunRecord, traceparent: str | None) -> dict[str, Any]:
    """The trigger data of a chained run: `!trigger:job`, `run_id`, `status`, `summary`, `result` (and the span
    of the finished run, for the chained run's span)."""
    data: dict[str, Any] = {"job": record.job_id, "run_id": record.run_id, "status": record.status,
                            "summary": record.summary, "result": record.result}
    if traceparent is not None:
        data["traceparent"] = traceparent
    return data


def chain_run_id(followed_run_id: str, job_id: str) -> str:
    """The run id of the run of `job_id` chained after the run `followed_run_id`: the same in every process and
    after a restart, so that one chained run has one record, whoever decides it (32 hex digits, as other runs)."""
    return hashlib.sha256(f"chain\0{followed_run_id}\0{job_id}".encode()).hexdigest()[:32]


def waiting_run(job: Job, run_id: str, trigger_data: dict[str, Any], note: str) -> RunRecord:
    """The record of a chained run decided and not started yet: `running` with no start, carrying its trigger data
    and note as a run handed to the runner does (run_requests.py), so that a runner taking over can start it."""
    return RunRecord(run_id=run_id, job_id=job.job_id, agentool_name=job.definition.agentool_name, trigger="chain",
                     status="running", note=f"{note}; not started yet",
                     result={"trigger_data": trigger_data, "note": note})


class _Starter(Protocol):
    @property
    def accepting(self) -> bool: ...

    @property
    def runner(self) -> bool: ...

    def start_triggered(self, job: Job, trigger: Any, trigger_data: dict[str, Any], *, note: str | None = None,
                        run_id: str | None = None) -> str:
        """Called synchronously as the run it follows finishes: buffers the chained run's record at once."""
        ...


class ChainStarts:
    """Starts, when a run ends in this process, a run (trigger `chain`) of each job chained after its job."""

    def __init__(self, *, table: JobTable, starter: _Starter, events: EventBus) -> None:
        self._table = table
        self._starter = starter
        # The jobs chained after each job, built when first needed after a change of any job: a finished run then
        # costs a lookup, not a pass over every job (thousands of fires a second on a store of thousands of jobs).
        self._followers: dict[str, list[str]] | None = None
        events.subscribe(self._heard)

    def _chained_after(self, job_id: str) -> list[Job]:
        if self._followers is None:
            followers: dict[str, list[str]] = {}
            for job in self._table.jobs():
                if (after := job.definition.policy.after) is not None:
                    followers.setdefault(after.job, []).append(job.job_id)
            self._followers = followers
        return [found for name in self._followers.get(job_id, ()) if (found := self._table.get(name)) is not None]

    def _heard(self, event: SchedulerEvent) -> None:
        if isinstance(event, JobEvent):
            self._followers = None  # added, changed or removed: what follows what is read again when next needed
            return
        if not isinstance(event, RunEvent) or event.kind != "finished" or event.remote or not self._starter.accepting:
            return  # a run another process ran and this one read from the store: that process starts what follows
        record = event.record
        if record.status not in FAILED and record.status != "success":
            return  # skipped, missed, cancelled: the run did not end, nothing follows it
        source = self._table.get(record.job_id)
        if source is not None and record.status != "success" and _retried(record, source.definition.policy):
            return
        for job in [job for job in self._chained_after(record.job_id) if follows(job, record)]:
            data, run_id = chain_data(record, event.traceparent), chain_run_id(record.run_id, job.job_id)
            note = f"chained after run {record.run_id} of job {record.job_id!r} ({record.status})"
            # Synchronously, as the finished record was buffered just before this event: the chained run's record
            # (waiting, or handed to the runner) goes into the same batch, so no kill between them loses it.
            self._starter.start_triggered(job, "chain", data, note=note, run_id=run_id)
            logger.info("Job %s: run %s chained after run %s of job %s", job.job_id, run_id, record.run_id,
                        record.job_id)
