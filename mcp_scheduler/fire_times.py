"""Fire times under a run policy: bounds (start_at, end_at), jitter, previews and backfill ranges.

Pure functions over our schedule classes, shared by the engine adapter (which fires jobs), the service
(the next run times it shows) and previews, so that all of them agree.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime, timedelta

from .schedules import IntervalSchedule, Schedule

__all__ = ["backfill_times", "jitter_delay", "next_fire_time", "preview_fire_times"]

_SCALE = float(1 << 64)


def next_fire_time(
    schedule: Schedule,
    previous: datetime | None,
    now: datetime,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> datetime | None:
    """The schedule's next fire time (APScheduler trigger semantics), none before `start_at` and none after
    `end_at` (then None: the schedule is over)."""
    moment = schedule.next_fire_time(previous, now)
    if moment is not None and start_at is not None and moment < start_at:
        # The first fire time at or after start_at (a one-time schedule before it never fires).
        moment = schedule.next_fire_time(None, start_at)
        if moment is not None and moment < start_at:
            moment = None
    if moment is not None and end_at is not None and moment > end_at:
        return None
    return moment


def jitter_delay(job_id: str, nominal: datetime, jitter: float | None) -> float:
    """Seconds in [0, jitter) that the fire of `job_id` due at `nominal` waits: derived from both (a hash), so
    every process computes the same instant, and spread evenly over the window across fires and jobs."""
    if not jitter:
        return 0.0
    key = f"{job_id}\x00{nominal.astimezone(UTC).isoformat()}".encode()
    (number,) = struct.unpack(">Q", hashlib.blake2b(key, digest_size=8).digest())
    return jitter * (number / _SCALE)


def preview_fire_times(
    schedule: Schedule,
    count: int,
    now: datetime,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    max_runs: int | None = None,
) -> list[datetime]:
    """The next `count` fire times from `now` within the bounds, and no more than `max_runs` of them (the runs
    a new job with these bounds makes)."""
    if max_runs is not None:
        count = min(count, max_runs)
    times: list[datetime] = []
    previous: datetime | None = None
    while len(times) < count:
        following = next_fire_time(
            schedule, previous, now if previous is None else previous, start_at=start_at, end_at=end_at
        )
        if following is None or (previous is not None and following <= previous):
            break
        times.append(following)
        previous = following
    return times


def backfill_times(schedule: Schedule, since: datetime, until: datetime, limit: int) -> tuple[list[datetime], int]:
    """The schedule's fire times in [since, until], at most `limit` of them, and how many there are (counted up
    to `limit * 10`; more than that is reported as `limit * 10 + 1`).

    An interval schedule's grid (anchor + k * interval) is extended backwards before its anchor, so a past range
    of a job created today still has its fire times.
    """
    cap = limit * 10
    times: list[datetime] = []
    count = 0
    if isinstance(schedule, IntervalSchedule):
        step = timedelta(seconds=schedule.interval_seconds)
        anchor = schedule.anchor.astimezone(UTC)
        periods = -(-(since.astimezone(UTC) - anchor) // step)  # ceil, also for ranges before the anchor
        moment: datetime | None = anchor + periods * step
        while moment is not None and moment <= until and count <= cap:
            if count < limit:
                times.append(moment.astimezone(schedule.zone))
            count += 1
            moment = moment + step
        return times, count
    moment = schedule.next_fire_time(None, since)
    if moment is not None and moment < since:  # a one-time schedule before the range
        moment = None
    while moment is not None and moment <= until and count <= cap:
        if count < limit:
            times.append(moment)
        count += 1
        following = schedule.next_fire_time(moment, moment)
        moment = following if following is not None and following > moment else None
    return times, count
