"""Runs as tasks: the MCP tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663) on the SDK's extension points.

The Python SDK does not ship the extension yet; this module is the adapter to replace when it does. A client that
declares the extension (2026-07-28 era) and calls `run_now` or `backfill_job` gets a task at once
(`resultType: "task"`), stored first (`store/tasks.py`) so that `tasks/get` and `tasks/cancel` work on any replica
of the store. The tool itself goes on in this process; its result is stored with the task. A run_now's task names
its run (the run id is drawn before the run starts): cancelling the task stops the run wherever it runs (the runner
looks for cancelled tasks of its runs in flight), and a task whose process died follows its run's record.
Clients without the extension get the plain result. Status notifications (`notifications/tasks`) are not pushed:
the SDK's subscription bus carries only its own event kinds; clients poll `tasks/get` at `pollIntervalMs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, CallToolRequestParams, RequestParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from ..principals import ADMIN
from ..runtime import SchedulerRuntime
from ..scheduler.extra_runs import CANCELLED_BACKFILL
from ..store.tasks import StoredTask, TaskStore
from .auth import principal_of

__all__ = ["TASKS", "RunTasks", "in_task", "task_run_id"]

logger = logging.getLogger(__name__)

TASKS = "io.modelcontextprotocol/tasks"
TASK_TOOLS = frozenset({"run_now", "backfill_job"})
TTL_MS = 24 * 3600 * 1000  # how long a task is kept after it was created
POLL_INTERVAL_MS = 1000
WATCH_EVERY = 0.5  # seconds between the runner's looks for cancelled tasks of its runs in flight
ORPHANED_AFTER = 5.0  # seconds after its run ended that a task nobody finished follows the run's record
CANCELLED_TASK = "its task was cancelled (tasks/cancel)"

_task: contextvars.ContextVar[tuple[str | None] | None] = contextvars.ContextVar("mcp_scheduler_task", default=None)


def in_task() -> bool:
    """True inside a tool call answered as a task (it may wait for the end of its work)."""
    return _task.get() is not None


def task_run_id() -> str | None:
    """The run id that a run_now answered as a task gives its run (None outside a task)."""
    current = _task.get()
    return None if current is None else current[0]


class TaskParams(RequestParams):
    task_id: str = Field(alias="taskId")


class UpdateParams(TaskParams):
    input_responses: dict[str, Any] | None = Field(default=None, alias="inputResponses")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _dump(result: HandlerResult) -> dict[str, Any]:
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dict(result or {})


class RunTasks(Extension):
    """The tasks extension over a runtime: `MCPServer(extensions=[RunTasks(runtime)])`, `start()` and `close()`
    with the scheduler (`SchedulerServer.use`)."""

    identifier = TASKS

    def __init__(self, runtime: SchedulerRuntime, *, ttl_ms: int = TTL_MS, poll_interval_ms: int = POLL_INTERVAL_MS):
        self._runtime = runtime
        self.store = TaskStore(runtime.config.database)
        self._ttl_ms = ttl_ms
        self._poll_ms = poll_interval_ms
        self._carried: dict[str, asyncio.Task[None]] = {}  # tasks whose tool call goes on in this process
        self._backfills: set[str] = set()  # those of them that are backfills (cancelled by cancelling the call)
        self._watch: asyncio.Task[None] | None = None

    def methods(self) -> list[MethodBinding]:
        return [
            MethodBinding("tasks/get", TaskParams, self._get),
            MethodBinding("tasks/update", UpdateParams, self._update),
            MethodBinding("tasks/cancel", TaskParams, self._cancel),
        ]

    def start(self) -> None:
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_cancels(), name="mcp-scheduler-task-cancels")

    async def close(self) -> None:
        """After the scheduler closed (its runs ended, so the calls answered): wait for the tasks to be stored."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self._carried:
            await asyncio.wait(list(self._carried.values()), timeout=5)
        await self.store.close()

    # ------------------------------------------------------------------ tools/call

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if params.name not in TASK_TOOLS or not _declared(ctx):
            return await call_next(ctx)
        now = self.store.clock()
        run_id = secrets.token_hex(16) if params.name == "run_now" else None
        task = StoredTask(
            task_id=secrets.token_hex(16),
            owner=principal_of(ctx).subject,
            tool=params.name,
            run_id=run_id,
            status="working",
            created_at=now,
            updated_at=now,
            expires_at=now + self._ttl_ms / 1000,
        )
        await self.store.insert(task)  # answered only once stored
        carried = asyncio.create_task(self._carry(task, ctx, call_next), name=f"mcp-scheduler-task-{task.task_id}")
        self._carried[task.task_id] = carried
        if task.tool == "backfill_job":
            self._backfills.add(task.task_id)
        carried.add_done_callback(lambda _: self._forget(task.task_id))
        return {"resultType": "task", **self._shown(task)}

    def _forget(self, task_id: str) -> None:
        self._carried.pop(task_id, None)
        self._backfills.discard(task_id)

    async def _carry(self, task: StoredTask, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> None:
        _task.set((task.run_id,))
        failed = False
        try:
            outcome = _dump(await call_next(ctx))
        except asyncio.CancelledError:
            text = (
                f"Cancelled: the backfill's runs in progress were stopped ({CANCELLED_BACKFILL}) and the fire "
                "times left were not run; get_history shows those that ran."
                if task.tool == "backfill_job"
                else "Cancelled before its run started: nothing ran."
            )
            outcome = {"content": [{"type": "text", "text": text}], "isError": True}
        except MCPError as exc:
            outcome, failed = {"code": exc.code, "message": exc.message}, True
        except Exception as exc:
            logger.exception("Task %s (%s) failed", task.task_id, task.tool)
            outcome, failed = {"code": INTERNAL_ERROR, "message": f"Internal error ({type(exc).__name__})"}, True
        await asyncio.shield(self.store.finish(task.task_id, json.dumps(outcome), failed=failed))

    # ------------------------------------------------------------------ tasks/*

    async def _find(self, ctx: ServerRequestContext[Any, Any], task_id: str) -> StoredTask:
        task = await self.store.get(task_id)
        principal = principal_of(ctx)
        if task is None or (task.owner != principal.subject and ADMIN not in principal.scopes):
            raise MCPError(
                INVALID_PARAMS,
                f"No task {task_id!r}: unknown, expired (tasks are kept "
                f"{self._ttl_ms // 3_600_000} h) or another caller's.",
            )
        return task

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        task = await self._find(ctx, params.task_id)
        if task.status == "working" and task.run_id is not None and task.task_id not in self._carried:
            return await self._follow_run(task)
        return self._shown(task)

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateParams) -> dict[str, Any]:
        await self._find(ctx, params.task_id)
        return {}  # these tasks never ask for input: responses are ignored, as for keys not outstanding

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        task = await self._find(ctx, params.task_id)
        if not await self.store.request_cancel(task.task_id):
            ended = await self._find(ctx, task.task_id)
            raise MCPError(INVALID_PARAMS, f"Task {task.task_id!r} has ended ({ended.status}): nothing to cancel.")
        service = self._runtime.service
        stopped = task.run_id is not None and service.stop_run(task.run_id, CANCELLED_TASK)
        carried = self._carried.get(task.task_id)
        if not stopped and carried is not None and (service.is_runner or task.task_id in self._backfills):
            carried.cancel()  # the run has not started here yet, or a backfill (which then stops)
        return {}  # on another process the one running it finds the cancelled task (`_watch_cancels`)

    async def _watch_cancels(self) -> None:
        service = self._runtime.service
        while True:
            await asyncio.sleep(WATCH_EVERY)
            run_ids = service.runs_in_flight()  # a standby runs an AgenTool once (no job) itself
            try:
                if run_ids:
                    for run_id in await self.store.cancelled_runs(run_ids):
                        service.stop_run(run_id, CANCELLED_TASK)
                if self._backfills:
                    for task_id in await self.store.cancelled_tasks(self._backfills):
                        if (carried := self._carried.get(task_id)) is not None:
                            carried.cancel()
            except Exception as exc:
                logger.warning("Looking for cancelled tasks failed: %s", exc)

    # ------------------------------------------------------------------ the wire

    def _shown(self, task: StoredTask) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "taskId": task.task_id,
            "status": task.status,
            "createdAt": _iso(task.created_at),
            "lastUpdatedAt": _iso(task.updated_at),
            "ttlMs": self._ttl_ms,
            "pollIntervalMs": self._poll_ms,
        }
        if task.run_id is not None and task.status == "working":
            shown["statusMessage"] = f"run {task.run_id} in progress (get_run reads it)"
        if task.outcome is not None:
            shown["error" if task.status == "failed" else "result"] = json.loads(task.outcome)
        return shown

    async def _follow_run(self, task: StoredTask) -> dict[str, Any]:
        """A task whose process went (or is another replica): its run's record tells how it ended."""
        assert task.run_id is not None
        records = await self._runtime.service.get_history(None, limit=1, run_id=task.run_id)
        record = next((r for r in records if r.run_id == task.run_id), None)
        finished = record.finished_at if record is not None and record.status != "running" else None
        if record is None or finished is None or self.store.clock() - finished.timestamp() < ORPHANED_AFTER:
            return self._shown(task)
        structured = record.model_dump(mode="json", by_alias=True, exclude_none=True)
        outcome = {
            "content": [{"type": "text", "text": json.dumps(structured, separators=(",", ":"))}],
            "structuredContent": structured,
            "isError": record.status != "success",
        }
        status = "cancelled" if record.status == "cancelled" else "completed"
        return {**self._shown(task), "status": status, "result": outcome}


def _declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request's client declared the tasks extension (only the 2026-07-28 era carries task results)."""
    if getattr(ctx, "protocol_version", None) not in MODERN_PROTOCOL_VERSIONS:
        return False
    with contextlib.suppress(AttributeError):
        capabilities = ctx.session.client_capabilities
        extensions = capabilities.extensions if capabilities is not None else None
        return extensions is not None and TASKS in extensions
    return False
