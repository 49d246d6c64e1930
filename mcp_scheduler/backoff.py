"""Backoff with jitter for loops that retry after a failure, and a log that does not flood."""

from __future__ import annotations

import logging
import random
from datetime import datetime

from .clocks import Clock
from .downtime import duration_words

__all__ = ["Backoff"]


class Backoff:
    """The delay before a failing loop tries again: `base` seconds doubled per failure in a row, up to `cap`, with
    jitter (between half and all of it, so that processes failing together do not retry in step).

    One line per change of state: the first failure is logged as a warning with its traceback; while it goes on
    failing, one short line at most every `quiet` seconds (for how long, how many failed since); a success after
    failures says so (after how long), and starts over from `base`. `failing_since`: when the failures in a row
    began (None while it works).
    """

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        clock: Clock,
        *,
        base: float,
        cap: float,
        quiet: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self._what = what
        self._logger = logger
        self._clock = clock
        self.base = base
        self.cap = cap
        self._quiet = quiet
        self._rng = rng or random.Random()
        self.failures = 0
        self._unlogged = 0  # failures since the last line about them
        self._logged_at = float("-inf")
        self._began = 0.0  # monotonic() of the first failure in a row
        self.failing_since: datetime | None = None

    def delay(self) -> float:
        """Seconds to wait before the next try: `base` while nothing fails."""
        if self.failures == 0:
            return self.base
        ceiling = min(self.cap, self.base * 2 ** min(self.failures, 60))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def failed(self, exc: BaseException) -> float:
        """Count a failure, log it (see the class), and return the delay before the next try."""
        self.failures += 1
        self._unlogged += 1
        now = self._clock.monotonic()
        if self.failures == 1:
            self._began, self.failing_since = now, self._clock.now()
            self._logger.warning("%s failed; trying again with backoff (up to %g s apart)", self._what, self.cap,
                                 exc_info=exc)
            self._unlogged, self._logged_at = 0, now
        elif now - self._logged_at >= self._quiet:
            self._logger.warning("%s still fails after %s (%d failure(s) in a row, %d since the last line): %s: %s",
                                 self._what, duration_words(now - self._began), self.failures, self._unlogged,
                                 type(exc).__name__, exc)
            self._unlogged, self._logged_at = 0, now
        return self.delay()

    def succeeded(self) -> None:
        """The loop worked: back to `base`."""
        if self.failures:
            self._logger.warning("%s works again after %s (%d failure(s) in a row)", self._what,
                                 duration_words(self._clock.monotonic() - self._began), self.failures)
            self.failures, self._unlogged, self.failing_since = 0, 0, None
