"""Time zones: IANA zone names, the machine's zone, and aware datetimes in a zone."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import tzlocal

from ..errors import InvalidTimezoneError

__all__ = ["resolve_timezone", "local_timezone_name"]

# Keys that ZoneInfo may resolve on some machines but that are not portable IANA zone names.
_NON_PORTABLE_ZONE_KEYS: Final = frozenset({"localtime", "posixrules"})
# Variant trees of the system's zone files: right/ counts leap seconds (its clocks are off by ~27 s),
# posix/ duplicates the plain names; neither is in the tzdata package nor on every machine.
_NON_PORTABLE_PREFIXES: Final = ("right/", "posix/")


@lru_cache(maxsize=1)
def _zone_names_by_casefold() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def _load_zone(name: str) -> ZoneInfo:
    key = name.strip()
    if key and key not in _NON_PORTABLE_ZONE_KEYS and not key.casefold().startswith(_NON_PORTABLE_PREFIXES):
        try:
            return ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
        canonical = _zone_names_by_casefold().get(key.casefold())
        if canonical is not None:
            return ZoneInfo(canonical)
    raise InvalidTimezoneError(name)


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
        InvalidTimezoneError: the name is not a known IANA zone.
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
