"""What a read through the store costs (issue 22's reads, issue 20's round trips): both feeds in one read, the jobs
of many ids in one query, and the read mark that tells a process nothing was written since it last read."""

from __future__ import annotations

from typing import Any

from mcp_scheduler.store import SQLiteStore
from tests.store.conftest import StoreFactory
from tests.store.test_contract import ids, job, run


async def test_load_jobs_by_id_reads_the_stored_ones_and_leaves_out_the_others(store: Any) -> None:
    await store.insert_jobs([job("a"), job("b"), job("c", "paused", None)])

    loaded = await store.load_jobs_by_id(["c", "a", "never-stored"])

    assert set(loaded) == {"a", "c"}
    assert (loaded["a"].job_id, loaded["c"].state) == ("a", "paused")
    assert await store.load_jobs_by_id([]) == {}


async def test_feeds_since_reads_what_changes_since_and_runs_since_read(open_store: StoreFactory) -> None:
    one, other = await open_store(), await open_store()
    start = await one.positions()
    await other.insert_jobs([job("theirs")])
    await one.insert_jobs([job("mine")])
    await other.write_batch([run("t1", "theirs"), run("t2", "theirs", minute=1)], [], 100)
    await one.write_batch([run("m1", "mine", minute=2)], [], 100)

    feeds = await one.feeds_since(*start)

    assert (feeds.change_seq, feeds.changed) == await one.changes_since(start[0])
    assert (feeds.run_seq, feeds.runs) == await one.runs_since(start[1])
    assert ids(feeds.runs) == ["t1", "t2"] and not feeds.more_runs
    assert (feeds.change_seq, feeds.run_seq) == await one.positions()
    first = await one.feeds_since(*start, limit=2)
    assert ids(first.runs) == ["t1", "t2"] and first.more_runs
    rest = await one.feeds_since(first.change_seq, first.run_seq, limit=2)
    assert (rest.changed, rest.runs, rest.more_runs) == (set(), [], False)  # m1 is its own


async def test_the_read_mark_moves_when_any_connection_commits_and_only_then(open_store: StoreFactory) -> None:
    one, other = await open_store(), await open_store()
    if not isinstance(one, SQLiteStore):
        assert one.read_mark() is None  # PostgreSQL: no cheap test, every read goes to the store
        return
    mark = one.read_mark()
    await one.load_jobs_by_id(["x"])
    await one.feeds_since(0, 0)
    assert mark is not None and one.read_mark() == mark  # reads commit nothing

    await other.insert_jobs([job("theirs")])
    assert one.read_mark() != mark
    mark = one.read_mark()
    await one.insert_jobs([job("mine")])  # its own writes too: they go through another connection
    assert one.read_mark() != mark


async def test_a_store_in_memory_has_one_read_mark_and_a_closed_one_none() -> None:
    store = SQLiteStore(None)
    await store.open()
    mark = store.read_mark()
    await store.insert_jobs([job("j")])
    assert mark is not None and store.read_mark() == mark  # no other connection can write it
    await store.close()
    assert store.read_mark() is None
