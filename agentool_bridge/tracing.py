"""The trace context of the span in progress, passed on to what a run calls (OpenTelemetry, when loaded).

Nothing here imports OpenTelemetry: a process that never loaded its API has no span in progress to pass on.
MCP servers get the context from the MCP SDK's client, in each request's `params._meta`.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping

__all__ = ["inject_trace_headers"]


def inject_trace_headers(headers: MutableMapping[str, str]) -> None:
    """Add `traceparent` (and `tracestate`) of the span in progress to outgoing HTTP `headers`, unless they hold a
    `traceparent` of their own or no span is in progress."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None or not trace.get_current_span().get_span_context().is_valid:
        return
    if any(name.lower() == "traceparent" for name in headers):
        return
    from opentelemetry.propagate import inject

    inject(headers)
