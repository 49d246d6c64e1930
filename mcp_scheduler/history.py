"""The batched history writer: run records and job bookkeeping, written in one transaction per batch.

Fires only append to memory; a background task gathers them for `flush_delay` seconds and writes
the batch through the store, off the event loop. Readers call `flush()` first, so what they read
includes every run that has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from .models import RunRecord
from .store import Bookkeeping, SchedulerStore

__all__ = ["HistoryWriter"]

logger = logging.getLogger(__name__)


class HistoryWriter:
    """Buffers run records and the ids of jobs whose state changed; writes both in batches.

    `bookkeeping(job_ids)` is asked at write time for the current state of the changed jobs, so a
    job that fired several times in one batch is written once, as it is now.
    """

    def __init__(
        self,
        store: SchedulerStore,
        bookkeeping: Callable[[Iterable[str]], list[Bookkeeping]],
        *,
        history_limit: int,
        flush_delay: float,
    ) -> None:
        self._store = store
        self._bookkeeping = bookkeeping
        self._history_limit = history_limit
        self._flush_delay = flush_delay
        self._runs: list[RunRecord] = []
        self._dirty: set[str] = set()
        self._needed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def record(self, run: RunRecord, *, job_known: bool = True) -> None:
        """Buffer a run record (and, for a known job, mark it for bookkeeping)."""
        self._runs.append(run)
        if job_known:
            self._dirty.add(run.job_id)
        self._needed.set()

    def touch(self, job_id: str) -> None:
        """Mark a job whose state changed, for the next batch."""
        self._dirty.add(job_id)
        self._needed.set()

    def forget(self, job_id: str) -> None:
        """Drop pending bookkeeping of a job that is gone (its run records are still written)."""
        self._dirty.discard(job_id)

    def start(self) -> None:
        """Start the background writer (in the running event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._write_forever(), name="mcp-scheduler-history")

    async def stop(self) -> None:
        """Stop the background writer, then write what is still buffered."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    async def _write_forever(self) -> None:
        while True:
            await self._needed.wait()
            await asyncio.sleep(self._flush_delay)  # gather a batch: one write for many runs
            try:
                await self.flush()
            except Exception:
                logger.exception("Writing run history failed; will retry with the next batch")

    async def flush(self) -> None:
        """Write the buffered records and bookkeeping now, in one transaction."""
        async with self._lock:
            self._needed.clear()
            runs, self._runs = self._runs, []
            dirty, self._dirty = self._dirty, set()
            books = self._bookkeeping(dirty)
            if not runs and not books:
                return
            try:
                await self._store.write_batch(runs, books, self._history_limit)
            except BaseException:
                self._runs[:0] = runs
                self._dirty |= dirty
                raise
