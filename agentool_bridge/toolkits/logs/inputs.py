"""The input model of the `logging` AgenTool, and what makes a log file name acceptable."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, JsonValue, field_validator, model_validator

from ...models import BaseOperationInput
from .._common import check_name, field_error, require_fields
from .records import MAX_LOG_BYTES

__all__ = ["Level", "LevelName", "LoggingInput", "log_file_name_problem"]

_FILE_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,254}")
LevelName = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
_LOGGER_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


Level = Annotated[LevelName, BeforeValidator(_upper)]


class LoggingInput(BaseOperationInput):
    """Write log records to stderr and/or a log file (text or JSON lines) and read them back from it.

    Log files exist only in the server's log directory (--log-dir): a server without one logs to stderr only.
    """

    operation: Literal["log", "configure", "get_logs"] = Field(description="The logging operation to perform.")
    level: Level | None = Field(
        default=None,
        description="log: the record's level (default INFO). configure: the lowest level written "
        "(default INFO). get_logs: the lowest level returned (default: all).",
    )
    message: str | None = Field(default=None, description="log: the message to write. Required by log.")
    data: dict[str, JsonValue] | None = Field(
        default=None, description="log: structured context written with the message (a JSON object)."
    )
    logger_name: str | None = Field(
        default=None,
        description="log: the logger to write as (letters, digits, '_', '.', '-'; default 'agentool'). "
        "get_logs: only records of this logger and its children ('a' matches 'a.b').",
    )
    output: Literal["stderr", "file", "both"] = Field(
        default="stderr",
        description="configure: where records go; 'file' and 'both' need file_path, and a server started with "
        "--log-dir (without it, only 'stderr' is possible).",
    )
    file_path: str | None = Field(
        default=None,
        max_length=255,
        description="A plain file name (letters, digits, '_', '.', '-'; not starting with '.'; no '/') in the "
        "server's log directory, such as 'agent.log'; never a path. configure: the log file to append to "
        f"(created if needed; rotated at {MAX_LOG_BYTES // (1024 * 1024)} MB, keeping one older copy NAME.1). "
        "get_logs: the log file to read (default: the configured one).",
    )
    format: Literal["text", "json"] = Field(
        default="text", description="configure: 'text' lines or 'json' (one JSON object per line)."
    )
    limit: int = Field(default=100, ge=1, le=10_000, description="get_logs: the most recent records to return.")

    @field_validator("logger_name")
    @classmethod
    def check_logger_name(cls, value: str | None) -> str | None:
        """Logger names are dotted names: letters, digits, '_', '.', '-'."""
        if value is None:
            return None
        check_name("logger_name", value)
        if not _LOGGER_NAME.fullmatch(value):
            raise ValueError("logger_name may only contain letters, digits, '_', '.' and '-'")
        return value

    @field_validator("file_path")
    @classmethod
    def check_file_path(cls, value: str | None) -> str | None:
        """A log file is named by a plain file name of the log directory, never by a path."""
        if value is not None and (problem := log_file_name_problem(value)) is not None:
            raise ValueError(f"file_path {problem}")
        return value

    @model_validator(mode="after")
    def check_required(self) -> LoggingInput:
        """Each operation names the fields it needs."""
        require_fields(self, {"log": ("message",)})
        if self.operation == "configure" and self.output != "stderr" and self.file_path is None:
            raise field_error(
                self, "file_path", f"file_path is required for operation 'configure' with output {self.output!r}"
            )
        if self.operation == "configure" and self.output == "stderr" and self.file_path is not None:
            raise field_error(self, "file_path", "file_path is only used with output 'file' or 'both'")
        return self


def log_file_name_problem(name: str) -> str | None:
    """What makes `name` unfit as a log file name (None: it is a plain file name of the log directory)."""
    if _FILE_NAME.fullmatch(name) is None:
        return (
            "must be a plain file name in the server's log directory, the one it was started with (--log-dir): "
            "letters, digits, '_', '.', '-'; not starting with '.'; no '/'; at most 255 characters, such as "
            f"'agent.log'; got {name[:100]!r}"
        )
    return None

