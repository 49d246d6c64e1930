"""The wall clock against the monotonic clock: sleep and a clock set forward are gaps; a clock set back is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mcp_scheduler.clocks import Clocks, ClockWatch
from mcp_scheduler.downtime import Downtime, duration_words

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Dial:
    """A clock pair the test turns by hand."""

    def __init__(self) -> None:
        self.wall = START.timestamp()
        self.mono = 1000.0

    def clocks(self) -> Clocks:
        return Clocks(wall=lambda: self.wall, monotonic=lambda: self.mono)

    def run(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def test_clocks_that_move_together_report_nothing_however_long_or_unevenly() -> None:
    dial = Dial()
    watch = ClockWatch(dial.clocks(), threshold=5)
    dial.run(3600)
    dial.wall += 4.9  # an NTP step smaller than the threshold
    assert watch.check() is None


def test_a_sleep_is_a_forward_jump_with_the_wall_clock_times_around_it() -> None:
    dial = Dial()
    watch = ClockWatch(dial.clocks(), threshold=5)
    dial.run(2)
    dial.wall += 40 * 60  # asleep 40 min: the monotonic clock stands still
    dial.run(1)

    jump = watch.check()

    assert jump is not None and jump.forward
    assert jump.seconds == 40 * 60
    assert (jump.start, jump.end) == (START, START + timedelta(minutes=40, seconds=3))
    assert watch.check() is None  # told once


def test_fires_in_a_sleep_fall_in_its_gap_and_a_clock_set_back_leaves_none_behind_it() -> None:
    dial = Dial()
    watch = ClockWatch(dial.clocks(), threshold=5)
    downtime = Downtime(START - timedelta(hours=1))
    dial.wall += 40 * 60
    jump = watch.check()
    assert jump is not None
    gap = downtime.jumped(jump)

    assert gap is not None and downtime.gap_of(START + timedelta(minutes=20)) == gap
    assert downtime.gap_of(START + timedelta(minutes=41)) is None
    assert downtime.gap_of(START - timedelta(hours=2)) == downtime.opened  # before the runner opened
    assert gap.why(START + timedelta(minutes=20), UTC, START) == (
        "the machine was asleep (or its clock was set forward) from 09:00 UTC to 09:40 UTC")

    dial.wall -= 3600  # set back an hour, to 08:40: that hour comes again, and fires in it are ordinary fires
    back = watch.check()
    assert back is not None and not back.forward and round(back.seconds) == -3600
    assert downtime.jumped(back) is None
    assert downtime.gap_of(START + timedelta(minutes=20)) is None
    assert downtime.gap_of(START - timedelta(minutes=30)) is None
    assert downtime.gap_of(START - timedelta(hours=2)) == downtime.opened


def test_durations_in_words() -> None:
    assert [duration_words(s) for s in (0.4, 45, 420, 7500, 86400, 2 * 86400 + 3 * 3600)] == [
        "0.4 s", "45 s", "7 min", "2 h 5 min", "1 day", "2 days 3 h"]
