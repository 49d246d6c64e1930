"""The schedule grammar: parsing, describing and computing fire times of job schedules.

This module is pure: it does no I/O and does not import APScheduler. It understands three
schedule types:

``cron``
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

``interval``
    A fixed period such as ``"90 minutes"``, ``"1h30m"``, ``"every 2 days"`` or ``"PT15M"``
    (see :func:`parse_interval`). Fire times are ``anchor + k * interval``; the anchor of a new
    schedule is ``now + interval``.

``once``
    ``"now"``, an ISO 8601 date-time (naive ones are read in the schedule's zone), or a
    relative time such as ``"in 10 minutes"``.

Daylight-saving time (cron schedules)
-------------------------------------
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

Interval schedules use absolute (UTC) arithmetic, so they keep exact spacing across DST
changes. Naive date-times given for ``once`` schedules are read in the schedule's zone: a
wall-clock time that does not exist is moved forward by the length of the gap (02:30 on a
spring-forward day becomes 03:30), and one that exists twice means its first occurrence.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final, Literal, cast, get_args
from zoneinfo import ZoneInfo

from cron_descriptor import ExpressionDescriptor, Options
from croniter import CroniterBadDateError, CroniterError, croniter

from ..errors import InvalidScheduleError
from .zones import _in_zone, _load_zone, _require_aware, local_timezone_name, resolve_timezone

__all__ = [
    "ScheduleType",
    "SCHEDULE_TYPES",
    "CRON_FORMS",
    "INTERVAL_FORMS",
    "ONCE_FORMS",
    "ParsedSchedule",
    "resolve_timezone",
    "local_timezone_name",
    "parse_schedule",
    "parse_interval",
    "describe_interval",
]

ScheduleType = Literal["cron", "interval", "once"]
"""The kinds of schedule a job can have."""

SCHEDULE_TYPES: Final[tuple[ScheduleType, ...]] = get_args(ScheduleType)
"""The valid schedule types, in documentation order."""

CRON_FORMS: Final = (
    "expected 5 fields 'minute hour day-of-month month day-of-week' (e.g. '0 9 * * 1-5'), "
    "6 fields with seconds first 'second minute hour day-of-month month day-of-week' "
    "(e.g. '*/10 * * * * *'), or a macro such as @hourly, @daily, @weekly, @monthly or @yearly"
)
"""The accepted cron forms, quoted in every cron error message."""

INTERVAL_FORMS: Final = (
    "use a positive duration such as '30 seconds', '5 minutes', '1 hour', '2 days', '1 week', "
    "'1h30m', '1.5 hours', 'every 10 minutes', 'every hour' or an ISO 8601 duration such as "
    "'PT15M', 'PT1H30M', 'P1D' or 'P1DT2H'"
)
"""The accepted interval forms, quoted in every interval error message."""

ONCE_FORMS: Final = (
    "use 'now', an ISO 8601 date-time such as '2026-12-25T09:00:00' (read in the job's time zone), "
    "'2026-12-25 09:00', '2026-12-25T09:00:00+01:00' or '2026-12-25T08:00:00Z', "
    "or a relative time such as 'in 10 minutes', 'in 2 hours' or 'in 1h30m'"
)
"""The accepted one-off forms, quoted in every one-off error message."""

_ONE_MICROSECOND: Final = timedelta(microseconds=1)
_ONE_SECOND: Final = timedelta(seconds=1)


def _format_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z")

# ---------------------------------------------------------------------------------------------
# Intervals
# ---------------------------------------------------------------------------------------------

_UNIT_SECONDS: Final[dict[str, int]] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 604800),
}
_CALENDAR_UNITS: Final = frozenset(
    {"mo", "mos", "mon", "mons", "month", "months", "y", "yr", "yrs", "year", "years"}
)
_USE_CRON_HINT: Final = (
    "months and years have no fixed length: use a cron schedule instead, e.g. '0 9 1 * *' for "
    "09:00 on the 1st of every month or '0 9 1 1 *' for 09:00 every 1 January"
)

_NUMBER: Final = r"\d+(?:\.\d+)?|\.\d+"
_AMOUNT_RE: Final = re.compile(rf"(?:(?P<number>{_NUMBER})\s*|(?P<article>an?)\s+)(?P<unit>[a-z]+)")
_SEPARATOR_RE: Final = re.compile(r"\s*(?:(?:,|\band\b)\s*)?")
_EVERY_RE: Final = re.compile(r"every\s+")
_NEGATIVE_RE: Final = re.compile(r"(?:^|[\s,])-\s*(?:\d|\.\d|p)")
_ISO_NUMBER: Final = r"\d+(?:[.,]\d+)?"
_ISO_DURATION_RE: Final = re.compile(
    rf"P(?:(?P<weeks>{_ISO_NUMBER})W)?(?:(?P<days>{_ISO_NUMBER})D)?"
    rf"(?:T(?:(?P<hours>{_ISO_NUMBER})H)?(?:(?P<minutes>{_ISO_NUMBER})M)?(?:(?P<seconds>{_ISO_NUMBER})S)?)?"
)
_ISO_CALENDAR_RE: Final = re.compile(rf"P(?:[^T]*(?:{_ISO_NUMBER})[YM])")


def _interval_error(expression: str, reason: str) -> InvalidScheduleError:
    return InvalidScheduleError(f"Invalid interval {expression!r}: {reason}; {INTERVAL_FORMS}.")


def _parse_iso_duration(expression: str, text: str) -> float:
    upper = text.upper()
    if _ISO_CALENDAR_RE.match(upper):
        raise _interval_error(expression, _USE_CRON_HINT)
    match = _ISO_DURATION_RE.fullmatch(upper)
    if match is None or upper in ("P", "PT") or upper.endswith("T"):
        raise _interval_error(expression, "this is not a valid ISO 8601 duration")
    factors = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
    total = 0.0
    for group, factor in factors.items():
        value = match.group(group)
        if value is not None:
            total += float(value.replace(",", ".")) * factor
    return total


def _parse_human_duration(expression: str, text: str) -> float:
    if text in _UNIT_SECONDS and len(text) > 1:  # "minute", "hour", "every day": an implicit 1
        return float(_UNIT_SECONDS[text])
    if text in _CALENDAR_UNITS:
        raise _interval_error(expression, _USE_CRON_HINT)
    total = 0.0
    position = 0
    first = True
    while position < len(text) or first:
        if not first:
            separator = _SEPARATOR_RE.match(text, position)
            if separator is not None:
                position = separator.end()
        match = _AMOUNT_RE.match(text, position)
        if match is None:
            raise _interval_error(expression, "it is not a duration this scheduler understands")
        unit = match.group("unit")
        if unit in _CALENDAR_UNITS:
            raise _interval_error(expression, _USE_CRON_HINT)
        if unit not in _UNIT_SECONDS:
            raise _interval_error(expression, f"unknown unit {unit!r}")
        amount = 1.0 if match.group("article") else float(match.group("number"))
        total += amount * _UNIT_SECONDS[unit]
        position = match.end()
        first = False
    return total


def parse_interval(expression: str) -> timedelta:
    """Parse a duration such as ``"1h30m"`` into a positive :class:`~datetime.timedelta`.

    Accepted forms (case-insensitive, an optional leading ``every``):

    * an amount and a unit, singular or plural: ``"30 seconds"``, ``"5 minutes"``, ``"1 hour"``,
      ``"2 days"``, ``"1 week"``, ``"1.5 hours"``; unit abbreviations ``s``/``sec``/``secs``,
      ``m``/``min``/``mins``, ``h``/``hr``/``hrs``, ``d``, ``w``/``wk``/``wks``;
    * several of them, with or without spaces, commas or ``and``: ``"1h30m"``, ``"1h 30m"``,
      ``"1 hour and 30 minutes"``;
    * a bare unit with an implicit amount of one: ``"every minute"``, ``"every hour"``;
      ``"a"``/``"an"`` also mean one (``"an hour"``);
    * an ISO 8601 duration without years or months: ``"PT15M"``, ``"PT1H30M"``, ``"P1D"``,
      ``"P1W"``, ``"P1DT2H"``.

    Raises:
        InvalidScheduleError: the text is not a duration, is zero or negative, or uses months or
            years (which have no fixed length; use a cron schedule). The message lists the
            accepted forms.
    """
    if not isinstance(expression, str):
        raise _interval_error(repr(expression), "the interval must be a string")
    text = " ".join(expression.strip().lower().split())
    if not text:
        raise _interval_error(expression, "the interval is empty")
    every = _EVERY_RE.match(text)
    if every is not None:
        text = text[every.end() :]
    if text.startswith("-") or _NEGATIVE_RE.search(text):
        raise _interval_error(expression, "the interval must be greater than zero")
    seconds = (
        _parse_iso_duration(expression, text)
        if text.startswith("p")
        else (_parse_human_duration(expression, text))
    )
    if not math.isfinite(seconds):
        raise _interval_error(expression, "the interval is too long")
    try:
        duration = timedelta(seconds=seconds)
    except OverflowError:
        raise _interval_error(expression, "the interval is too long") from None
    if duration <= timedelta(0):
        raise _interval_error(expression, "the interval must be greater than zero")
    return duration


def describe_interval(seconds: float) -> str:
    """Describe a period in plain words, e.g. ``5400`` -> ``"every 1 hour 30 minutes"``.

    The period is split into weeks, days, hours, minutes and seconds (fractional seconds are
    kept, to the microsecond); zero parts are left out.

    Raises:
        ValueError: ``seconds`` is not a positive finite number.
    """
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"an interval must be a positive number of seconds, got {seconds!r}")
    remaining = round(seconds * 1_000_000)
    if remaining <= 0:
        raise ValueError(f"an interval must be at least one microsecond, got {seconds!r}")
    parts: list[str] = []
    for name, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        count, remaining = divmod(remaining, size * 1_000_000)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    if remaining:
        whole, fraction = divmod(remaining, 1_000_000)
        amount = f"{whole}.{fraction:06d}".rstrip("0") if fraction else str(whole)
        parts.append(f"{amount} second{'' if amount == '1' else 's'}")
    return "every " + " ".join(parts)


# ---------------------------------------------------------------------------------------------
# Cron
# ---------------------------------------------------------------------------------------------

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
    return InvalidScheduleError(f"Invalid cron expression {expression!r}: {reason}; {CRON_FORMS}.")


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
    except CroniterError as exc:  # a second opinion; the field check above should catch everything
        raise _cron_error(expression, str(exc)) from None
    return cron, has_seconds


# A hundred thousand jobs share a few hundred expressions: check and describe each one once.
@lru_cache(maxsize=4096)
def _check_cron(cron: str, has_seconds: bool) -> None:
    croniter.expand(cron, second_at_beginning=has_seconds)


@lru_cache(maxsize=4096)
def _describe_cron(cron: str, has_seconds: bool) -> str:
    # cron-descriptor guesses whether a 6-field expression has seconds first or a year last; the
    # 7-field form (seconds first, year last) is never guessed, so always hand it that.
    fields = cron.split(" ")
    seven = [*(fields if has_seconds else ["0", *fields]), "*"]
    options = Options(locale_code="en_US", use_24hour_time_format=True)
    try:
        return str(ExpressionDescriptor(" ".join(seven), options).get_description())
    except Exception:  # cron-descriptor fails on some exotic but valid inputs
        return f"cron '{cron}'"


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


# ---------------------------------------------------------------------------------------------
# The parsed schedule
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedSchedule:
    """A validated schedule, ready to compute fire times and to be stored as JSON.

    Attributes:
        schedule_type: ``"cron"``, ``"interval"`` or ``"once"``.
        expression: the expression exactly as the user gave it.
        timezone: the IANA name of the zone the schedule runs in.
        description: the schedule in plain words.
        cron: the normalised croniter expression (macros expanded, names as numbers); cron only.
        cron_has_seconds: whether ``cron`` has six fields, seconds first.
        interval_seconds: the period in seconds; interval only.
        anchor: the first fire time; later ones are ``anchor + k * interval``; interval only.
        run_at: the one fire time, in the schedule's zone; once only.
    """

    schedule_type: ScheduleType
    expression: str
    timezone: str
    description: str
    cron: str | None = None
    cron_has_seconds: bool = False
    interval_seconds: float | None = None
    anchor: datetime | None = None
    run_at: datetime | None = None

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return _load_zone(self.timezone)

    def next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """The next fire time, with the semantics of an APScheduler 3 trigger.

        * cron: the first matching time at or after ``min(now, previous_fire_time + 1µs)``, or at
          or after ``now`` when there is no previous fire time;
        * interval: ``previous_fire_time + interval``; without a previous fire time the anchor if
          it is after ``now``, else the first ``anchor + k * interval`` at or after ``now``;
        * once: ``run_at`` when there is no previous fire time, else ``None``.

        Returns an aware datetime in the schedule's zone, or ``None`` when the schedule has no
        further fire time.
        """
        if self.schedule_type == "once" and previous_fire_time is not None:
            return None  # asked at every fire, so answered first
        _require_aware(now, "now")
        if previous_fire_time is not None:
            _require_aware(previous_fire_time, "previous_fire_time")
        zone = self.zone
        if self.schedule_type == "once":
            return None if self.run_at is None else _in_zone(self.run_at, zone)
        if self.schedule_type == "interval":
            return self._next_interval_time(previous_fire_time, now, zone)
        if previous_fire_time is not None:
            previous = previous_fire_time.astimezone(UTC)
            bound = min(now.astimezone(UTC), previous + _ONE_MICROSECOND)
            if bound == previous:
                bound += _ONE_MICROSECOND
        else:
            bound = now.astimezone(UTC)
        return self._first_cron_time_from(bound, zone)

    def next_fire_times(self, count: int, now: datetime | None = None) -> list[datetime]:
        """The next ``count`` fire times from ``now`` (default: the current time), in order.

        The first is ``next_fire_time(None, now)``, so it may equal ``now``; each later one is the
        fire time after the one before. Fewer are returned when the schedule ends (a one-off
        schedule has exactly one fire time, even when it is already past).
        """
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        moment = datetime.now(UTC) if now is None else now
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

    def _next_interval_time(
        self, previous_fire_time: datetime | None, now: datetime, zone: ZoneInfo
    ) -> datetime | None:
        if self.interval_seconds is None or self.anchor is None:
            return None
        interval = timedelta(seconds=self.interval_seconds)
        if previous_fire_time is not None:
            return _in_zone(previous_fire_time.astimezone(UTC) + interval, zone)
        anchor = self.anchor.astimezone(UTC)
        current = now.astimezone(UTC)
        if anchor > current:
            return _in_zone(anchor, zone)
        elapsed = (current - anchor) // _ONE_MICROSECOND
        period = interval // _ONE_MICROSECOND
        periods = -(-elapsed // period)  # ceil division on exact integers
        return _in_zone(anchor + periods * interval, zone)

    def _first_cron_time_from(self, bound: datetime, zone: ZoneInfo) -> datetime | None:
        """The first cron fire time at or after the aware instant ``bound``.

        croniter matches the fields against naive wall-clock times; this method walks the
        timeline one stretch of constant UTC offset at a time, so that a wall-clock time maps to
        exactly one instant, and applies the DST rules of the module documentation whenever it
        crosses an offset change.
        """
        if self.cron is None:
            return None
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
        # croniter returns the first match strictly after its start time.
        iterator = croniter(self.cron, wall_clock - _ONE_SECOND, second_at_beginning=self.cron_has_seconds)
        try:
            return cast(datetime, iterator.get_next(datetime))
        except CroniterBadDateError:  # no match within croniter's 50-year search horizon
            return None

    def _is_fixed_time(self) -> bool:
        # Vixie cron: a job whose minute or hour field starts with '*' is a "wildcard" job that
        # follows the real clock; any other job is a fixed-time job that runs once per wall-clock
        # time, even when DST skips or repeats that time.
        fields = (self.cron or "").split(" ")
        if self.cron_has_seconds:
            fields = fields[1:]
        return not any(field.startswith("*") for field in fields[:2])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (datetimes as ISO 8601 strings with offset); see :meth:`from_dict`."""
        return {
            "schedule_type": self.schedule_type,
            "expression": self.expression,
            "timezone": self.timezone,
            "description": self.description,
            "cron": self.cron,
            "cron_has_seconds": self.cron_has_seconds,
            "interval_seconds": self.interval_seconds,
            "anchor": None if self.anchor is None else self.anchor.isoformat(),
            "run_at": None if self.run_at is None else self.run_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParsedSchedule:
        """Rebuild a schedule from :meth:`to_dict` output.

        The stored fields are trusted as they are (a one-off ``"in 10 minutes"`` keeps its
        original time, an interval keeps its anchor) but checked for consistency.

        Raises:
            InvalidScheduleError: the data is not a stored schedule.
            InvalidTimezoneError: the stored zone is unknown.
        """
        try:
            schedule_type = data["schedule_type"]
            expression = data["expression"]
            timezone_name = data["timezone"]
            description = data["description"]
        except KeyError as exc:
            raise InvalidScheduleError(f"Stored schedule is missing the {exc.args[0]!r} field.") from None
        if schedule_type not in SCHEDULE_TYPES:
            raise InvalidScheduleError(f"Stored schedule has an unknown schedule_type {schedule_type!r}.")
        if not isinstance(expression, str) or not isinstance(description, str):
            raise InvalidScheduleError("Stored schedule has a non-string expression or description.")
        if not isinstance(timezone_name, str):
            raise InvalidScheduleError(f"Stored schedule has an invalid timezone {timezone_name!r}.")
        zone = _load_zone(timezone_name)
        anchor = _stored_datetime(data.get("anchor"), "anchor", zone)
        run_at = _stored_datetime(data.get("run_at"), "run_at", zone)
        cron = data.get("cron")
        cron_has_seconds = bool(data.get("cron_has_seconds", False))
        interval_seconds = data.get("interval_seconds")
        if schedule_type == "cron":
            if not isinstance(cron, str):
                raise InvalidScheduleError("Stored cron schedule has no cron expression.")
            try:
                _check_cron(cron, cron_has_seconds)
            except CroniterError as exc:
                raise InvalidScheduleError(f"Stored cron expression {cron!r} is invalid: {exc}") from None
        elif schedule_type == "interval":
            if (
                isinstance(interval_seconds, bool)
                or not isinstance(interval_seconds, int | float)
                or not math.isfinite(interval_seconds)
                or interval_seconds <= 0
                or anchor is None
            ):
                raise InvalidScheduleError(
                    "Stored interval schedule needs a positive interval_seconds and an anchor."
                )
            interval_seconds = float(interval_seconds)
        elif run_at is None:
            raise InvalidScheduleError("Stored one-off schedule has no run_at.")
        # Many stored jobs share their schedule's strings: keep one copy of each.
        return cls(
            schedule_type=cast(ScheduleType, sys.intern(schedule_type)),
            expression=sys.intern(expression),
            timezone=zone.key,
            description=sys.intern(description),
            cron=sys.intern(cron) if schedule_type == "cron" and isinstance(cron, str) else None,
            cron_has_seconds=cron_has_seconds if schedule_type == "cron" else False,
            interval_seconds=interval_seconds if schedule_type == "interval" else None,
            anchor=anchor if schedule_type == "interval" else None,
            run_at=run_at if schedule_type == "once" else None,
        )


def _stored_datetime(value: Any, field: str, zone: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidScheduleError(f"Stored schedule has an invalid {field} {value!r}.") from None
    else:
        raise InvalidScheduleError(f"Stored schedule has an invalid {field} {value!r}.")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return _in_zone(parsed, zone)


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def _once_error(expression: str, reason: str) -> InvalidScheduleError:
    return InvalidScheduleError(f"Invalid one-off time {expression!r}: {reason}; {ONCE_FORMS}.")


def _parse_once_time(expression: str, zone: ZoneInfo, now: datetime) -> datetime:
    text = expression.strip()
    lowered = " ".join(text.lower().split())
    if lowered == "now":
        return _in_zone(now, zone)
    if lowered.startswith("in "):
        try:
            delay = parse_interval(lowered[3:])
        except InvalidScheduleError:
            raise _once_error(expression, f"{lowered[3:]!r} is not a duration") from None
        return _in_zone(now.astimezone(UTC) + delay, zone)
    parsed: datetime | None = None
    for candidate in (text, text.upper()):
        try:
            parsed = datetime.fromisoformat(candidate)
            break
        except ValueError:
            continue
    if parsed is None:
        raise _once_error(expression, "it is not a date-time this scheduler understands")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)  # fold=0: the first of two repeated wall-clock times
    return _in_zone(parsed, zone)


def parse_schedule(
    schedule_type: str,
    expression: str,
    timezone: str | None = None,
    *,
    now: datetime | None = None,
    misfire_grace_time: float | None = 30,
    default_timezone: str | None = None,
    anchor: datetime | None = None,
) -> ParsedSchedule:
    """Validate a schedule and return it parsed.

    Args:
        schedule_type: ``"cron"``, ``"interval"`` or ``"once"`` (case-insensitive).
        expression: the schedule in the grammar of its type (see the module documentation,
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
            f"Invalid schedule_type {schedule_type!r}: use one of "
            + ", ".join(repr(name) for name in SCHEDULE_TYPES)
            + "."
        )
    forms = {"cron": CRON_FORMS, "interval": INTERVAL_FORMS, "once": ONCE_FORMS}[kind]
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidScheduleError(f"The {kind} schedule expression is empty: {forms}.")
    zone = resolve_timezone(timezone, default_timezone)
    current = datetime.now(UTC) if now is None else now
    _require_aware(current, "now")
    if misfire_grace_time is not None and misfire_grace_time < 0:
        raise ValueError(f"misfire_grace_time must not be negative, got {misfire_grace_time}")

    if kind == "cron":
        cron, has_seconds = _normalise_cron(expression)
        schedule = ParsedSchedule(
            schedule_type="cron",
            expression=expression,
            timezone=zone.key,
            description=f"{_describe_cron(cron, has_seconds)} ({zone.key})",
            cron=cron,
            cron_has_seconds=has_seconds,
        )
        if schedule.next_fire_time(None, current) is None:
            raise _cron_error(expression, "it never fires (no date matches it, e.g. 30 February)")
        return schedule

    if kind == "interval":
        interval = parse_interval(expression)
        if anchor is None:
            first = _in_zone(current.astimezone(UTC) + interval, zone)
        else:
            first = _in_zone(anchor if anchor.tzinfo is not None else anchor.replace(tzinfo=zone), zone)
        seconds = interval.total_seconds()
        return ParsedSchedule(
            schedule_type="interval",
            expression=expression,
            timezone=zone.key,
            description=describe_interval(seconds),
            interval_seconds=seconds,
            anchor=first,
        )

    run_at = _parse_once_time(expression, zone, current)
    if misfire_grace_time is not None and run_at < current - timedelta(seconds=misfire_grace_time):
        raise InvalidScheduleError(
            f"The one-off time {expression!r} ({_format_time(run_at)}) is in the past: it is now "
            f"{_format_time(_in_zone(current, zone))} in the time zone {zone.key}. Give a future "
            "time, 'now', or a relative time such as 'in 10 minutes'."
        )
    return ParsedSchedule(
        schedule_type="once",
        expression=expression,
        timezone=zone.key,
        description=f"once at {_format_time(run_at)} ({zone.key})",
        run_at=run_at,
    )
