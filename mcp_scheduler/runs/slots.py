"""The scheduler's run slots: at most `max_concurrent_runs` runs at a time in this process."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from ..clocks import Clock
from .ports import EnginePort

__all__ = ["RunSlots"]


class RunSlots:
    """Slots that scheduled runs, retries, backfills and run_now take. The engine asks `room()` and hands over
    no more due jobs than that; a freed slot wakes it (`EnginePort.wake_if_held`).

    Waiters get slots first come, first served: a freed slot is handed to the oldest waiter directly. Every
    operation is O(1) (asyncio.Semaphore scans its waiters on each release and in `locked()`, which made a
    thousand fires waiting at once cost a quadratic number of steps).
    """

    def __init__(self, size: int, engine: EnginePort, clock: Clock) -> None:
        self.size = size
        self._engine = engine
        self._clock = clock
        self._free = size
        self._queue: deque[asyncio.Future[None]] = deque()  # waiters, oldest first (cancelled ones are skipped)
        self._in_use = 0
        self.waiting: set[asyncio.Task[Any]] = set()  # fires waiting for a slot
        self.full_at = float("-inf")  # the clock's monotonic() when room() last found no room

    def room(self) -> int:
        """How many more fires can start now (what the engine hands over at most)."""
        room = self.size - self._in_use - len(self.waiting)
        if room <= 0:
            self.full_at = self._clock.monotonic()
        return room

    def locked(self) -> bool:
        """Whether a `take` now would wait."""
        return self._free <= 0

    def take_free(self) -> bool:
        """Take a free slot if there is one, without waiting (False: none, `take` waits for one)."""
        if self._free <= 0:
            return False
        self._free -= 1
        self._in_use += 1
        return True

    async def take(self, *, queued: bool = False) -> None:
        """Take a slot, waiting for one; `queued`: the current task counts as waiting meanwhile (a fire)."""
        if self._free > 0:
            self._free -= 1  # free: returns at once, without letting others run first
        else:
            task = asyncio.current_task() if queued else None
            if task is not None:
                self.waiting.add(task)
            handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._queue.append(handed)
            try:
                await handed
            except asyncio.CancelledError:
                if handed.done() and not handed.cancelled():
                    self._hand_over()  # the slot reached this task as it was cancelled: pass it on
                raise
            finally:
                if task is not None:
                    self.waiting.discard(task)
        self._in_use += 1

    def give_back(self) -> None:
        """Free a slot taken by `take` and let the engine hand over a held fire."""
        self._in_use -= 1
        self._hand_over()
        self._engine.wake_if_held()

    def _hand_over(self) -> None:
        """Give a free slot to the oldest waiter still waiting, or keep it free."""
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
