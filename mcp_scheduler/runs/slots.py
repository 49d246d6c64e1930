"""The scheduler's run slots: at most `max_concurrent_runs` runs at a time in this process."""

from __future__ import annotations

import asyncio
from typing import Any

from ..clocks import Clock
from .ports import EnginePort

__all__ = ["RunSlots"]


class RunSlots:
    """Slots that scheduled runs, retries, backfills and run_now take. The engine asks `room()` and hands over
    no more due jobs than that; a freed slot wakes it (`EnginePort.wake_if_held`)."""

    def __init__(self, size: int, engine: EnginePort, clock: Clock) -> None:
        self.size = size
        self._engine = engine
        self._clock = clock
        self._slots = asyncio.Semaphore(size)
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
        return self._slots.locked()

    async def take(self, *, queued: bool = False) -> None:
        """Take a slot, waiting for one; `queued`: the current task counts as waiting meanwhile (a fire)."""
        if queued and self._slots.locked():
            task = asyncio.current_task()
            if task is not None:
                self.waiting.add(task)
            try:
                await self._slots.acquire()
            finally:
                if task is not None:
                    self.waiting.discard(task)
        else:
            await self._slots.acquire()  # free: returns at once, without letting others run first
        self._in_use += 1

    def give_back(self) -> None:
        """Free a slot taken by `take` and let the engine hand over a held fire."""
        self._in_use -= 1
        self._slots.release()
        self._engine.wake_if_held()
