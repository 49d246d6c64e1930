"""`SchedulerMetrics`: the Prometheus series of one scheduler runtime (docs/observability.md lists them).

Job state (next run, last run, paused, runs in progress, role) is read from the scheduler's views when Prometheus
scrapes; only what no view keeps is counted as it happens: runs by outcome and last successes (from the event bus),
fires that did not run by reason, fire lateness and store write times (the bus's `meter`, which the run path
calls only while metrics are on). prometheus_client is imported here only, and this module only when metrics are on.
"""

from __future__ import annotations

import os
import socket
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from ..events import RunEvent, SchedulerEvent

if TYPE_CHECKING:
    from ..runtime import SchedulerRuntime

__all__ = ["OTHER_JOBS", "PREFIX", "SchedulerMetrics", "not_run_reason"]

PREFIX = "mcp_scheduler_"
OTHER_JOBS = "_other"
"""The `job_id` of the counts of jobs beyond the cap (`max_jobs`)."""

_NOT_RUN = frozenset({"missed", "skipped"})
_SEEN_RUNS = 10_000  # finished runs remembered, so that a record published again (a standby) counts once
_LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
_STORE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# The reason of a fire that did not run, from the words of its record's note (first match wins).
_REASONS = (
    ("coalesced", "coalesced"),
    ("misfire_grace_time", "misfire_grace_time"),
    ("catch-up window", "catchup_window"),
    ("catchup: ", "catchup_policy"),
    ("(overlap: ", "overlap"),
    ("cancel_other", "overlap"),
    ("max_instances", "max_instances"),
    ("lease", "lease_lost"),
    ("claimed by", "claimed"),
    ("could not be written", "store_unwritable"),
    ("shut down", "shutdown"),
    ("stopped", "stopped"),
)


def not_run_reason(note: str) -> str:
    """The `reason` label of a fire that did not run, from its record's note ("other" if none fits)."""
    lowered = note.lower()
    for words, reason in _REASONS:
        if words in lowered:
            return reason
    return "other"


class SchedulerMetrics(Collector):
    """The metrics of `runtime`: `start()` follows its events, `registry` holds the series, `stop()` ends that.

    `max_jobs`: the most jobs that get series of their own; the others are left out of the per-job gauges and
    counted under `job_id="_other"`, and `mcp_scheduler_metrics_jobs_dropped` says how many were left out.
    """

    def __init__(self, runtime: SchedulerRuntime, *, max_jobs: int = 500) -> None:
        self._runtime = runtime
        self.max_jobs = max_jobs
        self.registry = CollectorRegistry(auto_describe=False)
        self._runs: Counter[tuple[str, str]] = Counter()
        self._not_run: Counter[tuple[str, str, str]] = Counter()
        self._labelled: set[str] = set()  # job ids the counters name (at most max_jobs)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._last_success: dict[str, float] = {}
        self.lateness = Histogram(
            f"{PREFIX}fire_lateness_seconds", "How late scheduled fires started after their fire time (the "
            "schedule's skew: jitter and waits for a run slot included).", buckets=_LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.store_writes = Histogram(
            f"{PREFIX}store_write_duration_seconds", "How long each batch of run records and job bookkeeping "
            "took to commit to the store.", buckets=_STORE_BUCKETS, registry=self.registry,
        )
        self.registry.register(self)
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        """Follow the runtime's events and measure its run path (the bus's meter)."""
        if self._unsubscribe is None:
            self._unsubscribe = self._runtime.events.subscribe(self._on_event)
            self._runtime.events.meter = self

    def stop(self) -> None:
        """Stop following (the series keep their values)."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        if self._runtime.events.meter is self:
            self._runtime.events.meter = None

    # ------------------------------------------------------------------ what happens (event bus and meter)

    def _job_label(self, job_id: str) -> str:
        if job_id in self._labelled:
            return job_id
        if len(self._labelled) < self.max_jobs:
            self._labelled.add(job_id)
            return job_id
        return OTHER_JOBS

    def _on_event(self, event: SchedulerEvent) -> None:
        if not isinstance(event, RunEvent):
            return
        record = event.record
        if event.kind == "started":
            if record.trigger == "schedule" and record.scheduled_time is not None and record.started_at is not None:
                late = (record.started_at - record.scheduled_time).total_seconds()
                self.lateness.observe(max(late, 0.0))
            return
        if record.status in _NOT_RUN or record.status == "running" or record.run_id in self._seen:
            return  # fires that did not run are counted one by one (fire_not_run)
        self._seen[record.run_id] = None
        if len(self._seen) > _SEEN_RUNS:
            self._seen.popitem(last=False)
        self._runs[(self._job_label(record.job_id), record.status)] += 1
        if record.status == "success":
            ended = record.finished_at or record.started_at
            if ended is not None:
                self._last_success[record.job_id] = ended.timestamp()

    def fire_not_run(self, job_id: str, status: str, note: str, count: int = 1) -> None:
        self._not_run[(self._job_label(job_id), status, not_run_reason(note))] += count

    def store_write(self, seconds: float) -> None:
        self.store_writes.observe(seconds)

    # ------------------------------------------------------------------ what is (read when scraped)

    def collect(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(f"{PREFIX}runs", "Runs that ended, by outcome (status: success, error, "
                                   "timeout, cancelled, interrupted).", labels=["job_id", "status"])
        for (job_id, status), count in sorted(self._runs.items()):
            runs.add_metric([job_id, status], count)
        yield runs
        not_run = CounterMetricFamily(f"{PREFIX}fires_not_run", "Fires that did not run, by status (missed, "
                                      "skipped, interrupted) and reason.", labels=["job_id", "status", "reason"])
        for (job_id, status, reason), count in sorted(self._not_run.items()):
            not_run.add_metric([job_id, status, reason], count)
        yield not_run
        service = self._runtime.service
        if not service.is_open:
            return
        yield from self._jobs()
        state = service.status()
        yield GaugeMetricFamily(f"{PREFIX}runs_in_progress", "Runs executing now in this process.",
                                value=state.runs_in_progress)
        jobs = GaugeMetricFamily(f"{PREFIX}jobs", "Jobs by state.", labels=["state"])
        jobs.add_metric(["scheduled"], state.jobs_count - state.paused_jobs)
        jobs.add_metric(["paused"], state.paused_jobs)
        yield jobs
        yield GaugeMetricFamily(f"{PREFIX}is_runner", "1 in the process that holds the runner lease and fires "
                                "the jobs, 0 on a standby.", value=1 if state.role == "runner" else 0)
        holder = state.runner or f"pid {os.getpid()} on {socket.gethostname()}"
        info = InfoMetricFamily(f"{PREFIX}runner", "The process that holds the runner lease, as this one sees it.")
        info.add_metric([], {"role": state.role, "runner": holder})
        yield info

    def _jobs(self) -> Iterator[Metric]:
        jobs, total = self._runtime.service.list_jobs(limit=self.max_jobs, include_completed=True)
        labels = ["job_id"]
        job_info = InfoMetricFamily(f"{PREFIX}job", "Each job's name, kind (the AgenTool it runs) and schedule type.",
                                    labels=labels)
        next_time = GaugeMetricFamily(f"{PREFIX}job_next_schedule_time_seconds", "When the job fires next (Unix "
                                      "time).", labels=labels)
        last_time = GaugeMetricFamily(f"{PREFIX}job_last_schedule_time_seconds", "When the job last ran (its "
                                      "last run's start, Unix time).", labels=labels)
        last_success = GaugeMetricFamily(f"{PREFIX}job_last_successful_time_seconds", "When a run of the job last "
                                         "succeeded (Unix time).", labels=labels)
        suspended = GaugeMetricFamily(f"{PREFIX}job_suspended", "1 while the job is paused.", labels=labels)
        active = GaugeMetricFamily(f"{PREFIX}job_active_runs", "Runs of the job in progress in this process.",
                                   labels=labels)
        for job in jobs:
            key = [job.job_id]
            job_info.add_metric(key, {"job_name": job.job_name or "", "kind": job.agentool_name,
                                      "schedule_type": job.schedule_type})
            if job.next_run is not None:
                next_time.add_metric(key, job.next_run.timestamp())
            if job.last_run_at is not None:
                last_time.add_metric(key, job.last_run_at.timestamp())
            succeeded = self._last_success.get(job.job_id)
            if job.last_status == "success" and job.last_run_at is not None:
                succeeded = max(succeeded or 0.0, job.last_run_at.timestamp())
            if succeeded is not None:
                last_success.add_metric(key, succeeded)
            suspended.add_metric(key, 1 if job.state == "paused" else 0)
            active.add_metric(key, job.running)
        yield from (job_info, next_time, last_time, last_success, suspended, active)
        yield GaugeMetricFamily(f"{PREFIX}metrics_jobs_dropped", "Jobs left out of the per-job series "
                                "(beyond --metrics-max-jobs).", value=max(total - len(jobs), 0))
