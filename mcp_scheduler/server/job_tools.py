"""The tools about jobs: schedule, cancel, pause, resume, list, read, update, preview a schedule, backfill.

Tool parameters are generated from `SchedulerInput`'s fields (`with_parameters`), so the MCP schemas and the
AgenTool input model never drift apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from agentool_bridge.errors import clip

from ..models import AcceptedJob, BackfillSummary, CancelledJob, JobInfo, SchedulePreview
from ..models.request import SCHEDULE_FIELDS
from ..policies import PolicyInput
from ..principals import READ, RUN, WRITE
from ..runtime import SchedulerRuntime
from ..scheduler.views import accepted_job, job_summary
from ._params import field_parameter, fields_in_words, with_parameters
from .briefs import JobBrief, brief_job
from .confirmation import Confirmations, check_confirmed
from .outputs import AnswerLimits, JobPage
from .tasks import in_task
from .tooling import READ_ONLY, Tool, hints, keyword, kind_needs, scheduler_input, stored_kind_needs, tool_errors

__all__ = ["job_tools"]


def job_tools(runtime: SchedulerRuntime, limits: AnswerLimits, confirmations: Confirmations) -> list[Tool]:
    """The job tools on `runtime`'s scheduler; `limits` bound the runs that get_job shows; `confirmations` ask the
    user before cancel_job, a job that runs a program and an update_job that widens what a job reaches."""
    svc = runtime.service
    tools: list[Tool] = []
    timezone = field_parameter("timezone", description=f"IANA zone of naive times and cron fields (default "
                               f"{svc.timezone}).")

    async def schedule_job(ctx: Context, **kw: Any) -> AcceptedJob:
        check_confirmed(kw, "scheduling a job that runs a program")
        with tool_errors("schedule_job"):
            return accepted_job(await svc.schedule(scheduler_input("schedule", **kw), previews=0))

    own = {
        "job_id": field_parameter("job_id", description="Letters, digits, . _ : @ - (128 max). "
                                  "Default: from job_name or kind."),
        "timezone": timezone,
        "policy": field_parameter("policy", schema={"type": "object"},
                                  description=f"All optional: {fields_in_words(PolicyInput)}"),
        "success": field_parameter("success", schema={"type": "object"}),
    }
    tools.append(Tool(
        with_parameters(
            schedule_job,
            [*(own.get(name, name) for name in SCHEDULE_FIELDS),
             *confirmations.parameters("schedule_job", _ASKED_ABOUT, confirmations.schedule)],
            required=["schedule_type", "schedule", "agentool_name", "input_data"],
            returns=AcceptedJob,
        ),
        description="Schedule a job kind (cron, interval or once); input_data is checked now.",
        annotations=hints(),
        scope=WRITE,
        also=kind_needs(runtime.registry, "schedule_job"),
    ))

    lifecycle: list[tuple[str, Callable[[str], Awaitable[JobInfo]], str, ToolAnnotations]] = [
        ("cancel_job", svc.cancel, "Cancel a job for good (its history stays).", hints(destructive=True)),
        ("pause_job", svc.pause, "Pause a job: it does not fire until resumed.",
         hints(idempotent=True)),
        ("resume_job", svc.resume, "Resume a paused job from its next scheduled time.", hints(idempotent=True)),
    ]
    job_id = field_parameter("job_id", required=True, description="The job's id.")
    for name, change, description, tool_hints in lifecycle:
        asked = confirmations.parameters(name, ["job_id"], confirmations.cancel) if name == "cancel_job" else []
        tools.append(Tool(
            with_parameters(_job_tool(name, change), [job_id, *asked],
                            returns=CancelledJob if name == "cancel_job" else AcceptedJob),
            name=name,
            description=description,
            annotations=tool_hints,
            scope=WRITE,
            # resuming lets the job run again: as run_now, the scope of its kind
            also=stored_kind_needs(svc.job_kind, name) if name == "resume_job" else None,
        ))

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
            stale_since = await svc.catch_up()
            jobs, total = svc.list_jobs(state=state, agentool_name=agentool_name, offset=offset, limit=limit)
            end = offset + len(jobs)
            summaries = [job_summary(job) for job in jobs]
            return JobPage(jobs=summaries, total=total, next_cursor=str(end) if end < total else None,
                           refreshed_at=stale_since)

    tools.append(Tool(
        with_parameters(
            list_jobs,
            [
                keyword("state", Annotated[Literal["scheduled", "paused", "completed"] | None, Field(
                    description="Only this state (default: scheduled and paused).")], None),
                keyword("agentool_name", Annotated[str | None, Field(
                    description="Only jobs of this kind.")], None),
                keyword("cursor", Annotated[str | None, Field(
                    description="next_cursor of the previous page.")], None),
                field_parameter("limit", description="Most jobs per page."),
            ],
            returns=JobPage,
        ),
        description="Jobs in creation order, a page at a time.",
        annotations=READ_ONLY,
        scope=READ,
    ))

    async def get_job(ctx: Context, job_id: str) -> JobBrief:
        with tool_errors("get_job"):
            job, recent = await svc.get_job(scheduler_input("get_job", job_id=job_id).job_id or "")
            return brief_job(job, [limits.run(r) for r in recent])

    tools.append(Tool(
        with_parameters(get_job, [job_id], returns=JobBrief),
        description="A job's definition, state, next 3 runs and 2 latest runs.",
        annotations=READ_ONLY,
        scope=READ,
    ))

    async def update_job(ctx: Context, **kw: Any) -> AcceptedJob:
        check_confirmed(kw, "a change to what the job runs or reaches")
        with tool_errors("update_job"):
            changes = {k: v for k, v in kw.items() if v is not None}
            return accepted_job(await svc.update(scheduler_input("update", **changes), previews=0))

    tools.append(Tool(
        with_parameters(
            update_job,
            [field_parameter("job_id", required=True, description="The job to change."),
             *(field_parameter(name, optional=True, description=f"{words}.", schema=schema)
               for name, words, schema in _UPDATES),
             *confirmations.parameters("update_job", _ASKED_ABOUT, confirmations.update)],
            returns=AcceptedJob,
        ),
        description="Change only what is given, as in schedule_job (schedule with schedule_type); keeps id, "
        "state, history.",
        annotations=hints(idempotent=True),
        scope=WRITE,
        also=stored_kind_needs(svc.job_kind, "update_job", also=kind_needs(runtime.registry, "update_job")),
    ))

    async def preview_schedule(ctx: Context, **kw: Any) -> SchedulePreview:
        with tool_errors("preview_schedule"):
            request = scheduler_input("preview", **kw)
            return svc.preview(request.schedule_type or "", request.schedule or "", request.timezone, request.count,
                               request.policy)

    tools.append(Tool(
        with_parameters(
            preview_schedule,
            ["schedule_type", "schedule", timezone, "count",
             field_parameter("policy", description="Its start_at, end_at, max_runs and jitter shape the times "
                             "shown.", schema={"type": "object"})],
            required=["schedule_type", "schedule"],
            returns=SchedulePreview,
        ),
        description="A schedule in words and its next run times, without creating a job.",
        annotations=READ_ONLY,
        scope=READ,
    ))

    async def backfill_job(ctx: Context, **kw: Any) -> BackfillSummary:
        with tool_errors("backfill_job"):
            request = scheduler_input("backfill", **kw)
            return await svc.backfill(request.job_id or "", request.since or "", request.until,
                                      request.backfill_overlap, wait=in_task())  # a task waits for the runs

    tools.append(Tool(
        with_parameters(
            backfill_job,
            [field_parameter("job_id", required=True, description="The job to backfill."),
             field_parameter("since", required=True, description="Range start: ISO 8601 (job's zone) or how "
                             "long ago, e.g. '30 days'."),
             field_parameter("until", description="End of the range (default: now)."),
             field_parameter("backfill_overlap", description="buffer_all: one at a time, oldest first; allow_all: "
                             "max_instances at once.")],
            required=["job_id", "since"],
            returns=BackfillSummary,
        ),
        description="Run a job once per past fire time in a range (1000 max). Answers at once; get_history "
        "shows the runs.",
        annotations=hints(open_world=True),
        scope=RUN,
        also=stored_kind_needs(svc.job_kind, "backfill_job"),
    ))
    return tools


_ASKED_ABOUT = ["job_id", "agentool_name", "input_data", "job_name", "schedule_type", "schedule"]
"""The arguments of schedule_job and update_job that their confirmations' questions read."""

_UPDATES: list[tuple[str, str, dict[str, Any] | None]] = [
    # update_job's parameters: (field, what a new value of it is, the published schema if shorter than the field's)
    ("schedule_type", "New schedule type", None),
    ("schedule", "New schedule", None),
    ("timezone", "New time zone", None),
    ("agentool_name", "New job kind", None),
    ("input_data", "New input", None),
    ("job_name", "New name", None),
    ("max_instances", "Most runs at once", None),
    ("misfire_grace_time", "Misfire grace (seconds)", None),
    ("coalesce", "Coalesce", None),
    ("timeout", "Seconds a run may take", None),
    ("result_queue", "Result queue (or 'inbox')", {"type": "string"}),
    ("error_queue", "Error queue (or 'inbox')", {"type": "string"}),
    ("policy", "Run policy (replaces the old)", {"type": "object"}),
    ("success", "Success checks ({}: none)", {"type": "object"}),
]


def _job_tool(name: str, change: Callable[[str], Awaitable[JobInfo]]) -> Callable[..., Awaitable[AcceptedJob]]:
    """A tool that takes a job_id and applies one lifecycle change (cancel, pause, resume) to the job."""
    operation = name.removesuffix("_job")

    async def tool(ctx: Context, job_id: str, **asked: Any) -> AcceptedJob:
        if asked:
            check_confirmed(asked, f"{operation} job {clip(job_id, 128)}")
        with tool_errors(name):
            return accepted_job(await change(scheduler_input(operation, job_id=job_id).job_id or ""))

    tool.__name__ = tool.__qualname__ = name
    return tool

