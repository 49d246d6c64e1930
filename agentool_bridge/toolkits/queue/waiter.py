"""`Waiter`: one `dequeue` waiting for a message, woken from whichever thread enqueued; `Waiters`: those of a store."""

from __future__ import annotations

import asyncio
import threading

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["Waiter", "Waiters"]


class Waiter:
    """One `dequeue` waiting for a message. `wake()` may be called from any thread."""

    def __init__(self) -> None:
        self.event = anyio.Event()
        self._thread = threading.get_ident()
        self._loop: asyncio.AbstractEventLoop | None
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # another anyio backend
            self._loop = None
            self._token = anyio.lowlevel.current_token()

    def wake(self) -> None:
        """Set `event` in the waiting loop; nothing happens if that loop has finished."""
        if threading.get_ident() == self._thread:
            self.event.set()
            return
        try:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self.event.set)
            else:
                anyio.from_thread.run_sync(self.event.set, token=self._token)
        except RuntimeError:  # that event loop has finished: nobody is waiting any more
            pass


class Waiters:
    """The `dequeue`s waiting for a message, by queue name. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_queue: dict[str, set[Waiter]] = {}

    def add(self, queue_name: str) -> Waiter:
        """A new waiter for `queue_name`, registered at once: before its `dequeue` looks at the queue, so that an
        enqueue between the look and the wait is not missed."""
        waiter = Waiter()
        with self._lock:
            self._by_queue.setdefault(queue_name, set()).add(waiter)
        return waiter

    def remove(self, queue_name: str, waiter: Waiter) -> None:
        """Forget a waiter of `queue_name` (its `dequeue` is over)."""
        with self._lock:
            waiting = self._by_queue.get(queue_name)
            if waiting is not None:
                waiting.discard(waiter)
                if not waiting:
                    del self._by_queue[queue_name]

    def wake(self, queue_name: str | None = None) -> None:
        """Wake the waiters of `queue_name` (None: of every queue)."""
        with self._lock:
            waiters = [w for name, ws in self._by_queue.items() if queue_name in (None, name) for w in ws]
        for waiter in waiters:
            waiter.wake()
