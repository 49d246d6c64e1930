"""Loops stopped by a cancel stop, also when what they wait for happens in the step that cancels them (Python 3.11's
asyncio.wait_for returned then, swallowing the cancel: a close waited out its timeout, or never ended)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mcp_scheduler._waits import wait_set
from mcp_scheduler.clocks import SystemClock
from mcp_scheduler.history import HistoryWriter
from mcp_scheduler.store import SQLiteStore


async def test_a_cancel_in_the_step_that_sets_the_event_is_raised() -> None:
    event = asyncio.Event()
    waiting = asyncio.create_task(wait_set(event, 30))
    await asyncio.sleep(0)  # it waits
    event.set()
    waiting.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 5)


async def test_wait_set_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 30) is True


async def test_the_history_writer_stopped_right_after_a_commit_stops_and_writes_it(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"))
    await store.open()
    writer = HistoryWriter(store, lambda job_ids: [], history_limit=100, flush_delay=30, clock=SystemClock())
    try:
        writer.start()
        [background] = [t for t in asyncio.all_tasks() if t.get_name() == "mcp-scheduler-history"]
        writer.touch("any")  # the writer gathers a batch for up to flush_delay
        await asyncio.sleep(0)
        committing = asyncio.create_task(writer.commit())
        await asyncio.sleep(0)  # the commit asks for the batch now...
        stopping = asyncio.create_task(writer.stop())  # ...and stop cancels the writer in the same step
        done, _ = await asyncio.wait({stopping}, timeout=5)

        assert done, "the history writer's stop did not end"
        assert background.done()
        await asyncio.wait_for(committing, 5)
    finally:
        background.cancel()
        await store.close()
