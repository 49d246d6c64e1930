"""One running `shell` program: started under the supervisor (Linux) or in a process group of its own, read
to the end, and stopped with everything it started."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping

import anyio

from ...redaction import Redactor

__all__ = ["KILL_GRACE", "STDERR_TAIL", "RunningProgram", "can_supervise"]

logger = logging.getLogger(__name__)

STDERR_TAIL = 500
"""Characters of stderr that the error of a failed command quotes (its end, where the reason usually is)."""
KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL when a run is stopped."""
_SUPERVISOR_SLACK = 3.0
"""Seconds the server gives the supervisor beyond KILL_GRACE to stop the run before it kills the supervisor."""
SUPERVISOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_supervisor.py")


def can_supervise() -> bool:
    """True where runs go through the supervisor: Linux, with a Python executable to start it."""
    return sys.platform.startswith("linux") and bool(sys.executable) and os.path.isfile(SUPERVISOR)


class _Output(asyncio.SubprocessProtocol):
    """A running program's output (the first `limit` bytes of each stream kept, the rest counted) and its end.

    Reading is never paused, so the program never blocks on a full pipe. The secrets revealed to the run
    (`redactor`) are replaced before an output is cut: heads and the stderr tail are kept `margin` bytes
    longer than shown, so that a secret across a cut is replaced whole.
    """

    def __init__(self, limit: int, redactor: Redactor) -> None:
        self.limit = limit
        self.redactor = redactor
        self._keep = limit + redactor.margin
        self._tail_keep = 4 * STDERR_TAIL + redactor.margin
        self.heads: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.totals: dict[int, int] = {1: 0, 2: 0}
        self.stderr_tail = b""
        self.exited = asyncio.Event()  # the process itself ended
        self.closed = asyncio.Event()  # ... and every pipe to it is closed
        self.on_exit: asyncio.SubprocessTransport | None = None  # a transport to close when the process ends

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.totals[fd] += len(data)
        head = self.heads[fd]
        if len(head) < self._keep:
            head += data[: self._keep - len(head)]
        if fd == 2:
            self.stderr_tail = (self.stderr_tail + data)[-self._tail_keep :]

    def process_exited(self) -> None:
        self.exited.set()
        if self.on_exit is not None:
            self.on_exit.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.exited.set()
        self.closed.set()

    def text(self, fd: int) -> str:
        """The first `limit` bytes of a stream as text (redacted: a secret across the cut is replaced whole)."""
        head = bytes(self.heads[fd])
        if not self.truncated(fd):
            return self.redactor.text(head.decode("utf-8", errors="replace"))
        return self.redactor.head_bytes(head, self.limit, lambda part: part.decode("utf-8", errors="replace"))

    def truncated(self, fd: int) -> bool:
        """True if stream `fd` (1 or 2) was longer than `limit`."""
        return self.totals[fd] > self.limit

    def stderr_end(self) -> str:
        """The end of stderr that was kept, stripped and redacted. When stderr was longer, its first `margin`
        characters are left out: a secret cut there by the buffer could not be recognised."""
        text = self.stderr_tail.decode("utf-8", errors="replace")
        start = min(len(text), self.redactor.margin) if self.totals[2] > len(self.stderr_tail) else 0
        return self.redactor.tail(text, start).strip()


def _signal_process(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False if it has no process left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # the group id was reused by someone else's processes: not ours to signal
        return False
    return True


class RunningProgram:
    """A started program: `finish()` waits for it (and for its output to end), `stop()` ends it and what it started.

    Supervised (Linux), the process the server started is the supervisor: it exits only once nothing of
    the run is left, with the program's own status; `stop()` sends it SIGTERM. Otherwise the process is
    the program itself, leader of its own process group, which `stop()` and `finish()` signal.
    """

    def __init__(self, transport: asyncio.SubprocessTransport, output: _Output, supervised: bool) -> None:
        self._transport = transport
        self.output = output
        self.supervised = supervised

    @classmethod
    async def start(
        cls,
        path: str,
        argv: list[str],
        *,
        cwd: str | None,
        env: Mapping[str, str],
        stdin: bytes | None,
        max_output_bytes: int,
        redactor: Redactor,
        supervise: bool,
    ) -> RunningProgram:
        """Start `path` as `argv` with exactly `env` as its environment, and write `stdin` to it; `redactor`
        replaces the run's secrets in what it printed."""
        loop = asyncio.get_running_loop()
        if supervise:
            # The supervisor's PR_SET_PDEATHSIG fires when this thread (the event loop's) ends, or the server dies.
            ctype = "=" + env["LC_CTYPE"] if "LC_CTYPE" in env else "-"
            command = [sys.executable, "-I", "-S", SUPERVISOR, str(os.getpid()), repr(KILL_GRACE), ctype, path, *argv]
            executable = sys.executable
        else:
            command, executable = list(argv), path
        transport, output = await loop.subprocess_exec(
            lambda: _Output(max_output_bytes, redactor),
            *command,
            executable=executable,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        if stdin is not None:
            pipe = transport.get_pipe_transport(0)
            assert isinstance(pipe, asyncio.WriteTransport)
            pipe.write(stdin)
            pipe.close()  # after the data is written (the program need not read it all)
        return cls(transport, output, supervise)

    @property
    def returncode(self) -> int | None:
        """The program's exit code, or minus the signal that killed it; None while it runs."""
        return self._transport.get_returncode()

    async def finish(self) -> None:
        """Wait until the program has exited and nothing of the run holds its output pipes."""
        await self.output.exited.wait()
        if not self.supervised:
            # What the program left running would hold the pipes open, and outlive the run.
            _signal_group(self._transport.get_pid(), signal.SIGKILL)
        await self.output.closed.wait()

    async def stop(self) -> None:
        """Stop the run, if it is still going (SIGTERM, up to `KILL_GRACE` s, SIGKILL), and close the transport.

        The waits are shielded, so this also runs while the run is being cancelled. If the task is cancelled
        natively anyway: unsupervised, SIGKILL goes out at once; supervised, the supervisor (which has SIGTERM
        already) is left to finish the job, and its transport is closed when it exits.
        """
        if self.supervised:
            await self._stop_supervisor()
        else:
            await self._stop_group()

    async def _stop_supervisor(self) -> None:
        pid = self._transport.get_pid()
        if self._transport.get_returncode() is not None or not _signal_process(pid, signal.SIGTERM):
            self._transport.close()
            return
        try:
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(KILL_GRACE + _SUPERVISOR_SLACK):
                    await self.output.exited.wait()
                if not self.output.exited.is_set():
                    logger.warning("The supervisor of shell run %s did not stop in time; killing it", pid)
                    _signal_process(pid, signal.SIGKILL)
                    await self.output.exited.wait()
        except asyncio.CancelledError:
            # Closing the transport now would SIGKILL the supervisor and orphan what it still has to stop.
            self.output.on_exit = self._transport
            raise
        self._transport.close()

    async def _stop_group(self) -> None:
        pgid = self._transport.get_pid()
        try:
            if self._transport.get_returncode() is None and _signal_group(pgid, signal.SIGTERM):
                with anyio.CancelScope(shield=True):
                    with anyio.move_on_after(KILL_GRACE):
                        await self.output.exited.wait()
                    _signal_group(pgid, signal.SIGKILL)
                    await self.output.exited.wait()
            _signal_group(pgid, signal.SIGKILL)
        except asyncio.CancelledError:
            _signal_group(pgid, signal.SIGKILL)
            raise
        finally:
            self._transport.close()
