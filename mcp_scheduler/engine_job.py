"""What the engine adapter takes for a job: its id, schedule, bounds and state, without APScheduler's types."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from .fire_times import next_fire_time
from .schedules import Schedule

__all__ = ["EngineJob"]


@dataclass(frozen=True, slots=True)
class EngineJob:
    """A job as `Engine.load` and `Engine.add_job` take it.

    `start_at` / `end_at`: no fire before / after (then the job leaves the engine, as a fired one-time job
    does). `jitter`: each fire is due `jitter_delay(job_id, fire time, jitter)` seconds after its fire time;
    the fire time itself (what the due handler gets, and `next_run_time`) stays the nominal one.
    """

    job_id: str
    schedule: Schedule
    max_instances: int
    next_run_time: datetime | None = None
    paused: bool = False
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: float | None = None

    def resolved(self, now: datetime) -> EngineJob:
        """This job with its next run time: none when paused, else the stored one or the first from `now`."""
        if self.paused:
            return self if self.next_run_time is None else replace(self, next_run_time=None)
        if self.next_run_time is None:
            return replace(self, next_run_time=next_fire_time(self.schedule, None, now, start_at=self.start_at,
                                                              end_at=self.end_at))
        return self
