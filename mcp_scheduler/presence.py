"""Which processes serve a SQLite database: each one registers itself while it is open.

A serving process writes `<database>.procs/<pid>.json` (pid, host, since, transport, and for HTTP and
SSE the address it listens on) and holds a
shared `flock` on it until it closes, when it removes the file. A reader (`mcp-scheduler status`)
lists the files whose lock is still held: a process that died lost its lock with it, so its file is
stale, ignored and removed. The runner among them is the one named in the lease file (`lease.py`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

__all__ = ["Presence", "ServingProcess", "presence_dir", "serving_processes"]


def presence_dir(database: str | os.PathLike[str]) -> Path:
    """The folder where the processes serving `database` register (beside the database's real file)."""
    return Path(f"{os.path.realpath(database)}.procs")


@dataclass(frozen=True)
class ServingProcess:
    """One process that serves a database, as it registered itself."""

    pid: int
    host: str
    since: str
    transport: str
    address: str = ""
    """Where it listens (`host:port`, HTTP and SSE), "" for stdio."""


class Presence:
    """This process's registration as a server of `database`: `register()` on open, `unregister()` on close."""

    def __init__(self, database: str | os.PathLike[str], *, transport: str, address: str | None = None) -> None:
        self.path = presence_dir(database) / f"{os.getpid()}.json"
        self.transport = transport
        self.address = address
        self._file: IO[str] | None = None

    def register(self) -> None:
        """Write this process's file and hold a shared lock on it (no-op if registered already)."""
        if self._file is not None:
            return
        for attempt in range(5):
            try:
                self._file = self._write()
                return
            except FileNotFoundError:  # the last process to leave removed the folder meanwhile: make it again
                if attempt == 4:
                    raise

    def _write(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Written and locked under a temporary name, then renamed: a reader never sees it unlocked or half written.
        draft = self.path.with_suffix(".tmp")
        try:
            handle = open(draft, "w")  # noqa: SIM115 - held open (and locked) while this process serves
        except OSError as exc:
            _raise_if_disk_full(draft, exc)
            raise
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            since = datetime.now(UTC).isoformat(timespec="seconds")
            info = {"pid": os.getpid(), "host": socket.gethostname(), "since": since, "transport": self.transport}
            if self.address:
                info["address"] = self.address
            handle.write(json.dumps(info))
            handle.flush()
            os.replace(draft, self.path)
        except BaseException as exc:
            with contextlib.suppress(OSError):  # closing flushes what a full disk refused, and fails again
                handle.close()
            with contextlib.suppress(FileNotFoundError):
                draft.unlink()  # a failed start leaves no file behind
            with contextlib.suppress(OSError):  # nor the folder, unless others serve
                self.path.parent.rmdir()
            if isinstance(exc, OSError):
                _raise_if_disk_full(self.path, exc)
            raise
        return handle

    def unregister(self) -> None:
        """Remove this process's file and let go of its lock (no-op if not registered)."""
        handle, self._file = self._file, None
        if handle is None:
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            with contextlib.suppress(OSError):  # the last one leaves no folder behind (not empty: others serve)
                self.path.parent.rmdir()
        finally:
            handle.close()


def _raise_if_disk_full(path: Path, exc: OSError) -> None:
    """Raise `DiskFullError` naming `path` if `exc` says the disk is full."""
    # Imported here: the thin stdio front-end reads registrations (this module) and must not load the errors'
    # dependencies (agentool_bridge, pydantic).
    from .errors import DiskFullError, is_disk_full

    if is_disk_full(exc):
        raise DiskFullError(path) from exc


def serving_processes(database: str | os.PathLike[str]) -> list[ServingProcess]:
    """The processes serving `database` now, oldest first; files left by dead processes are removed."""
    found: list[ServingProcess] = []
    folder = presence_dir(database)
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            handle = open(path)  # noqa: SIM115 - closed below
        except FileNotFoundError:
            continue  # unregistered meanwhile
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # a live process holds its shared lock
                try:
                    info = json.loads(handle.read() or "{}")
                    found.append(ServingProcess(int(info["pid"]), str(info["host"]), str(info["since"]),
                                                str(info["transport"]), str(info.get("address") or "")))
                except (ValueError, KeyError, TypeError):
                    continue  # being written: it is listed next time
                continue
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:  # not a new file of a reused pid
                    path.unlink()  # nobody holds it: its process died without unregistering
    return sorted(found, key=lambda p: (p.since, p.pid))
