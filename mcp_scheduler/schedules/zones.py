"""Time zones: IANA zone names (with the nearest real names for a misspelt one), the machine's zone, what a
fixed-offset zone means for its user, and aware datetimes in a zone."""

from __future__ import annotations

import difflib
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import tzlocal

from ..errors import InvalidTimezoneError

__all__ = ["resolve_timezone", "local_timezone_name", "nearest_zones", "zone_warning"]

# Keys that ZoneInfo may resolve on some machines but that are not portable IANA zone names.
_NON_PORTABLE_ZONE_KEYS: Final = frozenset({"localtime", "posixrules"})
# Variant trees of the system's zone files: right/ counts leap seconds (its clocks are off by ~27 s),
# posix/ duplicates the plain names; neither is in the tzdata package nor on every machine.
_NON_PORTABLE_PREFIXES: Final = ("right/", "posix/")


_MOST_SUGGESTIONS: Final = 3
_CUTOFF: Final = 0.6
# Suggestions within this much of the best one's likeness are shown too (a clear best stands alone).
_SUGGESTION_SPREAD: Final = 0.1
# Abbreviations people write for a zone that observes daylight saving time (none is an IANA name; the fixed
# EST, MST and HST are, see `zone_warning`): the zone they usually mean.
_ABBREVIATIONS: Final = {
    "PST": "America/Los_Angeles", "PDT": "America/Los_Angeles", "MDT": "America/Denver",
    "CST": "America/Chicago", "CDT": "America/Chicago", "EDT": "America/New_York",
    "AKST": "America/Anchorage", "AKDT": "America/Anchorage", "BST": "Europe/London", "CEST": "Europe/Berlin",
    "JST": "Asia/Tokyo", "AEST": "Australia/Sydney", "AEDT": "Australia/Sydney",
}
# The fixed-offset abbreviations tzdata keeps (UTC-05:00, -07:00, -10:00 all year) and the zone most people
# who write them mean.
_FIXED_ABBREVIATIONS: Final = {"EST": "America/New_York", "MST": "America/Denver", "HST": "Pacific/Honolulu"}
_ETC_OFFSET: Final = re.compile(r"Etc/GMT[+-]([1-9]|1[0-4])")


@lru_cache(maxsize=1)
def _zone_names_by_casefold() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def _is_portable(key: str) -> bool:
    return key not in _NON_PORTABLE_ZONE_KEYS and not key.casefold().startswith(_NON_PORTABLE_PREFIXES)


@lru_cache(maxsize=1)
def _portable_names() -> tuple[str, ...]:
    return tuple(sorted(name for name in available_timezones() if _is_portable(name)))


def nearest_zones(name: str) -> list[str]:
    """The IANA names nearest to `name` (at most 3, best first; none when nothing is near): compared without
    case, spaces read as '_', as a whole name and by its last part ('Kolkatta' -> 'Asia/Kolkata')."""
    key = "_".join(name.split()).casefold()
    if (meant := _ABBREVIATIONS.get(key.upper())) is not None:
        return [meant]
    if not key or not _is_portable(key) or key.startswith(("/", ".")):  # a file, not a misspelt zone
        return []
    tail = key.rsplit("/", 1)[-1]
    scores: dict[str, float] = {}
    for zone in _portable_names():
        folded = zone.casefold()
        score = max(_likeness(key, folded), _likeness(tail, folded.rsplit("/", 1)[-1]))
        if score >= _CUTOFF:
            scores[zone] = score
    ranked = sorted(scores, key=lambda zone: (-scores[zone], zone))[:_MOST_SUGGESTIONS]
    return [zone for zone in ranked if scores[zone] >= scores[ranked[0]] - _SUGGESTION_SPREAD]


def _likeness(a: str, b: str) -> float:
    """difflib's ratio of `a` and `b`, 0 when its cheap upper bounds are below the cutoff already."""
    matcher = difflib.SequenceMatcher(None, a, b)
    if matcher.real_quick_ratio() < _CUTOFF or matcher.quick_ratio() < _CUTOFF:
        return 0.0
    return matcher.ratio()


def zone_warning(zone: ZoneInfo) -> str | None:
    """What to know about a fixed-offset zone a user may have taken for a local time (EST, MST, HST,
    Etc/GMT+5): it has no daylight saving time. None for every other zone."""
    key = zone.key
    meant = _FIXED_ABBREVIATIONS.get(key)
    if meant is None and not _ETC_OFFSET.fullmatch(key):
        return None
    offset = zone.utcoffset(datetime(2000, 1, 1))
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    shown = f"UTC{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    if meant is None:
        return (f"Time zone {key!r} is a fixed {shown} all year, with no daylight saving time (in Etc/GMT names "
                "the sign is reversed): for a place's local time use its IANA name, such as 'Europe/Berlin'.")
    return (f"Time zone {key!r} is a fixed {shown} all year, with no daylight saving time: for the local time of "
            f"a place that changes its clocks use its IANA name, such as {meant!r}.")


def _load_zone(name: str) -> ZoneInfo:
    key = name.strip()
    if key and _is_portable(key):
        try:
            return ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
        canonical = _zone_names_by_casefold().get(key.casefold())
        if canonical is not None:
            return ZoneInfo(canonical)
    raise InvalidTimezoneError(name, nearest_zones(key))


def local_timezone_name() -> str:
    """Return the IANA name of this machine's time zone, or ``"UTC"`` if it cannot be found."""
    try:
        name = tzlocal.get_localzone_name()
    except Exception:  # tzlocal raises a variety of errors on unusual systems
        name = None
    if name:
        try:
            return _load_zone(name).key
        except InvalidTimezoneError:
            pass
    return "UTC"


def resolve_timezone(name: str | None, default: str | None = None) -> ZoneInfo:
    """Return the zone called ``name``.

    A ``name`` of ``None`` (or a blank string) means ``default``; a ``default`` of ``None`` means
    the machine's zone (:func:`local_timezone_name`). ``"UTC"`` and every IANA name are accepted;
    a name in the wrong case (``"europe/berlin"``) is mapped to its canonical spelling.

    Raises:
        InvalidTimezoneError: the name is not a known IANA zone (its message names the nearest ones).
    """
    if name is not None and name.strip():
        return _load_zone(name)
    if default is not None and default.strip():
        return _load_zone(default)
    return _load_zone(local_timezone_name())


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")


def _in_zone(value: datetime, zone: ZoneInfo) -> datetime:
    """``value`` (aware) as a canonical aware datetime in ``zone``, with the right ``fold``."""
    return value.astimezone(UTC).astimezone(zone)
