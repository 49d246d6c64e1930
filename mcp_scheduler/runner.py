"""`mcp-scheduler runner [start|stop]`: the store's background runner, a headless process that fires the jobs.

`start` (the default): take the runner lease (if another process holds it, say which and exit 0: at most
one runner per store, whatever starts at the same moment), open the scheduler, and serve MCP to the
front-ends of this machine over a Unix socket (`runner_socket_path`: mode 0600 in a 0700 folder of the
user's; each connection is one MCP session, exactly as over stdio). It logs to `runner_log_path` (rotated),
never to a terminal, and registers itself beside its socket (`runner_info`). It exits cleanly on SIGTERM
or SIGINT (runs in progress get `close_timeout`), and by itself after `runner_idle_exit` seconds with no
active job (scheduled and not paused, a pending retry, a run in progress) and no client (a connection,
or another server of the store standing by); the user service's runner (`--started-by service`) stays,
since its service manager would not start it again.

Started by a front-end (`--started-by frontend`) it detaches: a session of its own, stdin and stdout on
/dev/null, stderr on its log file, so that nothing waiting for the end of the front-end's pipes waits for it.

`stop`: SIGTERM to the registered runner, then wait until it has let go of the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import logging.handlers
import os
import signal
import stat
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .private_files import make_private_dirs
from .runner_info import (
    RunnerInfo,
    make_private_folder,
    now_text,
    process_alive,
    read_runner_info,
    remove_runner_info,
    settings_fingerprint,
    this_host,
    write_runner_info,
)
from .runner_paths import runner_log_path, runner_socket_path

if TYPE_CHECKING:
    from collections.abc import Mapping

    import anyio.abc

    from .lease import RunnerLease
    from .runtime import SchedulerRuntime
    from .server import SchedulerServer
    from .server.answering import Answering
    from .settings import Settings

__all__ = ["LOG_BACKUPS", "LOG_BYTES", "run_runner", "stop_runner"]

logger = logging.getLogger("mcp_scheduler.runner")

LOG_BYTES = 5 * 1024 * 1024
"""Size at which the runner's log is rotated (`runner-<key>.log.1`, `.2` keep the previous ones)."""
LOG_BACKUPS = 2
STOP_MARGIN = 20.0  # seconds `runner stop` waits beyond the close timeout for the runner to let go of the lease
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run_runner(settings: Settings, environ: Mapping[str, str]) -> int:
    """`mcp-scheduler runner [start]`: run the store's jobs until stopped or idle; 0 also when another process
    runs them already."""
    database = settings.database or ""
    log_path = runner_log_path(database)
    if settings.started_by == "frontend":
        _detach(log_path)
    try:
        _log_to_file(log_path)
    except OSError as exc:
        sys.stderr.write(f"mcp-scheduler runner: cannot write its log {log_path}: {exc}\n")
        return 1
    try:
        return asyncio.run(_Runner(settings, environ, log_path).run())
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        logger.exception("The runner failed")
        _tell(settings, f"mcp-scheduler runner: {exc} (log: {log_path})")
        return 1


def _tell(settings: Settings, message: str) -> None:
    """One line for a person who started the runner by hand (a detached runner's stderr is its log)."""
    if settings.started_by != "frontend":
        sys.stderr.write(message + "\n")
        sys.stderr.flush()


def _detach(log_path: Path) -> None:
    """Leave the front-end's session and pipes: a session of its own, stdin and stdout on /dev/null, stderr on
    the log file (what the interpreter itself may still print, such as a fatal error, goes there)."""
    with contextlib.suppress(OSError):  # already a session leader (the front-end started it so)
        os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    try:
        make_private_dirs(log_path.parent)
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError:
        log = null
    os.dup2(log, 2)
    for fd in {null, log}:
        os.close(fd)


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files are created readable by the user only (jobs' names and errors are in it)."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)  # noqa: SIM115 - the handler closes it


def _log_to_file(log_path: Path) -> None:
    """Send the log to `log_path` (rotated at LOG_BYTES) instead of stderr, keeping the stderr handler's filters
    (the secrets' values and libraries' URL queries stay out)."""
    make_private_dirs(log_path.parent)
    handler = _PrivateRotatingFileHandler(log_path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        for log_filter in old.filters:
            handler.addFilter(log_filter)
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)


class _Runner:
    def __init__(self, settings: Settings, environ: Mapping[str, str], log_path: Path) -> None:
        self.settings = settings
        self.environ = environ
        self.database = settings.database or ""
        self.log_path = log_path
        self.socket_path = runner_socket_path(self.database)
        self.connections = 0
        self.stopping = asyncio.Event()
        self.idle = False

    async def run(self) -> int:
        from .runtime import make_lease

        config = self.settings.service_config()
        lease = make_lease(self.database, config)
        if not await lease.try_acquire():
            holder = lease.holder()
            await lease.release()
            logger.info("Not starting: the jobs of %s already run in %s", self.database, holder)
            _tell(self.settings, f"mcp-scheduler runner: the jobs of {self.database} already run in {holder}; "
                  "not starting another runner")
            return 0
        info = RunnerInfo(
            pid=os.getpid(), host=this_host(), since=now_text(), started_by=self.settings.started_by,
            log_file=str(self.log_path), socket=str(self.socket_path), database=self.database,
            fingerprint=settings_fingerprint(self.settings, self.environ),
        )
        try:
            make_private_folder(self.socket_path.parent)
            write_runner_info(info)
        except BaseException:
            await lease.release()
            raise
        try:
            return await self._serve(lease, info)
        finally:
            remove_runner_info(self.database, info.pid)

    async def _serve(self, lease: RunnerLease, info: RunnerInfo) -> int:
        from .runtime import SchedulerRuntime
        from .server import build_server

        s = self.settings
        try:
            runtime = SchedulerRuntime(
                s.service_config(), toolkits=s.toolkits, discover_entry_points=s.discover_entry_points,
                transport="runner", toolkit_config=s.toolkit_config(), lease=lease,
                outbound_events=s.outbound_events(os.environ),
            )
        except BaseException:
            await lease.release()
            raise
        loop = asyncio.get_running_loop()
        handled = [sig for sig in (signal.SIGTERM, signal.SIGINT) if _on_signal(loop, sig, self._signalled)]
        try:
            mcp = build_server(runtime, replace(s, transport="stdio"))  # same-user socket: no HTTP auth
            async with mcp.use():
                import gc

                gc.freeze()  # as serve() does: the loaded jobs need no more full collections
                await self._listen(mcp, runtime, info)
        finally:
            await runtime.close()  # runs in progress get close_timeout; then the lease is let go
            for sig in handled:
                loop.remove_signal_handler(sig)
            logger.info("Runner stopped%s", " (idle)" if self.idle else "")
        return 0

    def _signalled(self, sig: signal.Signals) -> None:
        if self.stopping.is_set():
            logger.warning("Received %s again: exiting without waiting for the runs in progress", sig.name)
            logging.shutdown()
            os._exit(1)
        logger.info("Received %s: stopping the runner (runs in progress get up to %s s)", sig.name,
                    self.settings.close_timeout)
        self.stopping.set()

    async def _listen(self, mcp: SchedulerServer, runtime: SchedulerRuntime, info: RunnerInfo) -> None:
        import anyio

        from .server.answering import ANSWER_GRACE, Answering

        _remove_stale_socket(self.socket_path)
        listener = await anyio.create_unix_listener(self.socket_path, mode=0o600)
        inode = os.stat(self.socket_path).st_ino
        try:
            write_runner_info(replace(info, ready=True))
            idle = (f"it exits after {self.settings.runner_idle_exit:g} s with no active job and no client"
                    if self._exits_when_idle else "started by the user service, it stays until stopped")
            logger.info("Runner of %s (pid %d, started by %s) serving on %s; %s", self.database, info.pid,
                        info.started_by, self.socket_path, idle)
            _tell(self.settings, f"mcp-scheduler runner: running the jobs of {self.database} (pid {info.pid}); "
                  f"log: {self.log_path}; `mcp-scheduler runner stop` ends it")
            answering = Answering()
            async with anyio.create_task_group() as connections:
                async with anyio.create_task_group() as accepting:
                    accepting.start_soon(listener.serve, self._handler(mcp, answering), connections)
                    if self._exits_when_idle:
                        accepting.start_soon(self._watch_idle, runtime)
                    await self.stopping.wait()
                    self._unpublish(inode, info.pid)  # no new client finds it while it closes
                    accepting.cancel_scope.cancel()
                # The clients connected still get the answers of their calls in flight (their result, or cancelled
                # after close_timeout) before their connections close.
                await mcp.shut_down()
                if not await answering.settled(ANSWER_GRACE):
                    logger.warning("%d call(s) in flight were not answered within %s s of the scheduler closing",
                                   answering.owed, ANSWER_GRACE)
                connections.cancel_scope.cancel()
        finally:
            self._unpublish(inode, info.pid)
            await listener.aclose()

    def _unpublish(self, inode: int, pid: int) -> None:
        remove_runner_info(self.database, pid)
        with contextlib.suppress(OSError):
            if os.lstat(self.socket_path).st_ino == inode:
                os.unlink(self.socket_path)

    def _handler(self, mcp: SchedulerServer, answering: Answering) -> Any:
        from .server import _sdk

        async def handle(stream: anyio.abc.SocketStream) -> None:
            self.connections += 1
            logger.debug("Client connected (%d now)", self.connections)
            try:
                await _sdk.run_connection(mcp, stream, answering)
            except Exception:
                logger.exception("A client's connection failed")
            finally:
                self.connections -= 1
                logger.debug("Client left (%d now)", self.connections)

        return handle

    @property
    def _exits_when_idle(self) -> bool:
        # A service manager restarts a runner that fails, not one that ends well: the user service's runner stays.
        return self.settings.started_by != "service"

    async def _watch_idle(self, runtime: SchedulerRuntime) -> None:
        idle_exit = self.settings.runner_idle_exit
        every = min(1.0, max(0.05, idle_exit / 5))
        quiet_since = time.monotonic()
        while not self.stopping.is_set():
            await asyncio.sleep(every)
            if self.connections or runtime.service.has_active_work() or self._others_serving():
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= idle_exit:
                logger.info("No active job and no client for %g s: exiting", idle_exit)
                self.idle = True
                self.stopping.set()

    def _others_serving(self) -> bool:
        """True while another server of the store (an HTTP or stdio server standing by) runs on this machine."""
        if "://" in self.database:
            return False
        from .presence import serving_processes

        return any(p.pid != os.getpid() for p in serving_processes(self.database))


def _on_signal(loop: asyncio.AbstractEventLoop, sig: signal.Signals, handler: Any) -> bool:
    try:
        loop.add_signal_handler(sig, handler, sig)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True


def _remove_stale_socket(path: Path) -> None:
    """Remove a dead runner's socket (the lease is held here, so no other runner of the store lives); refuse
    to remove anything else found there."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        from .errors import RunnerSocketError

        raise RunnerSocketError(f"{path} is not a socket: remove it, and the runner creates its socket there.")
    os.unlink(path)
    logger.info("Removed the socket a runner that died left behind (%s)", path)


def stop_runner(settings: Settings) -> int:
    """`mcp-scheduler runner stop`: SIGTERM to the store's runner, then wait until it let go of the lease.
    0 once it stopped; 1 (with a message) if none runs or it did not stop in time."""
    database = settings.database or ""
    info = read_runner_info(database)
    if info is None:
        holder = _sqlite_holder(database)
        where = f" The jobs run in pid {holder} (a server, not a background runner): stop that one." if holder else ""
        sys.stderr.write(f"mcp-scheduler runner stop: no background runner runs the jobs of {database}.{where}\n")
        return 1
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        sys.stderr.write(f"mcp-scheduler runner stop: the runner (pid {info.pid}) of {database} had already stopped\n")
        return 0
    within = max(settings.close_timeout, 10.0) + STOP_MARGIN
    deadline = time.monotonic() + within
    postgres = "://" in database
    while time.monotonic() < deadline:
        # SQLite: the lease file tells when the lease is free; PostgreSQL's advisory lock goes with the process.
        if not process_alive(info.pid) or (not postgres and _sqlite_holder(database) != info.pid):
            sys.stderr.write(f"mcp-scheduler runner stop: stopped the runner (pid {info.pid}) of {database}\n")
            return 0
        time.sleep(0.05)
    sys.stderr.write(f"mcp-scheduler runner stop: the runner (pid {info.pid}) did not stop within {within:g} s; its "
                     f"log is {info.log_file}. `kill -9 {info.pid}` ends it at once (runs in progress are then "
                     "recorded as interrupted at the next start).\n")
    return 1


def _sqlite_holder(database: str) -> int | None:
    if "://" in database:
        return None
    from .status import sqlite_runner

    holder = sqlite_runner(database)
    pid = holder.get("pid") if holder else None
    return pid if isinstance(pid, int) else None
