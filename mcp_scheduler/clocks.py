"""The wall clock against the monotonic clock: how a running scheduler notices sleep and clock jumps.

Fire times are read on the wall clock. The monotonic clock only moves forward, and on Linux and macOS it
stands still while the machine sleeps. Between two looks, the wall clock moving further than the monotonic
clock means the machine was asleep (or the clock was set forward); moving less means the clock was set back.
`ClockWatch` compares the two; `Clocks` is the pair it reads (a test passes its own).

`Clock` is the time the scheduler's own code reads and waits on (the service, the job table, the run path,
catch-up, schedule parsing and previews; the timers of retries and of the clock watch): `SystemClock` by
default, a virtual clock in tests, which moves only when the test says and then fires the timers that came due.

The engine (APScheduler 3, `_engine.py`) keeps wall time: APScheduler reads `datetime.now()` itself (in
`BaseScheduler._process_jobs`, `_real_add_job`, `resume_job`) and arms its own loop timer, so driving it from a
`Clock` would mean rewriting its private `_process_jobs` or patching its module's `datetime`. Tests in virtual
time hand due fire times to the run path as the engine does (`Admission.on_due`) and read when the engine holds
a jittered fire due from `Engine.due_at`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

__all__ = [
    "CLOCK_CHECK_EVERY",
    "CLOCK_JUMP",
    "Clock",
    "ClockJump",
    "ClockWatch",
    "Clocks",
    "SystemClock",
    "Timer",
]

CLOCK_JUMP = 5.0
"""Seconds by which the two clocks may part between two looks before it counts as sleep or a jump."""
CLOCK_CHECK_EVERY = 2.0
"""Seconds between the running scheduler's looks at the clocks (it also looks whenever jobs come due)."""


class Timer(Protocol):
    """A callback waiting for its time (`Clock.call_later`); `cancel()` before then and it never runs."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """The time the scheduler reads: `now()` (aware, UTC) for what is recorded and compared with fire times,
    `monotonic()` (seconds that never go back) for intervals and rate limits, and `call_later` for what it waits
    on (called in the running event loop; the callback runs there too)."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer: ...


class SystemClock:
    """The real clock: the system's wall clock in UTC, `time.monotonic()`, and the running loop's timers."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Call `callback` in the running event loop after `delay` seconds (of its monotonic clock)."""
        return asyncio.get_running_loop().call_later(delay, callback)


@dataclass(frozen=True, slots=True)
class Clocks:
    """The clocks a scheduler compares: `wall` (seconds since the epoch, what fire times are read on) and
    `monotonic` (seconds that never go back; they stand still while the machine sleeps on Linux and macOS)."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic

    @classmethod
    def of(cls, clock: Clock) -> Clocks:
        """The pair read from a `Clock` (a virtual one in tests)."""
        return cls(wall=lambda: clock.now().timestamp(), monotonic=clock.monotonic)


@dataclass(frozen=True, slots=True)
class ClockJump:
    """Between two looks at the clocks, the wall clock moved `seconds` more than the monotonic one (less,
    when negative: it was set back). `start` and `end` are the wall-clock times of the two looks (UTC)."""

    start: datetime
    end: datetime
    seconds: float

    @property
    def forward(self) -> bool:
        """True for sleep or a clock set forward; False for a clock set back."""
        return self.seconds > 0


class ClockWatch:
    """Looks at both clocks and reports when they parted by more than `threshold` seconds since the last look."""

    def __init__(self, clocks: Clocks | None = None, threshold: float = CLOCK_JUMP) -> None:
        self.clocks = clocks or Clocks()
        self.threshold = threshold
        self._last = self._read()

    def _read(self) -> tuple[float, float]:
        return self.clocks.wall(), self.clocks.monotonic()

    def now(self) -> datetime:
        """The wall clock's time (UTC)."""
        return datetime.fromtimestamp(self.clocks.wall(), UTC)

    def reset(self) -> None:
        """Start comparing from now (what came before is not reported)."""
        self._last = self._read()

    def check(self) -> ClockJump | None:
        """Look at the clocks: the jump since the last look, if they parted by more than the threshold."""
        wall, mono = self._read()
        last_wall, last_mono = self._last
        self._last = wall, mono
        parted = (wall - last_wall) - (mono - last_mono)
        if abs(parted) <= self.threshold:
            return None
        return ClockJump(datetime.fromtimestamp(last_wall, UTC), datetime.fromtimestamp(wall, UTC), parted)
