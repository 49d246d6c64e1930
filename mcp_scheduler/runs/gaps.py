"""Downtime as the run path sees it: before this runner opened, sleep, and the clock set forward or back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from ..clocks import CLOCK_CHECK_EVERY, Clock, ClockJump, ClockWatch, Timer
from ..downtime import Downtime, Gap, duration_words
from ..jobs import RunTrigger
from .ports import EnginePort

__all__ = ["Gaps"]

logger = logging.getLogger(__name__)


class Gaps:
    """The gaps in which nothing ran; a fire due in one is a catch-up fire. On the runner, `watch_clocks` looks
    at the clocks every CLOCK_CHECK_EVERY seconds (and `look` whenever jobs come due) to notice sleep and jumps."""

    def __init__(self, watch: ClockWatch, engine: EnginePort, clock: Clock) -> None:
        self._watch = watch
        self._engine = engine
        self._clock = clock
        self.downtime = Downtime(clock.now())
        # The current downtime's look-up itself: one call, not two, on the path of every fire.
        self.gap_of: Callable[[datetime], Gap | None] = self.downtime.gap_of
        self._timer: Timer | None = None
        self._looked = False  # looked in this turn of the event loop (look_once)
        self.told: set[tuple[str, Gap]] = set()  # (job, gap) whose missed fires the inbox was told about

    def trigger(self, scheduled: datetime) -> RunTrigger:
        return "catch_up" if self.downtime.gap_of(scheduled) is not None else "schedule"

    def reopen(self) -> None:
        """This process starts running the jobs (it opened, or took over): what came due before now fell in the
        downtime before it."""
        self.downtime = Downtime(self._clock.now())
        self.gap_of = self.downtime.gap_of
        self.told.clear()
        self._watch.reset()

    def watch_clocks(self) -> None:
        self.unwatch_clocks()
        self._watch.reset()
        self._timer = self._clock.call_later(CLOCK_CHECK_EVERY, self._tick)

    def unwatch_clocks(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = self._clock.call_later(CLOCK_CHECK_EVERY, self._tick)
        self.look()

    def look(self) -> None:
        """Look at the clocks now: a jump since the last look becomes a gap (or a log line)."""
        jump = self._watch.check()
        if jump is not None:
            self._moved(jump)

    def look_once(self) -> None:
        """`look`, once per turn of the event loop: the fires the engine hands over together (their tasks start in
        one turn) share one look, which would otherwise be on the path of each."""
        if self._looked:
            return
        self._looked = True
        asyncio.get_running_loop().call_soon(self._look_again)
        self.look()

    def _look_again(self) -> None:
        self._looked = False

    def _moved(self, jump: ClockJump) -> None:
        """A sleep or a clock set forward becomes a gap, whose fires are caught up; a clock set back is logged."""
        gap = self.downtime.jumped(jump)
        if gap is not None:
            logger.warning(
                "The wall clock moved %s more than the monotonic clock between %s and %s (the machine was asleep, or "
                "the clock was set forward): fires due then run late within their jobs' catch-up window",
                duration_words(jump.seconds), jump.start.isoformat(timespec="seconds"),
                jump.end.isoformat(timespec="seconds"))
            self._engine.wake()
            return
        logger.warning(
            "The clock was set back by %s (to %s): each job waits until the clock reaches its next fire time again; "
            "no fire that already ran runs again", duration_words(-jump.seconds),
            jump.end.isoformat(timespec="seconds"))
