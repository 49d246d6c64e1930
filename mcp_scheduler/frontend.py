"""The front-end side of the background runner: find the store's runner, start one, pipe a stdio client to it.

`Frontend.connect()` (stdio): when a runner of the store answers on its socket and runs with the same operator
settings (`settings_fingerprint`), a connected socket; then `pipe()` copies the client's bytes both ways and
the process imports nothing heavy. Otherwise None, with the reason in `notes`, and the caller serves
in-process as before (a standby when the runner holds the lease).

`Frontend.ensure_runner()` (HTTP, SSE, and the in-process fallback): start the runner if no process holds the
lease, and wait until it holds it, so that jobs outlive this server.

A runner is started detached: `python -P -m mcp_scheduler runner --started-by frontend` with the same operator
settings and environment, in a new session, stdin and stdout on /dev/null and stderr on its log file. Two
front-ends that start one at the same moment end with one: the runner lease decides, the other exits.
This module is light on purpose (no MCP SDK, pydantic, anyio, asyncio or platformdirs).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

from .private_files import make_private_dirs
from .runner_info import RunnerInfo, check_private_folder, process_alive, read_runner_info, settings_fingerprint
from .runner_paths import runner_log_path, runner_socket_path, service_marker_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from subprocess import Popen

    from .settings import Settings

__all__ = ["LAST_ANSWERS_WAIT", "RUNNER_START_WAIT", "Frontend", "pipe", "runner_argv"]

RUNNER_START_WAIT = 10.0
"""Seconds a front-end waits for a runner it started (or one that is starting) to hold the lease and listen;
the runner imports the scheduler and loads the jobs first, which takes a few seconds on a busy machine."""
_POLL = 0.02
_HOLDER_GRACE = 0.5  # seconds a lease held without a runner's registration may be a runner writing it
_CHUNK = 65536


def runner_argv(settings: Settings) -> list[str]:
    """The command that starts `settings`' background runner: this Python, this package, every operator
    setting as a flag (flags win over the MCP_SCHEDULER_* variables it inherits), started by a front-end."""
    s = settings
    argv = [sys.executable, "-P", "-m", "mcp_scheduler", "runner", "--started-by", "frontend", "--db", s.database or ""]
    argv += ["--log-level", s.log_level, "--history-limit", str(s.history_limit), "--close-timeout",
             repr(s.close_timeout), "--lease-time", repr(s.lease_time), "--max-processes", str(s.shell_max_processes),
             "--max-jobs", str(s.max_jobs), "--max-jobs-per-principal",
             str(s.max_jobs_per_principal), "--min-interval", repr(s.min_interval), "--max-runs-per-job",
             str(s.max_runs_per_job), "--max-concurrent-runs", str(s.max_concurrent_runs), "--inbox-limit",
             str(s.inbox_limit), "--answer-bytes", str(s.answer_bytes), "--content-chars", str(s.content_chars),
             "--runner-idle-exit", repr(s.runner_idle_exit), "--catchup-window", s.catchup_window]
    if s.protect_managed_jobs:
        argv.append("--protect-managed-jobs")
    if not s.confirm:
        argv.append("--no-confirm")
    for flag, value in (("--timezone", s.timezone), ("--servers", s.servers_file), ("--model", s.model),
                        ("--log-dir", s.log_dir), ("--events-secret-env", s.events_secret_env)):
        if value:
            argv += [flag, value]
    for flag, values in (("--toolkit", s.toolkits), ("--http-allow", s.http_allow), ("--allow-shell",
                         s.shell_executables), ("--shell-env", s.shell_env), ("--secret", s.secrets),
                         ("--events-url", s.events_urls)):
        for value in values:
            argv.append(f"{flag}={value}")  # one token: a value starting with '-' stays a value
    return argv


class Frontend:
    """What a server does about the store's background runner before it serves (see the module's docstring).

    `notes`: what it found and did, in words, for the log (written once logging is set up).
    """

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self.database = settings.database or ""
        self.environ = environ
        self.notes: list[str] = []
        self._child: Popen[bytes] | None = None

    def connect(self) -> tuple[socket.socket, RunnerInfo] | None:
        """A connection to the store's runner if it runs (or could be started) with this front-end's settings."""
        found = self._reach(connect=True)
        return found if isinstance(found, tuple) else None

    def say(self, *lines: str) -> None:
        """Write `notes` and `lines` to stderr as log lines (INFO; for a front-end that pipes, before logging is
        set up), unless --log-level is above INFO."""
        if self.settings.log_level not in ("DEBUG", "INFO"):
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        for line in (*self.notes, *lines):
            sys.stderr.write(f"{stamp} INFO mcp_scheduler.frontend: {line}\n")
        sys.stderr.flush()

    def ensure_runner(self) -> RunnerInfo | None:
        """Start the store's runner if no process holds the runner lease; its registration once it holds it."""
        found = self._reach(connect=False)
        return found if isinstance(found, RunnerInfo) else None

    def _reach(self, *, connect: bool) -> tuple[socket.socket, RunnerInfo] | RunnerInfo | None:
        folder = runner_socket_path(self.database).parent
        if os.path.lexists(folder):
            try:
                check_private_folder(folder)
            except OSError as exc:
                self.notes.append(f"{exc} Serving in-process (no background runner).")
                return None
        mine = settings_fingerprint(self.settings, self.environ) if connect else ""
        deadline = time.monotonic() + RUNNER_START_WAIT
        held_since: float | None = None
        while True:
            info = read_runner_info(self.database)
            if info is not None and not connect:
                return info
            if info is not None and info.ready:
                if info.fingerprint != mine:
                    self.notes.append(
                        f"The background runner of this database (pid {info.pid}, started by {info.started_by}) runs "
                        "with other settings (flags, secrets, quotas, time zone or installation): serving in-process "
                        "with this process's settings. `mcp-scheduler runner stop` ends that runner; the next start "
                        "starts one with these settings.")
                    return None
                connection = _connect(info.socket)
                if connection is not None:
                    return connection, info
            elif info is None:
                holder = self._lease_holder()
                if holder is None or holder == self._child_pid():
                    held_since = None
                    if self._child is None:
                        if not self._may_start():
                            return None
                        self._child = self._start()
                        if self._child is None:
                            return None
                    elif self._child.poll() is not None and holder is None:
                        self.notes.append(
                            f"The background runner exited at once (code {self._child.returncode}); its log is "
                            f"{runner_log_path(self.database)}. Serving in-process.")
                        return None
                else:
                    held_since = held_since or time.monotonic()
                    if time.monotonic() - held_since > _HOLDER_GRACE:
                        self.notes.append(f"The jobs of this database run in pid {holder} (a server, not a "
                                          "background runner): serving in-process as a standby.")
                        return None
            if time.monotonic() > deadline:
                self.notes.append(f"No background runner answered within {RUNNER_START_WAIT:.0f} s (log: "
                                  f"{runner_log_path(self.database)}): serving in-process.")
                return None
            time.sleep(_POLL)

    def _child_pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def _lease_holder(self) -> int | None:
        """The pid holding the runner lease (0 if unknown), or None if it is free; always None on PostgreSQL
        (the runner started finds out, and exits if another process holds it)."""
        if "://" in self.database:
            return None
        from .status import sqlite_runner

        holder = sqlite_runner(self.database)
        if holder is None:
            return None
        pid = holder.get("pid")
        return pid if isinstance(pid, int) else 0

    def _may_start(self) -> bool:
        if not self.settings.background_runner:
            return False
        marker = service_marker_path(self.database)
        if marker.exists():
            if _service_refused(marker):
                self.notes.append(f"A user service was installed for this database ({marker}) but its manager did "
                                  "not start it: starting a background runner instead.")
                return True
            self.notes.append(
                f"A user service runs the jobs of this database ({marker}), but its runner does not answer: start "
                "the service (`mcp-scheduler service status` says how). Serving in-process meanwhile.")
            return False
        return True

    def _start(self) -> Popen[bytes] | None:
        import subprocess

        log_path = runner_log_path(self.database)
        try:
            make_private_dirs(log_path.parent)
            log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:
            self.notes.append(f"Could not open the background runner's log {log_path}: {exc}. Serving in-process.")
            return None
        try:
            child = subprocess.Popen(
                runner_argv(self.settings), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True, close_fds=True, cwd="/", env=dict(self.environ),
            )
        except OSError as exc:
            self.notes.append(f"Could not start the background runner: {exc}. Serving in-process.")
            return None
        finally:
            os.close(log)
        self.notes.append(f"Started the background runner of this database (pid {child.pid}; log {log_path}): jobs "
                          "run while no client is connected.")
        return child


def _service_refused(marker: Path) -> bool:
    """True if the service marker says its manager refused the service (`"enabled": false`): then no service
    runs the jobs, and a front-end starts its own runner."""
    import json

    try:
        content = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and content.get("enabled") is False


def _connect(path: str) -> socket.socket | None:
    """A connection to the runner's socket, if the socket is the user's own and answers."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if info.st_uid != os.geteuid():
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
    except OSError:
        connection.close()
        return None
    return connection


LAST_ANSWERS_WAIT = 10.0
"""Seconds a front-end whose client closed stdin waits for the runner's answers to the calls in flight (as an
in-process stdio server does); the runs themselves go on in the runner whatever happens here."""


class _Stop(Exception):
    """SIGTERM reached the front-end."""


def _stop(signum: int, frame: object) -> None:
    raise _Stop


class _Calls:
    """The requests the client sent through the pipe that the runner has not answered yet (read from the lines
    going both ways), and stdout, written a whole line at a time."""

    def __init__(self) -> None:
        self.owed: dict[str, str] = {}  # the JSON of each id -> its method
        self.lock = threading.Lock()
        self.closed = False  # set when the front-end answers for the runner: no more of its lines go out
        self._sent = b""
        self._received = b""

    def sent(self, chunk: bytes) -> None:
        *lines, self._sent = (self._sent + chunk).split(b"\n")
        for line in lines:
            message = _json_object(line)
            if message is None:
                continue
            method = message.get("method")
            if "id" in message and isinstance(method, str):
                with self.lock:
                    self.owed[_key(message["id"])] = method
            elif method == "notifications/cancelled" and isinstance(params := message.get("params"), dict):
                with self.lock:
                    self.owed.pop(_key(params.get("requestId")), None)

    def received(self, chunk: bytes) -> None:
        *lines, self._received = (self._received + chunk).split(b"\n")
        for line in lines:
            message = _json_object(line)
            with self.lock:
                if self.closed:
                    return
                if message is not None and ("result" in message or "error" in message):
                    self.owed.pop(_key(message.get("id")), None)
                _write_all(1, line + b"\n")

    def answer_for_runner(self, runner: RunnerInfo) -> None:
        """Answer what the runner has not: the calls go on there, and their outcome is in the history."""
        import json

        with self.lock:
            self.closed = True
            for key, method in self.owed.items():
                message = (f"mcp-scheduler stopped before the background runner (pid {runner.pid}) answered this "
                           f"{method}. It was not cancelled: it goes on in the runner, and a run's outcome is "
                           "recorded in the history (get_history); check there before running it again.")
                error = {"jsonrpc": "2.0", "id": json.loads(key), "error": {"code": -32000, "message": message}}
                try:
                    _write_all(1, json.dumps(error).encode() + b"\n")
                except OSError:
                    return  # the client reads no more


def _json_object(line: bytes) -> dict[str, object] | None:
    import json

    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _key(request_id: object) -> str:
    import json

    return json.dumps(request_id)  # 1 and "1" are different ids


def pipe(connection: socket.socket, runner: RunnerInfo, *, stop_wait: float = 10.0) -> int:
    """Copy stdin to the runner and its answers to stdout, until stdin closes (0) or the runner goes away first
    (a line on stderr: 1, and the client starts a new one).

    When stdin closes, or SIGTERM or SIGINT arrives, the front-end half-closes the connection and copies the
    runner's answers to the calls in flight for up to LAST_ANSWERS_WAIT seconds (`stop_wait` after a signal); a
    call still unanswered then gets an error saying that it goes on in the runner (the runner never cancels a
    call because its client left: the run ends and is recorded as it would have been)."""
    import signal

    stdin_closed = threading.Event()
    calls = _Calls()

    def answers() -> None:
        try:
            while chunk := connection.recv(_CHUNK):
                calls.received(chunk)
        except OSError:
            pass  # reset by the runner, or stdout closed by the client
        if not stdin_closed.is_set():
            alive = "stopped" if not process_alive(runner.pid) else "closed the connection"
            sys.stderr.write(f"mcp-scheduler: the background runner (pid {runner.pid}) {alive}; restart this "
                             f"server to go on (its log: {runner.log_file})\n")
            sys.stderr.flush()
            os._exit(1)

    reader = threading.Thread(target=answers, name="runner-answers", daemon=True)
    reader.start()
    wait = LAST_ANSWERS_WAIT
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        while chunk := os.read(0, _CHUNK):
            calls.sent(chunk)
            connection.sendall(chunk)
    except (KeyboardInterrupt, _Stop):
        wait = stop_wait
    except OSError as exc:  # the runner went away while we wrote: the reader says so and exits
        if not reader.is_alive():
            return 1
        sys.stderr.write(f"mcp-scheduler: could not write to the background runner (pid {runner.pid}): {exc}\n")
        reader.join(timeout=5)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    stdin_closed.set()
    try:
        connection.shutdown(socket.SHUT_WR)  # the runner answers what it was sent, then closes its end
    except OSError:
        return 0
    reader.join(timeout=wait)
    if reader.is_alive():
        calls.answer_for_runner(runner)
    connection.close()
    return 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
