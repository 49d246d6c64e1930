"""Runs as tasks: the MCP tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663) on the SDK's extension points.

The Python SDK does not ship the extension yet; this module is the adapter to replace when it does. A client that
declares the extension (2026-07-28 era) and calls `run_now` or `backfill_job` gets a task at once
(`resultType: "task"`), stored first (`store/tasks.py`) so that `tasks/get` and `tasks/cancel` work on any replica
of the store. The tool itself goes on in this process; its result is stored with the task. A run_now's task names
its run (the run id is drawn before the run starts): cancelling the task stops the run wherever it runs (the runner
looks for cancelled tasks of its runs in flight), and a task whose process died follows its run's record.
Clients without the extension get the plain result. A task's status changes are pushed as `notifications/tasks` to
the `subscriptions/listen` streams that asked for it (`listen.py` serves them; `TaskFeed` fans the statuses out):
those of this process's calls when they end, and those of other processes' tasks found in the store every
`pollIntervalMs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import secrets
from collections.abc import Callable, Collection
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
from ..scheduler.backfills import CANCELLED_BACKFILL
from ..store.tasks import StoredTask, TaskStore
from .auth import principal_of

__all__ = ["ENDED", "TASKS", "RunTasks", "TaskFeed", "declared", "in_task", "task_run_id"]

logger = logging.getLogger(__name__)

TASKS = "io.modelcontextprotocol/tasks"
TASK_TOOLS = frozenset({"run_now", "backfill_job"})
TTL_MS = 24 * 3600 * 1000  # how long a task is kept after it was created
POLL_INTERVAL_MS = 1000
WATCH_EVERY = 0.5  # seconds between the runner's looks for cancelled tasks of its runs in flight
ORPHANED_AFTER = 5.0  # seconds after its run ended that a task nobody finished follows the run's record
CANCELLED_TASK = "its task was cancelled (tasks/cancel)"
ENDED = frozenset({"completed", "failed", "cancelled"})

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


class TaskFeed:
    """Task states as `tasks/get` gives them, fanned out to this process's listen streams, each given only the tasks
    in its set (which its stream may narrow: a task leaves it once ended)."""

    def __init__(self) -> None:
        self._streams: dict[object, tuple[set[str], Callable[[dict[str, Any]], None]]] = {}

    def subscribe(self, task_ids: set[str], listener: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call `listener` (synchronous, must not raise) with each state published of a task in `task_ids` (the set
        itself, read at each publish); returns the unsubscribe callable."""
        token = object()
        self._streams[token] = (task_ids, listener)

        def unsubscribe() -> None:
            self._streams.pop(token, None)

        return unsubscribe

    def watched(self) -> set[str]:
        """The tasks some stream of this process follows."""
        return set().union(*(ids for ids, _ in self._streams.values()))

    def follows(self, task_id: str) -> bool:
        """Whether some stream of this process follows `task_id`."""
        return any(task_id in ids for ids, _ in self._streams.values())

    def publish(self, task: dict[str, Any]) -> None:
        """Hand `task` (as `tasks/get` gives it) to the streams that follow it."""
        for ids, listener in list(self._streams.values()):
            if task["taskId"] in ids:
                listener(task)


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
        self._watches: list[asyncio.Task[None]] = []
        self.feed = TaskFeed()
        """The task states that listen streams follow (`listen.Listen`)."""

    def methods(self) -> list[MethodBinding]:
        return [
            MethodBinding("tasks/get", TaskParams, self._get),
            MethodBinding("tasks/update", UpdateParams, self._update),
            MethodBinding("tasks/cancel", TaskParams, self._cancel),
        ]

    def start(self) -> None:
        if not self._watches:
            self._watches = [
                asyncio.create_task(self._watch_cancels(), name="mcp-scheduler-task-cancels"),
                asyncio.create_task(self._watch_listened(), name="mcp-scheduler-task-statuses"),
            ]

    async def close(self) -> None:
        """After the scheduler closed (its runs ended, so the calls answered): wait for the tasks to be stored."""
        for watch in self._watches:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        self._watches = []
        if self._carried:
            await asyncio.wait(list(self._carried.values()), timeout=5)
        await self.store.close()

    # ------------------------------------------------------------------ tools/call

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if params.name not in TASK_TOOLS or not declared(ctx):
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
        await asyncio.shield(self._finish(task.task_id, json.dumps(outcome), failed))

    async def _finish(self, task_id: str, outcome: str, failed: bool) -> None:
        await self.store.finish(task_id, outcome, failed=failed)
        if self.feed.follows(task_id):
            ended = await self.store.get(task_id)  # completed or cancelled: the store decides
            if ended is not None:
                self.feed.publish(self._shown(ended))

    # ------------------------------------------------------------------ tasks/*

    async def _find(self, ctx: ServerRequestContext[Any, Any], task_id: str) -> StoredTask:
        task = await self.store.get(task_id)
        if task is None or not _may_read(ctx, task):
            raise MCPError(
                INVALID_PARAMS,
                f"No task {task_id!r}: unknown, expired (tasks are kept "
                f"{self._ttl_ms // 3_600_000} h) or another caller's.",
            )
        return task

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        return await self._current(await self._find(ctx, params.task_id))

    async def visible(self, ctx: ServerRequestContext[Any, Any], task_ids: Collection[str]) -> list[dict[str, Any]]:
        """Those of `task_ids` that the caller may read (as for `tasks/get`), as `tasks/get` gives them now."""
        found = [task for task in await self.store.get_many(task_ids) if _may_read(ctx, task)]
        return [await self._current(task) for task in found]

    async def _current(self, task: StoredTask) -> dict[str, Any]:
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

    async def _watch_listened(self) -> None:
        """Publish the states of the followed tasks whose call is not carried here (another process's, or one whose
        process went): those carried here are published when they end (`_finish`)."""
        while True:
            await asyncio.sleep(self._poll_ms / 1000)
            task_ids = self.feed.watched() - self._carried.keys()
            try:
                for task in await self.store.get_many(task_ids) if task_ids else ():
                    self.feed.publish(await self._current(task))
            except Exception as exc:
                logger.warning("Looking for the status of followed tasks failed: %s", exc)

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


def _may_read(ctx: ServerRequestContext[Any, Any], task: StoredTask) -> bool:
    principal = principal_of(ctx)
    return task.owner == principal.subject or ADMIN in principal.scopes


def declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request's client declared the tasks extension (only the 2026-07-28 era carries task results)."""
    if getattr(ctx, "protocol_version", None) not in MODERN_PROTOCOL_VERSIONS:
        return False
    with contextlib.suppress(AttributeError):
        capabilities = ctx.session.client_capabilities
        extensions = capabilities.extensions if capabilities is not None else None
        return extensions is not None and TASKS in extensions
    return False
