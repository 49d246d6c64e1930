"""What only PostgreSQL has: several stores (processes, machines) taking from one queue at once, waits that
hear of other processes' messages, a server that may be away, and connections that may be cut."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest

from agentool_bridge.toolkits import DatabaseUnavailableError, KVStore, QueueMessageEvent, QueueStore
from tests._net import free_port

pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[dev]' (or '.[postgres]')")


def test_concurrent_takers_on_several_stores_take_every_message_exactly_once(postgres_url: str) -> None:
    stores = [QueueStore(postgres_url) for _ in range(4)]
    try:
        sent = {stores[0].enqueue("work", {"n": n}).message_id for n in range(300)}
        taken: list[list[str]] = [[] for _ in stores]
        start = threading.Barrier(len(stores))
        failures: list[BaseException] = []

        def taker(index: int) -> None:
            store = stores[index]
            try:
                start.wait(timeout=10)
                while (message := store.take("work", auto_ack=index % 2 == 0)) is not None:
                    if index % 2:  # half of them hold the message in flight, then ack it
                        store.ack("work", message.message_id)
                    taken[index].append(message.message_id)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=taker, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert failures == []
        every = [message_id for own in taken for message_id in own]
        assert len(every) == len(set(every)), "a message was taken twice"
        assert set(every) == sent
        assert sum(1 for own in taken if own) >= 2, "the takers did not overlap: the test proved nothing"
        assert stores[1].counts("work").as_dict() == {"queue_name": "work", "size": 0, "in_flight": 0,
                                                      "dead_lettered": 0}
    finally:
        for store in stores:
            store.close()


async def test_a_waiting_dequeue_gets_a_message_another_store_enqueues(postgres_url: str) -> None:
    waiting, other = QueueStore(postgres_url), QueueStore(postgres_url)
    got: list[Any] = []

    async def consumer() -> None:
        got.append(await waiting.dequeue("jobs", wait=60))

    try:
        with anyio.fail_after(10):  # without looking again, the wait would last the full 60 s
            async with anyio.create_task_group() as tg:
                tg.start_soon(consumer)
                await anyio.wait_all_tasks_blocked()
                other.enqueue("jobs", "from another process")
        assert got[0] is not None and got[0].message == "from another process"
        assert other.counts("jobs").size == 0
    finally:
        waiting.close()
        other.close()


def test_a_reader_of_events_since_misses_no_enqueue_of_concurrent_writers(postgres_url: str) -> None:
    reader, writers = QueueStore(postgres_url), [QueueStore(postgres_url) for _ in range(3)]
    per_writer = 60
    try:
        position = reader.last_event()
        seen: list[QueueMessageEvent] = []
        done = threading.Event()

        def write(store: QueueStore) -> None:
            for n in range(per_writer):
                store.enqueue("feed", {"writer": store.writer, "n": n})

        threads = [threading.Thread(target=write, args=(w,)) for w in writers]
        for thread in threads:
            thread.start()

        def joined() -> None:
            for thread in threads:
                thread.join(timeout=60)
            done.set()

        threading.Thread(target=joined).start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # follow the feed while the writers write, as a follower does
            finished = done.is_set()
            position, events = reader.events_since(position, limit=7)
            seen.extend(events)
            if finished and not events:
                break
        assert len(seen) == per_writer * len(writers)
        assert len({e.message_id for e in seen}) == len(seen)
        for store in writers:  # each writer's messages in its order
            assert [e.message["n"] for e in seen if e.message["writer"] == store.writer] == list(range(per_writer))
    finally:
        for store in [reader, *writers]:
            store.close()


def test_a_server_that_does_not_answer_is_named_with_how_to_check_it() -> None:
    port = free_port()
    with pytest.raises(DatabaseUnavailableError) as caught:
        KVStore(f"postgresql://postgres:s3cret@127.0.0.1:{port}/toolkits?connect_timeout=5")
    message = str(caught.value)
    assert f"127.0.0.1:{port}/toolkits" in message and f"pg_isready -h 127.0.0.1 -p {port}" in message
    assert "s3cret" not in message


def test_a_schema_that_does_not_exist_is_named_with_how_to_create_it(postgres_url: str) -> None:
    with pytest.raises(DatabaseUnavailableError, match="CREATE SCHEMA"):
        QueueStore(postgres_url.rsplit("%3D", 1)[0] + "%3Dno_such_schema")


def test_the_location_shows_the_url_without_its_password(postgres_url: str) -> None:
    store = QueueStore(postgres_url)
    try:
        assert store.location == postgres_url  # no password in the test server's URL
    finally:
        store.close()
    assert "s3cret" not in _masked("postgresql://u:s3cret@db.example/jobs")


def _masked(url: str) -> str:
    from agentool_bridge.postgres import mask_password

    return mask_password(url)


def test_stores_reconnect_after_their_connections_are_cut(postgres_url: str) -> None:
    import psycopg

    queue, kv = QueueStore(postgres_url), KVStore(postgres_url)
    try:
        queue.enqueue("q", "before")
        kv.set("k", "before", None)
        # These two stores' connections only: other test sessions may share the server.
        pids = [store._db._conn.info.backend_pid for store in (queue, kv)]  # type: ignore[attr-defined]
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM unnest(%s::int[]) AS pid", (pids,)
            ).fetchone()
        assert cut == (2,)

        assert [m.message for m in queue.peek("q", 5)] == ["before"]  # a read asks again on a new connection
        queue.enqueue("q", "after")  # a write begins again on a new connection
        assert kv.get("k").data["value"] == "before"
        kv.set("k", "after", None)
        assert kv.get("k").data["value"] == "after"
        assert [m.message for m in queue.peek("q", 5)] == ["before", "after"]
    finally:
        queue.close()
        kv.close()


def test_a_connection_lost_inside_a_transaction_is_named_and_the_next_call_reconnects(postgres_url: str) -> None:
    import psycopg

    cut_now = False

    def clock() -> float:  # called inside get's transaction: the moment to cut the connection
        if cut_now:
            pid = kv._db._conn.info.backend_pid  # type: ignore[attr-defined]
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return time.time()

    kv = KVStore(postgres_url, clock=clock)
    try:
        kv.set("k", "kept", None)
        cut_now = True
        with pytest.raises(DatabaseUnavailableError, match="was lost during a transaction.*Try again"):
            kv.get("k")
        cut_now = False
        assert kv.get("k").data["value"] == "kept"
    finally:
        kv.close()
