"""Cron schedules: the cron grammar, its descriptions and fire times across DST changes.

The grammar (five fields, six with seconds first, macros) is described in the documentation of
:mod:`mcp_scheduler.schedules`; :data:`CRON_FORMS` sums it up.

Daylight-saving time
--------------------
Cron fields are matched against the wall clock of the schedule's zone; every fire time is
returned as an aware datetime in that zone and fire times are strictly increasing.

* Spring forward (a wall-clock hour is skipped, e.g. 02:00-03:00 in Europe/Berlin on the
  last Sunday of March): a job whose hour field is ``*`` simply has no fire times inside the
  gap. Any other job whose time falls inside the gap (e.g. a daily ``30 2 * * *``) fires once,
  at the first instant after the gap (03:00), which is croniter's behaviour and close to
  Vixie cron's "run it right after the change". Such a job therefore runs every day.
* Fall back (a wall-clock hour happens twice, e.g. 02:00-03:00 on the last Sunday of
  October): following Vixie cron, a job whose minute or hour field starts with ``*`` (for
  example ``0 * * * *`` or ``*/15 * * * *``) fires at every real instant whose wall clock
  matches, so ``0 * * * *`` fires at 02:00 CEST and again one hour later at 02:00 CET (two
  different instants, never the same one twice). A job with a fixed minute and hour (for
  example ``30 2 * * *``) fires only at the first occurrence of the wall-clock time, so a
  daily job still runs once a day.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Final, Literal, Self, cast
from zoneinfo import ZoneInfo

from pydantic import ValidationInfo, field_validator

from agentool_bridge.errors import clip

from ..errors import InvalidScheduleError
from .base import BaseSchedule
from .bounds import LATEST
from .zones import _require_aware

if TYPE_CHECKING:
    from croniter import croniter

__all__ = ["CRON_FORMS", "CronSchedule"]

CRON_FORMS: Final = (
    "expected 5 fields 'minute hour day-of-month month day-of-week' (e.g. '0 9 * * 1-5'), "
    "6 fields with seconds first 'second minute hour day-of-month month day-of-week' "
    "(e.g. '*/10 * * * * *'), or a macro such as @hourly, @daily, @weekly, @monthly or @yearly"
)
"""The accepted cron forms, quoted in every cron error message."""

_ONE_MICROSECOND: Final = timedelta(microseconds=1)
_ONE_SECOND: Final = timedelta(seconds=1)

_MACROS: Final[dict[str, str]] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTH_NAMES: Final[dict[str, int]] = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1
    )
}
_DAY_NAMES: Final[dict[str, int]] = {
    name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
}
_DIGITS_RE: Final = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class _CronField:
    name: str
    low: int
    high: int
    names: Mapping[str, int]
    day_field: bool = False  # accepts '?'
    allows_last: bool = False  # accepts 'L'
    values: int = 0  # number of distinct values, for step limits

    def normalise(self, text: str) -> str:
        """The field with names replaced by numbers; raises ``ValueError`` with a reason."""
        if text == "?":
            if not self.day_field:
                raise ValueError(
                    f"'?' is only allowed in the day-of-month and day-of-week fields, not {self.name}"
                )
            return "*"
        items = text.split(",")
        normalised = [self._item(item, len(items)) for item in items]
        return ",".join(normalised)

    def _item(self, item: str, item_count: int) -> str:
        if not item:
            raise ValueError(f"empty list item in the {self.name} field")
        base, slash, step_text = item.partition("/")
        step = ""
        if slash:
            if not _DIGITS_RE.fullmatch(step_text):
                raise ValueError(f"step {step_text!r} in the {self.name} field is not a whole number")
            limit = self.values or (self.high - self.low + 1)
            if not 1 <= int(step_text) <= limit:
                raise ValueError(f"step {step_text} in the {self.name} field must be between 1 and {limit}")
            step = f"/{int(step_text)}"
        if base == "*":
            return "*" + step
        if base.upper() == "L":
            if not self.allows_last:
                raise ValueError(f"'L' is only allowed in the day-of-month field, not {self.name}")
            if slash or item_count > 1:
                raise ValueError("'L' (last day of the month) must be the whole day-of-month field")
            return "L"
        if base == "?":
            raise ValueError("'?' must be the whole field")
        start_text, dash, end_text = base.partition("-")
        start = self._value(start_text, range_end=False)
        if not dash:
            return f"{start}{step}"
        end = self._value(end_text, range_end=True)
        if start > end:
            raise ValueError(f"range {base!r} in the {self.name} field runs backwards")
        if start == end:
            # croniter reads a range whose ends are equal ("5-5") as the whole field.
            return str(start)
        return f"{start}-{end}{step}"

    def _value(self, text: str, *, range_end: bool) -> int:
        if _DIGITS_RE.fullmatch(text):
            value = int(text)
        elif text.upper() in self.names:
            value = self.names[text.upper()]
            if range_end and self.names is _DAY_NAMES and value == 0:
                value = 7  # FRI-SUN means Friday through Sunday
        else:
            raise ValueError(f"{text!r} is not a valid {self.name} value")
        if not self.low <= value <= self.high:
            raise ValueError(f"{self.name} {value} is out of range {self.low}-{self.high}")
        return value


_SECOND_FIELD: Final = _CronField("second", 0, 59, {})
_STANDARD_FIELDS: Final = (
    _CronField("minute", 0, 59, {}),
    _CronField("hour", 0, 23, {}),
    _CronField("day-of-month", 1, 31, {}, day_field=True, allows_last=True),
    _CronField("month", 1, 12, _MONTH_NAMES),
    _CronField("day-of-week", 0, 7, _DAY_NAMES, day_field=True, values=7),
)


def _cron_error(expression: str, reason: str) -> InvalidScheduleError:
    return InvalidScheduleError(f"Invalid cron expression {clip(expression)}: {reason}; {CRON_FORMS}.")


def _normalise_cron(expression: str) -> tuple[str, bool]:
    """Validate ``expression``; return the croniter expression and whether it has seconds."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        macro = _MACROS.get(text.lower())
        if macro is None:
            raise _cron_error(expression, f"unknown macro {text!r}")
        return macro, False
    fields = text.split(" ")
    if len(fields) == 5:
        specs: tuple[_CronField, ...] = _STANDARD_FIELDS
    elif len(fields) == 6:
        specs = (_SECOND_FIELD, *_STANDARD_FIELDS)
    else:
        raise _cron_error(expression, f"it has {len(fields)} field{'' if len(fields) == 1 else 's'}")
    try:
        normalised = [spec.normalise(field) for spec, field in zip(specs, fields, strict=True)]
    except ValueError as exc:
        raise _cron_error(expression, str(exc)) from None
    cron = " ".join(normalised)
    has_seconds = len(fields) == 6
    try:
        _check_cron(cron, has_seconds)
    except ValueError as exc:  # a second opinion; the field check above should catch everything
        raise _cron_error(expression, str(exc)) from None
    return cron, has_seconds


# croniter and cron-descriptor are imported by the functions that use them: a server that has no cron job yet
# starts without loading them.
# A hundred thousand jobs share a few hundred expressions: check and describe each one once.
@lru_cache(maxsize=4096)
def _check_cron(cron: str, has_seconds: bool) -> None:
    """Raises ValueError (croniter's words) if croniter refuses `cron`."""
    from croniter import CroniterError, croniter

    try:
        croniter.expand(cron, second_at_beginning=has_seconds)
    except CroniterError as exc:
        raise ValueError(str(exc)) from None


@lru_cache(maxsize=4096)
def _matcher(cron: str, has_seconds: bool) -> croniter:
    """A croniter of `cron`, never advanced itself: each search advances a shallow copy (`_first_wall_clock_match`).

    Building a croniter parses and expands the expression, which costs ten times the search itself; every fire,
    preview and new job computes next fire times, and many jobs share an expression.
    """
    from croniter import croniter

    return croniter(cron, _MATCHER_START, second_at_beginning=has_seconds)


_MATCHER_START: Final = datetime(2000, 1, 1)


@lru_cache(maxsize=4096)
def _describe_cron(cron: str, has_seconds: bool) -> str:
    # cron-descriptor guesses whether a 6-field expression has seconds first or a year last; the
    # 7-field form (seconds first, year last) is never guessed, so always hand it that.
    from cron_descriptor import ExpressionDescriptor, Options

    fields = cron.split(" ")
    seven = [*(fields if has_seconds else ["0", *fields]), "*"]
    options = Options(locale_code="en_US", use_24hour_time_format=True)
    try:
        return str(ExpressionDescriptor(" ".join(seven), options).get_description())
    except Exception:  # cron-descriptor fails on some exotic but valid inputs
        return f"cron '{cron}'"


@lru_cache(maxsize=4096)
def _shortest_gap(cron: str, has_seconds: bool) -> int:
    """The fewest seconds between two fires of `cron`, as if every day matched (so never more than a day).

    The fire times of a day are every hour x minute x second of the expanded fields; in time order, two
    neighbours differ in the second only, or are the last second of a minute and the first of the next
    matching minute, and so on up to the last time of a day and the first of the next.
    """
    from croniter import croniter

    expanded, _ = croniter.expand(cron, second_at_beginning=has_seconds)
    minutes, hours = _values(expanded[0], 60), _values(expanded[1], 24)
    seconds = _values(expanded[5], 60) if has_seconds else [0]
    gaps = [86400 - (hours[-1] - hours[0]) * 3600 - (minutes[-1] - minutes[0]) * 60 - (seconds[-1] - seconds[0])]
    if len(seconds) > 1:
        gaps.append(min(b - a for a, b in zip(seconds, seconds[1:], strict=False)))
    if len(minutes) > 1:
        step = min(b - a for a, b in zip(minutes, minutes[1:], strict=False))
        gaps.append(step * 60 - (seconds[-1] - seconds[0]))
    if len(hours) > 1:
        step = min(b - a for a, b in zip(hours, hours[1:], strict=False))
        gaps.append(step * 3600 - (minutes[-1] - minutes[0]) * 60 - (seconds[-1] - seconds[0]))
    return min(gaps)


def _values(field: list[int | str], size: int) -> list[int]:
    """An expanded cron field as sorted numbers ('*' is every value from 0 to size - 1)."""
    if field == ["*"]:
        return list(range(size))
    return sorted(int(v) for v in field)


def _first_transition(start: datetime, end: datetime, zone: ZoneInfo) -> datetime | None:
    """The first whole-second UTC instant in ``(start, end]`` whose UTC offset differs from ``start``'s.

    ``start`` and ``end`` are whole-second UTC instants. The span is scanned a day at a time (no
    zone changes its offset twice within a day) and the change is then found by bisection.
    """
    offset = _offset(start, zone)
    low = start
    while low < end:
        high = min(low + timedelta(days=1), end)
        if _offset(high, zone) != offset:
            while high - low > _ONE_SECOND:
                middle = low + timedelta(seconds=(high - low) // _ONE_SECOND // 2)
                if _offset(middle, zone) == offset:
                    low = middle
                else:
                    high = middle
            return high
        low = high
    return None


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # ZoneInfo always has an offset
    return offset


def _wall_clock(instant: datetime, offset: timedelta) -> datetime:
    """The naive wall-clock time of the UTC ``instant`` at ``offset``."""
    return (instant + offset).replace(tzinfo=None)


class CronSchedule(BaseSchedule):
    """A cron schedule, e.g. ``"0 9 * * 1-5"`` (09:00 on weekdays) in the schedule's zone.

    Attributes:
        cron_has_seconds: whether ``cron`` has six fields, seconds first.
        cron: the normalised croniter expression (macros expanded, names as numbers).
    """

    schedule_type: Literal["cron"] = "cron"
    # Declared before ``cron``, so that the check of ``cron`` can see it.
    cron_has_seconds: bool = False
    cron: str

    @field_validator("cron")
    @classmethod
    def _checked_cron(cls, value: str, info: ValidationInfo) -> str:
        has_seconds = info.data.get("cron_has_seconds")
        if has_seconds is not None:
            try:
                _check_cron(value, has_seconds)
            except ValueError as exc:
                raise ValueError(f"{value!r} is invalid: {exc}") from None
        return sys.intern(value)

    @classmethod
    def from_expression(cls, expression: str, zone: ZoneInfo, now: datetime) -> Self:
        """The cron schedule of ``expression`` in ``zone``.

        Raises:
            InvalidScheduleError: the expression is not valid cron, or it never fires after ``now``
                (no date matches it, e.g. 30 February).
        """
        cron, has_seconds = _normalise_cron(expression)
        schedule = cls(
            expression=expression,
            timezone=zone.key,
            description=f"{_describe_cron(cron, has_seconds)} ({zone.key})",
            cron=cron,
            cron_has_seconds=has_seconds,
        )
        if schedule.next_fire_time(None, now) is None:
            raise _cron_error(expression, "it never fires (no date matches it, e.g. 30 February)")
        return schedule

    def shortest_gap(self) -> float:
        """The fewest seconds between two fires, reckoned on the second, minute and hour fields as if every
        day matched (days that do not match only make gaps longer; DST changes are not counted)."""
        return float(_shortest_gap(self.cron, self.cron_has_seconds))

    def next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """The first matching time at or after ``min(now, previous_fire_time + 1µs)``, or at or
        after ``now`` when there is no previous fire time.

        Returns an aware datetime in the schedule's zone (see the DST rules of this module), or
        ``None`` when no time matches within croniter's 50-year horizon or before :data:`~.bounds.LATEST`.
        """
        _require_aware(now, "now")
        if previous_fire_time is not None:
            _require_aware(previous_fire_time, "previous_fire_time")
            previous = previous_fire_time.astimezone(UTC)
            bound = min(now.astimezone(UTC), previous + _ONE_MICROSECOND)
            if bound == previous:
                bound += _ONE_MICROSECOND
        else:
            bound = now.astimezone(UTC)
        if bound > LATEST:
            return None
        moment = self._first_cron_time_from(bound, self.zone)
        return None if moment is None or moment > LATEST else moment

    def _first_cron_time_from(self, bound: datetime, zone: ZoneInfo) -> datetime | None:
        """The first cron fire time at or after the aware instant ``bound``.

        croniter matches the fields against naive wall-clock times; this method walks the
        timeline one stretch of constant UTC offset at a time, so that a wall-clock time maps to
        exactly one instant, and applies the DST rules of this module's documentation whenever it
        crosses an offset change.
        """
        fixed_time = self._is_fixed_time()
        # Matches fall on whole seconds, so the search can start at the bound rounded up to one.
        current = bound.astimezone(UTC)
        if current.microsecond:
            current = current.replace(microsecond=0) + _ONE_SECOND
        for _ in range(1000):
            offset = _offset(current, zone)
            local = current.astimezone(zone)
            repeat = local.replace(fold=0).utcoffset()
            if fixed_time and local.fold == 1 and repeat is not None and repeat != offset:
                # ``current`` is inside the second pass of a repeated wall-clock period, which a
                # fixed-time job skips: resume where that period ends.
                first_pass = current - (repeat - offset)
                change = _first_transition(first_pass, current, zone)
                if change is not None:
                    current = change + (repeat - offset)
                    continue
            match = self._first_wall_clock_match(_wall_clock(current, offset))
            if match is None:
                return None
            candidate = (match - offset).replace(tzinfo=UTC)
            change = _first_transition(current, candidate, zone)
            if change is None:
                return candidate.astimezone(zone)
            # No match before the offset change; continue from it under the new offset.
            new_offset = _offset(change, zone)
            if new_offset > offset and fixed_time:
                # Spring forward: wall-clock times from change+offset to change+new_offset never
                # happen. A fixed-time job that falls in that gap fires as the gap ends.
                skipped = self._first_wall_clock_match(_wall_clock(change, offset))
                if skipped is not None and skipped < _wall_clock(change, new_offset):
                    return change.astimezone(zone)
            current = change
        raise RuntimeError(f"no fire time found for cron {self.cron!r} after {bound.isoformat()}")

    def _first_wall_clock_match(self, wall_clock: datetime) -> datetime | None:
        """The first naive wall-clock time at or after the whole-second ``wall_clock`` that matches."""
        from croniter import CroniterBadDateError

        # croniter returns the first match strictly after its start time.
        iterator = copy.copy(_matcher(self.cron, self.cron_has_seconds))
        iterator.set_current(wall_clock - _ONE_SECOND, force=True)
        try:
            return cast(datetime, iterator.get_next(datetime))
        except CroniterBadDateError:  # no match within croniter's 50-year search horizon
            return None

    def _is_fixed_time(self) -> bool:
        # Vixie cron: a job whose minute or hour field starts with '*' is a "wildcard" job that
        # follows the real clock; any other job is a fixed-time job that runs once per wall-clock
        # time, even when DST skips or repeats that time.
        fields = self.cron.split(" ")
        if self.cron_has_seconds:
            fields = fields[1:]
        return not any(field.startswith("*") for field in fields[:2])
