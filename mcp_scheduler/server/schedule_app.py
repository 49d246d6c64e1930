"""`show_schedule`, the dashboard as an MCP App (the `io.modelcontextprotocol/ui` extension): a tool bound to the
`ui://` page that hosts with Apps render in the chat. A host without Apps gets the schedule as compact text; one
with Apps also gets the whole view as structured content, which the page renders (its buttons call pause_job,
resume_job, run_now and cancel_job, and show_schedule again to refresh).

The dashboard's modules and its page are loaded when first used, not when the server starts (cold start)."""

from __future__ import annotations

from mcp.server.apps import APP_MIME_TYPE, Apps, client_supports_apps
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resources import FunctionResource
from mcp.types import CallToolResult, TextContent

from ..principals import READ
from ..runtime import SchedulerRuntime
from . import _sdk
from .tooling import READ_ONLY, acting_for, tool_errors

__all__ = ["DASHBOARD_URI", "SHOW_SCHEDULE", "SHOW_SCHEDULE_SCOPE", "add_schedule_app"]

DASHBOARD_URI = "ui://mcp-scheduler/dashboard"
SHOW_SCHEDULE = "show_schedule"
SHOW_SCHEDULE_SCOPE = READ
"""What a call of show_schedule needs (it shows the caller's jobs only)."""


def _page() -> str:
    from ..dashboard.page import page_html

    return page_html()


def add_schedule_app(mcp: MCPServer, runtime: SchedulerRuntime) -> None:
    """Add `show_schedule` and its page to `mcp`, and advertise the Apps extension."""
    apps = Apps()

    @apps.tool(
        resource_uri=DASHBOARD_URI,
        name=SHOW_SCHEDULE,
        description="Show the user the schedule at a glance.",
        annotations=READ_ONLY,
    )
    async def show_schedule(ctx: Context) -> CallToolResult:
        with acting_for(ctx, SHOW_SCHEDULE_SCOPE, SHOW_SCHEDULE), tool_errors(SHOW_SCHEDULE):  # the caller's jobs
            from ..dashboard import read_schedule, schedule_text

            view = await read_schedule(runtime)
            structured = view.model_dump(mode="json") if client_supports_apps(ctx) else None
            return CallToolResult(
                content=[TextContent(type="text", text=schedule_text(view))], structured_content=structured
            )

    apps.add_resource(
        FunctionResource(
            uri=DASHBOARD_URI,
            name="dashboard",
            title="Schedule dashboard",
            description="The schedule's jobs, runs and failures, with pause, resume, run now and cancel.",
            mime_type=APP_MIME_TYPE,
            meta={"ui": {"prefersBorder": False}},
            fn=_page,
        )
    )
    _sdk.apply_extension(mcp, apps)
