"""A counting limit shared by every event loop and thread: at most `limit` holders, others wait in order."""

from __future__ import annotations

import asyncio
import threading
from collections import deque

__all__ = ["RunSlots"]


class RunSlots:
    """At most `limit` holders at once; `acquire` waits (first come, first served) for a free slot.

    Unlike `asyncio.Semaphore` it is bound to no event loop: one toolkit object may serve several loops.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a limit of at least 1 is needed, got {limit}")
        self.limit = limit
        self._held = 0
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    @property
    def held(self) -> int:
        """Slots taken now."""
        return self._held

    @property
    def waiting(self) -> int:
        """Callers waiting for a slot now."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Take a slot, waiting for one if all are held. Cancelled while waiting, it takes none."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._held < self.limit and not self._waiters:
                self._held += 1
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter
        except BaseException:
            with self._lock:
                try:
                    self._waiters.remove((loop, waiter))
                    handed_over = False
                except ValueError:
                    handed_over = True  # release() gave this waiter the slot just before the cancellation
            if handed_over:
                self.release()
            raise

    def release(self) -> None:
        """Give a slot back: to the first waiter if there is one."""
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(_grant, waiter)
                except RuntimeError:  # its event loop is closed: nobody waits there any more
                    continue
                return
            self._held -= 1


def _grant(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
