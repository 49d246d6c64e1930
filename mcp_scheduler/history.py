"""The batched history writer: run records and job bookkeeping, written in one transaction per batch.

Most records only append to memory; a background task gathers them for `flush_delay` seconds and
writes the batch through the store, off the event loop. What must be durable before the caller
goes on (the start of a run, the record that run_now answers with) goes through `commit()`, which
writes at once and returns when the batch holding it is committed: the runs due at one instant
still share one transaction. Readers call `flush()` first, so what they read includes every run
that has finished. A record attached to a job (`attach`: the count of its fires that did not run) waits
for the next batch that writes that job's bookkeeping. The start of a run that the store holds for this runner (a
request it took, a chained run it decided, a queue message's run) is a compare-and-swap from that record (`swap`),
made in the transaction of the next batch, after its records: it costs no transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

from ._waits import wait_set
from .backoff import Backoff
from .clocks import Clock
from .events import EventBus
from .models import RunRecord
from .store import Bookkeeping, SchedulerStore

__all__ = ["HistoryWriter", "PendingRecord"]

logger = logging.getLogger(__name__)

PendingRecord: TypeAlias = RunRecord | Callable[[], RunRecord]
"""A run record, or what builds it when its batch is written: a run's start, whose record is built off the path
that a thousand fires due at once take one after another (the builder must return the same record each time), or
an attached record (see `HistoryWriter.attach`), as it is when the batch is written."""


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
        clock: Clock,
        events: EventBus | None = None,
    ) -> None:
        self._store = store
        self._events = events  # its meter (when metrics are on) is told how long each batch took
        self._bookkeeping = bookkeeping
        self._history_limit = history_limit
        self._flush_delay = flush_delay
        self._runs: dict[str, PendingRecord] = {}  # by run_id: a later record of a run replaces the earlier one
        self._dirty: set[str] = set()
        self._attached: dict[str, dict[str, Callable[[], RunRecord]]] = {}  # by job: written with its bookkeeping
        self._needed = asyncio.Event()
        self._urgent = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        # One future per commit() waiting for the next batch (cheaper per fire than shielding a shared one).
        self._waiters: list[asyncio.Future[None]] = []
        # Swaps for the next batch (`swap`), by run id, each with the future its caller waits for.
        self._swaps: dict[str, tuple[RunRecord | None, RunRecord, asyncio.Future[bool]]] = {}
        # While writes fail (the store is down, its disk is full): batches further apart, and a quiet log; what
        # failed stays buffered and is tried again after that wait even if nothing new is recorded, at once for
        # a commit().
        self._failures = Backoff("Writing run history", logger, clock, base=flush_delay, cap=max(flush_delay, 5.0))

    def record(self, run: RunRecord, *, job_known: bool = True) -> None:
        """Buffer a run record (and, for a known job, mark it for bookkeeping)."""
        self._runs[run.run_id] = run
        if job_known:
            self._dirty.add(run.job_id)
        self._needed.set()

    def attach(self, job_id: str, run_id: str, build: Callable[[], RunRecord]) -> None:
        """Buffer the record of `run_id` that `build` makes, for the next batch that writes the bookkeeping of
        `job_id` (or `stop()`): a record that changes with each fire of its job (the count of its fires that did
        not run) costs a dict entry until then, and is committed exactly when their job's next run time is."""
        self._attached.setdefault(job_id, {})[run_id] = build

    def touch_attached(self) -> None:
        """Mark for the next batch every job with an attached record that no batch has written yet."""
        if self._attached:
            self._dirty.update(self._attached)
            self._needed.set()

    def touch(self, job_id: str) -> None:
        """Mark a job whose state changed, for the next batch."""
        self._dirty.add(job_id)
        self._needed.set()

    async def commit(
        self, run: RunRecord | None = None, *, job_id: str | None = None, run_id: str | None = None,
        build: Callable[[], RunRecord] | None = None,
    ) -> None:
        """Buffer `run` (or the record of `run_id` that `build` makes when the batch is written), and the
        bookkeeping of `job_id`, and return once they are committed.

        Everything buffered before the write starts goes into the same transaction; an error of that
        write is raised here (the records stay buffered for the next batch).
        """
        if run is not None:
            self.record(run, job_known=job_id is not None)
        elif build is not None and run_id is not None:
            self._runs[run_id] = build
            self._needed.set()
        if job_id is not None:
            self.touch(job_id)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._task is None:
            await self.flush()
        else:
            self._urgent.set()
        await waiter

    async def swap(self, expected: RunRecord | None, run: RunRecord, *, job_id: str | None = None) -> bool:
        """Write `run` in place of the stored `expected` (None: no record of its run stored), as the runner, in the
        transaction of the next batch, after its records (a chained run's waiting record buffered in it is stored
        by then: `SchedulerStore.write_batch`'s `swaps`); return once committed: True if written, False if the store
        holds another record of the run or this process lost the runner lease. The bookkeeping of `job_id` follows
        with the next batch. A failed write raises."""
        done = asyncio.get_running_loop().create_future()
        if (earlier := self._swaps.pop(run.run_id, None)) is not None:
            earlier[2].set_result(False)  # (one swap of a run per batch: the later one is what this process meant)
        self._swaps[run.run_id] = (expected, run, done)
        self._needed.set()
        if self._task is None:
            with contextlib.suppress(Exception):  # the write's error is the future's too
                await self.flush()
        else:
            self._urgent.set()
        if not await done:
            return False
        if job_id is not None:
            self.touch(job_id)
        return True

    def forget(self, job_id: str) -> None:
        """Drop pending bookkeeping of a job that is gone (its run records are still written)."""
        self._dirty.discard(job_id)
        attached = self._attached.pop(job_id, None)
        if attached:
            self._runs.update(attached)
            self._needed.set()

    def start(self) -> None:
        """Start the background writer (in the running event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._write_forever(), name="mcp-scheduler-history")

    async def stop(self) -> None:
        """Stop the background writer (a write in progress is let finish), then write what is still buffered."""
        task, self._task = self._task, None
        if task is not None:
            async with self._lock:  # not in the middle of a write: cancelling it there would fail its commits
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for job_id, attached in self._attached.items():
            self._runs.update(attached)
            self._dirty.add(job_id)
        self._attached.clear()
        await self.flush()

    async def flush_before_close(self) -> None:
        """`flush`, for a close that must go on whatever happens: a failed write is logged, its records stay
        buffered, and `stop` writes them again (raising if it still cannot, once the close let go of the rest)."""
        try:
            await self.flush()
        except Exception as exc:
            logger.warning("Could not write the run history while closing (trying once more at the end): %s", exc)

    async def _write_forever(self) -> None:
        while True:
            await self._needed.wait()
            if not self._urgent.is_set():
                # gather a batch: one write for many runs (a commit() cuts the wait short); after failed
                # writes, wait longer each time (the store is down)
                await wait_set(self._urgent, self._failures.delay())
            try:
                await self.flush()
            except Exception as exc:
                self._failures.failed(exc)
                self._needed.set()  # what failed is buffered again: try again, new records or not
            else:
                self._failures.succeeded()

    async def flush(self) -> None:
        """Write the buffered records and bookkeeping now, in one transaction."""
        async with self._lock:
            self._needed.clear()
            self._urgent.clear()
            waiters, self._waiters = self._waiters, []
            runs, self._runs = self._runs, {}
            swaps, self._swaps = self._swaps, {}
            dirty, self._dirty = self._dirty, set()
            if self._attached:
                for job_id in dirty:
                    attached = self._attached.pop(job_id, None)
                    if attached:
                        runs.update(attached)
            try:
                books = self._bookkeeping(dirty)
                swapped: set[str] = set()
                if runs or books or swaps:
                    records = [run if isinstance(run, RunRecord) else run() for run in runs.values()]
                    began = time.perf_counter()
                    swapped = await self._store.write_batch(
                        records, books, self._history_limit, swaps=[(old, new) for old, new, _ in swaps.values()]
                    )
                    if self._events is not None and (meter := self._events.meter) is not None:
                        meter.store_write(time.perf_counter() - began)
            except BaseException as exc:
                self._runs = runs | self._runs
                self._dirty |= dirty
                self._needed.set()  # the background writer tries again, whoever's flush failed
                error = exc if isinstance(exc, Exception) else RuntimeError("history write cancelled")
                failed: list[asyncio.Future[Any]] = [*waiters, *(done for _, _, done in swaps.values())]
                for waiter in failed:
                    if not waiter.done():
                        waiter.set_exception(error)  # a swap is not tried again: its caller decides
                raise
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            for run_id, (_, _, done) in swaps.items():
                if not done.done():
                    done.set_result(run_id in swapped)
