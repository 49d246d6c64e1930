"""Chains: a job whose `policy.after` names another runs when a run of that job ends (docs/chains.md).

`check_after` refuses, when a job is scheduled or updated, a job named that the caller cannot see and a cycle;
`ChainStarts` listens for finished runs in this process and starts the runs of the jobs chained after them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..errors import InvalidJobInputError
from ..events import EventBus, JobEvent, RunEvent, SchedulerEvent
from ..jobs import FAILED, Job
from ..models import RunRecord
from ..policies import RunPolicy
from .table import JobTable

__all__ = ["ChainStarts", "chain_data", "check_after", "follows"]

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


class _Starter(Protocol):
    @property
    def accepting(self) -> bool: ...

    def start_triggered(self, job: Job, trigger: Any, trigger_data: dict[str, Any], *, note: str | None = None
                        ) -> str: ...


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
            run_id = self._starter.start_triggered(
                job, "chain", chain_data(record, event.traceparent),
                note=f"chained after run {record.run_id} of job {record.job_id!r} ({record.status})",
            )
            logger.info("Job %s: run %s chained after run %s of job %s", job.job_id, run_id, record.run_id,
                        record.job_id)
