"""Late fires: which of a job's due times still run (its catch-up policy, window and misfire_grace_time), and
what the others are recorded as, told in the inbox once per job and gap."""

from __future__ import annotations

import logging
from datetime import datetime

from ..clocks import Clock
from ..downtime import Gap, Window, catchup_window, duration_words, missed_message
from ..fire_times import jitter_delay
from ..jobs import Job
from ..policies import BUFFER_LIMIT
from .delivery import Delivery
from .gaps import Gaps
from .not_run import NotRunRecords
from .slots import RunSlots

__all__ = ["MIN_GRACE_SECONDS", "CatchUp"]

logger = logging.getLogger(__name__)

MIN_GRACE_SECONDS = 1.0


class CatchUp:
    """A fire due while nothing ran (a gap of `gaps`) runs late within its job's catch-up window (`window` is the
    server's); one held back while the scheduler ran, within its misfire_grace_time. Beyond that it is recorded
    missed, and the inbox is told about those of a gap, once per job and gap."""

    def __init__(
        self, *, gaps: Gaps, not_run: NotRunRecords, delivery: Delivery, slots: RunSlots, window: float, clock: Clock
    ) -> None:
        self._gaps = gaps
        self._not_run = not_run
        self._delivery = delivery
        self._slots = slots
        self.window = window
        self._clock = clock

    def window_of(self, job: Job) -> Window:
        return catchup_window(job.definition, self.window)

    def select(self, job: Job, run_times: list[datetime]) -> list[datetime]:
        """The due times to go on with, by the job's catch-up policy; the missed fires it drops are recorded.

        The engine hands over every time due since the job last fired. The newest is the current fire, unless it
        came due in a gap (before this runner opened, or while the machine slept): then it too was missed. A missed
        fire of a gap may run within the job's catch-up window; one held back while the scheduler ran (stopped, or
        without a free slot) within its misfire_grace_time. Missed fires beyond that are recorded missed (and those
        of a gap told in the inbox) unless a later fire runs in their place (`latest`).
        """
        gap_of = self._gaps.gap_of
        if len(run_times) == 1 and gap_of(run_times[0]) is None:
            return run_times
        definition = job.definition
        catchup = definition.policy.catchup or ("latest" if definition.coalesce else "all")
        current = run_times[-1:] if gap_of(run_times[-1]) is None else []
        missed = run_times[: len(run_times) - len(current)]
        now = self._clock.now()
        window, grace = self.window_of(job), definition.misfire_grace_time
        within: list[datetime] = []
        beyond: list[datetime] = []
        for moment in missed:
            lateness = (now - moment).total_seconds()
            if gap_of(moment) is not None:
                late = not window.covers(lateness, MIN_GRACE_SECONDS)
            else:
                late = grace is not None and lateness > max(float(grace), MIN_GRACE_SECONDS)
            (beyond if late else within).append(moment)
        record_many = self._not_run.record_many
        if catchup == "latest":
            if not current and not within:
                self._overdue(job, beyond, now)  # every missed fire is too old: none runs
                return []
            keep = [] if current else within[-1:]  # as coalesce did: the later run replaces the older fires
            dropped = missed if not keep else [moment for moment in missed if moment not in keep]
            record_many(job, dropped, "missed", "coalesced: a later run time replaced it (catchup: latest)")
            return keep + current
        if catchup == "all":
            self._overdue(job, beyond, now)
            keep = within[-BUFFER_LIMIT:]
            note = f"catchup: all runs the latest {BUFFER_LIMIT} missed fires; this one was older"
            record_many(job, within[: len(within) - len(keep)], "missed", note)
            return keep + current
        record_many(job, missed, "missed", "catchup: none")
        return current

    def late(self, run_time: datetime, job: Job, *, waited: bool = False) -> bool:
        """True (and recorded as missed) if the fire is too late to start: due longer ago than its job's catch-up
        window (a fire of a gap) or misfire_grace_time (a fire due while the scheduler ran). A fire is due at its fire
        time plus its jitter delay."""
        now = self._clock.now()
        lateness = (now - run_time).total_seconds()
        if jitter := job.definition.policy.jitter:
            lateness -= jitter_delay(job.job_id, run_time, jitter)
        if self._gaps.gap_of(run_time) is not None:
            if self.window_of(job).covers(lateness, MIN_GRACE_SECONDS):
                return False
        else:
            grace = job.definition.misfire_grace_time
            if grace is None or lateness <= max(float(grace), MIN_GRACE_SECONDS):
                return False
        self._overdue(job, [run_time], now, waited=waited)
        return True

    def _overdue(self, job: Job, fires: list[datetime], now: datetime, *, waited: bool = False) -> None:
        """Record fires too late to run as missed, saying why; tell the inbox about those of a gap, once per
        job and gap."""
        by_gap: dict[Gap, list[datetime]] = {}
        zone = job.definition.schedule.zone
        for moment in fires:
            lateness = (now - moment).total_seconds()
            if jitter := job.definition.policy.jitter:
                lateness -= jitter_delay(job.job_id, moment, jitter)
            gap = self._gaps.gap_of(moment)
            if gap is None:
                grace = job.definition.misfire_grace_time
                why = f"due {lateness:.1f} s ago, beyond misfire_grace_time {grace} s"
                if waited or self._clock.monotonic() - self._slots.full_at <= lateness:
                    why += f" (it waited for one of the {self._slots.size} runs the scheduler does at a time)"
            else:
                why = (f"due {duration_words(lateness)} ago, longer ago than its catch-up window "
                       f"({self.window_of(job).words()}): {gap.why(moment, zone, now)}")
                by_gap.setdefault(gap, []).append(moment)
            self._not_run.record(job, moment, "missed", why)
        for gap, missed in by_gap.items():
            self._tell(job, gap, missed, now)

    def _tell(self, job: Job, gap: Gap, fires: list[datetime], now: datetime) -> None:
        """Say in the inbox (source `scheduler`) that fires of `job` due in `gap` will not run; once per job and gap."""
        key = (job.job_id, gap)
        if key in self._gaps.told or not self._delivery.has_queues:
            return
        self._gaps.told.add(key)
        definition = job.definition
        title, text = missed_message(definition.job_name or job.job_id, fires, self.window_of(job), gap,
                                     definition.schedule.zone, now)
        try:
            self._delivery.tell_inbox(text, title=title, level="warning", job_id=job.job_id,
                                      job_name=definition.job_name)
        except Exception as exc:
            logger.warning("Job %s: could not tell the inbox about its missed runs: %s", job.job_id, exc)
