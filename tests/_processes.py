"""Background runners that tests started, found by the runtime folder in their environment and ended by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def runners_under(root: Path | str, *, databases: Path | str | None = None) -> list[int]:
    """The pids of `mcp_scheduler runner` processes whose XDG_RUNTIME_DIR is inside `root`, or (when given) whose
    `--db` is inside `databases` (a runner started by a client that passes its child no XDG_RUNTIME_DIR)."""
    return processes_under(root, runners_only=True, databases=databases)


def processes_under(
    root: Path | str, *, runners_only: bool = False, databases: Path | str | None = None
) -> list[int]:
    """The pids of live `mcp_scheduler` processes (only runners, if asked) whose XDG_RUNTIME_DIR is inside `root`,
    or whose `--db` is inside `databases`."""
    prefix = os.fsencode(os.path.join(root, ""))
    db_prefix = os.fsencode(os.path.join(databases, "")) if databases is not None else None
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[-1].split()[0]
        except OSError:
            continue
        if state == b"Z" or b"mcp_scheduler" not in cmdline or (runners_only and b"runner" not in cmdline):
            continue
        runtime = next((v.split(b"=", 1)[1] for v in environ if v.startswith(b"XDG_RUNTIME_DIR=")), b"")
        database = cmdline[cmdline.index(b"--db") + 1] if b"--db" in cmdline[:-1] else b""
        if os.path.join(runtime, b"").startswith(prefix) or (
            db_prefix is not None and database.startswith(db_prefix)
        ):
            found.append(int(entry))
    return found


def end_runners_under(root: Path | str, *, databases: Path | str | None = None, within: float = 20.0) -> list[int]:
    """End (SIGTERM, then SIGKILL after `within` seconds) every runner under `root` (or on a database inside
    `databases`); the pids it found."""
    pids = runners_under(root, databases=databases)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and set(runners_under(root, databases=databases)) & set(pids):
        time.sleep(0.05)
    for pid in set(runners_under(root, databases=databases)) & set(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids
