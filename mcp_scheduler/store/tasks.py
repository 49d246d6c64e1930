"""The tasks of the MCP tasks extension (`server/tasks.py`), kept in the scheduler's database so that any replica
answers `tasks/get` and `tasks/cancel`: one row per task, linked to its run by the run id.

A `TaskStore` is one synchronous connection (the toolkits' `Database`: a SQLite file or PostgreSQL), used off the
event loop under a lock; it is opened on first use, so a server whose clients never ask for tasks opens nothing.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal

from agentool_bridge.toolkits import Database, open_database

__all__ = ["StoredTask", "TaskState", "TaskStore"]

TaskState = Literal["working", "completed", "failed", "cancelled"]

_TABLE = "scheduler_tasks"
_SCHEMA = [
    f"""CREATE TABLE IF NOT EXISTS {_TABLE} (
        task_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        tool TEXT NOT NULL,
        run_id TEXT,
        status TEXT NOT NULL,
        created_at {{float}} NOT NULL,
        updated_at {{float}} NOT NULL,
        expires_at {{float}} NOT NULL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        outcome TEXT
    )""",
    f"CREATE INDEX IF NOT EXISTS {_TABLE}_run ON {_TABLE} (run_id)",
]
_COLUMNS = "task_id, owner, tool, run_id, status, created_at, updated_at, expires_at, cancel_requested, outcome"


@dataclass(frozen=True)
class StoredTask:
    """One task as stored: times are POSIX seconds; `outcome` is the JSON of the tool's result (`completed`,
    `cancelled`) or of the JSON-RPC error (`failed`)."""

    task_id: str
    owner: str
    tool: str
    run_id: str | None
    status: TaskState
    created_at: float
    updated_at: float
    expires_at: float
    cancel_requested: bool = False
    outcome: str | None = None

    @classmethod
    def of(cls, row: Any) -> StoredTask:
        return cls(
            row[0], row[1], row[2], row[3], row[4], float(row[5]), float(row[6]), float(row[7]), bool(row[8]), row[9]
        )


class TaskStore:
    """The tasks table on `database` (a SQLite file, a PostgreSQL URL, or None for memory)."""

    def __init__(self, database: str | os.PathLike[str] | None, *, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._db: Database | None = None
        self._lock = threading.Lock()
        self.clock = clock

    async def _call(self, fn: Callable[[Database], Any]) -> Any:
        def call() -> Any:
            with self._lock:
                if self._db is None:
                    self._db = open_database(self._database, name="mcp-scheduler-tasks", tables=_SCHEMA)
                return fn(self._db)

        return await asyncio.to_thread(call)

    async def insert(self, task: StoredTask) -> None:
        """Store a new task (committed when this returns) and drop the expired ones."""

        def insert(db: Database) -> None:
            with db.transaction():
                db.execute(f"DELETE FROM {_TABLE} WHERE expires_at < ?", (task.created_at,))
                db.execute(
                    f"INSERT INTO {_TABLE} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        task.task_id,
                        task.owner,
                        task.tool,
                        task.run_id,
                        task.status,
                        task.created_at,
                        task.updated_at,
                        task.expires_at,
                        int(task.cancel_requested),
                        task.outcome,
                    ),
                )

        await self._call(insert)

    async def get(self, task_id: str) -> StoredTask | None:
        """The task, unless unknown or expired."""

        def get(db: Database) -> StoredTask | None:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM {_TABLE} WHERE task_id = ? AND expires_at >= ?", (task_id, self.clock())
            ).fetchone()
            return None if row is None else StoredTask.of(row)

        result: StoredTask | None = await self._call(get)
        return result

    async def get_many(self, task_ids: Collection[str]) -> list[StoredTask]:
        """Those of the tasks that are known and not expired, in no particular order."""
        ids = sorted(set(task_ids))

        def get_many(db: Database) -> list[StoredTask]:
            marks = ", ".join("?" for _ in ids)
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM {_TABLE} WHERE task_id IN ({marks}) AND expires_at >= ?", (*ids, self.clock())
            ).fetchall()
            return [StoredTask.of(row) for row in rows]

        found: list[StoredTask] = await self._call(get_many) if ids else []
        return found

    async def finish(self, task_id: str, outcome: str, *, failed: bool = False) -> None:
        """Record the task's end: `failed` (a protocol error), else `cancelled` if a cancel was asked, else
        `completed`."""
        end = "'failed'" if failed else "CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'completed' END"

        def finish(db: Database) -> None:
            with db.transaction():
                db.execute(
                    f"UPDATE {_TABLE} SET status = {end}, outcome = ?, updated_at = ? "
                    "WHERE task_id = ? AND status = 'working'",
                    (outcome, self.clock(), task_id),
                )

        await self._call(finish)

    async def request_cancel(self, task_id: str) -> bool:
        """Note that the task's caller cancelled it; False if it was not working any more."""

        def cancel(db: Database) -> bool:
            with db.transaction():
                cursor = db.execute(
                    f"UPDATE {_TABLE} SET cancel_requested = 1, updated_at = ? "
                    "WHERE task_id = ? AND status = 'working'",
                    (self.clock(), task_id),
                )
                return cursor.rowcount > 0

        done: bool = await self._call(cancel)
        return done

    async def cancelled_runs(self, run_ids: Collection[str]) -> list[str]:
        """Those of `run_ids` whose task was cancelled and is still working (its run goes on somewhere)."""
        return await self._cancelled("run_id", run_ids)

    async def cancelled_tasks(self, task_ids: Collection[str]) -> list[str]:
        """Those of `task_ids` that were cancelled and are still working (their call goes on somewhere)."""
        return await self._cancelled("task_id", task_ids)

    async def _cancelled(self, column: str, values: Collection[str]) -> list[str]:
        ids = sorted(values)

        def find(db: Database) -> list[str]:
            marks = ", ".join("?" for _ in ids)
            rows = db.execute(
                f"SELECT {column} FROM {_TABLE} WHERE cancel_requested = 1 AND status = 'working' "
                f"AND {column} IN ({marks})",
                ids,
            ).fetchall()
            return [row[0] for row in rows]

        found: list[str] = await self._call(find) if ids else []
        return found

    async def close(self) -> None:
        def close() -> None:
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None

        await asyncio.to_thread(close)
