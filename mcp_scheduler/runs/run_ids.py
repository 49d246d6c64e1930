"""Run ids: 32 hex digits (128 random bits from the operating system), read from it a few hundred at a time."""

from __future__ import annotations

import os

__all__ = ["RunIds"]

_BATCH = 256  # ids per read
_forks = [0]  # forks this process is into: a child drops the bytes its parent read (they are its parent's ids)
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class RunIds:
    """Draws run ids, `secrets.token_hex(16)` alike, from a buffer of `os.urandom` bytes: one system call per run id
    was 2 us of the path that every fire due at one moment takes one after another."""

    __slots__ = ("_at", "_buffer", "_fork")

    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0
        self._fork = _forks[0]

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._buffer) or self._fork != _forks[0]:
            self._buffer, at, self._fork = os.urandom(16 * _BATCH), 0, _forks[0]
        self._at = at + 16
        return self._buffer[at:at + 16].hex()
