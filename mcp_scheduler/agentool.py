"""The AgenTool face: `create_scheduler_agent()` registers the `scheduler` AgenTool.

`await get_injector().run('scheduler', {...})` returns a `SchedulerOutput` with the seed's data
keys. Given a runtime, the AgenTool is registered in that runtime's registry. Without one (the
seed's API) it makes a runtime on the injector active at the call (`get_injector()`: in a program
that activates none, the process-default injector) and keeps it as the AgenTool's `backend`: the
seed's scheduler lives on that injector instance, not in a module global of its own, so the one
process default there is stays the injector's. The scheduler opens on the first operation, in the
running event loop.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from agentool_bridge import AgenTool, AgenToolInjector, RoutingConfig, get_injector, register_agentool

from .errors import JobNotFoundError, SchedulerStateError
from .models import OPERATIONS, JobInfo, SchedulerInput, SchedulerOutput
from .runtime import SchedulerRuntime
from .scheduler import SchedulerService, ServiceConfig

__all__ = ["close_scheduler_agent", "create_scheduler_agent", "get_scheduler_service", "scheduler_operation"]

def _dump(model: Any) -> Any:
    return model.model_dump(mode="json")


def _job_output(operation: str, message: str, job: JobInfo, *keys: str) -> SchedulerOutput:
    info = _dump(job)
    return SchedulerOutput(operation=operation, message=message, data={key: info[key] for key in ("job_id", *keys)})


async def _schedule(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    job = await s.schedule(r)
    info = _dump(job)
    when = f"next run {info['next_run']}" if job.next_run else "no further runs"
    data = {key: info[key] for key in ("job_id", "next_run", "next_runs", "timezone", "description")}
    return SchedulerOutput(
        operation="schedule",
        message=f"Scheduled job {job.job_id!r}: {job.description}; {when}.{_warned(job)}",
        data={**data, "warnings": job.warnings, "job": info},
    )


def _warned(job: JobInfo) -> str:
    """The warnings of a schedule or an update, for its message ('' when none)."""
    return "".join(f" Warning: {warning}" for warning in job.warnings)


async def _cancel(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    job = await s.cancel(r.job_id or "")
    return _job_output("cancel", f"Cancelled job {job.job_id!r}.", job)


async def _pause(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    job = await s.pause(r.job_id or "")
    return _job_output("pause", f"Paused job {job.job_id!r}.", job, "state")


async def _resume(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    job = await s.resume(r.job_id or "")
    message = f"Resumed job {job.job_id!r}; next run {_dump(job)['next_run']}."
    return _job_output("resume", message, job, "state", "next_run", "timezone")


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
    await s.catch_up()
    jobs, total = s.list_jobs(limit=r.limit)
    return SchedulerOutput(
        operation="list",
        message=f"{total} job(s)" + (f"; the first {len(jobs)} shown." if len(jobs) < total else "."),
        data={"jobs": [_dump(j) for j in jobs], "count": total},
    )


async def _get_job(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    try:
        job, recent = await s.get_job(r.job_id or "")
    except JobNotFoundError as exc:
        return SchedulerOutput(success=False, operation="get_job", message=str(exc), data=None)
    info = _dump(job)
    return SchedulerOutput(
        operation="get_job",
        message=f"Job {job.job_id!r} is {job.state}" + (f": {job.pause_reason}." if job.pause_reason else "."),
        data={
            "job_id": job.job_id,
            "job_name": job.job_name,
            "next_run": info["next_run"],
            "pending": not s.processing,
            "info": info,
            "recent_history": [_dump(h) for h in recent],
        },
    )


async def _get_history(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    runs = await s.get_history(
        r.job_id, r.status, r.limit, since=r.since, until=r.until, agentool_name=r.agentool_name
    )
    whose = f"of job {r.job_id!r}" if r.job_id else "of all jobs"
    return SchedulerOutput(
        operation="get_history",
        message=f"{len(runs)} run(s) {whose}, newest first.",
        data={"job_id": r.job_id, "history": [_dump(h) for h in runs], "count": len(runs)},
    )


async def _update(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    job = await s.update(r)
    info = _dump(job)
    return SchedulerOutput(
        operation="update",
        message=f"Updated job {job.job_id!r}: {job.description}; it is {job.state}.{_warned(job)}",
        data={**{key: info[key] for key in ("job_id", "next_run", "next_runs", "timezone", "description")},
              "warnings": job.warnings, "job": info},
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
    preview = s.preview(r.schedule_type or "", r.schedule or "", r.timezone, r.count, r.policy)
    message = preview.description if preview.note is None else f"{preview.description}; {preview.note}"
    return SchedulerOutput(operation="preview", message=message, data=_dump(preview))


async def _backfill(s: SchedulerService, r: SchedulerInput) -> SchedulerOutput:
    summary = await s.backfill(r.job_id or "", r.since or "", r.until, r.backfill_overlap)
    data = _dump(summary)
    if summary.count:
        message = (f"Started {summary.count} backfill run(s) of job {summary.job_id!r}, {data['first']} to "
                   f"{data['last']} ({summary.overlap}); get_history shows them as they finish.")
    else:
        message = f"No fire time of job {summary.job_id!r} in that range: nothing to run."
    return SchedulerOutput(operation="backfill", message=message, data=data)


_HANDLERS: dict[str, Callable[[SchedulerService, SchedulerInput], Awaitable[SchedulerOutput]]] = {
    "schedule": _schedule,
    "update": _update,
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
    "backfill": _backfill,
}


async def scheduler_operation(runtime: SchedulerRuntime, request: SchedulerInput) -> SchedulerOutput:
    """Run one `scheduler` operation on `runtime`, opening its scheduler first if needed."""
    if not runtime.is_open:
        await runtime.open()
    return await _HANDLERS[request.operation](runtime.service, request)


def create_scheduler_agent(
    database: str | os.PathLike[str] | None = None,
    *,
    timezone: str | None = None,
    history_limit: int = 100,
    runtime: SchedulerRuntime | None = None,
) -> AgenTool:
    """Register the `scheduler` AgenTool and return it.

    With `runtime`, the AgenTool runs that runtime's scheduler and goes into its registry. Without,
    it runs the seed's scheduler of the active injector (`get_injector()`), made here on first call:
    `database=None` keeps jobs and history in memory, a path persists them to SQLite; calling this
    again with the same settings keeps the running scheduler, with other settings while it runs raises
    `SchedulerStateError`. The scheduler starts on the first operation.
    """
    seed = runtime is None
    if runtime is None:
        runtime = _seed_runtime(
            get_injector(),
            ServiceConfig(
                database=None if database is None else os.fspath(database),
                timezone=timezone,
                history_limit=history_limit,
            ),
        )
    bound = runtime

    async def manage_scheduler(request: SchedulerInput) -> SchedulerOutput:
        """Run one scheduler operation."""
        return await scheduler_operation(bound, request)

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
        registry=runtime.registry,
        backend=runtime if seed else None,  # marks the runtime this module made (and closes)
    )


def _seed_of(injector: AgenToolInjector) -> SchedulerRuntime | None:
    """The runtime that `create_scheduler_agent()` made on `injector`, if its AgenTool is still registered."""
    if not injector.registry.exists("scheduler"):
        return None
    backend = injector.registry.get("scheduler").backend
    return backend if isinstance(backend, SchedulerRuntime) else None


def _seed_runtime(injector: AgenToolInjector, config: ServiceConfig) -> SchedulerRuntime:
    current = _seed_of(injector)
    if current is not None and not current.closed:
        if current.config == config:
            return current  # one scheduler per injector and database: a second one could not take the lease
        if current.is_open:
            # replacing it would leave it running, unreachable, and holding its database
            raise SchedulerStateError(
                f"The scheduler AgenTool already runs a scheduler on {current.config.database or '(memory)'}: "
                "await close_scheduler_agent() before creating one with other settings."
            )
    return SchedulerRuntime(config, injector=injector)


def _as_request(model: SchedulerInput) -> dict[str, Any]:
    return {"request": model}


def get_scheduler_service() -> SchedulerService:
    """The service of the scheduler that `create_scheduler_agent()` made on the active injector (raises
    `LookupError` if it made none)."""
    runtime = _seed_of(get_injector())
    if runtime is None:
        raise LookupError("No scheduler AgenTool was created: call create_scheduler_agent() first.")
    return runtime.service


async def close_scheduler_agent() -> None:
    """Close the scheduler that `create_scheduler_agent()` made on the active injector (flushes history,
    releases the database) and remove its AgenTool."""
    injector = get_injector()
    runtime = _seed_of(injector)
    if runtime is not None:
        injector.registry.unregister("scheduler")
        await runtime.close()
