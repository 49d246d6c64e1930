"""The tasks table of the tasks extension (`store/tasks.py`) on SQLite and PostgreSQL: two stores on one database
(as two replicas): a task stored by one is read, cancelled and finished through the other; expired tasks go."""

from __future__ import annotations

import time

from mcp_scheduler.store.tasks import StoredTask, TaskStore


def task(task_id: str, run_id: str | None, *, now: float, ttl: float = 3600) -> StoredTask:
    return StoredTask(task_id=task_id, owner="token:alice", tool="run_now" if run_id else "backfill_job",
                      run_id=run_id, status="working", created_at=now, updated_at=now, expires_at=now + ttl)


async def test_two_replicas_share_tasks_their_cancels_and_ends(database: str) -> None:
    one, two = TaskStore(database), TaskStore(database)
    try:
        now = time.time()
        await one.insert(task("t-run", "r-1", now=now))
        await one.insert(task("t-fill", None, now=now))
        await one.insert(task("t-done", "r-2", now=now))
        seen = await two.get("t-run")
        assert seen is not None and (seen.owner, seen.run_id, seen.status) == ("token:alice", "r-1", "working")

        assert await two.request_cancel("t-run") and await two.request_cancel("t-fill")
        assert await one.cancelled_runs({"r-1", "r-2", "r-absent"}) == ["r-1"]
        assert await one.cancelled_tasks({"t-fill", "t-done"}) == ["t-fill"]

        await one.finish("t-run", '{"isError": true}')
        await one.finish("t-done", '{"isError": false}')
        await one.finish("t-fill", '{"code": -32603, "message": "x"}', failed=True)
        ended = {t: await two.get(t) for t in ("t-run", "t-done", "t-fill")}
        assert {t: (e.status if e else None) for t, e in ended.items()} == {
            "t-run": "cancelled", "t-done": "completed", "t-fill": "failed"}
        assert ended["t-done"] is not None and ended["t-done"].outcome == '{"isError": false}'
        assert not await two.request_cancel("t-done")  # ended: nothing to cancel
        assert await one.cancelled_runs({"r-1"}) == []  # a finished task's run is no longer looked for

        await one.insert(task("t-old", None, now=now - 10, ttl=5))  # expired on arrival: never read
        assert await two.get("t-old") is None
        await one.insert(task("t-new", None, now=now))  # a new task drops the expired ones
        assert await two.get("t-run") is not None
    finally:
        await one.close()
        await two.close()
