"""A run asked of the runner is settled once (`SchedulerStore.replace_run`, both backends): the runner's take and its
asker's withdrawal swap from the request as written, so whichever commits first wins and the other changes nothing;
a taken webhook's or condition's request outlives the runner (`interrupt_unfinished` keeps it)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from mcp_scheduler.jobs import RunTrigger
from mcp_scheduler.models import RunRecord
from mcp_scheduler.scheduler.run_requests import KEPT_UNSTARTED, taken_by
from tests.store.conftest import StoreFactory

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def request(run_id: str, trigger: RunTrigger = "webhook") -> RunRecord:
    """A request as a standby writes it: `running`, never started, carrying what the run's input reads."""
    return RunRecord(run_id=run_id, job_id="j", agentool_name="echo", trigger=trigger, status="running",
                     note="asked for by a webhook delivery in a standby; waiting for the runner",
                     result={"trigger_data": {"body": {"n": 7, "x": 0.1}}, "note": "delivery d-1"})


def withdrawn(record: RunRecord) -> RunRecord:
    return record.model_copy(update={"status": "cancelled", "finished_at": AT, "note": "not taken", "result": None})


async def test_a_taken_request_cannot_be_withdrawn_and_a_withdrawn_one_cannot_be_taken(
    store: Any, open_store: StoreFactory
) -> None:
    runner = await open_store()  # another process on the same database
    first, second = request("first"), request("second")
    await store.write_batch([first, second], [], 100)
    start = (await runner.positions())[1]

    assert await runner.replace_run(first, taken_by(first, "the runner"), fenced=True)
    assert not await store.replace_run(first, withdrawn(first))  # the runner took it first
    assert await store.replace_run(second, withdrawn(second))
    assert not await runner.replace_run(second, taken_by(second, "the runner"), fenced=True)  # withdrawn first

    stored = {r.run_id: r for r in await store.history("j")}
    assert stored == {"first": taken_by(first, "the runner"), "second": withdrawn(second)}
    # Each swap gave its row a new seq: the asker's withdrawal is read by the runner's follower.
    _, read = await runner.runs_since(start)
    assert [(r.run_id, r.status) for r in read] == [("second", "cancelled")]


async def test_of_a_take_and_a_withdrawal_at_the_same_moment_exactly_one_is_written(
    store: Any, open_store: StoreFactory
) -> None:
    runner = await open_store()
    asked = [request(f"r{i}") for i in range(20)]
    await store.write_batch(asked, [], 100)

    results = await asyncio.gather(*(
        call for record in asked
        for call in (runner.replace_run(record, taken_by(record, "the runner"), fenced=True),
                     store.replace_run(record, withdrawn(record)))
    ))

    stored = {r.run_id: r for r in await store.history("j", limit=100)}
    for record, (took, withdrew) in zip(asked, zip(results[::2], results[1::2], strict=True), strict=True):
        assert took != withdrew, record.run_id  # one of the two, never both, never neither
        expected = taken_by(record, "the runner") if took else withdrawn(record)
        assert stored[record.run_id] == expected


async def test_a_swap_from_a_record_that_is_not_the_stored_one_changes_nothing(store: Any) -> None:
    asked = request("asked")
    await store.write_batch([asked], [], 100)
    started = asked.model_copy(update={"started_at": AT, "result": None})
    await store.write_batch([started], [], 100)  # the runner's start replaced the request

    assert not await store.replace_run(asked, withdrawn(asked))
    assert not await store.replace_run(request("never-written"), withdrawn(request("never-written")))
    assert [r.status for r in await store.history("j")] == ["running"]
    assert (await store.history("j"))[0] == started


async def test_taken_or_not_a_handed_over_request_outlives_the_runner_and_a_run_now_request_does_not(
    store: Any,
) -> None:
    hook, condition, asked = request("hook"), request("condition", "condition"), request("asked", "run_now")
    await store.write_batch([hook, condition, asked], [], 100)
    assert await store.replace_run(hook, taken_by(hook, "the runner that is killed next"), fenced=True)

    found = await store.interrupt_unfinished("the runner stopped", keep_unstarted=KEPT_UNSTARTED)

    assert [(r.run_id, r.status) for r in found] == [("condition", "running"), ("asked", "interrupted"),
                                                     ("hook", "running")]
    kept = {r.run_id: r for r in found if r.status == "running"}
    assert kept == {"hook": taken_by(hook, "the runner that is killed next"), "condition": condition}
    # The next runner takes what it found, as found (the stored text is the record it read).
    assert await store.replace_run(kept["hook"], taken_by(kept["hook"], "the next runner"), fenced=True)


async def test_a_swap_from_no_record_writes_only_where_none_is_stored_and_of_two_at_once_exactly_one(
    store: Any, open_store: StoreFactory
) -> None:
    """A queue message's run starts by a swap from no record (its run id is the one its claim names): a second
    start under that id, or a start after another record of it was written, changes nothing."""
    runner = await open_store()
    started = request("q0", "queue").model_copy(update={"started_at": AT, "result": None, "note": "message m-0"})
    assert await runner.replace_run(None, started, fenced=True)
    assert not await store.replace_run(None, started.model_copy(update={"note": "again"}), fenced=True)
    assert await store.history("j") == [started]
    assert not await store.replace_run(None, request("q0", "queue"))

    starts = [request(f"q{i}", "queue").model_copy(update={"started_at": AT, "result": None}) for i in range(1, 21)]
    results = await asyncio.gather(*(
        call for record in starts
        for call in (runner.replace_run(None, record, fenced=True),
                     store.replace_run(None, record.model_copy(update={"note": "the other"}), fenced=True))
    ))
    for record, pair in zip(starts, zip(results[::2], results[1::2], strict=True), strict=True):
        assert sorted(pair) == [False, True], record.run_id  # exactly one of the two
    assert len(await store.history("j", limit=100)) == 21


async def test_a_batch_makes_its_swaps_after_its_records_in_its_transaction_and_says_which_it_wrote(
    store: Any, open_store: StoreFactory
) -> None:
    """How a runner starts what the store holds for it (`HistoryWriter.swap`): a chained run's waiting record
    written by the same batch is there for the swap from it; a swap from what is no longer stored writes nothing."""
    other = await open_store()
    taken = taken_by(request("taken"), "the runner")
    await other.write_batch([taken], [], 100)
    # Written as JSON, a tuple reads back as a list and a NaN as null: the swap compares what the store keeps.
    waiting = request("waiting", "chain").model_copy(update={"result": {"trigger_data": {"t": (1, 2),
                                                                                       "x": float("nan")}}})
    start = {r.run_id: r.model_copy(update={"started_at": AT, "result": None}) for r in (taken, waiting)}
    queued = request("queued", "queue").model_copy(update={"started_at": AT, "result": None})
    stale = request("stale")

    written = await store.write_batch([waiting, stale], [], 100, swaps=[
        (taken, start["taken"]), (waiting, start["waiting"]), (None, queued),
        (request("stale"), request("stale").model_copy(update={"note": "not this one"})),  # stored: the same
        (taken_by(stale, "a runner that lost it"), stale.model_copy(update={"started_at": AT})),
        (request("stale").model_copy(update={"note": "not this one"}), stale.model_copy(update={"note": "but this"})),
    ])

    assert written == {"taken", "waiting", "queued", "stale"}
    stored = {r.run_id: r for r in await other.history("j", limit=100)}
    # The swaps of one run are made in order: each sees what the one before it wrote.
    assert stored == {**start, "queued": queued, "stale": stale.model_copy(update={"note": "but this"})}
    assert await store.history("j", run_id="waiting") == [start["waiting"]]
    assert await store.write_batch([], [], 100, swaps=[(None, queued)]) == set()  # stored now
