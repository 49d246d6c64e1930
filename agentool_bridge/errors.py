"""Exceptions raised by the AgenTool runtime.

Errors always raise; nothing in this package returns an error as a string.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from .redaction import scrub_text

__all__ = [
    "MAX_ECHO",
    "clip",
    "clip_text",
    "describe_errors",
    "nearest_names",
    "did_you_mean",
    "AgenToolError",
    "AgenToolNotFoundError",
    "AgenToolInputError",
    "UnknownOperationError",
    "RefResolutionError",
    "ToolkitLoadError",
    "MissingExtraError",
]


MAX_ECHO = 200
"""Most characters of a caller's value that an error message quotes back."""


def clip(value: object, limit: int = MAX_ECHO) -> str:
    """`repr(value)` for an error message, at most about `limit` characters.

    Error messages quote what the caller sent so that they can find it; a 1 MB value must not come
    back as a 1 MB message (nor fill the log). A longer repr keeps its start and says how long the
    value was. Lone surrogates and control characters come out escaped, as `repr` writes them. Secrets
    revealed to the run in progress are replaced by their `!env:NAME` reference first, so that the cut
    never leaves part of one.
    """
    text = scrub_text(repr(value))
    if len(text) <= limit:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters as text"
    return f"{text[:limit]}... ({size})"


def nearest_names(name: object, known: Iterable[str], most: int = 3) -> list[str]:
    """The names of `known` nearest to `name` (compared without case), best first: at most `most`, those about
    as near as the best (a clear best stands alone), none when nothing is near (difflib's likeness under 0.6)."""
    if not isinstance(name, str) or not name:
        return []
    key = name[:100].casefold()
    by_fold = {k.casefold(): k for k in known}
    close = difflib.get_close_matches(key, by_fold, n=most)
    likeness = {k: difflib.SequenceMatcher(None, key, k).ratio() for k in close}
    return [by_fold[k] for k in close if likeness[k] >= likeness[close[0]] - 0.1]


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """' Did you mean 'x'?' (or ''x' or 'y'') for a misspelt `name`, '' when no known name is near."""
    close = [repr(k) for k in nearest_names(name, known)]
    if not close:
        return ""
    return f" Did you mean {close[0] if len(close) == 1 else ', '.join(close[:-1]) + ' or ' + close[-1]}?"


MAX_LISTED_ERRORS = 10


def describe_errors(errors: Iterable[Mapping[str, Any]], limit: int = MAX_LISTED_ERRORS) -> str:
    """`loc: msg; loc: msg` for pydantic's `ValidationError.errors()` (or dicts of that shape), clipped.

    At most `limit` problems are listed (then how many more there were); each location and message
    is clipped, since both can quote what the caller sent.
    """
    parts: list[str] = []
    count = 0
    for error in errors:
        count += 1
        if count > limit:
            continue
        loc = error.get("loc", ())
        where = loc if isinstance(loc, str) else ".".join(str(part) for part in loc)
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        where, message = clip_text(where, 100), clip_text(message, 4 * MAX_ECHO)
        parts.append(f"{where}: {message}" if where else message)
    if count > limit:
        parts.append(f"and {count - limit} more problem(s)")
    return "; ".join(parts)


def clip_text(text: str, limit: int = MAX_ECHO) -> str:
    """`text` itself (not its repr) if at most `limit` characters; else its start and its length. Secrets
    revealed to the run in progress are replaced by their `!env:NAME` reference before the cut."""
    text = scrub_text(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class AgenToolError(Exception):
    """Base class of every error the AgenTool runtime raises on purpose."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class AgenToolNotFoundError(AgenToolError, LookupError):
    """No AgenTool is registered under the requested name."""

    def __init__(self, name: str, registered: Iterable[str]) -> None:
        names = sorted(registered)
        listing = ", ".join(names) if names else "none"
        super().__init__(
            f"AgenTool {clip(name)} is not registered.{did_you_mean(name, names)} Registered AgenTools: {listing}."
        )
        self.name = name
        self.registered = names


class AgenToolInputError(AgenToolError, ValueError):
    """The input of an AgenTool is malformed or fails its input schema.

    `errors` holds one entry per problem: `{"loc": "field.path", "msg": "...", "type": "..."}`. `reason` is
    the message without the AgenTool's name, for callers that name it in their own words.
    """

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []
        self.reason = message if reason is None else reason

    @property
    def fields(self) -> list[str]:
        """The dotted paths of the fields that failed."""
        return [e["loc"] for e in self.errors if e.get("loc")]


class UnknownOperationError(AgenToolInputError):
    """The `operation` of an input is not one the AgenTool routes."""

    def __init__(self, agentool: str, operation: Any, valid: Iterable[str]) -> None:
        ops = sorted(valid)
        unknown = f"Unknown operation {clip(operation)}"
        valid_ones = f"{did_you_mean(operation, ops)} Valid operations: {', '.join(ops)}."
        super().__init__(
            f"{unknown} for AgenTool {agentool!r}.{valid_ones}",
            [{"loc": "operation", "msg": "unknown operation", "type": "unknown_operation"}],
            reason=f"{unknown}.{valid_ones}",
        )
        self.agentool = agentool
        self.operation = operation
        self.valid_operations = ops


class RefResolutionError(AgenToolError, LookupError):
    """A `!ref:<kind>:<key>` reference could not be resolved."""


class ToolkitLoadError(AgenToolError, ImportError):
    """A toolkit reference (`module:factory` or an entry point) could not be loaded."""


class MissingExtraError(AgenToolError, ImportError):
    """An optional part of the installation (an extra, such as `postgres`) is missing or cannot be loaded.

    The message names the command that installs it into the running environment. `extra` is the
    extra's name (`mcp-scheduler[<extra>]`).
    """

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra
