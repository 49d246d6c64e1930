"""The MCP tools: one per scheduler operation, plus the AgenTool catalog and queue reading.

Tool parameters are generated from `SchedulerInput`'s fields (`with_parameters`), so the MCP
schemas and the AgenTool input model never drift apart.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError

from agentool_bridge import AgenToolError
from agentool_bridge.errors import clip, describe_errors
from agentool_bridge.toolkits import check_name

from ..errors import SchedulerError
from ..models import BackfillSummary, JobInfo, RunRecord, SchedulePreview, SchedulerInput, SchedulerStatus
from ..runtime import SchedulerRuntime
from ._params import field_parameter, with_parameters
from .inbox import read_inbox
from .outputs import (
    AgenToolCatalog,
    AgenToolEntry,
    HistoryPage,
    InboxPage,
    JobDetail,
    JobPage,
    QueueMessages,
    brief_run,
)

__all__ = ["READ_ONLY", "add_tools", "read_queue", "tool_errors"]

logger = logging.getLogger(__name__)

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def _hints(*, destructive: bool = False, idempotent: bool = False, open_world: bool = False) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=False, destructive_hint=destructive, idempotent_hint=idempotent, open_world_hint=open_world
    )


MAX_ERROR_MESSAGE = 4000
"""Longest error message a tool answers (the sources clip what they quote; this is the last guard)."""


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "Invalid arguments: " + describe_errors(exc.errors())
    message = str(exc)
    if len(message) > MAX_ERROR_MESSAGE:
        message = f"{message[:MAX_ERROR_MESSAGE]}... (message clipped)"
    return message


@contextlib.contextmanager
def tool_errors(tool: str) -> Iterator[None]:
    """Answer the errors the project raises on purpose with their message (the caller can act on it);
    anything else is a bug or a server fault: logged with its traceback and answered as an internal error."""
    try:
        yield
    except ToolError:
        raise
    except (SchedulerError, AgenToolError, ValidationError) as exc:
        raise ToolError(_describe_error(exc)) from exc
    except Exception as exc:
        logger.exception("Internal error in tool %s", tool)
        raise ToolError(
            f"Internal error in {tool} ({type(exc).__name__}): not a problem with the arguments; the server "
            "log has the details. Retrying may help."
        ) from exc


def _request(operation: str, **fields: Any) -> SchedulerInput:
    return SchedulerInput(operation=operation, **fields)  # type: ignore[arg-type]


def _param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def read_queue(runtime: SchedulerRuntime, queue_name: str, mode: Literal["peek", "take"], count: int) -> QueueMessages:
    """Messages of a queue, oldest first: looked at (`peek`) or removed (`take`)."""
    check_name("queue_name", queue_name)
    queues = runtime.queues
    if mode == "peek":
        messages = queues.peek(queue_name, count)
    else:
        messages = []
        while len(messages) < count and (taken := queues.take(queue_name)) is not None:
            messages.append(taken)
    remaining = queues.counts(queue_name).size
    return QueueMessages(
        queue_name=queue_name, mode=mode, messages=[m.as_dict() for m in messages], remaining=remaining
    )


def add_tools(mcp: MCPServer, runtime: SchedulerRuntime) -> None:
    """Register every tool of the scheduler on `mcp`."""
    svc = runtime.service
    naive = f"Naive datetimes and cron fields are read in {svc.timezone} unless `timezone` is given."

    async def schedule_job(ctx: Context, **kw: Any) -> JobInfo:
        with tool_errors("schedule_job"):
            return await svc.schedule(_request("schedule", **kw))

    mcp.add_tool(
        with_parameters(
            schedule_job,
            ["schedule_type", "schedule", "agentool_name", "input_data", "job_id", "job_name", "timezone",
             "max_instances", "misfire_grace_time", "coalesce", "timeout", "result_queue", "error_queue", "policy",
             "if_exists"],
            required=["schedule_type", "schedule", "agentool_name", "input_data"],
            returns=JobInfo,
        ),
        description="Schedule an AgenTool to run on a cron, interval or one-time schedule. input_data is checked "
        f"against the AgenTool's input schema now (see list_agentools). {naive} The result states the time zone, "
        "the schedule in words and the next 3 run times. Tip: call preview_schedule first.",
        annotations=_hints(),
    )

    lifecycle: list[tuple[str, Callable[[str], Awaitable[JobInfo]], str, ToolAnnotations]] = [
        ("cancel_job", svc.cancel, "Cancel a job for good (its history stays readable). Returns the job as it was.",
         _hints(destructive=True)),
        ("pause_job", svc.pause, "Pause a job: it keeps its definition but does not fire until resumed.",
         _hints(idempotent=True)),
        ("resume_job", svc.resume, "Resume a paused job from its next scheduled time.", _hints(idempotent=True)),
    ]
    for name, change, description, hints in lifecycle:
        mcp.add_tool(
            with_parameters(_job_tool(name, change), ["job_id"], required=["job_id"], returns=JobInfo),
            name=name,
            description=description,
            annotations=hints,
        )

    async def run_now(ctx: Context, **kw: Any) -> RunRecord:
        with tool_errors("run_now"):
            request = _request("run_now", **kw)
            await ctx.report_progress(0, 1, "running")
            record = await svc.run_now(request)
            await ctx.report_progress(1, 1, record.status)
            return record

    mcp.add_tool(
        with_parameters(
            run_now,
            ["job_id", "agentool_name", "input_data", "timeout", "result_queue", "error_queue"],
            returns=RunRecord,
        ),
        description="Run now, once: either an existing job (give job_id; its schedule does not change) or an "
        "AgenTool with input_data. Waits for the result; a failed run is an error naming the run. Every run is "
        "recorded in the job's history. Reports progress when asked.",
        annotations=_hints(open_world=True),
    )

    async def list_jobs(
        ctx: Context,
        state: Literal["scheduled", "paused", "completed"] | None = None,
        agentool_name: str | None = None,
        cursor: str | None = None,
        limit: int = 20,
    ) -> JobPage:
        with tool_errors("list_jobs"):
            # Cursors are the offsets we hand out; a negative one would slice from the end and never end.
            if cursor and not (cursor.isascii() and cursor.isdigit()):
                raise ToolError(f"Invalid cursor {clip(cursor)}: pass the next_cursor of a previous page.")
            offset = int(cursor) if cursor else 0
            jobs, total = svc.list_jobs(state=state, agentool_name=agentool_name, offset=offset, limit=limit)
            end = offset + len(jobs)
            return JobPage(jobs=jobs, total=total, next_cursor=str(end) if end < total else None)

    mcp.add_tool(
        with_parameters(
            list_jobs,
            [
                _param("state", Annotated[Literal["scheduled", "paused", "completed"] | None, Field(
                    description="Only jobs in this state. Default: scheduled and paused jobs.")], None),
                _param("agentool_name", Annotated[str | None, Field(
                    description="Only jobs that run this AgenTool.")], None),
                _param("cursor", Annotated[str | None, Field(
                    description="next_cursor from the previous page; omit for the first page.")], None),
                "limit",
            ],
            returns=JobPage,
        ),
        description="List jobs (creation order), with filters and cursor pagination.",
        annotations=READ_ONLY,
    )

    async def get_job(ctx: Context, job_id: str) -> JobDetail:
        with tool_errors("get_job"):
            job, recent = await svc.get_job(_request("get_job", job_id=job_id).job_id or "")
            return JobDetail(job=job, recent_history=[brief_run(r) for r in recent])

    mcp.add_tool(
        with_parameters(get_job, ["job_id"], required=["job_id"], returns=JobDetail),
        description="A job's definition, state, next 3 run times and its 5 latest runs.",
        annotations=READ_ONLY,
    )

    async def get_history(
        ctx: Context,
        job_id: str | None = None,
        status: str | None = None,
        since: str | None = None,
        until: str | None = None,
        agentool_name: str | None = None,
        limit: int = 20,
    ) -> HistoryPage:
        with tool_errors("get_history"):
            request = _request(
                "get_history", job_id=job_id, status=status, since=since, until=until, agentool_name=agentool_name,
                limit=limit,
            )
            runs = await svc.get_history(
                request.job_id, request.status, request.limit, since=request.since, until=request.until,
                agentool_name=request.agentool_name,
            )
            return HistoryPage(job_id=job_id, runs=[brief_run(r) for r in runs], count=len(runs))

    mcp.add_tool(
        with_parameters(
            get_history,
            [
                field_parameter("job_id", description="Only this job's runs (also a cancelled job's or a run_now "
                                "id). Omit for the runs of every job."),
                "status",
                "since",
                "until",
                field_parameter("agentool_name", description="Only runs of this AgenTool."),
                "limit",
            ],
            returns=HistoryPage,
        ),
        description="Runs, newest first, of one job or of every job (cancelled and finished ones included): "
        "scheduled time, start, end, duration, status (success, error, timeout, missed, skipped, cancelled, "
        "interrupted), result or error. 'What ran in the last hour and what failed?' is since='1h'; add "
        "status='error' for the failures.",
        annotations=READ_ONLY,
    )

    async def update_job(ctx: Context, **kw: Any) -> JobInfo:
        with tool_errors("update_job"):
            return await svc.update(_request("update", **{k: v for k, v in kw.items() if v is not None}))

    mcp.add_tool(
        with_parameters(
            update_job,
            [field_parameter("job_id", required=True, description="The job to change."),
             *(field_parameter(name, optional=True) for name in (
                 "schedule_type", "schedule", "timezone", "agentool_name", "input_data", "job_name", "max_instances",
                 "misfire_grace_time", "coalesce", "timeout", "result_queue", "error_queue", "policy"))],
            returns=JobInfo,
        ),
        description="Change a job: give only what changes (its schedule, input_data, queues or limits). The job "
        "keeps its id, its state (a paused job stays paused) and its history; input_data is checked as for "
        "schedule_job. Returns the job with its next 3 run times.",
        annotations=_hints(idempotent=True),
    )

    async def scheduler_status(ctx: Context) -> SchedulerStatus:
        with tool_errors("scheduler_status"):
            return svc.status()

    mcp.add_tool(
        with_parameters(scheduler_status, [], returns=SchedulerStatus),
        description="Whether jobs are being processed, job counts, runs in progress, default time zone.",
        annotations=READ_ONLY,
    )

    async def start_scheduler(ctx: Context) -> SchedulerStatus:
        with tool_errors("start_scheduler"):
            return await svc.start()

    mcp.add_tool(
        with_parameters(start_scheduler, [], returns=SchedulerStatus),
        description="Start processing jobs again after stop_scheduler. Runs missed meanwhile follow each job's "
        "misfire_grace_time and coalesce settings.",
        annotations=_hints(idempotent=True),
    )

    async def stop_scheduler(ctx: Context) -> SchedulerStatus:
        with tool_errors("stop_scheduler"):
            return await svc.stop()

    mcp.add_tool(
        with_parameters(stop_scheduler, [], returns=SchedulerStatus),
        description="Stop processing jobs (no job is lost; the server keeps answering). Undo with start_scheduler.",
        annotations=_hints(idempotent=True),
    )

    async def preview_schedule(ctx: Context, **kw: Any) -> SchedulePreview:
        with tool_errors("preview_schedule"):
            request = _request("preview", **kw)
            return svc.preview(request.schedule_type or "", request.schedule or "", request.timezone, request.count,
                               request.policy)

    mcp.add_tool(
        with_parameters(
            preview_schedule,
            ["schedule_type", "schedule", "timezone", "count",
             field_parameter("policy", description="Optional run policy: start_at, end_at, max_runs and jitter shape "
                             "the times shown (the other fields are checked, not shown).")],
            required=["schedule_type", "schedule"],
            returns=SchedulePreview,
        ),
        description=f"Describe a schedule in plain words and list its next run times, without creating a job. {naive}",
        annotations=READ_ONLY,
    )

    async def backfill_job(ctx: Context, **kw: Any) -> BackfillSummary:
        with tool_errors("backfill_job"):
            request = _request("backfill", **kw)
            return await svc.backfill(request.job_id or "", request.since or "", request.until,
                                      request.backfill_overlap)

    mcp.add_tool(
        with_parameters(
            backfill_job,
            [field_parameter("job_id", required=True, description="The job to backfill."),
             field_parameter("since", required=True, description="Start of the past range: an ISO 8601 time (read in "
                             "the job's time zone without an offset) or how long ago, such as '30 days'."),
             field_parameter("until", description="End of the range (default: now); must not be in the future."),
             "backfill_overlap"],
            required=["job_id", "since"],
            returns=BackfillSummary,
        ),
        description="Run a job once for every fire time of its schedule in a past range (at most 1000), e.g. after "
        "an outage or for a new job's past month. Each run is recorded with trigger 'backfill' and its fire time as "
        "scheduled_time. Answers at once with what it started; get_history(job_id) shows the runs as they finish.",
        annotations=_hints(open_world=True),
    )

    async def list_agentools(ctx: Context) -> AgenToolCatalog:
        entries = [
            AgenToolEntry(
                name=e["name"],
                description=e["description"],
                operations=e["operations"],
                input_schema=e["input_schema"],
                examples=e["examples"],
            )
            for e in runtime.registry.catalog()
            if e["name"] != "scheduler"
        ]
        return AgenToolCatalog(agentools=entries)

    mcp.add_tool(
        with_parameters(list_agentools, [], returns=AgenToolCatalog),
        description="What jobs can run: every AgenTool with its operations and the JSON schema of its input_data.",
        annotations=READ_ONLY,
    )

    async def read_queue_tool(
        ctx: Context, queue_name: str, mode: Literal["peek", "take"] = "peek", count: int = 10
    ) -> QueueMessages:
        with tool_errors("read_queue"):
            return read_queue(runtime, queue_name, mode, count)

    mcp.add_tool(
        with_parameters(
            read_queue_tool,
            [
                _param("queue_name", Annotated[str, Field(
                    min_length=1, max_length=200, description="The result_queue or error_queue of a job.")]),
                _param("mode", Annotated[Literal["peek", "take"], Field(
                    description="peek: look without removing; take: remove the messages returned.")], "peek"),
                _param("count", Annotated[int, Field(ge=1, le=100, description="Messages to return.")], 10),
            ],
            returns=QueueMessages,
        ),
        name="read_queue",
        description="Read the messages that jobs sent to a result or error queue (peek, or take to remove them).",
        annotations=_hints(destructive=True),
    )

    async def read_inbox_tool(
        ctx: Context, count: int = 20, acknowledge: bool = False, ack_ids: list[str] | None = None
    ) -> InboxPage:
        with tool_errors("read_inbox"):
            return read_inbox(runtime, count, acknowledge=acknowledge, ack_ids=ack_ids)

    mcp.add_tool(
        with_parameters(
            read_inbox_tool,
            [
                _param("count", Annotated[int, Field(ge=1, le=100, description="Messages to return, oldest first.")],
                       20),
                _param("acknowledge", Annotated[bool, Field(
                    description="false: only look; true: remove the messages returned (once you have told the "
                    "user about them).")], False),
                _param("ack_ids", Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]] | None, Field(
                    max_length=1000, description="Acknowledge (remove) these message ids without reading; count "
                    "and acknowledge are then ignored.")], None),
            ],
            returns=InboxPage,
        ),
        name="read_inbox",
        description="Read the inbox: reminders and messages that jobs posted for the user (notify) while you were "
        "away, oldest first, with how many remain unread. The scheduler cannot write into the chat, so check the "
        "inbox at the start of a conversation and tell the user what happened since you last talked; then "
        "acknowledge what you reported (acknowledge=true, or ack_ids).",
        annotations=_hints(destructive=True),
    )


def _job_tool(name: str, change: Callable[[str], Awaitable[JobInfo]]) -> Callable[..., Awaitable[JobInfo]]:
    """A tool that takes a job_id and applies one lifecycle change (cancel, pause, resume) to the job."""
    operation = name.removesuffix("_job")

    async def tool(ctx: Context, job_id: str) -> JobInfo:
        with tool_errors(name):
            return await change(_request(operation, job_id=job_id).job_id or "")

    tool.__name__ = tool.__qualname__ = name
    return tool
