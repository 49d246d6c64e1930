"""The bearer token of the HTTP transports, kept in a file only its owner can read (as ssh keeps its keys).

`load_token(path)` reads the token, or generates one (`secrets.token_urlsafe(32)`) into a new file of
mode 0600, in directories it creates with mode 0700, written atomically: a concurrent start sees
either no file or the whole token, and two starts at once end up with the same token. A file that
others could read or that is not the user's own is refused, with the command that fixes it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass, field

from ..errors import TokenFileError
from ..private_files import make_private_dirs
from ..setup_checks import path_problem

__all__ = ["BearerToken", "load_token", "TOKEN_BYTES"]

TOKEN_BYTES = 32
"""Random bytes in a generated token (43 URL-safe characters)."""

_MAX_FILE_BYTES = 4096
_CHECKS_OWNER = hasattr(os, "geteuid")  # POSIX; on Windows the user profile's ACLs keep the file private


@dataclass(frozen=True)
class BearerToken:
    """A token read from (or just written to) a token file."""

    value: str = field(repr=False)
    path: str
    created: bool
    """True if this call generated the token (and wrote the file)."""


def load_token(path: str) -> BearerToken:
    """The token in the file at `path`, generated into a new private file if there is none.

    Raises `TokenFileError` if the file is readable or writable by others than its owner, is not the
    user's own, is not a regular file, holds no token, or cannot be read or created.
    """
    try:
        return BearerToken(_read(path), path, created=False)
    except FileNotFoundError:
        pass
    except TokenFileError:
        raise
    except OSError as exc:  # a file in the way of its folder, no permission
        raise TokenFileError(
            f"Cannot read the token file {path} ({path_problem(path, exc)}): give --token-file a file you can "
            "read, in a folder you can write."
        ) from None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        created = _create(path, token)
    except OSError as exc:
        if isinstance(exc, TokenFileError):
            raise
        raise TokenFileError(
            f"Cannot create the token file {path} ({path_problem(path, exc)}): give --token-file a file in a "
            "folder you can write."
        ) from None
    if created:
        return BearerToken(token, path, created=True)
    return BearerToken(_read(path), path, created=False)  # another process created it first: use theirs


def _read(path: str) -> str:
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block us
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        _check_private(path, info)
        data = os.read(fd, _MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    text = data.decode("utf-8", errors="replace").strip()
    if len(data) > _MAX_FILE_BYTES or not text or any(c.isspace() or not c.isprintable() for c in text):
        raise TokenFileError(
            f"The token file {path} does not hold one token (a single line of at most {_MAX_FILE_BYTES} "
            "printable characters, no spaces): delete it and a new token is generated at the next start "
            "(or by `mcp-scheduler token`)."
        )
    return text


def _check_private(path: str, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise TokenFileError(f"The token file {path} is not a regular file: give --token-file a file of your own.")
    if not _CHECKS_OWNER:
        return
    uid = os.geteuid()
    if info.st_uid != uid:
        raise TokenFileError(
            f"The token file {path} belongs to uid {info.st_uid}, not to this user (uid {uid}): a token that "
            f"another user can change is not a secret. Delete it (a new one is generated at the next start), or "
            f"make it yours: chown {uid} {path} && chmod 600 {path}"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise TokenFileError(
            f"Permissions {mode:04o} for the token file {path} are too open: other users could read the token "
            f"and act as you. It must be readable by its owner only: chmod 600 {path}"
        )


def _create(path: str, token: str) -> bool:
    """Write `token` to a new file at `path`; False if a file appeared there meanwhile (left as it is)."""
    directory = os.path.dirname(os.path.abspath(path))
    make_private_dirs(directory)
    fd, temporary = tempfile.mkstemp(prefix=".token-", dir=directory)  # mode 0600, whatever the umask
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(token + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)  # atomic, and never replaces a file another process wrote first
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: replace (the rare race then costs one token)
            os.replace(temporary, path)
        _sync_directory(directory)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _sync_directory(directory: str) -> None:
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory
        pass
    finally:
        os.close(fd)
