"""The AgenTool face: `create_scheduler_agent()` registers the `scheduler` AgenTool.

`await get_injector().run('scheduler', {...})` returns a `SchedulerOutput` with the seed's data
keys. The service behind it is created on first use and started in the running event loop.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from agentool_bridge import AgenTool, AgenToolRegistry, RoutingConfig, register_agentool

from .errors import JobNotFoundError, SchedulerStateError
from .models import OPERATIONS, SchedulerInput, SchedulerOutput
from .service import SchedulerService, ServiceConfig

__all__ = ["create_scheduler_agent", "get_scheduler_service", "close_scheduler_agent"]

_service: SchedulerService | None = None


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json")


async def _schedule(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    job = await s.schedule(r)
    when = f"next run {job.next_run}" if job.next_run else "no further runs"
    return SchedulerOutput(
        operation="schedule",
        message=f"Scheduled job {job.job_id!r}: {job.description}; {when}.",
        data={
            "job_id": job.job_id,
            "next_run": job.next_run,
            "next_runs": job.next_runs,
            "timezone": job.timezone,
            "description": job.description,
            "job": _dump(job),
        },
    )


async def _cancel(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    job = await s.cancel(r.job_id or "")
    return SchedulerOutput(operation="cancel", message=f"Cancelled job {job.job_id!r}.", data={"job_id": job.job_id})


async def _pause(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    job = await s.pause(r.job_id or "")
    return SchedulerOutput(
        operation="pause", message=f"Paused job {job.job_id!r}.", data={"job_id": job.job_id, "state": job.state}
    )


async def _resume(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    job = await s.resume(r.job_id or "")
    return SchedulerOutput(
        operation="resume",
        message=f"Resumed job {job.job_id!r}; next run {job.next_run}.",
        data={"job_id": job.job_id, "state": job.state, "next_run": job.next_run, "timezone": job.timezone},
    )


async def _run_now(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    record = await s.run_now(r)
    return SchedulerOutput(
        operation="run_now",
        message=f"Ran AgenTool {record.agentool_name!r} for job {record.job_id!r} in {record.duration_ms} ms.",
        data={
            "job_id": record.job_id,
            "result": record.result,
            "run_id": record.run_id,
            "status": record.status,
            "duration_ms": record.duration_ms,
        },
    )


async def _list(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    jobs, total = s.list_jobs()
    return SchedulerOutput(
        operation="list", message=f"{total} job(s).", data={"jobs": [_dump(j) for j in jobs], "count": total}
    )


async def _get_job(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    try:
        job, recent = await s.get_job(r.job_id or "")
    except JobNotFoundError as exc:
        return SchedulerOutput(success=False, operation="get_job", message=str(exc), data=None)
    return SchedulerOutput(
        operation="get_job",
        message=f"Job {job.job_id!r} is {job.state}.",
        data={
            "job_id": job.job_id,
            "job_name": job.job_name,
            "next_run": job.next_run,
            "pending": not s.processing,
            "info": _dump(job),
            "recent_history": [_dump(h) for h in recent],
        },
    )


async def _get_history(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    runs = await s.get_history(r.job_id or "", r.status, r.limit)
    return SchedulerOutput(
        operation="get_history",
        message=f"{len(runs)} run(s) of job {r.job_id!r}, newest first.",
        data={"job_id": r.job_id, "history": [_dump(h) for h in runs], "count": len(runs)},
    )


async def _start(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    status = await s.start()
    return SchedulerOutput(operation="start", message="Scheduler is processing jobs.", data=_dump(status))


async def _stop(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    status = await s.stop()
    return SchedulerOutput(
        operation="stop", message="Scheduler stopped processing jobs; jobs are kept.", data=_dump(status)
    )


async def _status(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    status = s.status()
    data = _dump(status)
    data["jobs"] = status.jobs_count
    return SchedulerOutput(
        operation="status", message=f"Scheduler is {status.state}; {status.jobs_count} job(s).", data=data
    )


async def _preview(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    preview = s.preview(r.schedule_type or "", r.schedule or "", r.timezone, r.count)
    return SchedulerOutput(operation="preview", message=preview.description, data=_dump(preview))


_HANDLERS: dict[str, Callable[[SchedulerService, SchedulerInput], Awaitable[SchedulerOutput]]] = {
    "schedule": _schedule,
    "cancel": _cancel,
    "pause": _pause,
    "resume": _resume,
    "run_now": _run_now,
    "list": _list,
    "get_job": _get_job,
    "get_history": _get_history,
    "start": _start,
    "stop": _stop,
    "status": _status,
    "preview": _preview,
}


def create_scheduler_agent(
    database: str | os.PathLike[str] | None = None,
    *,
    timezone: str | None = None,
    history_limit: int = 100,
    service: SchedulerService | None = None,
) -> AgenTool:
    """Register the `scheduler` AgenTool and return it.

    `database=None` keeps jobs and history in memory; a path persists them to SQLite. The
    service starts on the first operation. If no `queue` AgenTool is registered, one is created
    on the same database for `result_queue` / `error_queue`. Pass `service` to share an open one.
    """
    global _service
    db = None if database is None else os.fspath(database)
    if service is None:
        config = ServiceConfig(database=db, timezone=timezone, history_limit=history_limit)
        if _service is not None and _service.is_open and _service.config == config:
            service = _service  # one scheduler per process and database: a second one could not take the lease
        else:
            service = SchedulerService(config)
    if _service is not None and _service.is_open and service is not _service:
        # replacing it would leave it running, unreachable, and holding its database
        raise SchedulerStateError(
            f"The scheduler AgenTool already runs a scheduler on {_service.config.database or '(memory)'}: "
            "await close_scheduler_agent() before creating one with other settings."
        )
    _service = service
    if not AgenToolRegistry.exists("queue"):
        from agentool_bridge.toolkits import create_queue_agent

        create_queue_agent(db)
    bound = service

    async def manage_scheduler(request: SchedulerInput) -> SchedulerOutput:
        """Run one scheduler operation."""
        if not bound.is_open:
            await bound.open()
        return await _HANDLERS[request.operation](bound, request)

    return register_agentool(
        "scheduler",
        SchedulerInput,
        RoutingConfig(operation_map={op: ("manage_scheduler", _as_request) for op in OPERATIONS}),
        [manage_scheduler],
        description="Schedule AgenTool runs on cron, interval and one-time schedules; manage jobs and read "
        "their run history.",
        output_type=SchedulerOutput,
        dependencies=("queue",),
        tags=("system", "scheduler"),
        examples=(
            {
                "input": {
                    "operation": "schedule",
                    "job_name": "hourly_log",
                    "schedule_type": "interval",
                    "schedule": "1 hour",
                    "agentool_name": "logging",
                    "input_data": {"operation": "log", "level": "INFO", "message": "tick"},
                },
            },
        ),
    )


def _as_request(model: SchedulerInput) -> dict[str, Any]:
    return {"request": model}


def get_scheduler_service() -> SchedulerService:
    """The service behind the registered `scheduler` AgenTool (raises if none was created)."""
    if _service is None:
        raise LookupError("No scheduler AgenTool was created: call create_scheduler_agent() first.")
    return _service


async def close_scheduler_agent() -> None:
    """Close the service behind the `scheduler` AgenTool (flushes history, releases the database)."""
    global _service
    if _service is not None:
        await _service.close()
        _service = None
