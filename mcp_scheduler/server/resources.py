"""The MCP resources: the scheduler's status, its jobs and their history, queues and AgenTools.

Run results show labelled outside content clipped, the inbox and queues a page of messages (`AnswerLimits`)."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from pydantic import BaseModel

from agentool_bridge import AgenToolError

from ..errors import JobNotFoundError
from ..principals import acting_as
from ..queue_owners import queue_seen
from ..runtime import SchedulerRuntime
from .auth import principal_of
from .inbox import INBOX_QUEUE, INBOX_URI, inbox_page
from .outputs import AnswerLimits, HistoryPage, JobDetail
from .tools import read_queue

__all__ = ["add_resources"]

JSON = "application/json"
AUDIT_PAGE = 100
"""Entries per page of scheduler://audit."""
P = ParamSpec("P")


def as_caller(fn: Callable[P, Awaitable[str]]) -> Callable[P, Awaitable[str]]:
    """`fn` (a resource) read as the caller's principal, as tools run: a token without scheduler:admin reads its
    own jobs, runs and audit entries only."""

    @functools.wraps(fn)
    async def read(*args: P.args, **kwargs: P.kwargs) -> str:
        with acting_as(principal_of(None)):
            return await fn(*args, **kwargs)

    return read


def _json(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json(indent=2)
    return json.dumps(value, indent=2, default=str)


def add_resources(mcp: MCPServer, runtime: SchedulerRuntime, limits: AnswerLimits | None = None) -> None:
    """Register the `scheduler://` resources and resource templates on `mcp`; `limits` bound what they show."""
    limits = limits or AnswerLimits()
    svc = runtime.service

    @mcp.resource("scheduler://status", name="status", title="Scheduler status", mime_type=JSON)
    @as_caller
    async def status_resource() -> str:
        """Whether jobs are processed, job counts and the default time zone."""
        return _json(runtime.status())

    @mcp.resource("scheduler://jobs", name="jobs", title="Jobs", mime_type=JSON)
    @as_caller
    async def jobs_resource() -> str:
        """Scheduled and paused jobs (the first 1000; use the list_jobs tool to page through more)."""
        await svc.catch_up()
        jobs, total = svc.list_jobs(limit=1000)
        return _json({"jobs": [j.model_dump(mode="json") for j in jobs], "total": total})

    @mcp.resource("scheduler://jobs/{job_id}", name="job", title="Job", mime_type=JSON)
    @as_caller
    async def job_resource(job_id: str) -> str:
        """One job: definition, state, next run times and its latest runs."""
        try:
            job, recent = await svc.get_job(job_id)
        except JobNotFoundError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        return _json(JobDetail(job=job, recent_history=[limits.run(r) for r in recent]))

    @mcp.resource("scheduler://jobs/{job_id}/history", name="job-history", title="Job history", mime_type=JSON)
    @as_caller
    async def history_resource(job_id: str) -> str:
        """A job's runs, newest first (up to 100)."""
        try:
            runs = await svc.get_history(job_id, None, 100)
        except JobNotFoundError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        return _json(HistoryPage(job_id=job_id, runs=[limits.run(r) for r in runs], count=len(runs)))

    @mcp.resource("scheduler://queues", name="queues", title="Queues", mime_type=JSON)
    @as_caller
    async def queues_resource() -> str:
        """The caller's queues (every queue for an admin) with their size, in-flight and dead-lettered counts."""
        queues = [{**q.as_dict(), "queue_name": name} for q in runtime.queues.queues()
                  if (name := queue_seen(q.queue_name)) is not None]
        return _json({"queues": queues, "count": len(queues)})

    def inbox_listing() -> str:
        entries, not_shown, unread = inbox_page(runtime, 100, limits)
        messages = [entry.model_dump(mode="json") for entry in entries]
        return _json({"messages": messages, "count": len(messages), "unread": unread, "not_shown": not_shown})

    @mcp.resource("scheduler://queues/{+queue_name}", name="queue", title="Queue messages", mime_type=JSON)
    @as_caller
    async def queue_resource(queue_name: str) -> str:
        """The oldest messages waiting in one of the caller's queues (up to 100, and about 30 KB; not removed)."""
        if queue_name == INBOX_QUEUE:
            return inbox_listing()  # the inbox as scheduler://inbox shows it
        try:
            return _json(read_queue(runtime, queue_name, "peek", 100, limits))
        except AgenToolError as exc:
            raise ResourceNotFoundError(f"Queue {queue_name!r}: {exc}") from exc

    @mcp.resource(INBOX_URI, name="inbox", title="Inbox", mime_type=JSON)
    @as_caller
    async def inbox_resource() -> str:
        """Unread messages for the user (reminders, notify messages, runs' results), oldest first (up to 100, and
        about 30 KB); reading does not remove them (the read_inbox tool acknowledges)."""
        return inbox_listing()

    @mcp.resource("scheduler://agentools", name="agentools", title="Job kinds", mime_type=JSON)
    @as_caller
    async def agentools_resource() -> str:
        """Every job kind a job can run, with its operations and input JSON schema."""
        return _json([e for e in runtime.registry.catalog() if e["name"] != "scheduler"])

    async def audit_page(after: int) -> str:
        entries = await svc.audit.read(after=after, limit=AUDIT_PAGE)
        more = len(entries) == AUDIT_PAGE and entries[-1].seq is not None
        return _json({"entries": [e.model_dump(mode="json") for e in entries], "count": len(entries),
                      "next": f"scheduler://audit/after/{entries[-1].seq}" if more else None})

    @mcp.resource("scheduler://audit", name="audit", title="Audit log", mime_type=JSON)
    @as_caller
    async def audit_resource() -> str:
        """Who changed what and when (create, update, pause, resume, cancel, run_now, backfill, apply, stop and
        start of the scheduler), oldest first, 100 a page (`next` names the next page); admins see every
        principal's changes, others their own."""
        return await audit_page(0)

    @mcp.resource("scheduler://audit/after/{seq}", name="audit-page", title="Audit log after", mime_type=JSON)
    @as_caller
    async def audit_after_resource(seq: str) -> str:
        """The audit log's entries after entry `seq`, oldest first (100 a page)."""
        if not seq.isdigit():
            raise ResourceNotFoundError(f"scheduler://audit/after/{seq}: give the seq of an entry (a number).")
        return await audit_page(int(seq))
