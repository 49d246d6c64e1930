"""The derived view of a job that crosses the boundaries (`JobInfo`), built from a `Job` in one place."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ..fire_times import next_fire_time
from ..jobs import Job
from ..models import JobInfo
from .engine import EngineHandle

__all__ = ["JobViews"]


class JobViews:
    """Builds a job's `JobInfo`: its next run time (the engine's while it runs), the following ones on request,
    and its runs in progress in this process (`running`)."""

    def __init__(self, engine: EngineHandle, running: Mapping[str, int], runs_per_job: int) -> None:
        self._engine = engine
        self._running = running
        self._runs_per_job = runs_per_job

    def info(self, job: Job, previews: int = 0) -> JobInfo:
        next_run = self._engine.next_run_time(job)
        following: list[datetime] = []
        if previews and next_run is not None:
            following = [next_run]
            policy = job.definition.policy
            while len(following) < previews:
                nxt = next_fire_time(job.definition.schedule, following[-1], following[-1], start_at=policy.start_at,
                                     end_at=policy.end_at)
                if nxt is None or nxt <= following[-1]:
                    break
                following.append(nxt)
        return JobInfo.of(job, next_run, following, self._running.get(job.job_id, 0),
                          runs_per_job=self._runs_per_job)
