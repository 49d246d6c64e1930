"""This process's writes to jobs' stored rows, so that following the store does not undo them."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator

__all__ = ["LocalWrites"]


class LocalWrites:
    """Counts this process's writes per job: those not yet committed, and all of them (to compare with a read of
    the change feed started before them)."""

    def __init__(self) -> None:
        self._done: Counter[str] = Counter()  # this process's writes per job, newer than a feed read
        self._writing: Counter[str] = Counter()  # this process's writes per job not yet committed

    @contextlib.asynccontextmanager
    async def write(self, job_id: str) -> AsyncIterator[None]:
        """Mark a write of this process to a job's stored row."""
        self._writing[job_id] += 1
        self._done[job_id] += 1
        try:
            yield
        finally:
            self._writing[job_id] -= 1
            self._done[job_id] += 1

    def snapshot(self) -> Counter[str]:
        return self._done.copy()

    def untouched(self, job_id: str, before: Counter[str]) -> bool:
        """True if this process did not write the job since `before` (what was read of it is not stale)."""
        return self._writing[job_id] == 0 and self._done[job_id] == before[job_id]
