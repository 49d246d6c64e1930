"""Errors of the built-in toolkits; each is an `AgenToolError` and the builtin its callers expect."""

from __future__ import annotations

from ..errors import AgenToolError

__all__ = [
    "DatabaseUnavailableError",
    "InvalidNameError",
    "InvalidTextError",
    "KeyNotFoundError",
    "LogFileNotAllowedError",
    "LogFileNotConfiguredError",
    "MessageNotFoundError",
    "QueueClosedError",
    "QueueFullError",
    "ToolkitError",
]


class ToolkitError(AgenToolError):
    """Base class of the errors the built-in toolkits raise on purpose."""


class InvalidNameError(ToolkitError, ValueError):
    """A queue name, key or other name is empty, too long or contains control characters."""


class InvalidTextError(ToolkitError, ValueError):
    """A text to store (a nack's error, say) contains a NUL character, which PostgreSQL text cannot hold."""


class DatabaseUnavailableError(ToolkitError, ConnectionError):
    """The PostgreSQL server of a toolkit cannot be reached or used."""


class MessageNotFoundError(ToolkitError, LookupError):
    """No in-flight message with that id in that queue (unknown, already acked/nacked, or not in flight)."""


class QueueClosedError(ToolkitError, RuntimeError):
    """The queue store was closed because its AgenTool was replaced or unregistered."""


class QueueFullError(ToolkitError, RuntimeError):
    """A queue with a limit (`QueueStore.set_limit`; the inbox: --inbox-limit) holds that many messages."""

    def __init__(self, message: str, *, count: int, limit: int) -> None:
        super().__init__(message)
        self.count = count
        self.limit = limit


class KeyNotFoundError(ToolkitError, LookupError):
    """The key was never set, was deleted, or has expired."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Key {key!r} not found in storage_kv: it was never set, was deleted, or expired.")
        self.key = key


class LogFileNotConfiguredError(ToolkitError, RuntimeError):
    """`get_logs` was called without a file_path while no log file is configured."""


class LogFileNotAllowedError(ToolkitError, PermissionError):
    """A log file the `logging` toolkit may not write or read: file logging is off (no log directory), or the
    name is not a plain file name in the log directory, or the file there is a link or not a regular file, or
    the directory holds as many log files as it may."""
