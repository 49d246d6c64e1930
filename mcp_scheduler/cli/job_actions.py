"""`mcp-scheduler pause | resume | cancel JOB_ID`: act on a job of a database a server may be running.

The command opens a scheduler of its own on the database for the moment of the action. When a server
holds the runner lease, that scheduler is a standby: its writes reach the server through the store's
change feed (a pause stops the server's fires within a fraction of a second), and it never takes the
lease over. When no server runs, it takes the lease but opens paused, so that no other job fires
while the command runs. (`run` asks the runner instead: `run_job.py`.)
"""

from __future__ import annotations

import dataclasses
import os
import sys
from datetime import datetime
from typing import TextIO

from ..lease import FileLease, RunnerLease
from ..models import JobInfo
from ..runtime import SchedulerRuntime, is_postgres_url
from ..settings import Settings
from ..store import require_database
from .tables import (
    JOB_FLEX,
    JOB_HEADERS,
    format_table,
    job_json,
    job_rows,
    terminal_width,
    write_json,
)

__all__ = ["ACTIONS", "act", "action_runtime"]

ACTIONS = ("pause", "resume", "cancel")


class FirstTryLease:
    """A runner lease that is taken only when the command opens, never later.

    A command that found a server running the jobs stays a standby for its whole (short) life: if that
    server stopped meanwhile, the command must not become the runner and fire the other jobs.
    """

    def __init__(self, lease: RunnerLease) -> None:
        self._lease = lease
        self._tried = False

    async def try_acquire(self) -> bool:
        if self._tried:
            return self._lease.is_held()
        self._tried = True
        return await self._lease.try_acquire()

    async def keep(self) -> bool:
        return await self._lease.keep()

    def keep_every(self) -> float:
        return self._lease.keep_every()

    @property
    def claims_each_fire(self) -> bool:
        return self._lease.claims_each_fire

    async def claim(self, job_id: str, scheduled: datetime) -> bool:
        return await self._lease.claim(job_id, scheduled)

    def is_held(self) -> bool:
        return self._lease.is_held()

    def holder(self) -> str:
        return self._lease.holder()

    async def note_stopped(self, since: datetime | None) -> None:
        await self._lease.note_stopped(since)

    def holder_stopped(self) -> str | None:
        return self._lease.holder_stopped()

    def takeover_wait(self) -> float:
        return self._lease.takeover_wait()

    def fencing_token(self) -> int | None:
        return self._lease.fencing_token()

    async def release(self) -> None:
        await self._lease.release()


def _lease(settings: Settings) -> RunnerLease:
    database = settings.database or ""
    if is_postgres_url(database):
        from ..postgres_lease import PostgresLease

        return FirstTryLease(PostgresLease(database, lease_time=settings.lease_time))
    return FirstTryLease(FileLease(database))


def action_runtime(settings: Settings, *, create: bool = False) -> tuple[SchedulerRuntime, RunnerLease]:
    """A runtime for a command's moment of action on the store (`settings.database`, which must exist unless
    `create`): a standby when a server runs the jobs, else the runner opened paused (no job fires); and the lease
    it tries once. As the runner it sends the `job.paused` events of MCP_SCHEDULER_EVENTS_URL, if set (a server
    running the jobs sends them otherwise)."""
    database = settings.database or ""
    if not create:
        require_database(database)
    lease = _lease(settings)
    config = dataclasses.replace(settings.service_config(), start_paused=True)
    runtime = SchedulerRuntime(
        config, toolkits=settings.toolkits, discover_entry_points=settings.discover_entry_points,
        toolkit_config=settings.toolkit_config(), lease=lease, outbound_events=settings.outbound_events(os.environ),
    )
    return runtime, lease


async def act(settings: Settings, action: str, job_id: str, *, as_json: bool = False, out: TextIO | None = None,
              err: TextIO | None = None) -> int:
    """Do `action` (one of ACTIONS) on job `job_id` and print the job as it is then (its row, or with `as_json`
    its JSON); returns the process exit code.

    Raises `JobNotFoundError` for an unknown job and `SchedulerError` for an action the job's state refuses.
    """
    out, err = out or sys.stdout, err or sys.stderr
    runtime, lease = action_runtime(settings)
    async with runtime:
        service = runtime.service
        info: JobInfo
        if action == "pause":
            info = await service.pause(job_id)
        elif action == "resume":
            info = await service.resume(job_id)
        elif action == "cancel":
            info = (await service.cancel(job_id)).model_copy(update={"next_run": None})
        else:
            raise ValueError(f"Unknown action {action!r}: use one of {', '.join(ACTIONS)}.")
        state = "cancelled" if action == "cancel" else info.state
        if as_json:
            write_json({**job_json(info), "state": state}, out)
        else:
            rows = job_rows([info])
            rows[0][1] = state
            out.write(format_table(JOB_HEADERS, rows, width=terminal_width(out), flex=JOB_FLEX))
        where = "" if service.is_runner else f" (the server running the jobs, {lease.holder()}, follows)"
        err.write(f"Job {job_id}: {state}{where}; times in the job's time zone\n")
        for warning in info.warnings:
            err.write(f"warning: {warning}\n")
    return 0
