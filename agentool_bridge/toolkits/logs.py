"""The `logging` AgenTool: write log records to stderr and/or a file, and read them back.

Records go through Python's `logging` machinery, to a private logger of this AgenTool (so
the application's own loggers and handlers are left alone), and never to stdout. A file is
written either as text lines (`<timestamp> <LEVEL> [<logger>] <message> | data=<json>`, with
newlines in the message escaped so every record is one line) or as JSON lines. `get_logs`
reads either format back; lines that are not log records are skipped.

Until `configure` is called, records at INFO and above go to stderr as text.

Log files exist only in the directory the host gives (`LogSink(log_dir)`, the CLI's `--log-dir`);
without one the toolkit logs to stderr only and refuses file output. A `file_path` is a plain file
name in that directory (never a path), opened without following symbolic links and created 0600;
`get_logs` reads nothing else. A file is rotated at `MAX_LOG_BYTES` (one older copy, `NAME.1`, is
kept), and jobs may create at most `MAX_LOG_FILES` log files there, so that they cannot fill the disk.
"""

from __future__ import annotations

import errno
import json
import logging
import logging.handlers
import os
import re
import stat
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
from .errors import LogFileNotAllowedError, LogFileNotConfiguredError

__all__ = [
    "AGENTOOL_NAME",
    "MAX_LOG_BYTES",
    "MAX_LOG_FILES",
    "LogFileNotAllowedError",
    "LogFileNotConfiguredError",
    "LogSink",
    "LoggingInput",
    "create_logging_agent",
    "log_file_name_problem",
]

AGENTOOL_NAME = "logging"
DEFAULT_LOGGER_NAME = "agentool"
MAX_LOG_BYTES = 10 * 1024 * 1024
"""Size at which a log file is rotated: it becomes `NAME.1` (replacing the older one) and a new file starts."""
MAX_LOG_FILES = 16
"""Log files (rotated copies not counted) that jobs may create in the log directory."""
ROTATED_SUFFIX = ".1"
_FILE_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,254}")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NO_LOG_DIR = (
    "Log files are off on this server: the logging AgenTool writes to stderr only. To let jobs keep log files, "
    "start the server with --log-dir DIR (or MCP_SCHEDULER_LOG_DIR); file_path is then a file name in that "
    "directory."
)

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


def _open_log_file(path: Path, *, write: bool) -> int:
    """A descriptor of the regular file `path` (never through a symbolic link), created 0600 if `write`."""
    flags = os.O_CLOEXEC | _NOFOLLOW | os.O_NONBLOCK  # non-blocking: a FIFO must not hang the open
    flags |= os.O_WRONLY | os.O_APPEND | os.O_CREAT if write else os.O_RDONLY
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LogFileNotAllowedError(
                f"{path.name!r} in the log directory is a symbolic link; log files are plain files there."
            ) from None
        if exc.errno == errno.ENOENT:
            raise FileNotFoundError(f"Log file {path.name!r} does not exist in the log directory.") from None
        if exc.errno == errno.ENXIO:
            raise LogFileNotAllowedError(f"{path.name!r} in the log directory is not a regular file.") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LogFileNotAllowedError(f"{path.name!r} in the log directory is not a regular file.")
    os.set_blocking(fd, True)
    return fd


class _LogFileHandler(logging.handlers.RotatingFileHandler):
    """Appends to a log file opened by `_open_log_file`; rotates it at `max_bytes`, keeping one older copy."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=1, encoding="utf-8")

    def _open(self) -> Any:
        return os.fdopen(_open_log_file(Path(self.baseFilename), write=True), "a", encoding="utf-8")

    def shouldRollover(self, record: logging.LogRecord) -> int:
        if self.stream is None:
            self.stream = self._open()
        size = os.fstat(self.stream.fileno()).st_size
        return bool(size) and size + len(self.format(record).encode()) + 1 > self.maxBytes


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
    """Where the `logging` AgenTool writes: a private `logging.Logger` and its handlers.

    `log_dir`: the only directory where it may keep log files (created, 0700, when a file is first
    configured); None: stderr only. `max_bytes` and `max_files`: see `MAX_LOG_BYTES`, `MAX_LOG_FILES`.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        *,
        max_bytes: int = MAX_LOG_BYTES,
        max_files: int = MAX_LOG_FILES,
    ) -> None:
        # Not created through logging.getLogger: it has no parent, so records never reach the
        # application's handlers (or stdout), and two sinks never share handlers.
        self._logger = logging.Logger(f"agentool_bridge.toolkits.logs.{id(self):x}")
        self.log_dir = Path(log_dir).absolute() if log_dir is not None else None
        self.max_bytes = max_bytes
        self.max_files = max_files
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

    def _path(self, name: str) -> Path:
        """The log file `name` in the log directory; raises if there is no directory or `name` is not plain."""
        if self.log_dir is None:
            raise LogFileNotAllowedError(_NO_LOG_DIR)
        if (problem := log_file_name_problem(name)) is not None:
            raise LogFileNotAllowedError(f"file_path {problem}")
        return self.log_dir / name

    def _file_handler(self, name: str) -> logging.Handler:
        path = self._path(name)
        assert self.log_dir is not None
        if name.endswith(ROTATED_SUFFIX):
            raise LogFileNotAllowedError(
                f"file_path {name!r}: names ending in {ROTATED_SUFFIX!r} are the rotated copies of log files; "
                "choose another name."
            )
        self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not os.path.lexists(path):
            files = [e.name for e in os.scandir(self.log_dir)
                     if e.is_file(follow_symlinks=False) and not e.name.endswith(ROTATED_SUFFIX)]  # fmt: skip
            if len(files) >= self.max_files:
                raise LogFileNotAllowedError(
                    f"The log directory holds {len(files)} log files, the most jobs may create: write to one of "
                    f"them ({', '.join(sorted(files)[:20])}), or ask the operator to remove old ones."
                )
        return _LogFileHandler(path, self.max_bytes)

    def configure(self, output: str, file_path: str | None, format: str, level: str) -> ToolkitOutput:
        """Replace the handlers: stderr, a file of the log directory, or both, in text or JSON, from `level` up."""
        handlers: list[logging.Handler] = []
        path: Path | None = None
        if output in ("file", "both"):
            if file_path is None:
                raise ValueError(f"file_path is required for output {output!r}")
            handlers.append(self._file_handler(file_path))
            path = self._path(file_path)
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
        where = f"{output} ({path.name} in the log directory)" if path is not None else output
        return ToolkitOutput(
            operation="configure",
            message=f"Logging {level} and above to {where} as {format}.",
            data={"output": output, "file_path": None if path is None else path.name, "format": format,
                  "level": level},
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
        """The last `limit` records of a log file of the log directory (its rotated copy read first), oldest
        first, filtered by level and logger."""
        if self.log_dir is None:
            raise LogFileNotAllowedError(_NO_LOG_DIR)
        if file_path is not None:
            path = self._path(file_path)
        elif self.file_path is not None:
            path = self.file_path
        else:
            raise LogFileNotConfiguredError(
                "No log file to read: configure output 'file' or 'both' with a file_path first, "
                "or pass file_path to get_logs."
            )
        sources = [_open_log_file(path, write=False)]
        try:
            sources.insert(0, _open_log_file(path.with_name(path.name + ROTATED_SUFFIX), write=False))
        except (FileNotFoundError, LogFileNotAllowedError):
            pass  # not rotated yet (or not a plain file: not one this toolkit wrote)
        except BaseException:
            os.close(sources[0])
            raise
        minimum = _LEVELS[level] if level is not None else 0
        entries: deque[dict[str, Any]] = deque(maxlen=limit)
        for fd in sources:
            for entry in self._read(fd):
                if _LEVELS[entry["level"]] < minimum:
                    continue
                name = entry["logger"] or ""
                if logger_name is not None and name != logger_name and not name.startswith(logger_name + "."):
                    continue
                entries.append(entry)
        return ToolkitOutput(
            operation="get_logs",
            message=f"{len(entries)} log records from {path.name} in the log directory.",
            data={"file_path": path.name, "entries": list(entries), "count": len(entries)},
        )

    async def check(self, model: LoggingInput) -> None:
        """At schedule time: log files are refused while the server has no log directory."""
        wants_file = model.operation == "get_logs" or (model.operation == "configure" and model.output != "stderr")
        if wants_file and self.log_dir is None:
            raise LogFileNotAllowedError(_NO_LOG_DIR)

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
            check=self.check,
        )

    @staticmethod
    def _read(fd: int) -> Iterator[dict[str, Any]]:
        with os.fdopen(fd, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                entry = _parse_line(line)
                if entry is not None:
                    yield entry


def create_logging_agent(
    *, registry: AgenToolRegistry | None = None, log_dir: str | os.PathLike[str] | None = None
) -> AgenTool:
    """Register (or replace) the `logging` AgenTool; it starts out logging INFO and above to stderr.

    `log_dir`: the only directory where it may keep log files (None, the default: stderr only). It goes
    into `registry` (default: the active injector's); replacing it closes the previous sink's files.
    """
    return (registry or get_injector().registry).register(LogSink(log_dir).agentool())
