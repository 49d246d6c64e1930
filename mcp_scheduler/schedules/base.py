"""What every kind of schedule has: `BaseSchedule`, its fields and its fire-time contract."""

from __future__ import annotations

import sys
from abc import abstractmethod
from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeAlias, get_args
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, ConfigDict, ValidationInfo, field_validator

from .._frozen import FrozenModel
from ..timestamps import Timestamp, utcnow
from .zones import _in_zone, _load_zone, _require_aware

__all__ = ["ScheduleType", "SCHEDULE_TYPES", "BaseSchedule", "ScheduleTime"]

ScheduleType = Literal["cron", "interval", "once"]
"""The kinds of schedule a job can have."""

SCHEDULE_TYPES: Final[tuple[ScheduleType, ...]] = get_args(ScheduleType)
"""The valid schedule types, in documentation order."""


class BaseSchedule(FrozenModel):
    """A validated schedule, ready to compute fire times and to be stored as JSON.

    Each kind of schedule is a subclass: `CronSchedule`, `IntervalSchedule` and `OnceSchedule`.
    Build one with `parse_schedule`, store ``schedule.model_dump(mode="json")`` and rebuild it with
    `load_schedule`. Schedules are immutable.

    Attributes:
        schedule_type: ``"cron"``, ``"interval"`` or ``"once"``.
        expression: the expression exactly as the user gave it.
        timezone: the IANA name of the zone the schedule runs in.
        description: the schedule in plain words.
    """

    model_config = ConfigDict(defer_build=True)  # each kind built when first parsed or loaded, not at start

    schedule_type: ScheduleType
    expression: str
    timezone: str
    description: str

    # Many jobs share their schedule's strings: keep one copy of each.
    @field_validator("expression", "description")
    @classmethod
    def _shared_string(cls, value: str) -> str:
        return sys.intern(value)

    @field_validator("timezone")
    @classmethod
    def _canonical_zone_name(cls, value: str) -> str:
        return sys.intern(_load_zone(value).key)

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.timezone)

    @abstractmethod
    def next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """The next fire time, with the semantics of an APScheduler 3 trigger.

        ``previous_fire_time`` is the fire time before (``None`` for the first one) and ``now`` the
        current time; both are aware. Returns an aware datetime in the schedule's zone, or ``None``
        when the schedule has no further fire time. Each kind documents its own rule.

        Raises:
            ValueError: ``now`` or ``previous_fire_time`` is naive.
        """

    def shortest_gap(self) -> float | None:
        """The shortest time in seconds between two fires of this schedule (None: it fires once)."""
        return None

    def next_fire_times(self, count: int, now: datetime | None = None) -> list[datetime]:
        """The next ``count`` fire times from ``now`` (default: the current time), in order.

        The first is ``next_fire_time(None, now)``, so it may equal ``now``; each later one is the
        fire time after the one before. Fewer are returned when the schedule ends (a one-off
        schedule has exactly one fire time, even when it is already past).

        Raises:
            ValueError: ``count`` is negative or ``now`` is naive.
        """
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        moment = utcnow() if now is None else now
        _require_aware(moment, "now")
        times: list[datetime] = []
        previous: datetime | None = None
        while len(times) < count:
            following = self.next_fire_time(previous, moment if previous is None else previous)
            if following is None:
                break
            times.append(following)
            previous = following
        return times


def _datetime_in_schedule_zone(value: Any, info: ValidationInfo) -> Any:
    """Before-validator of a time field: ISO 8601 text or a datetime, as an aware datetime in the
    schedule's zone with the right ``fold``; a naive one is read in that zone."""
    timezone = info.data.get("timezone")
    if value is None or timezone is None:
        return value  # reported as a missing time, or as the invalid zone it is
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
    elif not isinstance(value, datetime):
        raise ValueError(f"{value!r} is not an ISO 8601 date-time string")
    zone = ZoneInfo(timezone)
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return _in_zone(value, zone)


ScheduleTime: TypeAlias = Annotated[Timestamp, BeforeValidator(_datetime_in_schedule_zone)]
"""A time field of a schedule (an interval's anchor, a one-off time): an aware datetime in the schedule's zone,
given as one or as ISO 8601 text (a naive one is read in that zone). Declare it after ``timezone``."""
