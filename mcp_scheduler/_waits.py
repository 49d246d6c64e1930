"""Waiting for an asyncio event with a time limit, in loops that are stopped by cancelling their task."""

from __future__ import annotations

import asyncio

__all__ = ["wait_set"]


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` have passed; True if it was set. A cancel of the waiting task is
    always raised: Python 3.11's `asyncio.wait_for` returns instead when the event was set in the step that
    cancelled the task, and a loop stopped by a cancel then went on (a close waited out its whole timeout)."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
