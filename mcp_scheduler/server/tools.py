"""The MCP tools: `add_tools` adds every tool of the scheduler in the order clients list them.

The job tools are in `job_tools`; here are those about runs (run_now, get_history), the scheduler itself
(status, start, stop), the AgenTool catalog, and reading queues and the inbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from agentool_bridge.toolkits import QueueMessage, check_name
from agentool_bridge.toolkits.inbox import INBOX_QUEUE

from ..errors import RunNotFoundError, SchedulerError
from ..models import RunRecord, SchedulerStatus
from ..principals import ADMIN, READ, RUN, WRITE
from ..queue_owners import queue_for
from ..runtime import SchedulerRuntime
from ._params import field_parameter, with_parameters
from .briefs import brief_run, history_page, job_kinds
from .confirmation import Confirmations, check_confirmed
from .inbox import read_inbox
from .job_tools import job_tools
from .outputs import (
    AgenToolCatalog,
    AnswerLimits,
    FoundRun,
    HistoryPage,
    InboxPage,
    QueueMessages,
    SchedulerState,
    json_size,
)
from .tasks import task_run_id
from .tooling import READ_ONLY, Need, Tool, hints, keyword, kind_needs, scheduler_input, tool_errors

__all__ = ["TOOL_ORDER", "InboxIsNotAQueueError", "add_tools", "read_queue"]

_NAME = {"type": "string"}  # a queue name as published (checked as the field says)

TOOL_ORDER = (
    "schedule_job", "cancel_job", "pause_job", "resume_job", "run_now", "list_jobs", "get_job", "get_history",
    "get_run", "update_job", "scheduler_status", "start_scheduler", "stop_scheduler", "preview_schedule",
    "backfill_job", "list_agentools", "read_queue", "read_inbox",
)
"""The order of tools/list: what a model reads first (scheduling), then the rest roughly by how often it is used."""


def add_tools(
    mcp: MCPServer, runtime: SchedulerRuntime, limits: AnswerLimits | None = None, *, confirm: bool = True
) -> list[Tool]:
    """Register every tool of the scheduler on `mcp` and return them; `limits` bound what run results and pages
    show; `confirm` False (`--no-confirm`) asks the user nothing before what cannot be undone or reaches the host."""
    limits = limits or AnswerLimits()
    confirmations = Confirmations(runtime, enabled=confirm)
    tools = [*job_tools(runtime, limits, confirmations), *_other_tools(runtime, limits, confirmations)]
    by_name = {tool.tool_name: tool for tool in tools}
    if sorted(by_name) != sorted(TOOL_ORDER):
        raise AssertionError(f"TOOL_ORDER does not name the tools made: {sorted(by_name)}")
    for name in TOOL_ORDER:
        by_name[name].add_to(mcp)
    return [by_name[name] for name in TOOL_ORDER]


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
    """Messages of a queue of the acting principal (`queue_owners`: its own, or any for an admin), oldest first, at
    most `count` and a page of `limits`: looked at (`peek`) or removed (`take`; only the messages shown are taken).
    Untrusted content in them is clipped to `limits`."""
    limits = limits or AnswerLimits()
    check_name("queue_name", queue_name)
    if queue_name == INBOX_QUEUE:
        raise InboxIsNotAQueueError("The inbox is read with read_inbox (and the resource scheduler://inbox), not "
                                    "read_queue: it shows who posted each message and acknowledges them by id.")
    queues, stored = runtime.queues, queue_for(queue_name)
    if mode == "peek":
        peeked = [_shown(m, limits) for m in queues.peek(stored, count)]
        shown = limits.page(peeked)
        not_shown = len(peeked) - len(shown)
    else:
        shown, used, not_shown = [], 0, 0
        while len(shown) < count:
            head = queues.peek(stored, 1)
            if not head:
                break
            size = json_size(_shown(head[0], limits))
            if shown and used + size > limits.page_bytes:  # leave it, and the rest of `count`, in the queue
                not_shown = min(count - len(shown), queues.counts(stored).size)
                break
            taken = queues.take(stored)
            if taken is None:
                break
            shown.append(_shown(taken, limits))
            used += json_size(shown[-1])
    remaining = queues.counts(stored).size
    return QueueMessages(queue_name=queue_name, mode=mode, messages=shown, remaining=remaining, not_shown=not_shown)




def _other_tools(runtime: SchedulerRuntime, limits: AnswerLimits, confirmations: Confirmations) -> list[Tool]:
    """The tools about runs, the scheduler, the catalog of job kinds, queues and the inbox."""
    svc = runtime.service
    tools: list[Tool] = []

    async def run_now(ctx: Context, **kw: Any) -> RunRecord:
        with tool_errors("run_now"):
            request = scheduler_input("run_now", **kw)
            run_id = task_run_id()  # answered as a task: the task follows this run
            if run_id is None:
                await ctx.report_progress(0, 1, "running")
            record = await svc.run_now(request, run_id=run_id)
            if run_id is None:
                await ctx.report_progress(1, 1, record.status)
            return limits.run(record)

    tools.append(Tool(
        with_parameters(
            run_now,
            [field_parameter("job_id", description="A job to run (its schedule stays)."),
             field_parameter("agentool_name", description="Without job_id: the job kind to run."),
             field_parameter("input_data", description="Without job_id: its input (as in schedule_job)."),
             field_parameter("timeout", description="Seconds it may take.", schema={"type": "number"}),
             field_parameter("result_queue", description="Queue for its result, or 'inbox'."),
             field_parameter("error_queue", description="Queue for its error, or 'inbox'.")],
            returns=RunRecord,
        ),
        description="Run once now: a job (job_id alone) or a job kind with input_data. Waits for the result; a "
        "failure is an error.",
        annotations=hints(open_world=True),
        scope=RUN,
        also=kind_needs(runtime.registry, "run_now", stored=svc.job_kind),
    ))

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
            request = scheduler_input(
                "get_history", job_id=job_id, status=status, since=since, until=until, agentool_name=agentool_name,
                limit=limit,
            )
            runs = await svc.get_history(
                request.job_id, request.status, request.limit, since=request.since, until=request.until,
                agentool_name=request.agentool_name,
            )
            return history_page(job_id, [brief_run(limits.run(r)) for r in runs], limits)

    tools.append(Tool(
        with_parameters(
            get_history,
            [
                field_parameter("job_id", description="Only this job's (a cancelled one's too)."),
                "status",
                field_parameter("since", description="From then on: ISO 8601, or how long ago, e.g. '1h'."),
                field_parameter("until", description="Before then (as since)."),
                field_parameter("agentool_name", description="Only this job kind's."),
                field_parameter("limit", description="Most runs returned."),
            ],
            returns=HistoryPage,
        ),
        description="Runs, newest first, with summary or error. Failed in the last hour: since='1h', "
        "status='error'.",
        annotations=READ_ONLY,
        scope=READ,
    ))

    async def get_run(ctx: Context, run_id: Annotated[str, Field(description="The run's id.")]) -> FoundRun:
        with tool_errors("get_run"):
            found = await svc.get_history(None, limit=1, run_id=run_id)
            record = next((r for r in found if r.run_id == run_id), None)
            if record is None:
                raise RunNotFoundError(run_id)
            return FoundRun(run=brief_run(limits.run(record)).model_dump(mode="json", exclude_none=True))

    tools.append(Tool(
        get_run,
        description="A run by id: running, or how it ended.",
        annotations=READ_ONLY,
        scope=READ,
    ))

    async def scheduler_status(ctx: Context) -> SchedulerStatus:
        with tool_errors("scheduler_status"):
            return runtime.status()

    tools.append(Tool(
        with_parameters(scheduler_status, [], returns=SchedulerStatus),
        description="Whether jobs run, counts, time zone, which process runs them.",
        annotations=READ_ONLY,
        scope=READ,
    ))

    async def start_scheduler(ctx: Context) -> SchedulerState:
        with tool_errors("start_scheduler"):
            return SchedulerState.of(await svc.start())

    tools.append(Tool(
        with_parameters(start_scheduler, [], returns=SchedulerState),
        description="Process jobs again after stop_scheduler.",
        annotations=hints(idempotent=True),
        scope=ADMIN,
    ))

    async def stop_scheduler(ctx: Context, **asked: Any) -> SchedulerState:
        check_confirmed(asked, "stopping the scheduler")
        with tool_errors("stop_scheduler"):
            return SchedulerState.of(await svc.stop())

    tools.append(Tool(
        with_parameters(stop_scheduler, confirmations.parameters("stop_scheduler", [], confirmations.stop),
                        returns=SchedulerState),
        description="Stop processing jobs; none is lost. Undo: start_scheduler.",
        annotations=hints(idempotent=True),
        scope=ADMIN,
    ))

    async def list_agentools(ctx: Context, name: str | None = None) -> AgenToolCatalog:
        with tool_errors("list_agentools"):
            return job_kinds(runtime.registry.catalog(), name)

    tools.append(Tool(
        with_parameters(
            list_agentools,
            [keyword("name", Annotated[str | None, Field(
                max_length=200, description="One kind: input schema, examples.")], None)],
            returns=AgenToolCatalog,
        ),
        description="Job kinds, one line each: operations and input_data fields.",
        annotations=READ_ONLY,
        scope=READ,
    ))

    async def read_queue_tool(
        ctx: Context, queue_name: str, mode: Literal["peek", "take"] = "peek", count: int = 10
    ) -> QueueMessages:
        with tool_errors("read_queue", runtime.config.database):
            return read_queue(runtime, queue_name, mode, count, limits)

    tools.append(Tool(
        with_parameters(
            read_queue_tool,
            [
                keyword("queue_name", Annotated[str, Field(
                    min_length=1, max_length=200, description="A job's result_queue or error_queue.")]),
                keyword("mode", Annotated[Literal["peek", "take"], Field(
                    description="peek: look; take: remove those returned.")], "peek"),
                keyword("count", Annotated[int, Field(ge=1, le=100, description="Messages to return.")], 10),
            ],
            returns=QueueMessages,
        ),
        name="read_queue",
        description="Messages jobs sent to a result or error queue.",
        annotations=hints(destructive=True),
        scope=READ,
        also=_taking,
    ))

    async def read_inbox_tool(
        ctx: Context, count: int = 20, acknowledge: bool = False, ack_ids: list[str] | None = None
    ) -> InboxPage:
        with tool_errors("read_inbox", runtime.config.database):
            return read_inbox(runtime, count, acknowledge=acknowledge, ack_ids=ack_ids, limits=limits)

    tools.append(Tool(
        with_parameters(
            read_inbox_tool,
            [
                keyword("count", Annotated[int, Field(ge=1, le=100, description="Messages to return.")],
                       20),
                keyword("acknowledge", Annotated[bool, Field(
                    description="true: remove those returned, once told to the user.")], False),
                keyword("ack_ids", Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]] | None, Field(
                    max_length=1000, description="Remove these message ids without reading.")], None),
            ],
            returns=InboxPage,
        ),
        name="read_inbox",
        description="Messages jobs posted for the user, oldest first. At a conversation's start: read, tell the user, "
        "acknowledge.",
        annotations=hints(destructive=True),
        scope=READ,
        also=_acknowledging,
    ))

    return tools


async def _taking(arguments: Mapping[str, Any]) -> list[Need]:
    return [(WRITE, "read_queue with mode 'take'")] if arguments.get("mode") == "take" else []


async def _acknowledging(arguments: Mapping[str, Any]) -> list[Need]:
    ids = arguments.get("ack_ids")
    acknowledging = arguments.get("acknowledge") is True or isinstance(ids, list) and len(ids) > 0
    return [(WRITE, "read_inbox acknowledging messages")] if acknowledging else []
