"""Interval schedules: a fixed period, such as ``"90 minutes"``, ``"1h30m"`` or ``"PT15M"``.

Fire times are ``anchor + k * interval``; the anchor of a new schedule is ``now + interval``.
Interval schedules use absolute (UTC) arithmetic, so they keep exact spacing across DST changes.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import Field

from agentool_bridge.errors import clip

from ..errors import InvalidScheduleError
from .base import BaseSchedule, ScheduleTime
from .bounds import LATEST, bounded_duration
from .zones import _in_zone, _require_aware

__all__ = ["INTERVAL_FORMS", "IntervalSchedule", "parse_interval", "describe_interval"]

INTERVAL_FORMS: Final = (
    "use a positive duration such as '30 seconds', '5 minutes', '1 hour', '2 days', '1 week', "
    "'1h30m', '1.5 hours', 'every 10 minutes', 'every hour' or an ISO 8601 duration such as "
    "'PT15M', 'PT1H30M', 'P1D' or 'P1DT2H'"
)
"""The accepted interval forms, quoted in every interval error message."""

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
    return InvalidScheduleError(f"Invalid interval {clip(expression)}: {reason}; {INTERVAL_FORMS}.")


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


def parse_interval(expression: str, *, what: str | None = None) -> timedelta:
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
        OutOfBoundsError: the duration is longer than 100 years or shorter than one microsecond
            (see :mod:`.bounds`); ``what`` names it in the message (default: "The interval '...'").
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
    if seconds <= 0:
        raise _interval_error(expression, "the interval must be greater than zero")
    return bounded_duration(seconds, what or f"The interval {clip(expression)}")


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


_ONE_MICROSECOND: Final = timedelta(microseconds=1)


class IntervalSchedule(BaseSchedule):
    """A fixed period, e.g. ``"every 2 hours"``: fire times are ``anchor + k * interval``.

    Attributes:
        interval_seconds: the period in seconds (positive and finite).
        anchor: the first fire time, in the schedule's zone; later ones are ``anchor + k * interval``.
    """

    schedule_type: Literal["interval"] = "interval"
    interval_seconds: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
    anchor: ScheduleTime

    @classmethod
    def from_expression(
        cls, expression: str, zone: ZoneInfo, now: datetime, *, anchor: datetime | None = None
    ) -> Self:
        """The interval schedule of ``expression`` (see :func:`parse_interval`) in ``zone``.

        ``anchor`` is the first fire time to keep (how a stored job keeps its phase; a naive one is
        read in ``zone``); ``None`` means ``now + interval``.

        Raises:
            InvalidScheduleError: the expression is not a positive duration.
        """
        interval = parse_interval(expression)
        if anchor is None:
            first = _in_zone(now.astimezone(UTC) + interval, zone)
        else:
            first = _in_zone(anchor if anchor.tzinfo is not None else anchor.replace(tzinfo=zone), zone)
        seconds = interval.total_seconds()
        return cls(
            expression=expression,
            timezone=zone.key,
            description=describe_interval(seconds),
            interval_seconds=seconds,
            anchor=first,
        )

    def shortest_gap(self) -> float:
        """The interval, in seconds."""
        return self.interval_seconds

    def next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """``previous_fire_time + interval``; without a previous fire time, the anchor if it is after
        ``now``, else the first ``anchor + k * interval`` at or after ``now``; ``None`` after
        :data:`~.bounds.LATEST`.

        Returns an aware datetime in the schedule's zone.
        """
        _require_aware(now, "now")
        if previous_fire_time is not None:
            _require_aware(previous_fire_time, "previous_fire_time")
        zone = self.zone
        interval = timedelta(seconds=self.interval_seconds)
        anchor = self.anchor.astimezone(UTC)
        current = now.astimezone(UTC)
        try:
            if previous_fire_time is not None:
                following = previous_fire_time.astimezone(UTC) + interval
            elif anchor > current:
                following = anchor
            else:
                elapsed = (current - anchor) // _ONE_MICROSECOND
                period = interval // _ONE_MICROSECOND
                periods = -(-elapsed // period)  # ceil division on exact integers
                following = anchor + periods * interval
        except OverflowError:  # past year 9999: no fire time
            return None
        return None if following > LATEST else _in_zone(following, zone)
