"""The MCP prompts (schedule from a plain-language request, troubleshoot a job) and argument completions."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, Completion, PromptReference, ResourceTemplateReference

from ..errors import JobNotFoundError
from ..principals import acting_as
from ..queue_owners import queue_seen
from ..runtime import SchedulerRuntime
from .auth import principal_of

__all__ = ["add_prompts"]


def _when(value: datetime | None) -> str:
    return "none" if value is None else value.isoformat()


def add_prompts(mcp: MCPServer, runtime: SchedulerRuntime) -> None:
    """Register the prompts and the argument completions on `mcp`."""
    svc = runtime.service
    tz = svc.timezone

    @mcp.prompt(name="schedule_from_request", title="Schedule a job from a plain-language request")
    async def schedule_from_request(request: str, timezone: str | None = None) -> str:
        """Turn a request such as 'every weekday at 9 in Berlin, remind me to send the report' into a schedule_job
        call, checking the schedule with preview_schedule first."""
        zone = timezone or tz
        return (
            f"The user asks: {request!r}\n\n"
            "Schedule it with the mcp-scheduler tools, in this order:\n"
            "1. Call list_agentools and pick the job kind that does the work; build input_data from its input "
            "schema (the `operation` field and the fields that operation needs). If none can do it, tell the user "
            "so instead of scheduling a job that cannot.\n"
            "   For a reminder, or anything the user should be told, use the notify job kind: operation 'inbox' "
            "leaves a message in the scheduler's inbox (read with read_inbox or scheduler://inbox at the start of "
            "a later conversation); 'desktop' and 'webhook' reach the user outside this chat, where the server "
            "allows them. The scheduler itself cannot send a message into this chat: say so, and say where the "
            "reminder will appear.\n"
            "2. Write the timing as a schedule: schedule_type 'cron' for calendar times (5 fields: minute hour "
            "day-of-month month day-of-week, 0 or 7 = Sunday, 1-5 = Monday to Friday, e.g. '0 9 * * 1-5'), "
            "'interval' for 'every N minutes/hours' (e.g. '30 minutes', '1h30m'), or 'once' for a single time "
            "('now', '2026-12-25T09:00:00', 'in 2 hours').\n"
            f"3. Call preview_schedule with that schedule and timezone {zone!r} (the user's zone if they named one, "
            "as an IANA name such as 'Europe/Berlin'). Check that the description and next run times match the "
            "request; fix the schedule if they do not.\n"
            "4. Call schedule_job with the same schedule_type, schedule and timezone, the job kind (agentool_name), "
            "input_data and a short job_name. Tell the user the job_id, the schedule in words and the next run time."
        )

    @mcp.prompt(name="troubleshoot_job", title="Troubleshoot a failing job")
    async def troubleshoot_job(job_id: str) -> str:
        """Explain why a job fails or does not run, from its definition and recent run history."""
        try:
            with acting_as(principal_of(None)):  # another principal's job is not found
                job, _ = await svc.get_job(job_id)
                runs = await svc.get_history(job_id, None, 10)
        except JobNotFoundError as exc:
            # MCPError passes through unchanged; any other exception reaches the client as a bare
            # "Error rendering prompt" (handshake era) or "Internal server error" (2026-07-28).
            raise MCPError(INVALID_PARAMS, str(exc), {"job_id": job_id}) from exc
        lines = [
            f"- {_when(r.scheduled_time or r.started_at)}: {r.status}"
            + (f" ({r.error.type}: {r.error.message})" if r.error else "")
            + (f" [{r.note}]" if r.note else "")
            for r in runs
        ]
        return (
            f"Job {job.job_id!r} runs job kind {job.agentool_name!r} {job.description}; state {job.state}, "
            f"next run {_when(job.next_run)}.\nInput data: {json.dumps(job.input_data)}\n\nLatest runs, newest first:\n"
            + ("\n".join(lines) or "(no runs yet)")
            + "\n\nFind the cause: errors usually mean input_data does not fit the job kind (compare with "
            "list_agentools) or the job kind failed; 'missed' means nothing ran it for longer than the catch-up window "
            "(the note and the inbox say which) or the scheduler was busy beyond misfire_grace_time; 'skipped' means "
            "an earlier run was still going (max_instances); 'timeout' means the run took longer than the job's "
            "timeout. Propose a fix (for example pause_job, a new input_data via cancel_job + schedule_job, or a "
            "longer timeout) and use run_now to check it."
        )

    @mcp.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        value = argument.value or ""
        if argument.name == "job_id" and (
            isinstance(ref, ResourceTemplateReference) and ref.uri.startswith("scheduler://jobs/")
            or isinstance(ref, PromptReference) and ref.name == "troubleshoot_job"
        ):
            with acting_as(principal_of(None)):  # the caller's own jobs only, unless an admin
                candidates = [j for j in svc.job_ids() if j.startswith(value)]
        elif argument.name == "queue_name" and isinstance(ref, ResourceTemplateReference):
            principal = principal_of(None)  # the caller's own queues only, unless an admin
            seen = (queue_seen(q.queue_name, principal) for q in runtime.queues.queues())
            candidates = [name for name in seen if name is not None and name.startswith(value)]
        elif argument.name == "timezone" and isinstance(ref, PromptReference):
            from zoneinfo import available_timezones

            candidates = sorted(z for z in available_timezones() if z.startswith(value))
        else:
            return None
        return Completion(values=candidates[:100], total=len(candidates), has_more=len(candidates) > 100)
