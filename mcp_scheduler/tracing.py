"""Traces of runs through the OpenTelemetry API, when a process has it loaded; nothing at all otherwise.

The API is optional (the `otel` extra; the MCP SDK also brings it): nothing here imports it. Whether a process
traces is decided by whoever loaded it and set a tracer provider (`opentelemetry-instrument`, or the embedding
program). Without a provider the API's spans are no-ops.

- `current_traceparent()`: the W3C `traceparent` of the span in progress (the `tools/call` that schedules a job,
  whose server span the SDK's middleware opened from the request's `params._meta`), stored with the job;
- `run_span(...)`: the span of one run, `scheduler.run <job name>`, linked to that stored span. A scheduled run
  starts a trace of its own; a run_now is a child of the call that started it, a chained run of the run it follows
  (docs/chains.md). Inside it, the http and notify job kinds send the trace context as a `traceparent` header, and
  MCP servers get it in `params._meta`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["RunSpan", "current_traceparent", "run_span"]

TRACER_NAME = "mcp-scheduler"


class RunSpan(Protocol):
    """What the run path tells a run's span: how the run ended."""

    def ended(self, status: str, error_type: str | None) -> None: ...


class _NoSpan:
    __slots__ = ()

    def ended(self, status: str, error_type: str | None) -> None:
        return None


_NO_SPAN = _NoSpan()


def _api() -> Any:
    """`opentelemetry.trace` if this process loaded it (then a span may be in progress), else None."""
    return sys.modules.get("opentelemetry.trace")


def current_traceparent() -> str | None:
    """The `traceparent` of the span in progress, or None (no OpenTelemetry, or no span)."""
    trace = _api()
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


class _Span:
    __slots__ = ("_span",)

    def __init__(self, span: Any) -> None:
        self._span = span

    def ended(self, status: str, error_type: str | None) -> None:
        from opentelemetry.trace import StatusCode

        self._span.set_attribute("mcp_scheduler.run.status", status)
        if status != "success":
            self._span.set_attribute("error.type", error_type or status)
            self._span.set_status(StatusCode.ERROR, status)


@contextmanager
def run_span(
    *, job_id: str, job_name: str | None, agentool_name: str, run_id: str, trigger: str, traceparent: str | None,
    attributes: Mapping[str, Any] | None = None, parent: str | None = None,
) -> Iterator[RunSpan]:
    """The span of one run, current while the run goes on (a no-op without OpenTelemetry).

    `traceparent`: of the call that created the job; the span links to it. A run_now is a child of the span in
    progress (the call that started it); a chained run is a child of `parent` (the span of the run it follows, so a
    chain is one trace); every other run starts a trace of its own.
    """
    trace = _api()
    if trace is None or isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        yield _NO_SPAN  # no tracer provider is set: every span would be a no-op
        return
    from opentelemetry import context as otel_context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    propagator = TraceContextTextMapPropagator()
    links = []
    if traceparent:
        linked = trace.get_current_span(propagator.extract({"traceparent": traceparent}))
        if linked.get_span_context().is_valid:
            links.append(trace.Link(linked.get_span_context(), {"mcp_scheduler.link": "created_by"}))
    context = None if trigger == "run_now" else otel_context.Context()
    if parent:
        context = propagator.extract({"traceparent": parent}, context=otel_context.Context())
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        f"scheduler.run {job_name or job_id}",
        context=context,
        kind=trace.SpanKind.INTERNAL,
        links=links,
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": agentool_name,
            "mcp_scheduler.job.id": job_id,
            "mcp_scheduler.run.id": run_id,
            "mcp_scheduler.run.trigger": trigger,
            **(attributes or {}),
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield _Span(span)
