"""`LogSink`: where the `logging` AgenTool writes (a private logger and its handlers), what it reads back, and the
AgenTool itself."""

from __future__ import annotations

import logging
import os
from collections import deque
from pathlib import Path
from typing import Any

from ...injector import get_injector
from ...models import RoutingConfig
from ...redaction import scrub, scrub_text
from ...registry import AgenTool, AgenToolRegistry
from .._common import ToolkitOutput
from ..errors import LogFileNotAllowedError, LogFileNotConfiguredError
from .inputs import LoggingInput, log_file_name_problem
from .records import (
    LEVELS,
    MAX_LOG_BYTES,
    ROTATED_SUFFIX,
    JsonFormatter,
    LogFileHandler,
    StderrHandler,
    TextFormatter,
    open_log_file,
    read_records,
)

__all__ = ["AGENTOOL_NAME", "MAX_LOG_FILES", "LogSink", "create_logging_agent"]

AGENTOOL_NAME = "logging"
DEFAULT_LOGGER_NAME = "agentool"
MAX_LOG_FILES = 16
"""Log files (rotated copies not counted) that jobs may create in the log directory."""
_NO_LOG_DIR = (
    "Log files are off on this server: the logging AgenTool writes to stderr only. To let jobs keep log files, "
    "start the server with --log-dir DIR (or MCP_SCHEDULER_LOG_DIR); file_path is then a file name in that "
    "directory."
)


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
        self._level = LEVELS["INFO"]
        self._outputs: list[str] = []
        self.file_path: Path | None = None
        self.format = "text"
        self._apply("stderr", None, "text", "INFO")

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
        return LogFileHandler(path, self.max_bytes)

    def configure(self, output: str, file_path: str | None, format: str, level: str) -> ToolkitOutput:
        """Replace the handlers: stderr, a file of the log directory, or both, in text or JSON, from `level` up."""
        path = self._apply(output, file_path, format, level)
        where = f"{output} ({path.name} in the log directory)" if path is not None else output
        return ToolkitOutput(
            operation="configure",
            message=f"Logging {level} and above to {where} as {format}.",
            data={"output": output, "file_path": None if path is None else path.name, "format": format,
                  "level": level},
        )

    def _apply(self, output: str, file_path: str | None, format: str, level: str) -> Path | None:
        """`configure` without its answer (a sink starts configured, before any output model is needed)."""
        handlers: list[logging.Handler] = []
        path: Path | None = None
        if output in ("file", "both"):
            if file_path is None:
                raise ValueError(f"file_path is required for output {output!r}")
            handlers.append(self._file_handler(file_path))
            path = self._path(file_path)
        if output in ("stderr", "both"):
            handlers.append(StderrHandler())
        formatter = JsonFormatter() if format == "json" else TextFormatter()
        for handler in handlers:
            handler.setFormatter(formatter)
        self._close_handlers()
        for handler in handlers:
            self._logger.addHandler(handler)
        self._level = LEVELS[level]
        self._outputs = ["file", "stderr"] if output == "both" else [output]
        self.file_path, self.format = path, format
        return path

    def log(self, level: str, message: str, data: dict[str, Any] | None, logger_name: str) -> ToolkitOutput:
        """Write one record, unless its level is below the configured one. Inside a run, the secrets revealed to
        it are written as their `!env:NAME` reference, never their value."""
        levelno = LEVELS[level]
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
        sources = [open_log_file(path, write=False)]
        try:
            sources.insert(0, open_log_file(path.with_name(path.name + ROTATED_SUFFIX), write=False))
        except (FileNotFoundError, LogFileNotAllowedError):
            pass  # not rotated yet (or not a plain file: not one this toolkit wrote)
        except BaseException:
            os.close(sources[0])
            raise
        minimum = LEVELS[level] if level is not None else 0
        entries: deque[dict[str, Any]] = deque(maxlen=limit)
        for fd in sources:
            for entry in read_records(fd):
                if LEVELS[entry["level"]] < minimum:
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


def create_logging_agent(
    *, registry: AgenToolRegistry | None = None, log_dir: str | os.PathLike[str] | None = None
) -> AgenTool:
    """Register (or replace) the `logging` AgenTool; it starts out logging INFO and above to stderr.

    `log_dir`: the only directory where it may keep log files (None, the default: stderr only). It goes
    into `registry` (default: the active injector's); replacing it closes the previous sink's files.
    """
    return (registry if registry is not None else get_injector().registry).register(LogSink(log_dir).agentool())
