"""The engine as the scheduler holds it: the runner's `Engine`, or none on a standby."""

from __future__ import annotations

from datetime import datetime

from .._engine import Engine, EngineJob
from ..jobs import Job
from ..runs import engine_instances

__all__ = ["EngineHandle", "engine_job"]


def engine_job(job: Job, next_run_time: datetime | None) -> EngineJob:
    """What the engine holds of a job. The run path decides overlaps by the job's policy: the engine hands over
    every fire."""
    d = job.definition
    p = d.policy
    return EngineJob(d.job_id, d.schedule, engine_instances(d), next_run_time, job.state == "paused",
                     p.start_at, p.end_at, p.jitter)


class EngineHandle:
    """The runner's engine while this process fires jobs (`engine`, None on a standby) and whether it is the runner
    (holds the lease and writes the fires' bookkeeping). Also the run path's `EnginePort`: without an engine its
    calls do nothing."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.runner = False

    def attach(self, engine: Engine) -> None:
        self.engine, self.runner = engine, True

    def detach(self) -> Engine | None:
        """Stop using the engine (the caller shuts it down); `runner` stays as it is until the caller says."""
        engine, self.engine = self.engine, None
        return engine

    # ------------------------------------------------------------------ EnginePort

    def wake_if_held(self) -> None:
        if self.engine is not None:
            self.engine.wake_if_held()

    def wake(self) -> None:
        if self.engine is not None:
            self.engine.wake()

    def remove_job(self, job_id: str) -> None:
        if self.engine is not None:
            self.engine.remove_job(job_id)

    # ------------------------------------------------------------------ the scheduler's side

    def drop(self, job_id: str) -> None:
        """Remove a job the engine may not hold."""
        if self.engine is not None and self.engine.has_job(job_id):
            self.engine.remove_job(job_id)

    def put(self, job: Job) -> None:
        """Give the engine the job as it is now (replacing what it held); a completed job fires no more."""
        if self.engine is None:
            return
        if self.engine.has_job(job.job_id):
            self.engine.remove_job(job.job_id)
        if job.state != "completed":
            self.engine.add_job(engine_job(job, job.next_run_time))

    def next_run_time(self, job: Job) -> datetime | None:
        """The job's next fire: the engine's while it runs, else the stored one; None unless scheduled."""
        if job.state != "scheduled":
            return None
        if self.engine is not None:
            return self.engine.next_run_time(job.job_id)
        return job.next_run_time
