"""`mcp-scheduler run JOB_ID`: ask the store's runner to run a job now, and wait for the run's record.

The job runs in the process that runs the jobs (a server, or the background runner), with that process's
toolkit flags and environment, exactly as a scheduled fire or a run_now of its clients would: never in this
command's process. The request goes through the store (`scheduler/run_requests.py`); with no runner the
command says how to start one and changes nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import TextIO

from ..errors import JobNotFoundError, SchedulerError
from ..models import RunRecord
from ..scheduler.run_requests import RUNNER_GONE, RunRequest
from ..settings import Settings
from ..status import runner_of
from ..store import read_store
from .console import EXIT_FAILED, EXIT_OK
from .tables import RUN_HEADERS, format_table, run_json, run_outcome, run_row, terminal_width, write_json

__all__ = ["NoRunnerError", "run_job"]


class NoRunnerError(SchedulerError, RuntimeError):
    """No process runs the jobs of the store, so none can run the job asked for."""

    def __init__(self, database: str) -> None:
        self.database = database
        super().__init__(
            f"no process runs the jobs of {database}, so the job was not run: start the runner "
            f"(`mcp-scheduler runner --db {database}` with the flags your jobs need, such as --allow-shell, or "
            "`mcp-scheduler service install`), or a server on that database, then run the job again."
        )


async def run_job(settings: Settings, job_id: str, *, as_json: bool = False, start_within: float = 10.0,
                  out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Have the runner run `job_id` now and print its run (0), or its failure (1). The runner's follower reads
    the store every 50 ms: the request is withdrawn if the run has not started within `start_within` seconds.

    Raises `JobNotFoundError` for an unknown job and `NoRunnerError` when no process runs the jobs.
    """
    out, err = out or sys.stdout, err or sys.stderr
    database = settings.database or ""
    async with read_store(database) as store:
        job = await store.load_job(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        runner = await asyncio.to_thread(runner_of, database)
        if runner is None:
            raise NoRunnerError(database)
        request = RunRequest(store, job, history_limit=settings.service_config().history_limit,
                             asked_by=f"mcp-scheduler run (pid {os.getpid()} on {socket.gethostname()})")
        await request.send()

        async def runner_alive() -> bool:
            return await asyncio.to_thread(runner_of, database) is not None

        def started(record: RunRecord) -> None:
            err.write(f"Run {record.run_id} of job {job_id}: started by the runner ({runner})\n")
            err.flush()

        record = await request.wait(start_within=start_within, runner_alive=runner_alive, started=started)
    zone = job.definition.schedule.timezone
    if as_json:
        write_json(run_json(record, zone), out)
    if record.status == "success":
        if not as_json:
            out.write(format_table(RUN_HEADERS, [run_row(record, zone)], width=terminal_width(out), flex=(6, 1)))
        err.write(f"Run {record.run_id} of job {job_id}: success in {record.duration_ms or 0:.0f} ms\n")
        return EXIT_OK
    if record.note == RUNNER_GONE:
        err.write(f"Run {record.run_id} of job {job_id}: {RUNNER_GONE} (mcp-scheduler history {job_id} shows it)\n")
    else:  # the whole error, unclipped: this line is the reason the command failed
        err.write(f"Run {record.run_id} of job {job_id}: {record.status}: {run_outcome(record, clip=None)}\n")
    return EXIT_FAILED
