"""The `SchedulerStore` contract, on every backend (the `database` fixture: SQLite and PostgreSQL).

Two store instances on one database stand for two processes: each has its own connections and its
own writer id."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mcp_scheduler import Job, JobDefinition, JobExistsError, JobNotFoundError
from mcp_scheduler.jobs import JobState, PendingRetry, RunStatus
from mcp_scheduler.models import RunRecord
from mcp_scheduler.schedules import parse_schedule
from mcp_scheduler.store import Bookkeeping
from tests.store.conftest import StoreFactory

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOURLY = parse_schedule("interval", "1 hour", "UTC")


def job(job_id: str, state: JobState = "scheduled", next_run_time: datetime | None = T0) -> Job:
    definition = JobDefinition(job_id=job_id, agentool_name="echo", schedule=HOURLY, created_at=T0)
    return Job(definition, state, next_run_time)


def run(run_id: str, job_id: str = "j", status: RunStatus = "success", minute: int = 0) -> RunRecord:
    started = T0 + timedelta(minutes=minute)
    return RunRecord(
        run_id=run_id, job_id=job_id, agentool_name="echo", trigger="schedule", status=status,
        scheduled_time=started, started_at=started,
    )


async def eventually_async(condition: Callable[[], Awaitable[bool]], *, within: float, what: str) -> None:
    """Wait until `condition()` answers True, asking every 10 ms for at most `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s")
        await asyncio.sleep(0.01)


def ids(records: list[RunRecord]) -> list[str]:
    return [r.run_id for r in records]


async def stored_ids(store: Any) -> list[str]:
    return [j.job_id async for page in store.load_jobs() for j in page]


# ---------------------------------------------------------------------------------------------- jobs


async def test_jobs_load_in_creation_order_a_page_at_a_time_with_their_state(store: Any) -> None:
    await store.insert_jobs([job(f"j{i}") for i in range(5)])
    await store.insert_jobs([job("j5", "paused", None), job("a-later-one", next_run_time=T0 + timedelta(hours=1))])

    pages = [page async for page in store.load_jobs(3)]

    assert [[j.job_id for j in page] for page in pages] == [["j0", "j1", "j2"], ["j3", "j4", "j5"], ["a-later-one"]]
    paused, later = pages[1][2], pages[2][0]
    assert (paused.state, paused.next_run_time) == ("paused", None)
    assert (later.state, later.next_run_time) == ("scheduled", T0 + timedelta(hours=1))
    assert later.definition == job("a-later-one").definition


async def test_a_taken_job_id_fails_the_whole_batch_and_stores_nothing_of_it(store: Any) -> None:
    await store.insert_jobs([job("taken")])

    with pytest.raises(JobExistsError) as caught:
        await store.insert_jobs([job("new-1"), job("taken"), job("new-2")])
    assert caught.value.job_id == "taken"
    with pytest.raises(JobExistsError) as twice:
        await store.insert_jobs([job("dup"), job("other"), job("dup")])
    assert twice.value.job_id == "dup"

    assert await stored_ids(store) == ["taken"]
    await store.insert_jobs([job("new-1")])  # the failed batches left nothing behind
    assert await stored_ids(store) == ["taken", "new-1"]


async def test_set_state_changes_the_state_and_the_next_run_time(store: Any) -> None:
    await store.insert_jobs([job("j")])

    await store.set_state("j", "paused", None)
    paused = await store.load_job("j")
    await store.set_state("j", "scheduled", T0 + timedelta(days=1))
    resumed = await store.load_job("j")

    assert (paused.state, paused.next_run_time) == ("paused", None)
    assert (resumed.state, resumed.next_run_time) == ("scheduled", T0 + timedelta(days=1))


def with_progress(job_id: str) -> Job:
    progressed = job(job_id)
    progressed.failures, progressed.runs, progressed.pause_reason = 2, 7, "paused after 2 failures in a row"
    progressed.retry = PendingRetry(T0 + timedelta(seconds=30), 2, T0)
    return progressed


async def test_a_jobs_progress_is_written_with_its_bookkeeping_and_read_by_every_process(
    open_store: StoreFactory,
) -> None:
    runner, standby = await open_store(), await open_store()
    await runner.insert_jobs([job("j"), job("k")])
    fresh = await standby.load_job("k")
    assert (fresh.failures, fresh.runs, fresh.pause_reason, fresh.retry) == (0, 0, None, None)

    await runner.write_batch([], [Bookkeeping.of(with_progress("j"))], 100)

    for loaded in (await standby.load_job("j"), [j async for page in standby.load_jobs() for j in page][0]):
        assert (loaded.failures, loaded.runs, loaded.pause_reason) == (2, 7, "paused after 2 failures in a row")
        assert loaded.retry == PendingRetry(T0 + timedelta(seconds=30), 2, T0)
    await runner.write_batch([], [Bookkeeping.of(job("j"))], 100)  # nothing pending any more
    assert (await standby.load_job("j")).retry is None


async def test_set_state_writes_the_progress_it_is_given_and_keeps_it_otherwise(store: Any) -> None:
    await store.insert_jobs([job("j")])
    await store.write_batch([], [Bookkeeping.of(with_progress("j"))], 100)

    await store.set_state("j", "paused", None)
    kept = await store.load_job("j")
    await store.set_state("j", "scheduled", T0, "{}")
    cleared = await store.load_job("j")

    assert (kept.state, kept.failures, kept.retry is not None) == ("paused", 2, True)
    assert (cleared.state, cleared.failures, cleared.runs, cleared.pause_reason, cleared.retry) == (
        "scheduled", 0, 0, None, None
    )


async def test_delete_removes_the_job_and_keeps_its_runs(store: Any) -> None:
    await store.insert_jobs([job("j"), job("k")])
    await store.write_batch([run("r1", "j")], [], 100)

    await store.delete_job("j")

    assert await store.load_job("j") is None
    assert await stored_ids(store) == ["k"]
    assert await store.has_history("j")


# ---------------------------------------------------------------------------------------------- runs


async def test_a_run_written_again_replaces_its_record_and_moves_to_the_end_of_the_run_feed(
    open_store: StoreFactory,
) -> None:
    writer, follower = await open_store(), await open_store()
    start = (await follower.positions())[1]
    await writer.write_batch([run("r1", status="running"), run("r2", minute=1)], [], 100)
    first_seq, _ = await follower.runs_since(start)

    await writer.write_batch([run("r1", status="success")], [], 100)

    seq, records = await follower.runs_since(first_seq)
    assert seq > first_seq and [(r.run_id, r.status) for r in records] == [("r1", "success")]
    assert [(r.run_id, r.status) for r in await writer.history("j")] == [("r1", "success"), ("r2", "success")]
    assert (await writer.positions())[1] == seq


async def test_bookkeeping_never_flips_paused_or_scheduled_and_keeps_paused_jobs_without_a_next_run(
    store: Any,
) -> None:
    await store.insert_jobs([job("paused"), job("scheduled"), job("once")])
    await store.set_state("paused", "paused", None)
    later = T0 + timedelta(hours=1)

    await store.write_batch(
        [],
        [
            Bookkeeping("paused", "scheduled", later, T0, "success"),
            Bookkeeping("scheduled", "paused", later, T0, "error"),
            Bookkeeping("once", "completed", None, T0, "success"),
        ],
        100,
    )

    paused, scheduled, once = [await store.load_job(j) for j in ("paused", "scheduled", "once")]
    assert (paused.state, paused.next_run_time, paused.last_run_at, paused.last_status) == (
        "paused", None, T0, "success"
    )
    assert (scheduled.state, scheduled.next_run_time, scheduled.last_status) == ("scheduled", later, "error")
    assert (once.state, once.next_run_time) == ("completed", None)


async def test_pruning_keeps_the_newest_runs_of_each_job_up_to_the_limit_and_its_slack(store: Any) -> None:
    limit = 20  # slack: a tenth, 2 runs
    for i in range(50):
        await store.write_batch([run(f"a{i:02d}", "a", minute=i), run(f"b{i:02d}", "b", minute=i)], [], limit)

    kept_a = ids(await store.history("a", limit=1000))
    kept_b = ids(await store.history("b", limit=1000))

    assert limit <= len(kept_a) <= limit + 2 and limit <= len(kept_b) <= limit + 2
    assert kept_a == [f"a{i:02d}" for i in range(49, 49 - len(kept_a), -1)]  # the newest, newest first
    await store.write_batch([run(f"c{i:02d}", "c", minute=i) for i in range(30)], [], 10)  # one batch too
    assert ids(await store.history("c", limit=1000)) == [f"c{i:02d}" for i in range(29, 19, -1)]


async def test_interrupt_unfinished_marks_running_runs_interrupted_and_returns_them(store: Any) -> None:
    await store.insert_jobs([job("j")])
    await store.write_batch(
        [run("done", status="success"), run("left", status="running", minute=1)],
        [Bookkeeping("j", "scheduled", T0, T0, "running")],
        100,
    )

    changed = await store.interrupt_unfinished("the runner stopped")

    assert [(r.run_id, r.status, r.note) for r in changed] == [("left", "interrupted", "the runner stopped")]
    assert [(r.run_id, r.status) for r in await store.history("j")] == [("left", "interrupted"), ("done", "success")]
    assert (await store.load_job("j")).last_status == "interrupted"
    assert await store.interrupt_unfinished("again") == []


async def test_interrupt_unfinished_keeps_the_chained_runs_that_never_started_for_the_next_runner(store: Any) -> None:
    """The recovery of chains after a kill: a chained run decided (its record committed with the run it follows) but
    not started stays for the runner taking over; one that started, and requests of other triggers, are interrupted."""
    await store.insert_jobs([job("j")])
    carried = {"trigger_data": {"job": "a", "run_id": "r-a", "status": "success"}, "note": "chained after run r-a"}
    waiting = RunRecord(run_id="chained-waiting", job_id="j", agentool_name="echo", trigger="chain", status="running",
                        result=carried)
    started = RunRecord(run_id="chained-started", job_id="j", agentool_name="echo", trigger="chain",
                        status="running", started_at=T0)
    asked = RunRecord(run_id="asked", job_id="j", agentool_name="echo", trigger="run_now", status="running",
                      result={"trigger_data": {}})
    await store.write_batch([run("fire", status="running"), waiting, started, asked], [], 100)

    found = await store.interrupt_unfinished("the runner stopped", keep_unstarted=("chain",))

    assert [(r.run_id, r.status) for r in found] == [("fire", "interrupted"), ("chained-waiting", "running"),
                                                     ("chained-started", "interrupted"), ("asked", "interrupted")]
    assert found[1] == waiting  # as stored: the trigger data the run's input reads goes with it
    assert found[3].result is None  # a request that never started: what it carried is dropped
    stored = {r.run_id: r for r in await store.history("j")}
    assert stored["chained-waiting"] == waiting and stored["chained-started"].status == "interrupted"
    assert await store.interrupt_unfinished("again", keep_unstarted=("chain",)) == [waiting]  # until it starts
    assert [(r.run_id, r.status) for r in await store.interrupt_unfinished("without keeping")] == [
        ("chained-waiting", "interrupted")]


async def test_history_is_newest_first_filtered_by_status_and_limited(store: Any) -> None:
    statuses: list[RunStatus] = ["success", "error", "success", "missed", "success"]
    await store.write_batch([run(f"r{i}", status=s, minute=i) for i, s in enumerate(statuses)], [], 100)
    await store.write_batch([run("other", "k")], [], 100)

    assert ids(await store.history("j")) == ["r4", "r3", "r2", "r1", "r0"]
    assert ids(await store.history("j", "success")) == ["r4", "r2", "r0"]
    assert ids(await store.history("j", "success", limit=2)) == ["r4", "r2"]
    assert ids(await store.history("j", "timeout")) == []
    assert (await store.history("j", limit=1))[0] == run("r4", status="success", minute=4)


async def test_history_across_jobs_is_newest_by_run_time_and_filtered_by_time_status_and_agentool(
    store: Any,
) -> None:
    other = run("b1", "b", "error", minute=30).model_copy(update={"agentool_name": "http"})
    await store.write_batch([run("a2", "a", minute=20), run("a1", "a", minute=10), other], [], 100)
    await store.write_batch([run("c1", "c", "missed", minute=40)], [], 100)

    assert ids(await store.history(None)) == ["c1", "b1", "a2", "a1"]
    assert ids(await store.history(None, limit=2)) == ["c1", "b1"]
    assert ids(await store.history(None, since=T0 + timedelta(minutes=15))) == ["c1", "b1", "a2"]
    assert ids(await store.history(None, until=T0 + timedelta(minutes=20))) == ["a1"]
    assert ids(await store.history(None, "error")) == ["b1"]
    assert ids(await store.history(None, agentool_name="echo", since=T0 + timedelta(minutes=5))) == ["c1", "a2", "a1"]
    assert ids(await store.history("a", since=T0 + timedelta(minutes=15))) == ["a2"]


async def test_a_job_created_with_the_id_of_a_deleted_one_has_only_its_own_history(store: Any) -> None:
    await store.insert_jobs([job("reused")])
    await store.write_batch([run("old1", "reused"), run("old2", "reused", minute=1)], [], 100)
    await store.delete_job("reused")
    assert ids(await store.history("reused")) == ["old2", "old1"]  # a cancelled job's history stays readable

    await store.insert_jobs([job("reused")])
    assert await store.history("reused") == []
    await store.write_batch([run("new1", "reused", minute=2)], [], 100)

    assert ids(await store.history("reused")) == ["new1"]
    assert ids(await store.history(None)) == ["new1", "old2", "old1"]  # across jobs, every run is there


async def test_update_job_replaces_the_definition_and_state_and_keeps_the_history(store: Any) -> None:
    await store.insert_jobs([job("u")])
    await store.write_batch([run("r1", "u")], [], 100)
    changed = JobDefinition(
        job_id="u", agentool_name="echo", schedule=parse_schedule("cron", "0 9 * * 1-5", "UTC"), created_at=T0,
        input_data={"x": 1},
    )

    await store.update_job(Job(changed, "paused", None))

    stored = await store.load_job("u")
    assert stored is not None
    assert (stored.definition, stored.state, stored.next_run_time) == (changed, "paused", None)
    assert ids(await store.history("u")) == ["r1"]
    with pytest.raises(JobNotFoundError):
        await store.update_job(job("missing"))


async def test_has_history_is_true_once_a_run_of_the_job_is_stored(store: Any) -> None:
    assert not await store.has_history("j")
    await store.write_batch([run("r", "j")], [], 100)
    assert await store.has_history("j") and not await store.has_history("k")


# ------------------------------------------------------------------------- following another process


async def test_changed_is_true_first_then_only_after_another_store_wrote(open_store: StoreFactory) -> None:
    one, other = await open_store(), await open_store()
    assert await one.changed() is True  # the first call
    assert await one.changed() is False

    await other.insert_jobs([job("j")])
    await eventually_async(one.changed, within=5, what="changed() after another store inserted a job")
    assert await one.changed() is False

    await other.write_batch([run("r")], [], 100)
    await eventually_async(one.changed, within=5, what="changed() after another store wrote runs")
    await other.set_state("j", "paused", None)
    await eventually_async(one.changed, within=5, what="changed() after another store paused a job")
    await other.delete_job("j")
    await eventually_async(one.changed, within=5, what="changed() after another store deleted a job")


async def test_changes_since_names_the_jobs_others_changed_and_not_ones_own(open_store: StoreFactory) -> None:
    one, other = await open_store(), await open_store()
    await other.insert_jobs([job("before")])
    start = (await one.positions())[0]

    await other.insert_jobs([job("theirs"), job("also-theirs")])
    await one.insert_jobs([job("mine")])
    await other.set_state("before", "paused", None)
    await other.delete_job("also-theirs")

    end, changed = await one.changes_since(start)
    assert changed == {"theirs", "also-theirs", "before"}
    assert end == (await one.positions())[0]
    assert await other.changes_since(start) == (end, {"mine"})
    assert await one.changes_since(end) == (end, set())


async def test_runs_since_returns_the_runs_others_wrote_in_order_and_not_ones_own(open_store: StoreFactory) -> None:
    one, other = await open_store(), await open_store()
    start = (await one.positions())[1]

    await other.write_batch([run("t1"), run("t2", minute=1)], [], 100)
    await one.write_batch([run("m1", minute=2)], [], 100)
    await other.write_batch([run("t3", minute=3)], [], 100)

    end, records = await one.runs_since(start)
    assert ids(records) == ["t1", "t2", "t3"] and end == (await one.positions())[1]
    assert ids((await other.runs_since(start))[1]) == ["m1"]
    first_two, records = await one.runs_since(start, limit=2)
    assert ids(records) == ["t1", "t2"]
    assert ids((await one.runs_since(first_two))[1]) == ["t3"]
    assert await one.runs_since(end) == (end, [])


async def test_a_follower_whose_position_was_pruned_from_the_change_feed_gets_none(open_store: StoreFactory) -> None:
    one, other = await open_store(), await open_store()
    await other.insert_jobs([job("first")])
    behind = (await one.positions())[0]

    await other.insert_jobs([job(f"j{i:05d}") for i in range(11_000)])  # more than the feed keeps

    end, changed = await one.changes_since(behind)
    assert changed is None and end == (await one.positions())[0]
    await other.set_state("first", "paused", None)
    assert (await one.changes_since(end))[1] == {"first"}


async def test_a_follower_misses_nothing_while_two_stores_write_at_once(open_store: StoreFactory) -> None:
    # Sequence numbers are drawn before commit: the feeds must still never show a later seq before an
    # earlier one has committed, or the follower moves past it.
    first, second, follower = await open_store(), await open_store(), await open_store()
    changes, runs = await follower.positions()
    jobs_seen: set[str] = set()
    runs_seen: list[str] = []
    writing = True

    async def write(store: Any, prefix: str) -> None:
        for i in range(100):
            await store.insert_jobs([job(f"{prefix}{i}")])
            await store.write_batch([run(f"{prefix}{i}", f"{prefix}{i}")], [], 100)

    async def follow() -> None:
        nonlocal changes, runs
        while True:
            last = not writing
            changes, changed = await follower.changes_since(changes)
            assert changed is not None
            jobs_seen.update(changed)
            runs, records = await follower.runs_since(runs)
            runs_seen.extend(ids(records))
            if last:
                return
            await asyncio.sleep(0)  # let the writers go on

    async def both() -> None:
        nonlocal writing
        await asyncio.gather(write(first, "a"), write(second, "b"))
        writing = False

    await asyncio.gather(both(), follow())

    expected = {f"{p}{i}" for p in "ab" for i in range(100)}
    assert jobs_seen == expected
    assert sorted(runs_seen) == sorted(expected)  # each once


async def test_concurrent_calls_on_one_store_each_complete(store: Any) -> None:
    await store.insert_jobs([job("j")])

    results = await asyncio.gather(
        store.write_batch([run(f"r{i:04d}", minute=i) for i in range(2000)], [], 5000),
        store.insert_jobs([job(f"k{i}") for i in range(50)]),
        store.set_state("j", "paused", None),
        store.history("j", limit=5),
        store.has_history("nothing"),
        store.positions(),
        store.load_job("j"),
    )

    assert results[4] is False and results[6].job_id == "j"
    assert len(await store.history("j", limit=5000)) == 2000
    assert len(await stored_ids(store)) == 51
    assert (await store.load_job("j")).state == "paused"
