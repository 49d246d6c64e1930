"""The schedule grammar: parsing, describing and computing fire times of job schedules.

This package is pure: it does no I/O and does not import APScheduler. It understands three
schedule types, one class each:

``cron`` (:class:`CronSchedule`)
    Standard five-field cron (``minute hour day-of-month month day-of-week``), an optional
    six-field form with the *seconds first* (``second minute hour day-of-month month
    day-of-week``, the Quartz/Spring/node-cron convention) and the macros ``@hourly``,
    ``@daily``, ``@midnight``, ``@weekly``, ``@monthly``, ``@yearly`` and ``@annually``.
    Fields accept numbers, ``*``, ranges (``1-5``), steps (``*/15``, ``0-30/10``, ``5/15``),
    lists (``1,15``) and the names ``JAN``..``DEC`` and ``SUN``..``SAT`` in any case.
    Day-of-week ``0`` and ``7`` both mean Sunday; a range may end on ``SUN`` (``FRI-SUN``).
    ``?`` is accepted as a whole day-of-month or day-of-week field and means ``*``; ``L``
    alone in the day-of-month field means the last day of the month. When both the
    day-of-month and the day-of-week field are restricted, a day matches if *either*
    matches (Vixie cron's OR rule). Fire times are computed by croniter, which is the one
    source of truth for both previews and the engine.

``interval`` (:class:`IntervalSchedule`)
    A fixed period such as ``"90 minutes"``, ``"1h30m"``, ``"every 2 days"`` or ``"PT15M"``
    (see :func:`parse_interval`). Fire times are ``anchor + k * interval``; the anchor of a new
    schedule is ``now + interval``.

``once`` (:class:`OnceSchedule`)
    ``"now"``, an ISO 8601 date-time (naive ones are read in the schedule's zone), or a
    relative time such as ``"in 10 minutes"``.

Daylight-saving time: cron fields are matched against the wall clock of the schedule's zone;
the rules for skipped and repeated wall-clock hours are in :mod:`mcp_scheduler.schedules.cron`.
Interval schedules use absolute (UTC) arithmetic, so they keep exact spacing across DST
changes. Naive date-times given for ``once`` schedules are read in the schedule's zone: a
wall-clock time that does not exist is moved forward by the length of the gap (02:30 on a
spring-forward day becomes 03:30), and one that exists twice means its first occurrence.

Storage: ``schedule.model_dump(mode="json")`` is the stored form (datetimes as ISO 8601 strings
with their offset); :func:`load_schedule` rebuilds the schedule from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Final, Literal, TypeAlias, TypedDict, Unpack, overload

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from agentool_bridge.errors import clip

from ..errors import InvalidScheduleError, InvalidTimezoneError
from ..timestamps import utcnow
from .base import SCHEDULE_TYPES, BaseSchedule, ScheduleType
from .cron import CRON_FORMS, CronSchedule
from .interval import INTERVAL_FORMS, IntervalSchedule, describe_interval, parse_interval
from .moments import parse_moment, parse_time
from .once import ONCE_FORMS, OnceSchedule
from .zones import _require_aware, local_timezone_name, resolve_timezone

__all__ = [
    "parse_moment",
    "parse_time",
    "ScheduleType",
    "SCHEDULE_TYPES",
    "CRON_FORMS",
    "INTERVAL_FORMS",
    "ONCE_FORMS",
    "Schedule",
    "BaseSchedule",
    "CronSchedule",
    "IntervalSchedule",
    "OnceSchedule",
    "resolve_timezone",
    "local_timezone_name",
    "parse_schedule",
    "ParseOptions",
    "load_schedule",
    "parse_interval",
    "describe_interval",
]

Schedule: TypeAlias = Annotated[CronSchedule | IntervalSchedule | OnceSchedule, Field(discriminator="schedule_type")]
"""Any schedule; validating a dict picks the class by its ``schedule_type``."""

_SCHEDULE: Final[TypeAdapter[Schedule]] = TypeAdapter(Schedule, config=ConfigDict(defer_build=True))


class ParseOptions(TypedDict, total=False):
    """The keyword arguments of :func:`parse_schedule` (see there)."""

    now: datetime | None
    misfire_grace_time: float | None
    default_timezone: str | None
    anchor: datetime | None


@overload
def parse_schedule(
    schedule_type: Literal["cron"], expression: str, timezone: str | None = ..., **options: Unpack[ParseOptions]
) -> CronSchedule: ...
@overload
def parse_schedule(
    schedule_type: Literal["interval"], expression: str, timezone: str | None = ..., **options: Unpack[ParseOptions]
) -> IntervalSchedule: ...
@overload
def parse_schedule(
    schedule_type: Literal["once"], expression: str, timezone: str | None = ..., **options: Unpack[ParseOptions]
) -> OnceSchedule: ...
@overload
def parse_schedule(
    schedule_type: str, expression: str, timezone: str | None = ..., **options: Unpack[ParseOptions]
) -> Schedule: ...


def parse_schedule(
    schedule_type: str,
    expression: str,
    timezone: str | None = None,
    *,
    now: datetime | None = None,
    misfire_grace_time: float | None = 30,
    default_timezone: str | None = None,
    anchor: datetime | None = None,
) -> Schedule:
    """Validate a schedule and return it parsed, as the class of its type.

    Args:
        schedule_type: ``"cron"``, ``"interval"`` or ``"once"`` (case-insensitive).
        expression: the schedule in the grammar of its type (see the package documentation,
            :data:`CRON_FORMS`, :data:`INTERVAL_FORMS` and :data:`ONCE_FORMS`).
        timezone: the IANA zone the schedule runs in; ``None`` means ``default_timezone``.
        now: the current time (aware; default: the real current time), injectable for tests.
        misfire_grace_time: how many seconds in the past a one-off time may be and still be
            accepted; ``None`` means no limit.
        default_timezone: the zone used when ``timezone`` is ``None``; ``None`` means the
            machine's zone.
        anchor: for interval schedules, the first fire time to keep (how a stored job keeps its
            phase); ``None`` means ``now + interval``. Naive anchors are read in the zone.

    Raises:
        InvalidScheduleError: the type or the expression is invalid, a cron expression never
            fires, or a one-off time is too far in the past.
        InvalidTimezoneError: the zone is unknown.
    """
    kind = schedule_type.strip().lower() if isinstance(schedule_type, str) else schedule_type
    if kind not in SCHEDULE_TYPES:
        raise InvalidScheduleError(
            f"Invalid schedule_type {clip(schedule_type)}: use one of "
            + ", ".join(repr(name) for name in SCHEDULE_TYPES)
            + "."
        )
    forms = {"cron": CRON_FORMS, "interval": INTERVAL_FORMS, "once": ONCE_FORMS}[kind]
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidScheduleError(f"The {kind} schedule expression is empty: {forms}.")
    zone = resolve_timezone(timezone, default_timezone)
    current = utcnow() if now is None else now
    _require_aware(current, "now")
    if misfire_grace_time is not None and misfire_grace_time < 0:
        raise ValueError(f"misfire_grace_time must not be negative, got {misfire_grace_time}")
    if kind == "cron":
        return CronSchedule.from_expression(expression, zone, current)
    if kind == "interval":
        return IntervalSchedule.from_expression(expression, zone, current, anchor=anchor)
    return OnceSchedule.from_expression(expression, zone, current, misfire_grace_time=misfire_grace_time)


def load_schedule(data: Mapping[str, Any] | str | bytes) -> Schedule:
    """Rebuild a stored schedule from ``schedule.model_dump(mode="json")``, as a dict or as JSON text.

    The stored fields are trusted as they are (a one-off ``"in 10 minutes"`` keeps its original
    time, an interval keeps its anchor) but checked for consistency. Rows written by earlier
    versions, which hold every key of every type (``null`` for the keys of the other types), load
    too. Times come back as aware datetimes in the schedule's zone.

    Raises:
        InvalidScheduleError: the data is not a stored schedule; the message names each problem.
        InvalidTimezoneError: the stored zone is unknown.
    """
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InvalidScheduleError(f"Stored schedule is not valid JSON: {exc}.") from None
    if not isinstance(data, Mapping):
        raise InvalidScheduleError(f"Stored schedule must be a JSON object, not {type(data).__name__}.")
    try:
        if data.get("schedule_type") == "cron":
            key = tuple(data.get(name) for name in _CRON_KEY)
            if all(isinstance(part, str | bool) for part in key):
                return _shared_cron(key)
        return _SCHEDULE.validate_python(data)
    except ValidationError as exc:
        raise _stored_schedule_error(data, exc) from None


_CRON_KEY: Final = ("expression", "timezone", "description", "cron", "cron_has_seconds")


# A cron schedule holds nothing of its own job: the jobs that share one (most of 100,000 jobs share
# a few hundred) share the instance, which saves the time to check it and the memory to keep it.
@lru_cache(maxsize=4096)
def _shared_cron(key: tuple[Any, ...]) -> Schedule:
    return _SCHEDULE.validate_python({"schedule_type": "cron", **dict(zip(_CRON_KEY, key, strict=True))})


# How a stored field is named when its value is missing.
_FIELD_WORDS: Final = {
    "cron": "cron expression",
    "interval_seconds": "period in seconds",
    "anchor": "first fire time",
    "run_at": "one-off time",
}


def _stored_schedule_error(
    data: Mapping[str, Any], exc: ValidationError
) -> InvalidScheduleError | InvalidTimezoneError:
    """The error of an invalid stored schedule, naming every problem pydantic found."""
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, InvalidTimezoneError):
            return cause
        problems.append(_problem(error, cause))
    kind = data.get("schedule_type")
    what = f"{kind} schedule" if kind in SCHEDULE_TYPES else "schedule"
    return InvalidScheduleError(f"Stored {what} is invalid: {'; '.join(problems)}.")


def _problem(error: ErrorDetails, cause: object) -> str:
    """One problem of a stored schedule, in words: ``field: what is wrong``."""
    error_type = error["type"]
    if error_type == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag")
        return f"unknown schedule_type {tag!r} (use one of {', '.join(map(repr, SCHEDULE_TYPES))})"
    if error_type == "union_tag_not_found":
        return "the 'schedule_type' field is missing"
    field = ".".join(str(part) for part in error["loc"][1:])  # the first part is the schedule_type
    if error_type == "missing":
        return f"the {field!r} field is missing"
    value = error["input"]
    if value is None:
        return f"{field}: no {_FIELD_WORDS.get(field, field)} (null)"
    if error_type == "string_type":
        return f"{field}: non-string value {value!r}"
    if cause is not None:  # raised by a validator of ours, in words already
        return f"{field}: {cause}"
    return f"{field}: {value!r} is invalid ({error['msg']})"
