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
from agentool_bridge.errors import clip
from agentool_bridge.toolkits import QueueMessage, check_name
from agentool_bridge.toolkits.inbox import INBOX_QUEUE

from ..errors import SchedulerError
from ..models import BackfillSummary, JobInfo, JobSummary, RunRecord, SchedulePreview, SchedulerInput, SchedulerStatus
from ..policies import PolicyInput
from ..runtime import SchedulerRuntime
from ..scheduler.views import job_summary
from ._params import field_parameter, fields_in_words, with_parameters
from .arguments import describe_argument_errors
from .inbox import read_inbox
from .outputs import (
    AgenToolCatalog,
    AgenToolEntry,
    AnswerLimits,
    HistoryPage,
    InboxPage,
    JobDetail,
    JobPage,
    QueueMessages,
    SchedulerState,
    brief_run,
    json_size,
)

__all__ = ["READ_ONLY", "add_tools", "read_queue", "tool_errors"]

logger = logging.getLogger(__name__)

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
"""Hints that are the spec's defaults are left out (destructiveHint and idempotentHint only count for a tool that
is not read-only); the client reads the same hints in fewer characters."""


def _hints(*, destructive: bool = False, idempotent: bool = False, open_world: bool = False) -> ToolAnnotations:
    # Spec defaults: readOnlyHint false, destructiveHint true, idempotentHint false, openWorldHint true.
    return ToolAnnotations(
        destructive_hint=None if destructive else False,
        idempotent_hint=True if idempotent else None,
        open_world_hint=None if open_world else False,
    )


MAX_ERROR_MESSAGE = 4000
"""Longest error message a tool answers (the sources clip what they quote; this is the last guard)."""


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "Invalid arguments: " + describe_argument_errors(exc.errors(), {})
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


class InboxIsNotAQueueError(SchedulerError, ValueError):
    """read_queue was asked for the inbox, which read_inbox reads (labelled, and acknowledged by id)."""


def _shown(message: QueueMessage, limits: AnswerLimits) -> dict[str, Any]:
    shown = message.as_dict()
    shown["message"] = limits.clip(shown["message"])
    return shown


def read_queue(
    runtime: SchedulerRuntime,
    queue_name: str,
    mode: Literal["peek", "take"],
    count: int,
    limits: AnswerLimits | None = None,
) -> QueueMessages:
    """Messages of a queue, oldest first, at most `count` and a page of `limits`: looked at (`peek`) or removed
    (`take`; only the messages shown are taken). Untrusted content in them is clipped to `limits`."""
    limits = limits or AnswerLimits()
    check_name("queue_name", queue_name)
    if queue_name == INBOX_QUEUE:
        raise InboxIsNotAQueueError("The inbox is read with read_inbox (and the resource scheduler://inbox), not "
                                    "read_queue: it shows who posted each message and acknowledges them by id.")
    queues = runtime.queues
    if mode == "peek":
        peeked = [_shown(m, limits) for m in queues.peek(queue_name, count)]
        shown = limits.page(peeked)
        not_shown = len(peeked) - len(shown)
    else:
        shown, used, not_shown = [], 0, 0
        while len(shown) < count:
            head = queues.peek(queue_name, 1)
            if not head:
                break
            size = json_size(_shown(head[0], limits))
            if shown and used + size > limits.page_bytes:  # leave it, and the rest of `count`, in the queue
                not_shown = min(count - len(shown), queues.counts(queue_name).size)
                break
            taken = queues.take(queue_name)
            if taken is None:
                break
            shown.append(_shown(taken, limits))
            used += json_size(shown[-1])
    remaining = queues.counts(queue_name).size
    return QueueMessages(queue_name=queue_name, mode=mode, messages=shown, remaining=remaining, not_shown=not_shown)


def add_tools(mcp: MCPServer, runtime: SchedulerRuntime, limits: AnswerLimits | None = None) -> None:
    """Register every tool of the scheduler on `mcp`; `limits` bound what run results and pages show."""
    limits = limits or AnswerLimits()
    svc = runtime.service
    timezone = field_parameter("timezone", description="IANA time zone of naive times and cron fields, e.g. "
                               f"'Europe/Berlin'. Default: {svc.timezone}.")

    async def schedule_job(ctx: Context, **kw: Any) -> JobSummary:
        with tool_errors("schedule_job"):
            return job_summary(await svc.schedule(_request("schedule", **kw)))

    mcp.add_tool(
        with_parameters(
            schedule_job,
            ["schedule_type", "schedule", "agentool_name", "input_data",
             field_parameter("job_id", description="Id for the new job: letters, digits and . _ : @ - (at most 128). "
                             "Default: made from job_name or agentool_name."),
             "job_name", timezone,
             "max_instances", "misfire_grace_time", "coalesce", "timeout", "result_queue", "error_queue",
             field_parameter("policy", schema={"type": "object"},
                             description=f"Run policy, every field optional: {fields_in_words(PolicyInput)}"),
             "if_exists"],
            required=["schedule_type", "schedule", "agentool_name", "input_data"],
            returns=JobSummary,
        ),
        description="Schedule an AgenTool to run on a cron, interval or one-time schedule (input_data is checked "
        "now). Returns the schedule in words and the next run.",
        annotations=_hints(),
    )

    lifecycle: list[tuple[str, Callable[[str], Awaitable[JobInfo]], str, ToolAnnotations]] = [
        ("cancel_job", svc.cancel, "Cancel a job for good (its history stays readable).", _hints(destructive=True)),
        ("pause_job", svc.pause, "Pause a job: it keeps its definition but does not fire until resumed.",
         _hints(idempotent=True)),
        ("resume_job", svc.resume, "Resume a paused job from its next scheduled time.", _hints(idempotent=True)),
    ]
    job_id = field_parameter("job_id", required=True, description="The job's id.")
    for name, change, description, hints in lifecycle:
        mcp.add_tool(
            with_parameters(_job_tool(name, change), [job_id], returns=JobSummary),
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
            return limits.run(record)

    mcp.add_tool(
        with_parameters(
            run_now,
            [field_parameter("job_id", description="A job to run once (its schedule stays); alone it is enough."),
             field_parameter("agentool_name", description="Without job_id: the AgenTool to run."),
             field_parameter("input_data", description="Without job_id: the AgenTool's input, e.g. "
                             "{\"operation\": \"log\", \"message\": \"hi\"}."),
             "timeout", "result_queue", "error_queue"],
            returns=RunRecord,
        ),
        description="Run once, now: an existing job (job_id alone) or an AgenTool with input_data. Waits for the "
        "result; a failed run is an error naming the run. The run is recorded in the history.",
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
            summaries = [job_summary(job) for job in jobs]
            return JobPage(jobs=summaries, total=total, next_cursor=str(end) if end < total else None)

    mcp.add_tool(
        with_parameters(
            list_jobs,
            [
                _param("state", Annotated[Literal["scheduled", "paused", "completed"] | None, Field(
                    description="Only jobs in this state. Default: scheduled and paused.")], None),
                _param("agentool_name", Annotated[str | None, Field(
                    description="Only jobs that run this AgenTool.")], None),
                _param("cursor", Annotated[str | None, Field(
                    description="next_cursor of the previous page.")], None),
                field_parameter("limit", description="Most jobs per page."),
            ],
            returns=JobPage,
        ),
        description="Jobs in creation order, a page at a time: id, name, schedule in words, state, next run and last "
        "status (get_job has the rest).",
        annotations=READ_ONLY,
    )

    async def get_job(ctx: Context, job_id: str) -> JobDetail:
        with tool_errors("get_job"):
            job, recent = await svc.get_job(_request("get_job", job_id=job_id).job_id or "")
            return JobDetail(job=job, recent_history=[brief_run(limits.run(r)) for r in recent])

    mcp.add_tool(
        with_parameters(get_job, [job_id], returns=JobDetail),
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
            return HistoryPage(job_id=job_id, runs=[brief_run(limits.run(r)) for r in runs], count=len(runs))

    mcp.add_tool(
        with_parameters(
            get_history,
            [
                field_parameter("job_id", description="Only this job's runs (a cancelled job's too). Default: every "
                                "job's."),
                "status",
                "since",
                "until",
                field_parameter("agentool_name", description="Only runs of this AgenTool."),
                field_parameter("limit", description="Most runs returned."),
            ],
            returns=HistoryPage,
        ),
        description="Runs of one job or of every job, newest first: times, status, result or error. 'What failed in "
        "the last hour?' is since='1h', status='error'.",
        annotations=READ_ONLY,
    )

    async def update_job(ctx: Context, **kw: Any) -> JobSummary:
        with tool_errors("update_job"):
            changes = {k: v for k, v in kw.items() if v is not None}
            return job_summary(await svc.update(_request("update", **changes)))

    mcp.add_tool(
        with_parameters(
            update_job,
            [field_parameter("job_id", required=True, description="The job to change."),
             *(field_parameter(name, optional=True, description=f"New {words}.", schema=schema)
               for name, words, schema in _UPDATES)],
            returns=JobSummary,
        ),
        description="Change a job: give only what changes, each field as in schedule_job (a new schedule needs "
        "schedule_type and schedule). The job keeps its id, state and history.",
        annotations=_hints(idempotent=True),
    )

    async def scheduler_status(ctx: Context) -> SchedulerStatus:
        with tool_errors("scheduler_status"):
            return runtime.status()

    mcp.add_tool(
        with_parameters(scheduler_status, [], returns=SchedulerStatus),
        description="Whether jobs run; job and run counts; time zone; which process runs them.",
        annotations=READ_ONLY,
    )

    async def start_scheduler(ctx: Context) -> SchedulerState:
        with tool_errors("start_scheduler"):
            return SchedulerState.of(await svc.start())

    mcp.add_tool(
        with_parameters(start_scheduler, [], returns=SchedulerState),
        description="Start processing jobs again after stop_scheduler.",
        annotations=_hints(idempotent=True),
    )

    async def stop_scheduler(ctx: Context) -> SchedulerState:
        with tool_errors("stop_scheduler"):
            return SchedulerState.of(await svc.stop())

    mcp.add_tool(
        with_parameters(stop_scheduler, [], returns=SchedulerState),
        description="Stop processing jobs; no job is lost. Undo with start_scheduler.",
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
            ["schedule_type", "schedule", timezone, "count",
             field_parameter("policy", description="A run policy: its start_at, end_at, max_runs and jitter shape the "
                             "times shown.", schema={"type": "object"})],
            required=["schedule_type", "schedule"],
            returns=SchedulePreview,
        ),
        description="Describe a schedule in plain words and list its next run times, without creating a job.",
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
             field_parameter("since", required=True, description="Start of the past range: an ISO 8601 time (in the "
                             "job's time zone) or how long ago, e.g. '30 days'."),
             field_parameter("until", description="End of the range (default: now); must not be in the future."),
             "backfill_overlap"],
            required=["job_id", "since"],
            returns=BackfillSummary,
        ),
        description="Run a job once for each fire time of its schedule in a past range (at most 1000), e.g. after an "
        "outage. Answers at once; get_history shows the runs as they finish.",
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
            return read_queue(runtime, queue_name, mode, count, limits)

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
        description="Read the messages that jobs sent to a result or error queue.",
        annotations=_hints(destructive=True),
    )

    async def read_inbox_tool(
        ctx: Context, count: int = 20, acknowledge: bool = False, ack_ids: list[str] | None = None
    ) -> InboxPage:
        with tool_errors("read_inbox"):
            return read_inbox(runtime, count, acknowledge=acknowledge, ack_ids=ack_ids, limits=limits)

    mcp.add_tool(
        with_parameters(
            read_inbox_tool,
            [
                _param("count", Annotated[int, Field(ge=1, le=100, description="Messages to return, oldest first.")],
                       20),
                _param("acknowledge", Annotated[bool, Field(
                    description="true: remove the messages returned (once the user has been told).")], False),
                _param("ack_ids", Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]] | None, Field(
                    max_length=1000, description="Remove these message ids without reading.")], None),
            ],
            returns=InboxPage,
        ),
        name="read_inbox",
        description="Messages that jobs posted for the user, oldest first. The scheduler cannot write into the chat: "
        "read the inbox when a conversation starts, tell the user, then acknowledge what you told.",
        annotations=_hints(destructive=True),
    )


_UPDATES: list[tuple[str, str, dict[str, Any] | None]] = [
    # update_job's parameters: (field, what a new value of it is, the published schema if shorter than the field's)
    ("schedule_type", "schedule type", None),
    ("schedule", "schedule expression", None),
    ("timezone", "IANA time zone", None),
    ("agentool_name", "AgenTool to run", None),
    ("input_data", "input for the AgenTool (checked against its input schema)", None),
    ("job_name", "name", None),
    ("max_instances", "most runs at once", None),
    ("misfire_grace_time", "seconds a due run may wait while busy", None),
    ("coalesce", "choice: run once when several runs were missed", None),
    ("timeout", "seconds a run may take", None),
    ("result_queue", "queue for results ('inbox': the user's inbox)", {"type": "string"}),
    ("error_queue", "queue for errors ('inbox': the user's inbox)", {"type": "string"}),
    ("policy", "run policy, replacing the old one (its fields as in schedule_job)", {"type": "object"}),
]


def _job_tool(name: str, change: Callable[[str], Awaitable[JobInfo]]) -> Callable[..., Awaitable[JobSummary]]:
    """A tool that takes a job_id and applies one lifecycle change (cancel, pause, resume) to the job."""
    operation = name.removesuffix("_job")

    async def tool(ctx: Context, job_id: str) -> JobSummary:
        with tool_errors(name):
            return job_summary(await change(_request(operation, job_id=job_id).job_id or ""))

    tool.__name__ = tool.__qualname__ = name
    return tool
