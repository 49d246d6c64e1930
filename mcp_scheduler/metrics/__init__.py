"""Prometheus metrics of a scheduler (the `metrics` extra: prometheus-client), imported only when they are on.

- `collector`: `SchedulerMetrics`, the series (job state read when scraped, runs and not-run fires counted);
- `endpoint`: `MetricsEndpoint`, `/metrics` on the HTTP transport and the `--metrics-port` listener.
"""

from __future__ import annotations

from .collector import OTHER_JOBS, PREFIX, SchedulerMetrics, not_run_reason
from .endpoint import METRICS_PATH, MetricsEndpoint

__all__ = ["METRICS_PATH", "OTHER_JOBS", "PREFIX", "MetricsEndpoint", "SchedulerMetrics", "not_run_reason"]
