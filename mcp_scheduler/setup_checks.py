"""Set-up mistakes found before the scheduler starts, each told in one line that names the flag.

The database's folder (created if missing, and writable), the log folder (`--log-dir`), and the wording
of a SQLite error about the database file. `SchedulerRuntime` runs the checks of the folders, so that a
program embedding it gets the same messages as the command line.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .errors import DiskFullError, SetupError, is_disk_full

__all__ = ["check_log_dir", "describe_database_error", "path_problem", "prepare_database_folder"]


def _blocker(path: Path) -> Path | None:
    """The nearest existing ancestor of `path` (or `path` itself) when it is not a folder, else None."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return None if os.path.isdir(candidate) else candidate
    return None


def path_problem(path: str | os.PathLike[str], exc: OSError) -> str:
    """Why `path` (or its folder) could not be opened or made, in words: a file in the way, else the system's."""
    blocker = _blocker(Path(path).parent)
    if blocker is not None:
        return f"{blocker} is a file, not a folder"
    return (exc.strerror or str(exc)).lower()


def _nearest_folder(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.isdir(candidate):
            return candidate
    return Path(path.anchor or "/")


def prepare_database_folder(database: str) -> None:
    """Create the folder of the SQLite file `database` if missing; `SetupError` if the file cannot be used there.

    Refused: a path that is a folder, a folder that cannot be created (a file in the way, no permission),
    a folder or an existing file this user cannot write (SQLite writes its journal beside the database).
    """
    path = Path(database)
    advice = "pass --db FILE, a file in a folder you can write"
    if os.path.isdir(path):
        raise SetupError(f"The database {database} is a folder, not a file: {advice} (such as "
                         f"{path / 'scheduler.sqlite'}).")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = path_problem(path, exc)
        raise SetupError(f"Cannot create the folder {folder} of the database {database}: {why}; {advice}.") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SetupError(f"The folder {folder} of the database {database} is not writable by this user (SQLite "
                         f"writes its journal beside the database): {advice}, or make the folder writable.")
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        raise SetupError(f"The database {database} is not readable and writable by this user: {advice}, or fix "
                         "its permissions.")


def check_log_dir(log_dir: str) -> None:
    """`SetupError` unless `log_dir` (`--log-dir`) is a folder this user can write, or one that can be created.

    The folder itself is created when a job first writes a log file.
    """
    path = Path(log_dir)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise SetupError(f"--log-dir {log_dir} is a file, not a folder: give a folder (it is created if missing).")
    blocker = _blocker(path)
    if blocker is not None:
        raise SetupError(f"--log-dir {log_dir} cannot be created: {blocker} is a file, not a folder; give another "
                         "folder.")
    nearest = _nearest_folder(path)
    if not os.access(nearest, os.W_OK | os.X_OK):
        what = "is not writable" if nearest == path else f"cannot be created: {nearest} is not writable"
        raise SetupError(f"--log-dir {log_dir} {what} by this user: give a folder you can write.")


def describe_database_error(database: str | None, exc: sqlite3.Error) -> str:
    """A one-line account of a SQLite error met while opening `database`, naming what to do."""
    text = str(exc) or type(exc).__name__
    if database and is_disk_full(exc):
        return str(DiskFullError(database))
    if "file is not a database" in text:
        return (f"{database} is not a SQLite database ({text}): pass --db the scheduler's database file, or the "
                "name of a new file.")
    if "unable to open database file" in text or "readonly database" in text:
        return f"Cannot open the database {database} ({text}): pass --db FILE, a file in a folder you can write."
    return f"The database {database}: {text}"
