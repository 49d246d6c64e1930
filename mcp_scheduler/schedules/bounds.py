"""The bounds of every duration and time an argument gives: at most 100 years, within the years 1970 to 9000.

Every parser of arguments (interval and one-off schedules, history's `since` / `until`, backfill ranges, a
policy's `start_at` / `end_at` and `catchup_window`) checks them, so that no argument reaches date arithmetic
beyond what `datetime` holds (year 9999): a fire time after `LATEST` plus the longest duration is still a time.
A schedule has no fire time after `LATEST`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Final

from ..errors import OutOfBoundsError

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_DURATION",
    "MIN_DURATION",
    "bounded_duration",
    "bounded_time",
]

MAX_DURATION: Final = timedelta(days=36525)
"""The longest duration accepted: 100 years (of 365.25 days)."""
MIN_DURATION: Final = timedelta(microseconds=1)
"""The shortest positive duration accepted (what `datetime` can tell apart)."""
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest time accepted."""
LATEST: Final = datetime(9000, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""The latest time accepted, and the last fire time a schedule has."""

_DURATION_LIMIT: Final = "100 years (36,525 days), the longest duration this scheduler accepts"
_TIME_LIMIT: Final = "the years 1970 to 9000, the times this scheduler accepts"


def bounded_duration(seconds: float, what: str) -> timedelta:
    """`seconds` (positive) as a timedelta, if it is from `MIN_DURATION` to `MAX_DURATION`.

    `what` names the argument and its value in the message, e.g. "The interval '9999 weeks'".

    Raises:
        OutOfBoundsError: the duration is longer than 100 years (or not finite), or shorter than one
            microsecond.
    """
    if not math.isfinite(seconds) or seconds > MAX_DURATION.total_seconds():
        raise OutOfBoundsError(f"{what} is longer than {_DURATION_LIMIT}: give a shorter one.")
    duration = timedelta(seconds=seconds)
    if duration < MIN_DURATION:
        raise OutOfBoundsError(
            f"{what} is shorter than one microsecond, the shortest duration this scheduler accepts: give a longer one."
        )
    return duration


def bounded_time(moment: datetime, what: str) -> datetime:
    """`moment` (aware) itself, if it is from `EARLIEST` to `LATEST`.

    `what` names the argument and its value in the message, e.g. "since '0001-01-01'".

    Raises:
        OutOfBoundsError: the time is before 1970 or after 9000 (in UTC).
    """
    inside = EARLIEST.year <= moment.year <= LATEST.year  # first: converting year 1 or 9999 may overflow
    if not inside or not EARLIEST <= moment.astimezone(UTC) <= LATEST:
        raise OutOfBoundsError(
            f"{what} is outside {_TIME_LIMIT}: give a time from 1970-01-01 to 9000-12-31 (UTC)."
        )
    return moment

