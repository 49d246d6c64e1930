"""Exceptions raised by the AgenTool runtime.

Errors always raise; nothing in this package returns an error as a string.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "AgenToolError",
    "AgenToolNotFoundError",
    "AgenToolInputError",
    "UnknownOperationError",
    "RefResolutionError",
    "ToolkitLoadError",
]


class AgenToolError(Exception):
    """Base class of every error the AgenTool runtime raises on purpose."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class AgenToolNotFoundError(AgenToolError, LookupError):
    """No AgenTool is registered under the requested name."""

    def __init__(self, name: str, registered: Iterable[str]) -> None:
        names = sorted(registered)
        listing = ", ".join(names) if names else "none"
        super().__init__(f"AgenTool {name!r} is not registered. Registered AgenTools: {listing}.")
        self.name = name
        self.registered = names


class AgenToolInputError(AgenToolError, ValueError):
    """The input of an AgenTool is malformed or fails its input schema.

    `errors` holds one entry per problem: `{"loc": "field.path", "msg": "...", "type": "..."}`.
    """

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []

    @property
    def fields(self) -> list[str]:
        """The dotted paths of the fields that failed."""
        return [e["loc"] for e in self.errors if e.get("loc")]


class UnknownOperationError(AgenToolInputError):
    """The `operation` of an input is not one the AgenTool routes."""

    def __init__(self, agentool: str, operation: Any, valid: Iterable[str]) -> None:
        ops = sorted(valid)
        super().__init__(
            f"Unknown operation {operation!r} for AgenTool {agentool!r}. "
            f"Valid operations: {', '.join(ops)}.",
            [{"loc": "operation", "msg": "unknown operation", "type": "unknown_operation"}],
        )
        self.agentool = agentool
        self.operation = operation
        self.valid_operations = ops


class RefResolutionError(AgenToolError, LookupError):
    """A `!ref:<kind>:<key>` reference could not be resolved."""


class ToolkitLoadError(AgenToolError, ImportError):
    """A toolkit reference (`module:factory` or an entry point) could not be loaded."""
