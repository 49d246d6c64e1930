"""Pieces shared by the built-in toolkits: the output model, name and text checks and SQLite helpers."""

from __future__ import annotations

import json
import os
import sqlite3
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, ValidationError, ValidationInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from ..errors import clip_text
from ..models import OperationOutput
from ..untrusted import untrusted
from .errors import InvalidNameError, InvalidTextError

__all__ = [
    "MAX_NAME_LENGTH",
    "SUMMARY_CHARS",
    "InvalidNameError",
    "Name",
    "ToolkitOutput",
    "check_json",
    "check_name",
    "check_text",
    "field_error",
    "is_postgres_url",
    "isoformat",
    "open_sqlite",
    "quoted_summary",
    "require_fields",
    "transaction",
]

MAX_NAME_LENGTH = 200
"""Longest queue name, key or logger name the toolkits accept."""


class ToolkitOutput(OperationOutput):
    """What every built-in toolkit returns. Failures raise instead of returning `success=False`."""

    summary: str | dict[str, Any] | None = Field(
        default=None,
        description="The result in a few words where `message` would say less (e.g. '200 OK in 182 ms'); labelled "
        "untrusted (`untrusted()`) when it quotes outside content. Null: `message` is the summary.",
    )


SUMMARY_CHARS = 160
"""Most characters of what a summary quotes of outside content."""


def quoted_summary(who: str, said: Any, origin: str) -> dict[str, Any]:
    """A summary that quotes outside content (`who` answered: the start of `said`), labelled untrusted as a whole:
    the words are the toolkit's, what they quote is not."""
    text = said if isinstance(said, str) else json.dumps(said, ensure_ascii=False, default=str)
    return untrusted(f"{who} answered: {clip_text(' '.join(text.split()), SUMMARY_CHARS)}", origin)


def check_name(kind: str, value: str, *, max_length: int = MAX_NAME_LENGTH) -> str:
    """Return `value` if it is a usable name; raise `InvalidNameError` naming `kind` otherwise.

    A name is non-blank, at most `max_length` characters and has no control characters.
    """
    if not value or not value.strip():
        raise InvalidNameError(f"{kind} must not be empty or blank")
    if len(value) > max_length:
        raise InvalidNameError(f"{kind} must be at most {max_length} characters (got {len(value)})")
    for index, char in enumerate(value):
        if unicodedata.category(char) == "Cc":
            raise InvalidNameError(f"{kind} must not contain control characters (found {char!r} at {index})")
    return value


def check_text(kind: str, value: str) -> str:
    """Return `value` if it can be stored as text on every database; raise `InvalidTextError` otherwise.

    PostgreSQL text cannot hold NUL characters, so no toolkit stores one, on SQLite either.
    """
    index = value.find("\x00")
    if index >= 0:
        raise InvalidTextError(
            f"{kind} must not contain NUL characters (found '\\x00' at {index}): remove them, or put the "
            "text inside a JSON message, where it is escaped"
        )
    return value


def is_postgres_url(database: str | os.PathLike[str] | None) -> bool:
    """True if `database` is a PostgreSQL URL (`postgresql://...`) rather than a SQLite file."""
    return isinstance(database, str) and database.startswith(("postgresql://", "postgres://"))


def _check_name_field(value: str, info: ValidationInfo) -> str:
    return check_name(info.field_name or "name", value)


Name = Annotated[str, AfterValidator(_check_name_field)]
"""A string field checked by `check_name` (non-blank, at most 200 characters, no control characters)."""


def check_json(kind: str, value: Any) -> Any:
    """Return `value` if it can be stored as strict JSON (no NaN or infinity); raise `ValueError` otherwise."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        raise ValueError(f"{kind} must be valid JSON: NaN and Infinity are not allowed") from None
    return value


def field_error(model: BaseModel, field: str, message: str) -> ValidationError:
    """A `ValidationError` located at `field`; raise it from a validator of `model`.

    Pydantic reports it as an error of that field, so `AgenToolInputError.fields` names it.
    """
    error = PydanticCustomError("operation_field", message)
    return ValidationError.from_exception_data(
        type(model).__name__, [InitErrorDetails(type=error, loc=(field,), input=getattr(model, field, None))]
    )


def require_fields(model: BaseModel, required: Mapping[str, Sequence[str]]) -> None:
    """Raise an input error if a field the model's operation needs is missing (None).

    `required` maps an operation to the names of the fields it needs. Call it from a pydantic
    `model_validator(mode="after")`; the error names the field and the operation.
    """
    operation = str(getattr(model, "operation", ""))
    for name in required.get(operation, ()):
        if getattr(model, name) is None:
            raise field_error(model, name, f"{name} is required for operation {operation!r}")


def isoformat(timestamp: float) -> str:
    """A POSIX timestamp as an ISO 8601 UTC string with milliseconds."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def open_sqlite(database: str | os.PathLike[str] | None) -> sqlite3.Connection:
    """Open a SQLite connection usable from any thread (callers serialize access with a lock).

    `None` or `":memory:"` opens a private in-memory database. Files use WAL journaling with
    `synchronous=NORMAL`. The connection is in autocommit mode: use `transaction()` to write.
    """
    path = ":memory:" if database is None else os.fspath(database)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run a block in one write transaction: committed on success, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")  # inside: a COMMIT that fails (a full disk) must not leave the transaction open
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
