"""A small disk for the disk-full tests: a tmpfs mounted on a folder of the test (root only), and a file that takes
its free space.

`small_disk(folder, size)` mounts it and unmounts it at the end, or skips the test (with the reason) where mounting
is impossible (not root, no tmpfs, a container without the capability).
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fill", "small_disk"]


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "3m") -> Iterator[Path]:
    """`folder` as a tmpfs of `size` while the block runs."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a small disk needs `mount -t tmpfs`, which needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the disk-full tests: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def fill(folder: Path, name: str = "filler") -> Path:
    """Append to `folder/name` until the disk has no byte left; returns the file (remove it to free the space)."""
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for block in (1 << 16, 1 << 12, 1 << 9, 1):
            data = b"\0" * block
            while True:
                try:
                    os.write(fd, data)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return path
