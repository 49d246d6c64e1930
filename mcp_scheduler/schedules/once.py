"""One-off schedules: a single fire time.

The expression is ``"now"``, an ISO 8601 date-time (naive ones are read in the schedule's zone),
or a relative time such as ``"in 10 minutes"``. A naive wall-clock time that does not exist in
the zone is moved forward by the length of the gap (02:30 on a spring-forward day becomes
03:30), and one that exists twice means its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, Literal, Self
from zoneinfo import ZoneInfo

from agentool_bridge.errors import clip

from ..errors import InvalidScheduleError
from .base import BaseSchedule, ScheduleTime
from .bounds import bounded_time
from .interval import parse_interval
from .zones import _in_zone, _require_aware

__all__ = ["ONCE_FORMS", "OnceSchedule"]

ONCE_FORMS: Final = (
    "use 'now', an ISO 8601 date-time such as '2026-12-25T09:00:00' (read in the job's time zone), "
    "'2026-12-25 09:00', '2026-12-25T09:00:00+01:00' or '2026-12-25T08:00:00Z', "
    "or a relative time such as 'in 10 minutes', 'in 2 hours' or 'in 1h30m'"
)
"""The accepted one-off forms, quoted in every one-off error message."""


def _format_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z")


def _once_error(expression: str, reason: str) -> InvalidScheduleError:
    return InvalidScheduleError(f"Invalid one-off time {clip(expression)}: {reason}; {ONCE_FORMS}.")


def _parse_once_time(expression: str, zone: ZoneInfo, now: datetime) -> datetime:
    text = expression.strip()
    lowered = " ".join(text.lower().split())
    if lowered == "now":
        return _in_zone(now, zone)
    if lowered.startswith("in "):
        try:
            delay = parse_interval(lowered[3:], what=f"The delay of the one-off time {clip(expression)}")
        except InvalidScheduleError:
            raise _once_error(expression, f"{lowered[3:]!r} is not a duration") from None
        moment = now.astimezone(UTC) + delay
    else:
        parsed: datetime | None = None
        for candidate in (text, text.upper()):
            try:
                parsed = datetime.fromisoformat(candidate)
                break
            except ValueError:
                continue
        if parsed is None:
            raise _once_error(expression, "it is not a date-time this scheduler understands")
        # fold=0: the first of two repeated wall-clock times
        moment = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
    return _in_zone(bounded_time(moment, f"The one-off time {clip(expression)}"), zone)


class OnceSchedule(BaseSchedule):
    """A single fire time, e.g. ``"2026-12-25T09:00"`` or ``"in 10 minutes"``.

    Attributes:
        run_at: the one fire time, in the schedule's zone.
    """

    schedule_type: Literal["once"] = "once"
    run_at: ScheduleTime

    @classmethod
    def from_expression(
        cls, expression: str, zone: ZoneInfo, now: datetime, *, misfire_grace_time: float | None = 30
    ) -> Self:
        """The one-off schedule of ``expression`` in ``zone``; relative times count from ``now``.

        ``misfire_grace_time`` is how many seconds in the past the time may be and still be
        accepted; ``None`` means no limit.

        Raises:
            InvalidScheduleError: the expression is not a time this scheduler understands, or the
                time is too far in the past.
            OutOfBoundsError: the time is outside the years 1970 to 9000 (see :mod:`.bounds`).
        """
        run_at = _parse_once_time(expression, zone, now)
        try:
            earliest = now - timedelta(seconds=misfire_grace_time) if misfire_grace_time is not None else None
        except OverflowError:
            earliest = None  # a grace time reaching before year 1: nothing is too old
        if earliest is not None and run_at < earliest:
            raise InvalidScheduleError(
                f"The one-off time {expression!r} ({_format_time(run_at)}) is in the past: it is now "
                f"{_format_time(_in_zone(now, zone))} in the time zone {zone.key}. Give a future "
                "time, 'now', or a relative time such as 'in 10 minutes'."
            )
        return cls(
            expression=expression,
            timezone=zone.key,
            description=f"once at {_format_time(run_at)} ({zone.key})",
            run_at=run_at,
        )

    def next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """``run_at`` when there is no previous fire time (even when it is past), else ``None``."""
        if previous_fire_time is not None:
            return None  # asked at every fire, so answered first
        _require_aware(now, "now")
        return _in_zone(self.run_at, self.zone)
