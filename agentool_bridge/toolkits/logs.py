"""The `logging` AgenTool: write log records to stderr and/or a file, and read them back.

Records go through Python's `logging` machinery, to a private logger of this AgenTool (so
the application's own loggers and handlers are left alone), and never to stdout. A file is
written either as text lines (`<timestamp> <LEVEL> [<logger>] <message> | data=<json>`, with
newlines in the message escaped so every record is one line) or as JSON lines. `get_logs`
reads either format back; lines that are not log records are skipped.

Until `configure` is called, records at INFO and above go to stderr as text.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO

from pydantic import BeforeValidator, Field, JsonValue, field_validator, model_validator

from ..injector import get_injector
from ..models import BaseOperationInput, RoutingConfig
from ..redaction import scrub, scrub_text
from ..registry import AgenTool, AgenToolRegistry
from ._common import ToolkitOutput, check_name, field_error, isoformat, require_fields
from .errors import LogFileNotConfiguredError

__all__ = ["AGENTOOL_NAME", "LogFileNotConfiguredError", "LogSink", "LoggingInput", "create_logging_agent"]

AGENTOOL_NAME = "logging"
DEFAULT_LOGGER_NAME = "agentool"
_MAX_PATH_LENGTH = 4096

LevelName = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
_LEVELS: dict[str, int] = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_LOGGER_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_TEXT_LINE = re.compile(
    r"(?P<timestamp>\d{4}-\d\d-\d\dT\S+) (?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"\[(?P<logger>[A-Za-z0-9_.\-]+)\] (?P<message>.*)"
)
_DATA_SEPARATOR = " | data="


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


Level = Annotated[LevelName, BeforeValidator(_upper)]


class LoggingInput(BaseOperationInput):
    """Write log records to stderr and/or a file (text or JSON lines) and read them back from the file."""

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
        default="stderr", description="configure: where records go; 'file' and 'both' need file_path."
    )
    file_path: str | None = Field(
        default=None,
        description="configure: the log file to append to. get_logs: the file to read (default: the "
        "configured log file).",
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
        """File paths are non-blank and free of control characters."""
        return None if value is None else check_name("file_path", value, max_length=_MAX_PATH_LENGTH)

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


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of each record (it may be replaced)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _unescape(text: str) -> str:
    return re.sub(r"\\([\\nr])", lambda m: {"\\": "\\", "n": "\n", "r": "\r"}[m.group(1)], text)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{isoformat(record.created)} {record.levelname} [{record.name}] {_escape(record.getMessage())}"
        data = getattr(record, "data", None)
        if data is not None:
            line += _DATA_SEPARATOR + json.dumps(data, ensure_ascii=False, default=str)
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": isoformat(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "data": getattr(record, "data", None),
        }
        return json.dumps(entry, ensure_ascii=False, default=str)


def _parse_line(line: str) -> dict[str, Any] | None:
    """One record of either format, or None if the line is not a log record."""
    line = line.rstrip("\n")
    if line.startswith("{"):
        try:
            entry = json.loads(line)
        except ValueError:
            return None
        if not isinstance(entry, dict) or entry.get("level") not in _LEVELS or "message" not in entry:
            return None
        return {key: entry.get(key) for key in ("timestamp", "level", "logger", "message", "data")}
    match = _TEXT_LINE.fullmatch(line)
    if match is None:
        return None
    message, data = match["message"], None
    head, sep, tail = message.rpartition(_DATA_SEPARATOR)
    if sep:
        try:
            parsed = json.loads(tail)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            message, data = head, parsed
    return {
        "timestamp": match["timestamp"],
        "level": match["level"],
        "logger": match["logger"],
        "message": _unescape(message),
        "data": data,
    }


class LogSink:
    """Where the `logging` AgenTool writes: a private `logging.Logger` and its handlers."""

    def __init__(self) -> None:
        # Not created through logging.getLogger: it has no parent, so records never reach the
        # application's handlers (or stdout), and two sinks never share handlers.
        self._logger = logging.Logger(f"agentool_bridge.toolkits.logs.{id(self):x}")
        self._level = _LEVELS["INFO"]
        self._outputs: list[str] = []
        self.file_path: Path | None = None
        self.format = "text"
        self.configure("stderr", None, "text", "INFO")

    def _close_handlers(self) -> None:
        for handler in list(self._logger.handlers):
            self._logger.removeHandler(handler)
            handler.close()

    def close(self) -> None:
        """Close the log file, if any, and stop writing."""
        self._close_handlers()
        self._outputs = []

    def configure(self, output: str, file_path: str | None, format: str, level: str) -> ToolkitOutput:
        """Replace the handlers: stderr, a file, or both, in text or JSON, from `level` up."""
        handlers: list[logging.Handler] = []
        path: Path | None = None
        if output in ("file", "both"):
            if file_path is None:
                raise ValueError(f"file_path is required for output {output!r}")
            path = Path(file_path).expanduser().absolute()
            path.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(logging.FileHandler(path, encoding="utf-8"))
        if output in ("stderr", "both"):
            handlers.append(_StderrHandler())
        formatter = _JsonFormatter() if format == "json" else _TextFormatter()
        for handler in handlers:
            handler.setFormatter(formatter)
        self._close_handlers()
        for handler in handlers:
            self._logger.addHandler(handler)
        self._level = _LEVELS[level]
        self._outputs = ["file", "stderr"] if output == "both" else [output]
        self.file_path, self.format = path, format
        where = f"{output} ({path})" if path is not None else output
        return ToolkitOutput(
            operation="configure",
            message=f"Logging {level} and above to {where} as {format}.",
            data={"output": output, "file_path": None if path is None else str(path), "format": format, "level": level},
        )

    def log(self, level: str, message: str, data: dict[str, Any] | None, logger_name: str) -> ToolkitOutput:
        """Write one record, unless its level is below the configured one. Inside a run, the secrets revealed to
        it are written as their `!env:NAME` reference, never their value."""
        levelno = _LEVELS[level]
        logged = levelno >= self._level and bool(self._outputs)
        if logged:
            record = logging.LogRecord(logger_name, levelno, "", 0, scrub_text(message), None, None)
            record.data = scrub(data)
            self._logger.handle(record)
        text = (
            f"Logged {level} record to {' and '.join(self._outputs)}."
            if logged
            else f"Skipped {level} record: below the configured level {logging.getLevelName(self._level)}."
        )
        return ToolkitOutput(
            operation="log",
            message=text,
            data={
                "level": level,
                "logger_name": logger_name,
                "logged": logged,
                "outputs": list(self._outputs) if logged else [],
            },
        )

    def get_logs(self, file_path: str | None, level: str | None, limit: int, logger_name: str | None) -> ToolkitOutput:
        """The last `limit` records of a log file, oldest first, filtered by level and logger."""
        if file_path is not None:
            path = Path(file_path).expanduser().absolute()
        elif self.file_path is not None:
            path = self.file_path
        else:
            raise LogFileNotConfiguredError(
                "No log file to read: configure output 'file' or 'both' with a file_path first, "
                "or pass file_path to get_logs."
            )
        if not path.is_file():
            raise FileNotFoundError(f"Log file {str(path)!r} does not exist.")
        minimum = _LEVELS[level] if level is not None else 0
        entries: deque[dict[str, Any]] = deque(maxlen=limit)
        for entry in self._read(path):
            if _LEVELS[entry["level"]] < minimum:
                continue
            name = entry["logger"] or ""
            if logger_name is not None and name != logger_name and not name.startswith(logger_name + "."):
                continue
            entries.append(entry)
        return ToolkitOutput(
            operation="get_logs",
            message=f"{len(entries)} log records from {path}.",
            data={"file_path": str(path), "entries": list(entries), "count": len(entries)},
        )

    def agentool(self) -> AgenTool:
        """The `logging` AgenTool over this sink (not registered; closing it closes the sink)."""

        def log(level: str, message: str, data: dict[str, Any] | None, logger_name: str) -> ToolkitOutput:
            return self.log(level, message, data, logger_name)

        def configure(output: str, file_path: str | None, format: str, level: str) -> ToolkitOutput:
            return self.configure(output, file_path, format, level)

        def get_logs(file_path: str | None, level: str | None, limit: int, logger_name: str | None) -> ToolkitOutput:
            return self.get_logs(file_path, level, limit, logger_name)

        routing = RoutingConfig(
            operation_map={
                "log": (
                    "log",
                    lambda m: {
                        "level": m.level or "INFO",
                        "message": m.message,
                        "data": m.data,
                        "logger_name": m.logger_name or DEFAULT_LOGGER_NAME,
                    },
                ),
                "configure": (
                    "configure",
                    lambda m: {"output": m.output, "file_path": m.file_path, "format": m.format,
                               "level": m.level or "INFO"},
                ),
                "get_logs": (
                    "get_logs",
                    lambda m: {"file_path": m.file_path, "level": m.level, "limit": m.limit,
                               "logger_name": m.logger_name},
                ),
            }
        )
        return AgenTool(
            name=AGENTOOL_NAME,
            input_schema=LoggingInput,
            routing_config=routing,
            tools=(log, configure, get_logs),
            output_type=ToolkitOutput,
            tags=("builtin", "logging"),
            examples=(
                {"operation": "log", "level": "WARNING", "message": "Disk almost full", "data": {"free_gb": 2}},
                {"operation": "configure", "output": "both", "file_path": "agent.log", "format": "json"},
                {"operation": "get_logs", "level": "WARNING", "limit": 20},
            ),
            on_close=self.close,
            backend=self,
        )

    @staticmethod
    def _read(path: Path) -> Iterator[dict[str, Any]]:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                entry = _parse_line(line)
                if entry is not None:
                    yield entry


def create_logging_agent(*, registry: AgenToolRegistry | None = None) -> AgenTool:
    """Register (or replace) the `logging` AgenTool; it starts out logging INFO and above to stderr.

    It goes into `registry` (default: the active injector's); replacing it closes the previous sink's files.
    """
    return (registry or get_injector().registry).register(LogSink().agentool())
