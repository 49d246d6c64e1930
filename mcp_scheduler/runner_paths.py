"""Where a store's background runner lives on this machine: its socket, its log, the marker of a user service.

Every file is named after the store (`store_key`): one runner per store, whatever started it (a front-end,
a user service, a person). The socket and the marker are what front-ends look for; the log is where a
detached runner writes, since it has no terminal. Nothing here creates a file: the runner, the service
installer and the front-ends do, each with the modes it needs (the socket 0600 in a 0700 folder).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .user_dirs import user_dir

__all__ = [
    "MAX_SOCKET_PATH",
    "runner_info_path",
    "runner_log_path",
    "runner_socket_path",
    "service_marker_path",
    "store_key",
]

MAX_SOCKET_PATH = 100
"""Longest Unix socket path used (the kernel's limit is 107 bytes on Linux, 103 on macOS)."""


def store_key(database: str) -> str:
    """A short name for a store: the first 16 hex digits of the SHA-256 of its absolute path or URL."""
    text = database if "://" in database else os.path.abspath(os.path.expanduser(database))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _runtime_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "mcp-scheduler"
    # Without XDG_RUNTIME_DIR platformdirs falls back to /tmp/runtime-UID (with a warning); say so ourselves.
    if os.name == "posix" and not runtime:
        return Path(f"/tmp/mcp-scheduler-{os.getuid()}")
    from platformdirs import user_runtime_dir

    return Path(user_runtime_dir("mcp-scheduler", appauthor=False))


def runner_socket_path(database: str) -> Path:
    """The Unix socket where the store's runner serves front-ends: `runner-<key>.sock` in the user's runtime
    directory, or in `/tmp/mcp-scheduler-UID` when that path would be too long for a socket."""
    path = _runtime_dir() / f"runner-{store_key(database)}.sock"
    if len(os.fsencode(path)) > MAX_SOCKET_PATH and os.name == "posix":
        path = Path(f"/tmp/mcp-scheduler-{os.getuid()}") / path.name
    return path


def runner_info_path(database: str) -> Path:
    """The runner's registration beside its socket (`runner-<key>.json`): its pid, start time, log file, socket,
    how it was started and the fingerprint of its operator settings; written by the runner (0600), removed
    when it stops."""
    return runner_socket_path(database).with_suffix(".json")


def runner_log_path(database: str) -> Path:
    """The log file of the store's background runner: `runner-<key>.log` in the user's state directory."""
    return user_dir("state") / f"runner-{store_key(database)}.log"


def service_marker_path(database: str) -> Path:
    """The file that says a user service runs this store's jobs (`service-<key>.json` in the user's config
    directory): written by `mcp-scheduler service install`, removed by `uninstall`. While it exists,
    front-ends leave starting the runner to the service."""
    return user_dir("config") / f"service-{store_key(database)}.json"
