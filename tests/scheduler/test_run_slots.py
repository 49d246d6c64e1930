"""RunSlots: at most `size` runs at once, freed slots handed to waiters first come first served, cancelled
waiters never keep a slot, and the engine is woken on every freed slot."""

from __future__ import annotations

import asyncio

from mcp_scheduler.clocks import SystemClock
from mcp_scheduler.runs.slots import RunSlots


class _Engine:
    """The run path's view of the engine: counts the wake-ups a freed slot sends."""

    def __init__(self) -> None:
        self.wakes = 0

    def wake_if_held(self) -> None:
        self.wakes += 1

    def wake(self) -> None:
        pass

    def remove_job(self, job_id: str) -> None:
        pass


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_slots_are_handed_to_waiters_in_the_order_they_came() -> None:
    engine = _Engine()
    slots = RunSlots(2, engine, SystemClock())
    await slots.take()
    await slots.take()
    assert slots.locked() and slots.room() == 0
    order: list[int] = []

    async def waiter(n: int) -> None:
        await slots.take(queued=True)
        order.append(n)

    tasks = [asyncio.create_task(waiter(n)) for n in range(5)]
    await _settle()
    assert len(slots.waiting) == 5 and order == []
    for expected in range(5):
        slots.give_back()
        await _settle()
        assert order == list(range(expected + 1))
    await asyncio.gather(*tasks)
    assert slots.waiting == set() and engine.wakes == 5
    assert slots.room() == 0  # two slots still taken: the last two waiters hold them


async def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    slots = RunSlots(1, _Engine(), SystemClock())
    await slots.take()
    got: list[str] = []

    async def waiter(name: str) -> None:
        await slots.take(queued=True)
        got.append(name)

    first = asyncio.create_task(waiter("first"))
    second = asyncio.create_task(waiter("second"))
    await _settle()
    first.cancel()
    await _settle()
    slots.give_back()
    await _settle()
    assert got == ["second"] and first.cancelled()
    # cancelled in the same step as it was handed the slot: the slot goes on to the next waiter
    third = asyncio.create_task(waiter("third"))
    fourth = asyncio.create_task(waiter("fourth"))
    await _settle()
    slots.give_back()
    third.cancel()
    await _settle()
    assert got == ["second", "fourth"] and third.cancelled()
    slots.give_back()
    assert not slots.locked() and slots.room() == 1
    await asyncio.gather(second, fourth)


async def test_a_thousand_waiters_all_get_a_slot() -> None:
    slots = RunSlots(10, _Engine(), SystemClock())
    running = 0
    most = 0

    async def run() -> None:
        nonlocal running, most
        await slots.take(queued=True)
        running += 1
        most = max(most, running)
        await asyncio.sleep(0)
        running -= 1
        slots.give_back()

    await asyncio.wait_for(asyncio.gather(*(run() for _ in range(1000))), 30)
    assert most == 10 and running == 0
    assert slots.room() == 10 and not slots.locked()
