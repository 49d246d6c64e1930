"""Files and folders only the user may read: created with their final mode from the start, never through a link.

Light on purpose (the thin stdio front-end imports it): the standard library only.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["make_private_dirs", "replace_file"]


def make_private_dirs(folder: Path | str) -> None:
    """Create `folder` and its missing parents with mode 0700 (whatever the umask); existing ones are left as
    they are."""
    missing: list[Path] = []
    current = Path(folder)
    while not os.path.lexists(current) and current != current.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        os.chmod(path, 0o700)


def replace_file(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` with `data` atomically: a draft beside it, created with `mode` from its first byte and
    never through a link, synced, then renamed over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        draft.unlink()
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(draft, mode)
        os.replace(draft, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            draft.unlink()
        raise
