"""The MCP face: `build_server(settings)` returns an `MCPServer` over one process-wide scheduler.

Tools map one-to-one onto scheduler operations; their parameters are generated from
`SchedulerInput`'s fields, so the MCP schemas and the AgenTool input model never drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp import types
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, Completion, PromptReference, ResourceTemplateReference, ToolAnnotations
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field, ValidationError

from agentool_bridge import AgenToolError, AgenToolRegistry, discover_toolkits, get_injector, load_toolkit
from agentool_bridge.toolkits import register_builtin_toolkits

from ._params import compact_schema, with_parameters
from .errors import JobNotFoundError, SchedulerError
from .models import JobInfo, RunRecord, SchedulePreview, SchedulerInput, SchedulerStatus
from .notify import HandshakeSessions, Notifier
from .service import SchedulerService, ServiceConfig
from .settings import Settings

__all__ = ["build_server", "SchedulerApp", "JobPage", "JobDetail", "HistoryPage", "AgenToolCatalog", "QueueMessages"]

logger = logging.getLogger(__name__)
VERSION = "0.1.0"


# ---------------------------------------------------------------------- tool outputs


class JobPage(BaseModel):
    """One page of jobs."""

    jobs: list[JobInfo] = Field(description="Jobs on this page, in creation order.")
    total: int = Field(description="Jobs matching the filters, on all pages.")
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; null at the end.")


class JobDetail(BaseModel):
    """A job with its latest runs."""

    job: JobInfo = Field(description="The job.")
    recent_history: list[RunRecord] = Field(description="Its latest runs, newest first.")


class HistoryPage(BaseModel):
    """Runs of one job, newest first."""

    job_id: str = Field(description="The job.")
    runs: list[RunRecord] = Field(description="Its runs, newest first.")
    count: int = Field(description="Number of runs returned.")


class AgenToolEntry(BaseModel):
    """What can be scheduled: an AgenTool with its operations and input schema."""

    name: str = Field(description="Use as `agentool_name`.")
    description: str = Field(description="What it does.")
    operations: list[str] = Field(description="Values of the `operation` field in `input_data`.")
    input_schema: dict[str, Any] = Field(description="JSON schema that `input_data` must satisfy.")
    examples: list[dict[str, Any]] = Field(default_factory=list, description="Example inputs.")


class AgenToolCatalog(BaseModel):
    """Every AgenTool a job can run."""

    agentools: list[AgenToolEntry] = Field(description="The registered AgenTools, by name.")


class QueueMessages(BaseModel):
    """Messages read from a queue."""

    queue_name: str = Field(description="The queue.")
    mode: Literal["peek", "take"] = Field(description="peek leaves messages in place; take removes them.")
    messages: list[dict[str, Any]] = Field(description="Messages, oldest first (message_id, message, enqueued_at).")
    remaining: int = Field(description="Messages still waiting in the queue.")


# ---------------------------------------------------------------------- runtime


class SchedulerApp:
    """The process-wide state behind every connection: the service and the notifier.

    `use()` is entered by the server's lifespan (once per process for stdio and streamable
    HTTP, once per connection for SSE); the service opens on the first user and closes with the last.
    """

    def __init__(self, settings: Settings, service: SchedulerService, notifier: Notifier) -> None:
        self.settings = settings
        self.service = service
        self.notifier = notifier
        self._users = 0
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def use(self) -> AsyncIterator[SchedulerApp]:
        async with self._lock:
            if self._users == 0:
                await self.service.open()
                self.notifier.start(self.service.events)
            self._users += 1
        try:
            yield self
        finally:
            async with self._lock:
                self._users -= 1
                if self._users == 0:
                    await self.notifier.stop()
                    await self.service.close()


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return "Invalid arguments: " + "; ".join(parts)
    return str(exc)


@contextlib.contextmanager
def _tool_errors() -> Iterator[None]:
    """Turn the errors we raise on purpose into `ToolError`, whose message the model sees."""
    try:
        yield
    except ToolError:
        raise
    except (SchedulerError, AgenToolError, ValidationError, ValueError, LookupError, RuntimeError) as exc:
        raise ToolError(_describe_error(exc)) from exc


def _request(operation: str, **fields: Any) -> SchedulerInput:
    return SchedulerInput(operation=operation, **fields)  # type: ignore[arg-type]


def _json(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json(indent=2)
    return json.dumps(value, indent=2, default=str)


def _param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def _hints(*, destructive: bool = False, idempotent: bool = False, open_world: bool = False) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=False, destructive_hint=destructive, idempotent_hint=idempotent, open_world_hint=open_world
    )


# ---------------------------------------------------------------------- server


def register_toolkits(settings: Settings) -> list[str]:
    """Register the built-in toolkits (on the scheduler's database), entry points and `--toolkit` references."""
    if settings.database:
        Path(settings.database).parent.mkdir(parents=True, exist_ok=True)
    names = register_builtin_toolkits(settings.database)
    if settings.discover_entry_points:
        discover_toolkits()
    for reference in settings.toolkits:
        load_toolkit(reference)
    return names


def build_server(settings: Settings | None = None, *, service: SchedulerService | None = None) -> MCPServer:
    """An MCP server over one scheduler service (created from `settings` unless given)."""
    settings = settings or Settings()
    register_toolkits(settings)
    if service is None:
        service = SchedulerService(
            ServiceConfig(database=settings.database, timezone=settings.timezone, history_limit=settings.history_limit)
        )
    bus = InMemorySubscriptionBus()
    sessions = HandshakeSessions()
    app = SchedulerApp(settings, service, Notifier(bus, sessions))
    tz = service.timezone

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[SchedulerApp]:
        async with app.use():
            yield app

    server_kwargs: dict[str, Any] = {}
    if settings.auth_tokens and settings.transport != "stdio":
        from mcp.server.auth.settings import AuthSettings

        from .auth import StaticTokenVerifier

        server_kwargs["token_verifier"] = StaticTokenVerifier(settings.auth_tokens)
        server_kwargs["auth"] = AuthSettings(
            issuer_url=settings.public_url(),  # type: ignore[arg-type]
            resource_server_url=settings.url,  # type: ignore[arg-type]
            # Static tokens carry no RFC 8707 resource indicator: checking it (the 3.0 default) would refuse them all.
            validate_token_resource=False,
        )

    mcp = MCPServer(
        "mcp-scheduler",
        title="mcp-scheduler",
        version=VERSION,
        instructions=(
            "A persistent job scheduler. Call list_agentools to see what can be scheduled and the input_data each "
            "AgenTool takes, preview_schedule to check a schedule in plain words, then schedule_job. Jobs survive "
            f"restarts. Naive datetimes and cron fields are read in {tz} unless a job gives its own `timezone`. "
            "Read scheduler://jobs/{job_id}/history (or get_history) to see what each run did."
        ),
        lifespan=lifespan,
        subscriptions=bus,
        log_level=settings.log_level.upper(),  # type: ignore[arg-type]
        **server_kwargs,
    )
    mcp.scheduler_app = app  # type: ignore[attr-defined]
    _advertise_resource_list_changed(mcp)
    _install_handshake_handlers(mcp, sessions)
    _add_tools(mcp, app, tz)
    for tool in mcp._tool_manager.list_tools():
        if tool.fn_metadata.output_schema is not None:
            tool.fn_metadata.output_schema = compact_schema(tool.fn_metadata.output_schema)
    _add_resources(mcp, app)
    _add_prompts(mcp, app, tz)
    _add_completions(mcp, app)
    return mcp


def _advertise_resource_list_changed(mcp: MCPServer) -> None:
    low = mcp._lowlevel_server
    low.create_initialization_options = functools.partial(  # type: ignore[method-assign]
        low.create_initialization_options, NotificationOptions(resources_changed=True)
    )


def _install_handshake_handlers(mcp: MCPServer, sessions: HandshakeSessions) -> None:
    """resources/subscribe, resources/unsubscribe and logging/setLevel for handshake-era clients."""

    def connection_of(ctx: Any) -> Any:
        return ctx.session._connection  # the per-connection object; ServerSession is per request

    async def track(ctx: Any, call_next: Any) -> Any:
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            with contextlib.suppress(AttributeError):
                sessions.track(connection_of(ctx))
        return await call_next(ctx)

    async def on_subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        sessions.subscribe(connection_of(ctx), str(params.uri))
        return types.EmptyResult()

    async def on_unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        sessions.unsubscribe(connection_of(ctx), str(params.uri))
        return types.EmptyResult()

    async def on_set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        sessions.set_level(connection_of(ctx), params.level)
        return types.EmptyResult()

    low = mcp._lowlevel_server
    mcp.middleware.append(track)
    low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, on_subscribe)
    low.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, on_unsubscribe)
    low.add_request_handler("logging/setLevel", types.SetLevelRequestParams, on_set_level)


def _add_tools(mcp: MCPServer, app: SchedulerApp, tz: str) -> None:
    svc = app.service
    naive = f"Naive datetimes and cron fields are read in {tz} unless `timezone` is given."

    async def schedule_job(ctx: Context, **kw: Any) -> JobInfo:
        with _tool_errors():
            return await svc.schedule(_request("schedule", **kw))

    mcp.add_tool(
        with_parameters(
            schedule_job,
            ["schedule_type", "schedule", "agentool_name", "input_data", "job_id", "job_name", "timezone",
             "max_instances", "misfire_grace_time", "coalesce", "timeout", "result_queue", "error_queue"],
            required=["schedule_type", "schedule", "agentool_name", "input_data"],
            returns=JobInfo,
        ),
        description="Schedule an AgenTool to run on a cron, interval or one-time schedule. input_data is checked "
        f"against the AgenTool's input schema now (see list_agentools). {naive} The result states the time zone, "
        "the schedule in words and the next 3 run times. Tip: call preview_schedule first.",
        annotations=_hints(),
    )

    async def cancel_job(ctx: Context, job_id: str) -> JobInfo:
        with _tool_errors():
            return await svc.cancel(_request("cancel", job_id=job_id).job_id or "")

    mcp.add_tool(
        with_parameters(cancel_job, ["job_id"], required=["job_id"], returns=JobInfo),
        description="Cancel a job for good (its history stays readable). Returns the job as it was.",
        annotations=_hints(destructive=True),
    )

    async def pause_job(ctx: Context, job_id: str) -> JobInfo:
        with _tool_errors():
            return await svc.pause(_request("pause", job_id=job_id).job_id or "")

    mcp.add_tool(
        with_parameters(pause_job, ["job_id"], required=["job_id"], returns=JobInfo),
        description="Pause a job: it keeps its definition but does not fire until resumed.",
        annotations=_hints(idempotent=True),
    )

    async def resume_job(ctx: Context, job_id: str) -> JobInfo:
        with _tool_errors():
            return await svc.resume(_request("resume", job_id=job_id).job_id or "")

    mcp.add_tool(
        with_parameters(resume_job, ["job_id"], required=["job_id"], returns=JobInfo),
        description="Resume a paused job from its next scheduled time.",
        annotations=_hints(idempotent=True),
    )

    async def run_now(ctx: Context, **kw: Any) -> RunRecord:
        with _tool_errors():
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
        with _tool_errors():
            # Cursors are the offsets we hand out; a negative one would slice from the end and never end.
            if cursor and not (cursor.isascii() and cursor.isdigit()):
                raise ToolError(f"Invalid cursor {cursor!r}: pass the next_cursor of a previous page.")
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
        with _tool_errors():
            job, recent = await svc.get_job(_request("get_job", job_id=job_id).job_id or "")
            return JobDetail(job=job, recent_history=recent)

    mcp.add_tool(
        with_parameters(get_job, ["job_id"], required=["job_id"], returns=JobDetail),
        description="A job's definition, state, next 3 run times and its 5 latest runs.",
        annotations=READ_ONLY,
    )

    async def get_history(ctx: Context, job_id: str, status: str | None = None, limit: int = 20) -> HistoryPage:
        with _tool_errors():
            request = _request("get_history", job_id=job_id, status=status, limit=limit)
            runs = await svc.get_history(request.job_id or "", request.status, request.limit)
            return HistoryPage(job_id=job_id, runs=runs, count=len(runs))

    mcp.add_tool(
        with_parameters(get_history, ["job_id", "status", "limit"], required=["job_id"], returns=HistoryPage),
        description="A job's runs, newest first: scheduled time, start, end, duration, status (success, error, "
        "timeout, missed, skipped, cancelled), result or error. Also works for cancelled jobs and run_now ids.",
        annotations=READ_ONLY,
    )

    async def scheduler_status(ctx: Context) -> SchedulerStatus:
        with _tool_errors():
            return svc.status()

    mcp.add_tool(
        with_parameters(scheduler_status, [], returns=SchedulerStatus),
        description="Whether jobs are being processed, job counts, runs in progress, default time zone.",
        annotations=READ_ONLY,
    )

    async def start_scheduler(ctx: Context) -> SchedulerStatus:
        with _tool_errors():
            return await svc.start()

    mcp.add_tool(
        with_parameters(start_scheduler, [], returns=SchedulerStatus),
        description="Start processing jobs again after stop_scheduler. Runs missed meanwhile follow each job's "
        "misfire_grace_time and coalesce settings.",
        annotations=_hints(idempotent=True),
    )

    async def stop_scheduler(ctx: Context) -> SchedulerStatus:
        with _tool_errors():
            return await svc.stop()

    mcp.add_tool(
        with_parameters(stop_scheduler, [], returns=SchedulerStatus),
        description="Stop processing jobs (no job is lost; the server keeps answering). Undo with start_scheduler.",
        annotations=_hints(idempotent=True),
    )

    async def preview_schedule(ctx: Context, **kw: Any) -> SchedulePreview:
        with _tool_errors():
            request = _request("preview", **kw)
            return svc.preview(request.schedule_type or "", request.schedule or "", request.timezone, request.count)

    mcp.add_tool(
        with_parameters(
            preview_schedule,
            ["schedule_type", "schedule", "timezone", "count"],
            required=["schedule_type", "schedule"],
            returns=SchedulePreview,
        ),
        description=f"Describe a schedule in plain words and list its next run times, without creating a job. {naive}",
        annotations=READ_ONLY,
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
            for e in AgenToolRegistry.catalog()
            if e["name"] != "scheduler"
        ]
        return AgenToolCatalog(agentools=entries)

    mcp.add_tool(
        with_parameters(list_agentools, [], returns=AgenToolCatalog),
        description="What jobs can run: every AgenTool with its operations and the JSON schema of its input_data.",
        annotations=READ_ONLY,
    )

    async def read_queue(
        ctx: Context, queue_name: str, mode: Literal["peek", "take"] = "peek", count: int = 10
    ) -> QueueMessages:
        with _tool_errors():
            return await _read_queue(queue_name, mode, count)

    mcp.add_tool(
        with_parameters(
            read_queue,
            [
                _param("queue_name", Annotated[str, Field(
                    min_length=1, max_length=200, description="The result_queue or error_queue of a job.")]),
                _param("mode", Annotated[Literal["peek", "take"], Field(
                    description="peek: look without removing; take: remove the messages returned.")], "peek"),
                _param("count", Annotated[int, Field(ge=1, le=100, description="Messages to return.")], 10),
            ],
            returns=QueueMessages,
        ),
        description="Read the messages that jobs sent to a result or error queue (peek, or take to remove them).",
        annotations=_hints(destructive=True),
    )


async def _read_queue(queue_name: str, mode: str, count: int) -> QueueMessages:
    injector = get_injector()
    messages: list[dict[str, Any]] = []
    if mode == "peek":
        out = await injector.run("queue", {"operation": "peek", "queue_name": queue_name, "count": count})
        messages = list(out.data["messages"])
    else:
        for _ in range(count):
            out = await injector.run("queue", {"operation": "dequeue", "queue_name": queue_name})
            if out.data.get("empty"):
                break
            messages.append({k: out.data.get(k) for k in ("message_id", "message", "attempts", "enqueued_at")})
    size = await injector.run("queue", {"operation": "size", "queue_name": queue_name})
    return QueueMessages(queue_name=queue_name, mode=mode, messages=messages, remaining=int(size.data["size"]))  # type: ignore[arg-type]


def _add_resources(mcp: MCPServer, app: SchedulerApp) -> None:
    svc = app.service
    json_type = "application/json"

    @mcp.resource("scheduler://status", name="status", title="Scheduler status", mime_type=json_type)
    async def status_resource() -> str:
        """Whether jobs are processed, job counts and the default time zone."""
        return _json(svc.status())

    @mcp.resource("scheduler://jobs", name="jobs", title="Jobs", mime_type=json_type)
    async def jobs_resource() -> str:
        """Scheduled and paused jobs (the first 1000; use the list_jobs tool to page through more)."""
        jobs, total = svc.list_jobs(limit=1000)
        return _json({"jobs": [j.model_dump(mode="json") for j in jobs], "total": total})

    @mcp.resource("scheduler://jobs/{job_id}", name="job", title="Job", mime_type=json_type)
    async def job_resource(job_id: str) -> str:
        """One job: definition, state, next run times and its latest runs."""
        try:
            job, recent = await svc.get_job(job_id)
        except JobNotFoundError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        return _json(JobDetail(job=job, recent_history=recent))

    @mcp.resource("scheduler://jobs/{job_id}/history", name="job-history", title="Job history", mime_type=json_type)
    async def history_resource(job_id: str) -> str:
        """A job's runs, newest first (up to 100)."""
        try:
            runs = await svc.get_history(job_id, None, 100)
        except JobNotFoundError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        return _json(HistoryPage(job_id=job_id, runs=runs, count=len(runs)))

    @mcp.resource("scheduler://queues", name="queues", title="Queues", mime_type=json_type)
    async def queues_resource() -> str:
        """Every queue with its size, in-flight and dead-lettered counts."""
        out = await get_injector().run("queue", {"operation": "list_queues"})
        return _json(out.data)

    @mcp.resource("scheduler://queues/{queue_name}", name="queue", title="Queue messages", mime_type=json_type)
    async def queue_resource(queue_name: str) -> str:
        """The oldest 100 messages waiting in a queue (not removed)."""
        try:
            return _json(await _read_queue(queue_name, "peek", 100))
        except AgenToolError as exc:
            raise ResourceNotFoundError(f"Queue {queue_name!r}: {exc}") from exc

    @mcp.resource("scheduler://agentools", name="agentools", title="AgenTools", mime_type=json_type)
    async def agentools_resource() -> str:
        """Every AgenTool a job can run, with its operations and input JSON schema."""
        return _json([e for e in AgenToolRegistry.catalog() if e["name"] != "scheduler"])


def _add_prompts(mcp: MCPServer, app: SchedulerApp, tz: str) -> None:
    svc = app.service

    @mcp.prompt(name="schedule_from_request", title="Schedule a job from a plain-language request")
    async def schedule_from_request(request: str, timezone: str | None = None) -> str:
        """Turn a request such as 'every weekday at 9 in Berlin, summarise my inbox' into a schedule_job call,
        checking the schedule with preview_schedule first."""
        zone = timezone or tz
        return (
            f"The user asks: {request!r}\n\n"
            "Schedule it with the mcp-scheduler tools, in this order:\n"
            "1. Call list_agentools and pick the AgenTool that does the work; build input_data from its input "
            "schema (the `operation` field and the fields that operation needs).\n"
            "2. Write the timing as a schedule: schedule_type 'cron' for calendar times (5 fields: minute hour "
            "day-of-month month day-of-week, 0 or 7 = Sunday, 1-5 = Monday to Friday, e.g. '0 9 * * 1-5'), "
            "'interval' for 'every N minutes/hours' (e.g. '30 minutes', '1h30m'), or 'once' for a single time "
            "('now', '2026-12-25T09:00:00', 'in 2 hours').\n"
            f"3. Call preview_schedule with that schedule and timezone {zone!r} (the user's zone if they named one, "
            "as an IANA name such as 'Europe/Berlin'). Check that the description and next run times match the "
            "request; fix the schedule if they do not.\n"
            "4. Call schedule_job with the same schedule_type, schedule and timezone, the AgenTool, input_data and "
            "a short job_name. Tell the user the job_id, the schedule in words and the next run time."
        )

    @mcp.prompt(name="troubleshoot_job", title="Troubleshoot a failing job")
    async def troubleshoot_job(job_id: str) -> str:
        """Explain why a job fails or does not run, from its definition and recent run history."""
        try:
            job, _ = await svc.get_job(job_id)
            runs = await svc.get_history(job_id, None, 10)
        except JobNotFoundError as exc:
            # MCPError passes through unchanged; any other exception reaches the client as a bare
            # "Error rendering prompt" (handshake era) or "Internal server error" (2026-07-28).
            raise MCPError(INVALID_PARAMS, str(exc), {"job_id": job_id}) from exc
        lines = [
            f"- {r.scheduled_time or r.started_at}: {r.status}"
            + (f" ({r.error.type}: {r.error.message})" if r.error else "")
            + (f" [{r.note}]" if r.note else "")
            for r in runs
        ]
        return (
            f"Job {job.job_id!r} runs AgenTool {job.agentool_name!r} {job.description}; state {job.state}, "
            f"next run {job.next_run}.\nInput data: {json.dumps(job.input_data)}\n\nLatest runs, newest first:\n"
            + ("\n".join(lines) or "(no runs yet)")
            + "\n\nFind the cause: errors usually mean input_data does not fit the AgenTool (compare with "
            "list_agentools) or the AgenTool failed; 'missed' means the scheduler was down or busy beyond "
            "misfire_grace_time; 'skipped' means an earlier run was still going (max_instances); 'timeout' means "
            "the run took longer than the job's timeout. Propose a fix (for example pause_job, a new input_data "
            "via cancel_job + schedule_job, or a longer timeout) and use run_now to check it."
        )


def _add_completions(mcp: MCPServer, app: SchedulerApp) -> None:
    svc = app.service

    @mcp.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        value = argument.value or ""
        if argument.name == "job_id" and (
            isinstance(ref, ResourceTemplateReference) and ref.uri.startswith("scheduler://jobs/")
            or isinstance(ref, PromptReference) and ref.name == "troubleshoot_job"
        ):
            candidates = [j for j in svc.job_ids() if j.startswith(value)]
        elif argument.name == "queue_name" and isinstance(ref, ResourceTemplateReference):
            out = await get_injector().run("queue", {"operation": "list_queues"})
            candidates = [q["queue_name"] for q in out.data["queues"] if q["queue_name"].startswith(value)]
        elif argument.name == "timezone" and isinstance(ref, PromptReference):
            from zoneinfo import available_timezones

            candidates = sorted(z for z in available_timezones() if z.startswith(value))
        else:
            return None
        return Completion(values=candidates[:100], total=len(candidates), has_more=len(candidates) > 100)


