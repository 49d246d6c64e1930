"""What the paths of a `shell` job mean: a leading `~` in an argument or in `cwd` is expanded when the job runs,
as a shell would (no shell runs, so nothing else would); a relative path in an argument is refused when the job
is scheduled unless the job gives a `cwd` (the server's own working directory depends on how it was started)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ...errors import clip
from ...redaction import scrub_text
from .errors import PathNotUsableError

__all__ = ["check_paths", "expand_home"]

_RELATIVE_PREFIXES = ("./", "../")


def expand_home(text: str) -> str:
    """`text` with a leading `~` or `~/...` made the home folder of the user the server runs as (`~name`,
    `~name/...`: user `name`'s); any other text, and a `~name` of no user, unchanged."""
    return os.path.expanduser(text) if text.startswith("~") else text


def _is_relative_path(argument: str) -> bool:
    return argument in (".", "..") or argument.startswith(_RELATIVE_PREFIXES)


def _example(argument: str) -> str:
    """An absolute path for the message that refuses `argument`: its last part in the server user's home."""
    name = os.path.basename(argument.rstrip("/")) or "notes.txt"
    return os.path.join(os.path.expanduser("~"), "notes.txt" if name in (".", "..", "~") else name)


def check_paths(argv: Sequence[str], cwd: str | None) -> list[str]:
    """At schedule time: refuse (`PathNotUsableError`) a path that would not mean what it says when the job
    runs; return a note of what each `~` path is read as (none when there is none)."""
    given = [(f"argv[{index}]", argument) for index, argument in enumerate(argv)]
    if cwd is not None:
        given.append(("cwd", cwd))
    read_as: list[str] = []
    for where, text in given:
        if not text.startswith("~"):
            continue
        full = expand_home(text)
        if full.startswith("~"):
            user = text.split("/", 1)[0]
            raise PathNotUsableError(
                f"{where} {clip(text)}: {clip(user)} is no user of the server, so it would be passed literally. "
                f"Give an absolute path such as {_example(text)!r}."
            )
        if scrub_text(text) != text:  # a secret's value: what it expands to would show part of it
            read_as.append(f"{where} (a secret) in that folder")
        else:
            read_as.append(f"{where} {clip(text)} as {clip(full)}")
    if cwd is not None and not os.path.isabs(expand_home(cwd)):
        raise PathNotUsableError(
            f"cwd {clip(cwd)} is a relative path, read from the server's working directory (which depends on how "
            f"the server was started): give an absolute path such as {_example(cwd)!r}."
        )
    if cwd is None:
        for index, argument in enumerate(argv[1:], 1):
            if _is_relative_path(argument):
                raise PathNotUsableError(
                    f"argv[{index}] {clip(argument)} is a relative path, read from the server's working directory "
                    f"(which depends on how the server was started): give an absolute path such as "
                    f"{_example(argument)!r}, or set cwd to the folder it is relative to."
                )
    if not read_as:
        return []
    return [f"Paths starting with '~' are read in the home folder of the user the server runs as, when the job "
            f"runs: {'; '.join(read_as)}."]
