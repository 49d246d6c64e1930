"""`mcp-scheduler status`: who runs the jobs of a database and which processes stand by.

It reads what the processes leave for it and starts no scheduler: on SQLite the lease file
(`<db>.lock`, see `lease.py`) and the registrations in `<db>.procs/` (see `presence.py`); on
PostgreSQL `pg_locks` and `pg_stat_activity` (every connection of a scheduler process names the process
in its application name, `mcp-scheduler... pid PID on HOST`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from .presence import ServingProcess, serving_processes
from .runner_info import RunnerInfo, read_runner_info

__all__ = ["print_status", "runner_of", "sqlite_runner"]

NOBODY = "nobody: no scheduler process runs the jobs"
STARTED_BY = {"frontend": "started by a server", "service": "started by the user service",
              "manual": "started by hand"}


def sqlite_runner(database: str) -> dict[str, Any] | None:
    """The holder of the runner lease of a SQLite database as it wrote itself down (pid, host, since), or None.

    The lease file is only tested: a shared lock is taken and given back at once when the lease is
    free (a standby trying that instant retries half a second later).
    """
    path = f"{os.path.realpath(database)}.lock"
    try:
        handle = open(path)  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # held
            try:
                info = json.loads(handle.read() or "{}")
            except ValueError:
                info = {}
            return info if isinstance(info, dict) else {}
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None


def runner_of(database: str) -> str | None:
    """Who runs the jobs of `database` now, in words ("pid 123 on host"), or None when no process does."""
    if database.startswith(("postgresql://", "postgres://")):
        with _postgres(database, "mcp-scheduler-status") as conn:
            holder = _postgres_holder(conn)
        return None if holder is None else _session(holder)
    runner = sqlite_runner(database)
    return None if runner is None else f"pid {runner.get('pid', '?')} on {runner.get('host', '?')}"


def _describe(process: ServingProcess) -> str:
    return f"pid {process.pid} on {process.host} since {process.since} ({process.transport})"


def print_status(database: str, *, out: TextIO | None = None) -> int:
    """Print who holds the runner lease and which processes stand by; 0 if a runner holds it, 1 if nobody does."""
    out = out or sys.stdout
    if database.startswith(("postgresql://", "postgres://")):
        return _print_postgres_status(database, out)
    if not os.path.exists(database):
        raise FileNotFoundError(f"No scheduler database at {database}: pass --db FILE (the one the server uses).")
    if os.path.isdir(database):
        raise IsADirectoryError(f"{database} is a folder, not a scheduler database: pass --db FILE (the one the "
                                "server uses).")
    runner = sqlite_runner(database)
    processes = serving_processes(database)
    out.write(f"database: {os.path.realpath(database)}\n")
    if runner is None:
        out.write(f"runner:   {NOBODY}\n")
    else:
        named = next((p for p in processes if p.pid == runner.get("pid") and p.host == runner.get("host")), None)
        background = read_runner_info(database)
        if background is not None and background.pid == runner.get("pid"):
            transport = f" (background runner, {STARTED_BY.get(background.started_by, background.started_by)})"
        else:
            transport, background = (f" ({named.transport})" if named else ""), None
        out.write(f"runner:   pid {runner.get('pid', '?')} on {runner.get('host', '?')} "
                  f"since {runner.get('since', '?')}{transport}\n")
        _write_stopped(runner.get("stopped"), out)
        _write_background(background, out)
    standbys = [p for p in processes if runner is None or (p.pid, p.host) != (runner.get("pid"), runner.get("host"))]
    for process in standbys:
        out.write(f"standby:  {_describe(process)}\n")
    if not standbys:
        out.write("standby:  none\n")
    return 1 if runner is None else 0


def _print_postgres_status(url: str, out: TextIO) -> int:
    with _postgres(url, "mcp-scheduler-status") as conn:
        holder = _postgres_holder(conn)
        stopped = _postgres_stopped(conn)
        sessions = conn.execute(
            "SELECT pid, application_name, host(client_addr), backend_start FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE 'mcp-scheduler%' "
            "AND application_name <> 'mcp-scheduler-status' AND pid <> pg_backend_pid() ORDER BY backend_start"
        ).fetchall()
        where = f"{conn.info.dbname} on {conn.info.host}:{conn.info.port}"
    out.write(f"database: {where}\n")
    out.write(f"runner:   {NOBODY if holder is None else _session(holder)}\n")
    if holder is not None:
        _write_stopped(stopped, out)
    background = read_runner_info(url) if holder is not None else None
    if background is not None:
        out.write(f"          the background runner of this machine: pid {background.pid} since {background.since}, "
                  f"{STARTED_BY.get(background.started_by, background.started_by)}\n")
        _write_background(background, out)
    runner = _process(str(holder[1] or "")) if holder is not None else None
    # Each process has several sessions (the lease's, the store's): one line per process they name.
    processes: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for session in sessions:
        named = _process(str(session[1] or ""))
        if named is not None and named != runner and (holder is None or session[0] != holder[0]):
            processes.setdefault(named, []).append(session)
    for (pid, host), rows in processes.items():
        _pid, _name, address, since = rows[0]
        out.write(f"standby:  pid {pid} on {host} since {since:%Y-%m-%dT%H:%M:%S%z} "
                  f"({len(rows)} session(s) from {address or 'a local socket'})\n")
    if not processes:
        out.write("standby:  none\n")
    return 1 if holder is None else 0


@contextlib.contextmanager
def _postgres(url: str, application_name: str) -> Iterator[Any]:
    """A connection to the PostgreSQL database `url` for reading its status; its errors told as ValueError."""
    from agentool_bridge.extras import POSTGRES, require_extra

    require_extra(POSTGRES)
    import psycopg  # only for a PostgreSQL database

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10, application_name=application_name) as conn:
            yield conn
    except psycopg.Error as exc:
        raise ValueError(
            f"Could not read the status of the PostgreSQL database: {exc}. Check the --db URL and that the server runs."
        ) from None


def _postgres_holder(conn: Any) -> tuple[Any, ...] | None:
    """The session holding the runner lease of the connection's database and schema, or None."""
    from .postgres_lease import HOLDER_QUERY, WHERE, lease_key

    row = conn.execute(WHERE).fetchone()
    holder: tuple[Any, ...] | None = conn.execute(HOLDER_QUERY, (lease_key(str(row[0]) if row else ""),)).fetchone()
    return holder


def _postgres_stopped(conn: Any) -> str | None:
    """Since when the holder of the runner lease has stopped processing jobs, or None (also for a store whose
    lease row an earlier version wrote)."""
    import psycopg

    from .postgres_lease import STOPPED_QUERY

    try:
        row = conn.execute(STOPPED_QUERY).fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
        return None
    return None if row is None or row[0] is None else f"{row[0]:%Y-%m-%dT%H:%M:%S%z}"


def _write_stopped(stopped: object, out: TextIO) -> None:
    """The line of a runner stopped with stop_scheduler (`stopped`: since when, or None)."""
    if stopped:
        out.write(f"state:    stopped with stop_scheduler since {stopped}: no job runs until start_scheduler\n")


def _write_background(runner: RunnerInfo | None, out: TextIO) -> None:
    """The log file and socket of a background runner."""
    if runner is not None:
        out.write(f"log:      {runner.log_file}\n")
        out.write(f"socket:   {runner.socket}\n")


def _process(application_name: str) -> tuple[str, str] | None:
    """(pid, host) from an application name `mcp-scheduler... pid PID on HOST`, or None."""
    found = re.search(r"\bpid (\d+) on (\S+)$", application_name)
    return (found.group(1), found.group(2)) if found else None


def _session(row: tuple[Any, ...]) -> str:
    pid, name, address, since = row
    return f"{name or 'a session'} from {address or 'a local socket'} since {since:%Y-%m-%dT%H:%M:%S%z} " \
           f"(server pid {pid})"
