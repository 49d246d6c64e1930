"""Points in time that callers give as bounds (history's `since` and `until`): a moment, or how long ago."""

from __future__ import annotations

from datetime import datetime

from agentool_bridge.errors import clip

from ..errors import InvalidScheduleError
from ..timestamps import utcnow
from .interval import parse_interval
from .zones import resolve_timezone

__all__ = ["parse_moment"]


def parse_moment(text: str, field: str, timezone: str, now: datetime | None = None) -> datetime:
    """`text` as an aware datetime: an ISO 8601 date or datetime (naive ones in `timezone`), or a duration
    meaning that long before now (`1h`, `30 minutes`, `2 days`, `PT15M`).

    Raises `InvalidScheduleError` naming `field` and showing the accepted forms.
    """
    value = text.strip()
    now = now or utcnow()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            return now - parse_interval(value.removesuffix(" ago"))
        except InvalidScheduleError:
            raise InvalidScheduleError(
                f"{field} {clip(text)} is neither a time nor a duration: give an ISO 8601 time such as "
                f"'2026-12-01T09:00' (read in {timezone} without an offset) or how long ago, such as '1h', "
                "'30 minutes' or '2 days'."
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=resolve_timezone(timezone))
    return moment
