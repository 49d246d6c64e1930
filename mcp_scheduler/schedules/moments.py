"""Points in time that callers give: bounds of history and backfills (`since`, `until`: a moment, or how long
ago) and of a job's policy (`start_at`, `end_at`: a moment), within the years of `bounds`."""

from __future__ import annotations

from datetime import datetime

from agentool_bridge.errors import clip

from ..errors import InvalidJobInputError, InvalidScheduleError
from ..timestamps import utcnow
from .bounds import bounded_time
from .interval import parse_interval
from .zones import resolve_timezone

__all__ = ["parse_moment", "parse_time"]


def parse_moment(text: str, field: str, timezone: str, now: datetime | None = None) -> datetime:
    """`text` as an aware datetime: an ISO 8601 date or datetime (naive ones in `timezone`), or a duration
    meaning that long before now (`1h`, `30 minutes`, `2 days`, `PT15M`).

    Raises `InvalidScheduleError` naming `field` and showing the accepted forms, `OutOfBoundsError` for a
    duration over 100 years or a time outside the years 1970 to 9000.
    """
    value = text.strip()
    now = now or utcnow()
    what = f"{field} {clip(text)}"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            ago = parse_interval(value.removesuffix(" ago"), what=what)
        except InvalidScheduleError:
            raise InvalidScheduleError(
                f"{field} {clip(text)} is neither a time nor a duration: give an ISO 8601 time such as "
                f"'2026-12-01T09:00' (read in {timezone} without an offset) or how long ago, such as '1h', "
                "'30 minutes' or '2 days'."
            ) from None
        return bounded_time(now - ago, what)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=resolve_timezone(timezone))
    return bounded_time(moment, what)


def parse_time(text: str, field: str, timezone: str) -> datetime:
    """`text` as an aware datetime: an ISO 8601 date or datetime (naive ones in `timezone`).

    Raises `InvalidJobInputError` naming `field` when it is not one, `OutOfBoundsError` for a time outside the
    years 1970 to 9000.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidJobInputError(
            f"{field} {clip(text)} is not an ISO 8601 time: give one such as '2026-12-24T09:00' (read in {timezone}) "
            "or '2026-12-24T09:00:00+01:00'."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=resolve_timezone(timezone))
    return bounded_time(moment, f"{field} {clip(text)}")
