"""Downtime: the stretches of time in which no fire could run, and how a fire due in one is treated.

Two kinds of lateness are kept apart:
- a fire due while **nothing ran** (before this runner opened: no scheduler process, the machine off; or
  while the machine slept, or across a clock set forward) is a catch-up fire. It may start as late as its
  job's **catch-up window** allows (`catchup_window`), its record says how late and why ("ran 7 min late:
  nothing was running at 09:00 UTC"), and beyond the window it is recorded missed and the inbox is told;
- a fire that comes due while the scheduler runs but cannot start at once (every run slot taken) may wait
  its job's **misfire_grace_time**.

`Downtime` knows the gaps of one runner: the time before it opened, and the sleeps and jumps a
`ClockWatch` saw since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from .clocks import ClockJump

if TYPE_CHECKING:
    from .jobs import JobDefinition

__all__ = [
    "DEFAULT_CATCHUP_WINDOW",
    "DEFAULT_MISFIRE_GRACE",
    "Downtime",
    "Gap",
    "Window",
    "catchup_window",
    "duration_words",
    "missed_message",
    "parse_catchup_window",
]

DEFAULT_CATCHUP_WINDOW = 86400.0
"""The server's catch-up window unless the operator sets one (--catchup-window): one day."""
DEFAULT_MISFIRE_GRACE = 30
"""A job's misfire_grace_time unless it sets one. A job that sets another one and no policy.catchup_window
keeps it as its catch-up window too (as every job did before the catch-up window had a default of its own)."""
MAX_GAPS = 100  # sleeps and jumps remembered per runner (the oldest go first)


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch of wall-clock time in which no fire ran: before the runner opened (`start` None: since
    whenever the last one stopped), or while the machine slept or the clock jumped (`asleep`)."""

    start: datetime | None
    end: datetime
    asleep: bool = False

    def holds(self, moment: datetime) -> bool:
        if self.start is None:
            return moment < self.end
        return self.start < moment <= self.end

    def why(self, scheduled: datetime, zone: tzinfo, now: datetime) -> str:
        """Why a fire due at `scheduled` in this gap did not run on time, in words."""
        if not self.asleep or self.start is None:
            return f"nothing was running at {_moment(scheduled, zone, now)}"
        return (f"the machine was asleep (or its clock was set forward) from {_moment(self.start, zone, now)} "
                f"to {_moment(self.end, zone, now)}")


class Downtime:
    """The gaps of one runner: the time before it opened, and the sleeps and clock jumps seen since."""

    def __init__(self, opened_at: datetime) -> None:
        self.opened = Gap(None, opened_at)
        self._gaps: list[Gap] = []

    @property
    def opened_at(self) -> datetime:
        return self.opened.end

    def gap_of(self, moment: datetime) -> Gap | None:
        """The gap a fire due at `moment` fell in, or None if it came due while the scheduler ran."""
        if moment < self.opened.end:
            return self.opened
        if not self._gaps:
            return None
        for gap in reversed(self._gaps):
            if gap.holds(moment):
                return gap
        return None

    def jumped(self, jump: ClockJump) -> Gap | None:
        """Take in what a `ClockWatch` saw: a sleep or a clock set forward is a gap (returned); after a clock set
        back, the gaps are forgotten from the new time on (fire times the clock reaches again are not in one)."""
        if jump.forward:
            gap = Gap(jump.start, jump.end, asleep=True)
            self._gaps = [*self._gaps[-(MAX_GAPS - 1):], gap]
            return gap
        now = jump.end
        if now < self.opened.end:
            self.opened = Gap(None, now)
        kept: list[Gap] = []
        for gap in self._gaps:
            if gap.start is not None and gap.start >= now:
                continue
            kept.append(gap if gap.end <= now else Gap(gap.start, now, gap.asleep))
        self._gaps = kept
        return None


@dataclass(frozen=True, slots=True)
class Window:
    """A job's catch-up window: seconds (None: no limit) and where it comes from, in words."""

    seconds: float | None
    source: str

    def covers(self, lateness: float, least: float) -> bool:
        """True if a fire this many seconds late may still start (a window under `least` counts as `least`)."""
        return self.seconds is None or lateness <= max(self.seconds, least)

    def words(self) -> str:
        size = "no limit" if self.seconds is None else duration_words(self.seconds)
        return f"{size}, {self.source}"


def catchup_window(definition: JobDefinition, server_window: float) -> Window:
    """The catch-up window of a job: its policy.catchup_window; else its misfire_grace_time if it set one other
    than the default 30 s; else the server's (--catchup-window)."""
    own = definition.policy.catchup_window
    if own is not None:
        return Window(float(own), "its policy.catchup_window")
    grace = definition.misfire_grace_time
    if grace != DEFAULT_MISFIRE_GRACE:
        return Window(None if grace is None else float(grace), "its misfire_grace_time")
    return Window(server_window, "the server's --catchup-window")


def parse_catchup_window(value: str, flag: str = "--catchup-window") -> float:
    """The server's catch-up window in seconds, from a duration such as '1 day', '12h', 'PT30M' or '3600 s'.

    Raises `ValueError` naming `flag` when the value is not a duration or is longer than a year."""
    from .policies import MAX_WINDOW
    from .schedules import parse_interval

    try:
        seconds = parse_interval(value).total_seconds()
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_WINDOW:
        raise ValueError(
            f"{flag} {value[:100]!r} is not a catch-up window: give a duration from 1 s to a year, such as '1 day', "
            "'12h' or '30 minutes'."
        )
    return seconds


def duration_words(seconds: float) -> str:
    """A duration as people say it: '0.4 s', '45 s', '7 min', '2 h 5 min', '3 days 2 h'."""
    if seconds < 10:
        return f"{max(seconds, 0.0):.1f} s"
    if seconds < 59.5:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(round(seconds / 3600), 24)
    return f"{days} day{'s' if days > 1 else ''}" + (f" {hours} h" if hours else "")


def _moment(moment: datetime, zone: tzinfo, now: datetime) -> str:
    """A time in `zone` as people read it: '09:00 UTC' today, '2026-12-01 09:00 CET' on another day."""
    local = moment.astimezone(zone)
    clock = "%H:%M:%S" if local.second else "%H:%M"
    day = "" if local.date() == now.astimezone(zone).date() else "%Y-%m-%d "
    return local.strftime(f"{day}{clock} %Z").strip()


def missed_message(
    name: str, fires: list[datetime], window: Window, gap: Gap, zone: tzinfo, now: datetime
) -> tuple[str, str]:
    """The inbox title and message for a job's fires that came due in `gap` and are beyond its window."""
    first, last = fires[0], fires[-1]
    if len(fires) == 1:
        what = f"its run due at {_moment(first, zone, now)}"
    else:
        what = f"{len(fires)} runs due from {_moment(first, zone, now)} to {_moment(last, zone, now)}"
    cause = gap.why(first, zone, now) if gap.asleep else "nothing was running then (no scheduler process, or the " \
        "machine was off)"
    them = "it" if len(fires) == 1 else "them"
    text = (f"Job {name!r} missed {what}: {cause}, and that is longer ago than its catch-up window "
            f"({window.words()}). Its history records {them} as missed. To run the job now, use run_now; a longer "
            "policy.catchup_window lets such runs start late next time.")
    return f"{name}: missed {len(fires)} run{'s' if len(fires) > 1 else ''}", text
