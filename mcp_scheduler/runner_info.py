"""What a store's background runner tells the other processes of this machine, and how they check it.

The runner writes its registration (`RunnerInfo`) beside its socket (`runner_info_path`): its pid, host,
start time, how it was started, its log file and socket, and the fingerprint of its operator settings.
It writes it `starting` right after it took the runner lease and `ready` once its socket listens, and
removes it when it stops. Front-ends read it to decide whether to pipe a client to the runner (same
fingerprint) or to serve in-process; `mcp-scheduler status`, `scheduler_status` and `runner stop` read it
to name the runner.

The socket's folder is checked as ssh checks its own: a real folder (not a link), the user's, and not
writable by group or others; the runner creates it with mode 0700. This module is light on purpose (the
front-end that only pipes a client to the runner imports it, and nothing heavy).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from .private_files import make_private_dirs
from .runner_paths import runner_info_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .settings import Settings

__all__ = [
    "FRONT_END_SETTINGS",
    "RunnerInfo",
    "check_private_folder",
    "make_private_folder",
    "process_alive",
    "read_runner_info",
    "remove_runner_info",
    "settings_fingerprint",
    "write_runner_info",
]

FRONT_END_SETTINGS = frozenset({
    "transport", "host", "port", "path", "auth_tokens", "allowed_hosts", "allow_unauthenticated", "stateless_http",
    "token_file", "log_level", "background_runner", "runner_idle_exit", "started_by", "metrics", "metrics_port",
    "metrics_max_jobs",
})
"""Settings that concern how a process serves its clients, not what jobs may do: left out of the fingerprint
(every other setting is in it, so one added later counts unless it is listed here)."""

_MAX_INFO_BYTES = 64 * 1024


@dataclass(frozen=True)
class RunnerInfo:
    """A background runner as it registered itself beside its socket."""

    pid: int
    host: str
    since: str
    """When it started (ISO 8601, UTC)."""
    started_by: str
    """frontend (a server started it), service (a user service), manual (a person ran `mcp-scheduler runner`)."""
    log_file: str
    socket: str
    database: str
    fingerprint: str
    """`settings_fingerprint` of its settings: a front-end pipes a client to it only if its own is the same."""
    ready: bool = False
    """True once the socket listens (before: it holds the runner lease and is loading the jobs)."""

    def to_json(self) -> str:
        """The registration as written."""
        return json.dumps(dataclasses.asdict(self), indent=1)


def now_text() -> str:
    """The current time as `RunnerInfo.since` has it."""
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def this_host() -> str:
    """This machine's name, as the runner lease files have it."""
    return socket.gethostname()


def settings_fingerprint(settings: Settings, environ: Mapping[str, str]) -> str:
    """A digest of everything that decides what jobs may do: every setting but `FRONT_END_SETTINGS` (database,
    toolkits, secrets' names, quotas, address and shell allowances, time zone, ...), the contents of the
    servers file, the values of the variables jobs may read (--secret, --shell-env), the variables the
    settings leave to the environment (TZ without --timezone, PATH when shell jobs may run programs by name)
    and the installation that runs (Python, package folder)."""
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)
              if f.name not in FRONT_END_SETTINGS}
    if settings.servers_file:
        try:
            values["servers_file_digest"] = hashlib.sha256(Path(settings.servers_file).read_bytes()).hexdigest()
        except OSError as exc:
            values["servers_file_digest"] = f"unreadable: {type(exc).__name__}"
    # The values jobs would read (hashed here with the rest): a client that configures another secret gets a
    # server of its own rather than a runner that holds the first client's.
    read = (*settings.secrets, *settings.shell_env, *filter(None, [settings.events_secret_env]))
    values["env_allowed"] = {name: environ.get(name) for name in read}
    if not settings.timezone:
        values["env_TZ"] = environ.get("TZ")
    if settings.shell_executables:
        values["env_PATH"] = environ.get("PATH")
    package = Path(__file__).resolve().parent
    values["installation"] = [sys.executable, str(package), _mtime(package / "__init__.py")]
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns  # another version installed in place rewrites the files
    except OSError:
        return 0


def check_private_folder(folder: Path) -> None:
    """Raise `RunnerSocketError` unless `folder` is a folder (not a link) of this user that only the user may
    write to (as ssh requires of ~/.ssh): another user who can write there could put a socket of their own
    in place of the runner's and read every request."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        _refuse(f"The runner's folder {folder} does not exist.")
    if not stat.S_ISDIR(info.st_mode):
        _refuse(f"{folder} is not a folder (a link or a file is there): remove it, and the runner creates its "
                "folder with mode 0700 at its next start.")
    uid = os.geteuid()
    if info.st_uid != uid:
        _refuse(f"The runner's folder {folder} belongs to uid {info.st_uid}, not to this user (uid {uid}): another "
                "user could put a socket of their own there. Remove it (the runner creates its own), or point "
                "XDG_RUNTIME_DIR at a folder of yours.")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        _refuse(f"Permissions {mode:04o} for the runner's folder {folder} are too open: others could replace the "
                f"runner's socket. It must be writable by its owner only: chmod 700 {folder}")


def make_private_folder(folder: Path) -> None:
    """Create `folder` (mode 0700, its missing parents too) if it is missing, then `check_private_folder`."""
    make_private_dirs(folder)
    check_private_folder(folder)


def _refuse(message: str) -> None:
    from .errors import RunnerSocketError  # loaded only to refuse (errors.py is not light)

    raise RunnerSocketError(message)


def write_runner_info(info: RunnerInfo) -> Path:
    """Write `info` (mode 0600, atomically) beside its runner's socket, in the checked private folder."""
    path = runner_info_path(info.database)
    check_private_folder(path.parent)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(info.to_json())
        os.replace(draft, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(draft)
        raise
    return path


def remove_runner_info(database: str, pid: int) -> None:
    """Remove the registration of `database`'s runner if it is still `pid`'s (a later runner's stays)."""
    path = runner_info_path(database)
    info = _read(path)
    if info is not None and info.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read_runner_info(database: str) -> RunnerInfo | None:
    """The registration of `database`'s runner, or None if there is none, it is not the user's own or its
    process is gone (a killed runner leaves its file behind; on SQLite the lease file must name the same pid,
    in case that pid was reused)."""
    path = runner_info_path(database)
    try:
        check_private_folder(path.parent)
    except OSError:
        return None
    info = _read(path)
    if info is None or not process_alive(info.pid):
        return None
    if "://" not in database:
        from .status import sqlite_runner

        holder = sqlite_runner(database)
        if holder is None or holder.get("pid") != info.pid:
            return None
    return info


def _read(path: Path) -> RunnerInfo | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return None
        data = os.read(fd, _MAX_INFO_BYTES)
    finally:
        os.close(fd)
    try:
        fields = json.loads(data)
        return RunnerInfo(**{f.name: fields[f.name] for f in dataclasses.fields(RunnerInfo)})
    except (ValueError, TypeError, KeyError):
        return None


def process_alive(pid: int) -> bool:
    """True if a process `pid` runs (a zombie, which has exited but was not reaped, does not count)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's: alive, and not a runner of ours
    try:
        with open(f"/proc/{pid}/stat", "rb") as status:
            return status.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) said it exists
