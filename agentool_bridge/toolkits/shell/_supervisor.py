"""The supervisor of one `shell` run on Linux: whatever the program starts ends with the run.

Run as `python -I -S _supervisor.py SERVER_PID GRACE LC_CTYPE PATH ARGV0 [ARG...]` (standard library
only, so that it starts fast without site-packages); LC_CTYPE is `-` if the program's environment has
none, else `=` and its value (Python may set it in its own environment when it starts, PEP 538).

It makes itself a child subreaper, so that every process the program leaves behind (orphans, `setsid -f`
children, double-forked daemons) is reparented to it rather than to init, and asks for SIGTERM when the
server dies. It starts `PATH` as `ARGV0 ARG...` in a new session, with the standard streams it was given
and without keeping copies of them, and waits:

- when the program exits, it kills (SIGKILL) every process left below it, reaps them, and exits with the
  program's status: its exit code, or death by the same signal;
- on SIGTERM, SIGINT or SIGHUP (the server stopping the run, or dying), it sends SIGTERM to every process
  below it, waits up to GRACE seconds, kills what is left, and exits with the program's status.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a third of this module's start-up
    from typing import NoReturn

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
_WATCHED = _STOP_SIGNALS | {signal.SIGCHLD}
_POLL = 0.05
"""Seconds between looks at what is left: grandchildren that exit send no SIGCHLD to the supervisor."""
_IGNORED_BY_PYTHON = tuple(s for s in (getattr(signal, "SIGPIPE", None), getattr(signal, "SIGXFSZ", None)) if s)


def _prctl(option: int, value: int) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(option, value, 0, 0, 0)) == 0


def _parents() -> dict[int, int]:
    """The parent of every process on the machine, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                text = stat.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields after the last ')' are fixed.
        fields = text[text.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            parents[int(entry)] = int(fields[1])
    return parents


def _below(root: int) -> list[int]:
    """Every process below `root` (children first), zombies included."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def _signal_below(sig: int) -> bool:
    """Send `sig` to every process below this one; False if there is none.

    Each is signalled through a pidfd opened after checking that its parent is still one of ours, so that a
    pid reused meanwhile by someone else's process is never signalled.
    """
    me = os.getpid()
    pids = _below(me)
    ours = {me, *pids}
    for pid in pids:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            continue  # gone already
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                text = stat.read()
            if int(text[text.rfind(b")") + 2 :].split()[1]) in ours:
                signal.pidfd_send_signal(pidfd, sig)
        except (OSError, ValueError, IndexError):
            pass
        finally:
            os.close(pidfd)
    return bool(pids)


def _reap(program: int, status: int | None) -> int | None:
    """Reap every child that has ended; the program's wait status once it is among them."""
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == program:
            status = wait_status


def _has_children() -> bool:
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def _wait_a_little() -> None:
    signal.sigtimedwait({signal.SIGCHLD}, _POLL)


def _kill_the_rest(program: int, status: int | None) -> int | None:
    """SIGKILL everything below until nothing is left; reap it all."""
    while True:
        status = _reap(program, status)
        if not _signal_below(signal.SIGKILL):
            return _reap(program, status)
        _wait_a_little()


def _stop_all(program: int, status: int | None, grace: float) -> int | None:
    """SIGTERM (and SIGCONT, for stopped ones) to everything below, up to `grace` s to end, then SIGKILL."""
    if _signal_below(signal.SIGTERM):
        _signal_below(signal.SIGCONT)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            status = _reap(program, status)
            if not _below(os.getpid()):
                break
            _wait_a_little()
    return _kill_the_rest(program, status)


def _hand_over_stdio() -> list[int]:
    """Move our standard streams to descriptors the program does not inherit, and point 0, 1, 2 at /dev/null.

    The program gets the moved ones as its 0, 1, 2; once it is started we close them, so that only the
    program (and what it starts) holds the server's pipes.
    """
    moved = [os.dup(fd) for fd in (0, 1, 2)]  # close-on-exec
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return moved


def _exit_like(status: int) -> NoReturn:
    """Exit as the program did: with its exit code, or killed by the same signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
            signal.signal(sig, signal.SIG_DFL)
        except (ImportError, OSError, ValueError):
            pass
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # a signal that does not end a process by default
    os._exit(os.waitstatus_to_exitcode(status))


def main(argv: list[str]) -> NoReturn:
    """Supervise one program: `SERVER_PID GRACE LC_CTYPE PATH ARGV0 [ARG...]`."""
    server, grace, ctype, path, args = int(argv[0]), float(argv[1]), argv[2], argv[3], argv[4:]
    environment = dict(os.environ)
    if ctype.startswith("="):
        environment["LC_CTYPE"] = ctype[1:]
    else:
        environment.pop("LC_CTYPE", None)
    signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != server:  # the server died before PR_SET_PDEATHSIG: nobody wants this run any more
        os._exit(128 + signal.SIGTERM)
    stdio = _hand_over_stdio()
    try:
        program = os.posix_spawn(
            path,
            args,
            environment,
            file_actions=[(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(stdio)],
            setsid=True,
            setsigmask=(),
            setsigdef=_IGNORED_BY_PYTHON,
        )
    except OSError as exc:
        os.write(stdio[2], f"shell: cannot run {path}: {exc.strerror}\n".encode(errors="replace"))
        os._exit(127 if exc.errno == errno.ENOENT else 126)
    for fd in stdio:
        os.close(fd)
    status: int | None = None
    while status is None:
        received = signal.sigwaitinfo(_WATCHED)
        if received.si_signo in _STOP_SIGNALS:
            status = _stop_all(program, status, grace)
            break
        status = _reap(program, status)
    if _has_children():
        status = _kill_the_rest(program, status)
    assert status is not None
    _exit_like(status)


if __name__ == "__main__":
    main(sys.argv[1:])
