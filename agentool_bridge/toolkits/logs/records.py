"""Log records on disk and on stderr: the text and JSON line formats (written and parsed back), the handlers that
write them (a log file opened without following links and rotated, stderr), and reading a log file's records."""

from __future__ import annotations

import errno
import json
import logging
import logging.handlers
import os
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from .._common import isoformat
from ..errors import LogFileNotAllowedError

__all__ = [
    "LEVELS",
    "MAX_LOG_BYTES",
    "ROTATED_SUFFIX",
    "JsonFormatter",
    "LogFileHandler",
    "StderrHandler",
    "TextFormatter",
    "open_log_file",
    "parse_line",
    "read_records",
]

MAX_LOG_BYTES = 10 * 1024 * 1024
"""Size at which a log file is rotated: it becomes `NAME.1` (replacing the older one) and a new file starts."""
ROTATED_SUFFIX = ".1"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
LEVELS: dict[str, int] = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_TEXT_LINE = re.compile(
    r"(?P<timestamp>\d{4}-\d\d-\d\dT\S+) (?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"\[(?P<logger>[A-Za-z0-9_.\-]+)\] (?P<message>.*)"
)
_DATA_SEPARATOR = " | data="


def open_log_file(path: Path, *, write: bool) -> int:
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


class LogFileHandler(logging.handlers.RotatingFileHandler):
    """Appends to a log file opened by `open_log_file`; rotates it at `max_bytes`, keeping one older copy."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=1, encoding="utf-8")

    def _open(self) -> Any:
        return os.fdopen(open_log_file(Path(self.baseFilename), write=True), "a", encoding="utf-8")

    def shouldRollover(self, record: logging.LogRecord) -> int:
        if self.stream is None:
            self.stream = self._open()
        size = os.fstat(self.stream.fileno()).st_size
        return bool(size) and size + len(self.format(record).encode()) + 1 > self.maxBytes


class StderrHandler(logging.StreamHandler):
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


class TextFormatter(logging.Formatter):
    """`<timestamp> <LEVEL> [<logger>] <message> | data=<json>`, the message's newlines escaped: one line a record."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{isoformat(record.created)} {record.levelname} [{record.name}] {_escape(record.getMessage())}"
        data = getattr(record, "data", None)
        if data is not None:
            line += _DATA_SEPARATOR + json.dumps(data, ensure_ascii=False, default=str)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: timestamp, level, logger, message, data."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": isoformat(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "data": getattr(record, "data", None),
        }
        return json.dumps(entry, ensure_ascii=False, default=str)


def parse_line(line: str) -> dict[str, Any] | None:
    """One record of either format, or None if the line is not a log record."""
    line = line.rstrip("\n")
    if line.startswith("{"):
        try:
            entry = json.loads(line)
        except ValueError:
            return None
        if not isinstance(entry, dict) or entry.get("level") not in LEVELS or "message" not in entry:
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



def read_records(fd: int) -> Iterator[dict[str, Any]]:
    """The records of the open log file `fd` (closed when done), in order; lines that are not records skipped."""
    with os.fdopen(fd, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            entry = parse_line(line)
            if entry is not None:
                yield entry
