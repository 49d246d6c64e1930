"""`mcp-scheduler runs show RUN_ID` (a run's whole result, error, timings and summary) and `logs [-f]` (the log of
the store's background runner). Both read files only: no scheduler starts."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from .._argparse import Commands
from ..settings import Settings
from . import options
from .console import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, configure_logging, run_reported
from .options import add_command, positive

__all__ = ["add_commands", "follow_log", "print_log", "show_run"]

_RUN_ID = re.compile(r"[A-Za-z0-9-]{4,}")
FOLLOW_POLL = 0.2
"""Seconds between two looks at the log file while following it."""


def add_commands(commands: Commands) -> None:
    """`runs` and `logs`."""
    runs = add_command(
        commands, "runs", _run, summary="print one run in full: runs show RUN_ID",
        description="Print a run in full: its job, trigger, status, times and duration, summary and note, its whole "
        "error with the traceback, and its whole result (JSON). RUN_ID is the id `mcp-scheduler history` shows "
        "(its first characters are enough when they name one run).",
        flags=(options.db, options.timezone, options.log_level),
    )
    runs.add_argument("action", choices=["show"], help="show: print the run")
    runs.add_argument("run_id", metavar="RUN_ID", help="the run's id, or its first characters (at least 4)")
    runs.add_argument("--json", action="store_true", help="print the run as JSON, for scripts")
    logs = add_command(
        commands, "logs", _run, summary="print (or -f follow) the background runner's log",
        description="Print the end of the log file of the store's background runner (the one its registration "
        "names, else where the runner of this store would write it); with -f, go on printing what it writes "
        "until interrupted (Ctrl-C).",
        flags=(options.db, options.log_level),
    )
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing lines as the runner writes them")
    logs.add_argument("-n", "--lines", type=positive, default=100, help="lines of the end to print first (default 100)")


def _run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    configure_logging(settings, quiet=True)
    if args.command == "runs":
        if not _RUN_ID.fullmatch(args.run_id):
            sys.stderr.write(f"mcp-scheduler runs: {args.run_id!r} is no run id: give the id (or its first 4 or "
                             "more characters) that mcp-scheduler history shows\n")
            return EXIT_USAGE
        return run_reported("runs", settings, lambda: asyncio.run(show_run(settings, args.run_id, as_json=args.json)))
    path = log_path(settings.database or "")
    if args.follow:
        return run_reported("logs", settings, lambda: follow_log(path, lines=args.lines))
    return run_reported("logs", settings, lambda: print_log(path, lines=args.lines))


async def show_run(settings: Settings, run_id: str, *, as_json: bool = False, out: TextIO | None = None,
                   err: TextIO | None = None) -> int:
    """Print the run `run_id` (or the one run whose id starts so) in full; 3 when there is none, 1 when several
    match."""
    from ..schedules import local_timezone_name
    from ..store import read_store
    from .tables import run_json, run_outcome, when

    out, err = out or sys.stdout, err or sys.stderr
    async with read_store(settings.database or "") as store:
        found = await store.history(None, limit=10, run_id=run_id)
        exact = [record for record in found if record.run_id == run_id]
        found = exact or found
        if len(found) != 1:
            if not found:
                err.write(f"mcp-scheduler runs: no run {run_id!r} in {settings.database} (mcp-scheduler history "
                          "lists the runs)\n")
                return EXIT_NOT_FOUND
            ids = ", ".join(r.run_id for r in found)
            err.write(f"mcp-scheduler runs: {run_id!r} starts several runs' ids ({ids}): give more of it\n")
            return EXIT_FAILED
        record = found[0]
        job = await store.load_job(record.job_id)
    zone = job.definition.schedule.timezone if job is not None else (settings.timezone or local_timezone_name())
    if as_json:
        data: dict[str, Any] = {**run_json(record, zone), "agentool_name": record.agentool_name,
                                "attempt": record.attempt, "error": None if record.error is None
                                else record.error.model_dump(), "result_summary": record.summary}
        out.write(json.dumps(data, default=str, ensure_ascii=False, indent=2) + "\n")
        return EXIT_OK
    rows = [
        ("run", record.run_id), ("job", record.job_id + ("" if job is not None else " (deleted)")),
        ("kind", record.agentool_name), ("trigger", record.trigger + (f", attempt {record.attempt}"
                                                                      if record.attempt else "")),
        ("status", record.status), ("scheduled", when(record.scheduled_time, zone)),
        ("started", when(record.started_at, zone)), ("finished", when(record.finished_at, zone)),
        ("duration", "-" if record.duration_ms is None else f"{record.duration_ms:.0f} ms"),
        ("summary", run_outcome(record, clip=None)),
    ]
    if record.note:
        rows.append(("note", record.note))
    out.write("".join(f"{name + ':':<11}{value}\n" for name, value in rows))
    if record.error is not None:
        out.write(f"\nerror:     {record.error.type}: {record.error.message}\n")
        if record.error.where:
            out.write(f"where:     {record.error.where}\n")
        if record.error.traceback:
            out.write("traceback:\n" + record.error.traceback.rstrip("\n") + "\n")
    if record.result is not None:
        out.write("\nresult:\n" + json.dumps(record.result, default=str, ensure_ascii=False, indent=2) + "\n")
    return EXIT_OK


def log_path(database: str) -> Path:
    """The log of the store's background runner: the file its registration names, else the store's runner log."""
    from ..runner_info import read_runner_info
    from ..runner_paths import runner_log_path

    info = read_runner_info(database)
    return Path(info.log_file) if info is not None else runner_log_path(database)


def _tail(path: Path, lines: int) -> tuple[bytes, int]:
    """The last `lines` lines of the file and its size when read."""
    with path.open("rb") as file:
        data = file.read()
    kept = data.splitlines(keepends=True)[-lines:]
    return b"".join(kept), len(data)


def print_log(path: Path, *, lines: int = 100, out: TextIO | None = None) -> int:
    """Print the last `lines` lines of the runner's log; 1 (with a message) when there is no log yet."""
    out = out or sys.stdout
    if not path.exists():
        sys.stderr.write(f"mcp-scheduler logs: no log at {path}: the store's background runner has not run on this "
                         "machine (a server started with --no-background-runner logs to its own stderr)\n")
        return EXIT_FAILED
    text, _ = _tail(path, lines)
    out.write(text.decode("utf-8", "replace"))
    return EXIT_OK


def follow_log(path: Path, *, lines: int = 100, out: TextIO | None = None) -> int:
    """Print the end of the runner's log, then what is written to it, until interrupted (a log that does not exist
    yet is waited for; one that is truncated or replaced is read again from its start)."""
    out = out or sys.stdout
    if not path.exists():
        sys.stderr.write(f"mcp-scheduler logs: waiting for {path} (the store's background runner writes it)\n")
    position = 0
    try:
        while True:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = None
            if size is not None and size < position:
                position = 0  # truncated or replaced
            if size is not None and size > position:
                if position == 0 and lines:
                    text, position = _tail(path, lines)
                    lines = 0
                else:
                    with path.open("rb") as file:
                        file.seek(position)
                        text = file.read()
                        position += len(text)
                out.write(text.decode("utf-8", "replace"))
                out.flush()
            time.sleep(FOLLOW_POLL)
    except KeyboardInterrupt:
        return EXIT_OK
