"""What the line sessions (stdio, the background runner's connections) still owe their clients, for shutdown.

A server that stops first closes its scheduler while its transports still serve: the calls in flight end (with
their result, or cancelled once `close_timeout` runs out) and are answered. `Answering.settled()` then waits until
every request a session read has its answer written (flushed to stdout, sent on the socket); only then may the
process end its transports. Requests that stay open by design (`subscriptions/listen`) are not waited for.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import anyio
from mcp import types

__all__ = ["ANSWER_GRACE", "Answering", "Owed", "StdoutFile", "claimed_stdout"]

ANSWER_GRACE = 1.0
"""Seconds a stopping server gives the answers of the calls in flight to be written once its scheduler is closed
(and HTTP gives requests still open, such as streams a client keeps, before they are cancelled)."""

LONG_LIVED = frozenset({"subscriptions/listen"})
"""Requests that stay open until the client ends them: no answer is owed at shutdown."""


class Owed:
    """One session's requests that have no answer yet, and the messages handed to its writer not yet written."""

    def __init__(self) -> None:
        self.ids: set[Any] = set()
        self.handed = 0  # messages handed to the transport's writer
        self.written = 0  # of those, written (flushed, or found undeliverable)
        self._changed = anyio.Event()

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def asked(self, message: types.JSONRPCMessage) -> None:
        """A message read from the client: a request is owed an answer; a cancellation lets one go."""
        if isinstance(message, types.JSONRPCRequest):
            if message.method not in LONG_LIVED:
                self.ids.add(message.id)
        elif isinstance(message, types.JSONRPCNotification) and message.method == "notifications/cancelled":
            # The SDK answers nothing for a request the client cancelled.
            request_id = (message.params or {}).get("requestId")
            if request_id is not None and request_id in self.ids:
                self.ids.discard(request_id)
                self._pulse()

    def answered(self, message: types.JSONRPCMessage) -> None:
        """A message on its way to the client: an answer settles its request."""
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError) and message.id in self.ids:
            self.ids.discard(message.id)
            self._pulse()

    def handing(self) -> None:
        """A message is about to be handed to the writer."""
        self.handed += 1

    def wrote(self) -> None:
        """The writer is done with a message (written, or the client is gone)."""
        self.written += 1
        self._pulse()

    @property
    def writing(self) -> bool:
        """True while a message handed to the writer is not written yet."""
        return self.written < self.handed

    @property
    def settled(self) -> bool:
        """True once every request read is answered and every answer written."""
        return not self.ids and not self.writing

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until `condition()` holds (checked at each change of this session)."""
        while not condition():
            await self._changed.wait()


class Answering:
    """The line sessions of a process; `settled()` waits until none owes its client anything."""

    def __init__(self) -> None:
        self._sessions: set[Owed] = set()

    @contextmanager
    def session(self) -> Iterator[Owed]:
        """Track one session while inside."""
        owed = Owed()
        self._sessions.add(owed)
        try:
            yield owed
        finally:
            self._sessions.discard(owed)

    @property
    def owed(self) -> int:
        """Requests read and not answered yet, over every session."""
        return sum(len(owed.ids) for owed in self._sessions)

    async def settled(self, within: float) -> bool:
        """Wait up to `within` seconds until every session's requests are answered and written; False if some
        were not by then."""
        with anyio.move_on_after(within):
            while busy := [owed for owed in self._sessions if not owed.settled]:
                await busy[0].until(lambda: busy[0].settled)
            return True
        return False


class StdoutFile:
    """The stdout the SDK's stdio transport writes answers to: tells `owed` when each answer is flushed."""

    def __init__(self, binary: BinaryIO, owed: Owed) -> None:
        self._file = anyio.wrap_file(binary)
        self._owed = owed
        self._text = ""

    async def write(self, text: str) -> int:
        self._text += text
        return len(text)

    async def flush(self) -> None:
        data, self._text = self._text.encode("utf-8"), ""
        try:
            await self._file.write(data)
            await self._file.flush()
        finally:
            self._owed.wrote()


@contextmanager
def claimed_stdout() -> Iterator[BinaryIO]:
    """stdout's file for the transport alone: while inside, fd 1 points at stderr, so that a stray print (or a
    child's output) cannot corrupt the messages; restored on exit."""
    sys.stdout.flush()
    try:
        private = os.dup(1)
    except OSError:
        yield sys.stdout.buffer
        return
    os.set_inheritable(private, False)
    os.dup2(2, 1)
    try:
        # closefd=False: a writer thread may still hold it after the transport ends.
        yield os.fdopen(private, "wb", closefd=False)
    finally:
        os.dup2(private, 1)
