"""Aware datetimes at the boundaries: the `Timestamp` type and `utcnow`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, TypeAlias

from pydantic import AwareDatetime, PlainSerializer, WithJsonSchema

__all__ = ["Timestamp", "utcnow"]


def _isoformat(value: datetime) -> str:
    return value.isoformat()


Timestamp: TypeAlias = Annotated[
    AwareDatetime,
    PlainSerializer(_isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A timezone-aware datetime, for every datetime that is stored or crosses a JSON boundary.

Validation rejects naive datetimes. In Python mode the datetime is kept as it is (its zone
included); in JSON mode it is written with :meth:`datetime.isoformat`, so the offset of its own
zone stays visible (``2026-12-25T09:00:00+01:00``) and UTC is written ``+00:00``, never the ``Z``
that pydantic would write by default. :func:`datetime.fromisoformat` reads every such string back.
"""


def utcnow() -> datetime:
    """The current time as an aware datetime in UTC."""
    return datetime.now(UTC)
