"""The `queue` AgenTool, driven through the injector."""

from __future__ import annotations

import functools
import json
import logging
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentool_bridge import AgenToolInjector, AgenToolInputError
from agentool_bridge.toolkits import (
    MAX_NAME_LENGTH,
    InvalidNameError,
    InvalidTextError,
    MessageNotFoundError,
    QueueMessageEvent,
    QueueStore,
    ToolkitOutput,
    create_queue_agent,
)
from agentool_bridge.toolkits.queue import QueueClosedError, QueueInput

from ._db import query, tables


async def enqueue(injector: AgenToolInjector, queue: str, message: Any, **extra: Any) -> ToolkitOutput:
    return await injector.run("queue", {"operation": "enqueue", "queue_name": queue, "message": message, **extra})


async def dequeue(injector: AgenToolInjector, queue: str, **extra: Any) -> ToolkitOutput:
    return await injector.run("queue", {"operation": "dequeue", "queue_name": queue, **extra})


async def test_fifo_order(injector: AgenToolInjector, database: str, capsys: Any) -> None:
    create_queue_agent(database)
    for i in range(3):
        out = await enqueue(injector, "jobs", {"n": i})
        assert out.success and out.data is not None
        assert out.data["position"] == out.data["size"] == i + 1
    await enqueue(injector, "other", "elsewhere")

    got = [(await dequeue(injector, "jobs")).data["message"] for _ in range(3)]
    assert got == [{"n": 0}, {"n": 1}, {"n": 2}]
    last = await dequeue(injector, "jobs")
    assert last.data == {"queue_name": "jobs", "message": None, "empty": True}
    assert (await dequeue(injector, "other")).data["message"] == "elsewhere"
    assert capsys.readouterr().out == ""


async def test_json_string_and_model_inputs(injector: AgenToolInjector, database: str) -> None:
    create_queue_agent(database)
    out = await injector.run("queue", json.dumps({"operation": "enqueue", "queue_name": "q", "message": [1, 2]}))
    message_id = out.data["message_id"]
    got = await injector.run("queue", QueueInput(operation="dequeue", queue_name="q"))
    assert isinstance(got, ToolkitOutput)
    assert got.data["message_id"] == message_id
    assert got.data["message"] == [1, 2]
    assert got.data["attempts"] == 0
    assert got.data["enqueued_at"].endswith("+00:00")


async def test_dequeue_waits_for_a_message_enqueued_later(injector: AgenToolInjector, database: str) -> None:
    create_queue_agent(database)
    results: list[ToolkitOutput] = []

    async def consumer() -> None:
        results.append(await dequeue(injector, "jobs", timeout=60))

    with anyio.fail_after(10):  # a missed wake-up would wait the full 60 s
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer)
            await anyio.wait_all_tasks_blocked()  # the consumer is now waiting on the empty queue
            assert results == []
            await enqueue(injector, "jobs", "late")
    assert results[0].data["message"] == "late"
    assert (await injector.run("queue", {"operation": "size", "queue_name": "jobs"})).data["size"] == 0


async def test_dequeue_is_woken_by_an_enqueue_in_another_thread(injector: AgenToolInjector, database: str) -> None:
    create_queue_agent(database)
    results: list[ToolkitOutput] = []

    async def consumer() -> None:
        results.append(await dequeue(injector, "jobs", timeout=60))

    def enqueue_in_own_event_loop() -> None:
        anyio.run(functools.partial(enqueue, injector, "jobs", "from a thread"))

    # A plain thread, not awaited: only the queue's wake-up can get this event loop going again.
    producer = threading.Thread(target=enqueue_in_own_event_loop)
    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consumer)
                await anyio.wait_all_tasks_blocked()
                producer.start()
    finally:
        if producer.is_alive():
            producer.join()
    assert results[0].data["message"] == "from a thread"


async def test_a_waiting_consumer_only_wakes_for_its_own_queue(injector: AgenToolInjector, database: str) -> None:
    create_queue_agent(database)
    results: list[ToolkitOutput] = []

    async def consumer() -> None:
        results.append(await dequeue(injector, "mine", timeout=60))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer)
            await anyio.wait_all_tasks_blocked()
            await enqueue(injector, "theirs", "not for you")
            await anyio.wait_all_tasks_blocked()
            assert results == []
            await enqueue(injector, "mine", "yours")
    assert results[0].data["message"] == "yours"
    assert (await dequeue(injector, "theirs")).data["message"] == "not for you"


async def test_dequeue_on_an_empty_queue_times_out_empty(injector: AgenToolInjector, database: str) -> None:
    create_queue_agent(database)
    for timeout in (None, 0, 0.01):
        out = await dequeue(injector, "nothing", timeout=timeout)
        assert out.success is True
        assert out.data == {"queue_name": "nothing", "message": None, "empty": True}


async def test_peek_size_clear_and_list_queues(injector: AgenToolInjector, database: str) -> None:
    create_queue_agent(database)
    for i in range(3):
        await enqueue(injector, "a", i)
    await enqueue(injector, "b", "x")

    peek = await injector.run("queue", {"operation": "peek", "queue_name": "a", "count": 2})
    assert [m["message"] for m in peek.data["messages"]] == [0, 1]
    assert peek.data["count"] == 2 and peek.data["size"] == 3
    size = await injector.run("queue", {"operation": "size", "queue_name": "a"})
    assert size.data == {"queue_name": "a", "size": 3, "in_flight": 0, "dead_lettered": 0}

    listing = await injector.run("queue", {"operation": "list_queues"})
    assert listing.data["count"] == 2
    assert [(q["queue_name"], q["size"]) for q in listing.data["queues"]] == [("a", 3), ("b", 1)]

    cleared = await injector.run("queue", {"operation": "clear", "queue_name": "a"})
    assert cleared.data == {"queue_name": "a", "removed": 3}
    assert (await injector.run("queue", {"operation": "size", "queue_name": "a"})).data["size"] == 0
    listing = await injector.run("queue", {"operation": "list_queues"})
    assert [q["queue_name"] for q in listing.data["queues"]] == ["b"]


async def test_ack_nack_and_dead_lettering(injector: AgenToolInjector, database: str) -> None:
    create_queue_agent(database)
    first = (await enqueue(injector, "mail", {"to": "ada"}, max_retries=2)).data["message_id"]
    await enqueue(injector, "mail", {"to": "bob"})

    got = await dequeue(injector, "mail", auto_ack=False)
    assert got.data["message_id"] == first
    size = await injector.run("queue", {"operation": "size", "queue_name": "mail"})
    assert size.data["size"] == 1 and size.data["in_flight"] == 1

    nack = await injector.run(
        "queue", {"operation": "nack", "queue_name": "mail", "message_id": first, "error": "SMTP down"}
    )
    assert nack.data["attempts"] == 1 and nack.data["requeued"] and not nack.data["dead_lettered"]
    again = await dequeue(injector, "mail", auto_ack=False)  # back at the head, ahead of bob
    assert again.data["message_id"] == first and again.data["attempts"] == 1

    nack = await injector.run(
        "queue", {"operation": "nack", "queue_name": "mail", "message_id": first, "error": "SMTP still down"}
    )
    assert nack.data["dead_lettered"] and nack.data["attempts"] == 2

    dlq = await injector.run("queue", {"operation": "get_dlq", "queue_name": "mail", "limit": 10})
    assert dlq.data["total"] == 1
    [dead] = dlq.data["messages"]
    assert dead["message_id"] == first and dead["message"] == {"to": "ada"}
    assert dead["last_error"] == "SMTP still down" and dead["attempts"] == 2

    bob = await dequeue(injector, "mail", auto_ack=False)
    assert bob.data["message"] == {"to": "bob"}
    ack = await injector.run("queue", {"operation": "ack", "queue_name": "mail", "message_id": bob.data["message_id"]})
    assert ack.data["acked"] is True
    size = await injector.run("queue", {"operation": "size", "queue_name": "mail"})
    assert size.data == {"queue_name": "mail", "size": 0, "in_flight": 0, "dead_lettered": 1}

    with pytest.raises(MessageNotFoundError, match="already acked"):
        await injector.run("queue", {"operation": "ack", "queue_name": "mail", "message_id": bob.data["message_id"]})
    with pytest.raises(MessageNotFoundError, match="dead-letter queue"):
        await injector.run("queue", {"operation": "nack", "queue_name": "mail", "message_id": first})


async def test_unknown_or_not_in_flight_message_ids(injector: AgenToolInjector, database: str) -> None:
    create_queue_agent(database)
    waiting = (await enqueue(injector, "q", 1)).data["message_id"]
    with pytest.raises(LookupError, match="'nope'"):
        await injector.run("queue", {"operation": "ack", "queue_name": "q", "message_id": "nope"})
    with pytest.raises(MessageNotFoundError, match="not in flight"):
        await injector.run("queue", {"operation": "ack", "queue_name": "q", "message_id": waiting})
    with pytest.raises(MessageNotFoundError, match="another queue"):
        await injector.run("queue", {"operation": "nack", "queue_name": "other", "message_id": waiting})
    assert (await injector.run("queue", {"operation": "size", "queue_name": "q"})).data["size"] == 1


async def test_messages_survive_recreating_the_agentool(injector: AgenToolInjector, database: str) -> None:
    create_queue_agent(database)
    await enqueue(injector, "durable", {"keep": True})
    await enqueue(injector, "durable", "second")
    in_flight = (await dequeue(injector, "durable", auto_ack=False)).data["message_id"]

    injector.clear()  # closes the database
    create_queue_agent(database)
    size = await injector.run("queue", {"operation": "size", "queue_name": "durable"})
    assert size.data["size"] == 1 and size.data["in_flight"] == 1
    await injector.run("queue", {"operation": "ack", "queue_name": "durable", "message_id": in_flight})
    assert (await dequeue(injector, "durable")).data["message"] == "second"


async def test_the_queue_only_touches_its_own_tables(injector: AgenToolInjector, database: str) -> None:
    query(database, "CREATE TABLE jobs (id TEXT)")
    query(database, "INSERT INTO jobs VALUES ('mine')")
    create_queue_agent(database)
    await enqueue(injector, "q", 1)
    await injector.run("queue", {"operation": "clear", "queue_name": "q"})
    injector.clear()
    assert query(database, "SELECT id FROM jobs") == [("mine",)]
    ours = set(tables(database)) - {"jobs"}
    assert ours and all(name.startswith("agentool_queue_") for name in ours)


async def test_recreating_the_factory_replaces_and_closes_the_old_store(
    injector: AgenToolInjector, tmp_path: Path
) -> None:
    old = create_queue_agent(tmp_path / "one.db")
    await enqueue(injector, "q", "in one")
    new = create_queue_agent(tmp_path / "two.db")
    assert injector.get("queue") is new
    assert (await injector.run("queue", {"operation": "size", "queue_name": "q"})).data["size"] == 0
    with pytest.raises(QueueClosedError):
        old.tool("size")(queue_name="q")


async def test_a_pending_dequeue_ends_when_the_store_closes(injector: AgenToolInjector, database: str) -> None:
    create_queue_agent(database)
    errors: list[BaseException] = []

    async def consumer() -> None:
        try:
            await dequeue(injector, "q", timeout=60)
        except QueueClosedError as exc:
            errors.append(exc)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer)
            await anyio.wait_all_tasks_blocked()
            create_queue_agent(database)
    assert len(errors) == 1


async def test_enqueue_hooks_see_committed_messages_and_unsubscribe(injector: AgenToolInjector, database: str) -> None:
    store = QueueStore(database)
    injector.register(store.agentool())
    seen: list[tuple[str, QueueMessageEvent]] = []
    unsubscribe_first = store.add_enqueue_hook(lambda event: seen.append(("first", event)))
    unsubscribe_second = store.add_enqueue_hook(lambda event: seen.append(("second", event)))
    try:
        out = await enqueue(injector, "q", {"hello": "world"})
        assert [name for name, _ in seen] == ["first", "second"]
        event = seen[0][1]
        assert event.queue_name == "q"
        assert event.message_id == out.data["message_id"]
        assert event.message == {"hello": "world"}
        assert event.enqueued_at.tzinfo is not None
        assert event.level == "info"
        with pytest.raises(AttributeError):
            event.queue_name = "other"  # type: ignore[misc]

        unsubscribe_first()
        unsubscribe_first()  # idempotent
        await enqueue(injector, "q", 2)
        assert [name for name, _ in seen] == ["first", "second", "second"]
    finally:
        unsubscribe_first()
        unsubscribe_second()
    await enqueue(injector, "q", 3)
    assert len(seen) == 3


async def test_a_hook_sees_the_message_already_stored(injector: AgenToolInjector, database: str) -> None:
    store = QueueStore(database)
    agentool = injector.register(store.agentool())
    peeked: list[Any] = []
    unsubscribe = store.add_enqueue_hook(lambda event: peeked.append(agentool.tool("peek")(queue_name="q", count=5)))
    try:
        await enqueue(injector, "q", "visible")
    finally:
        unsubscribe()
    assert [m["message"] for m in peeked[0].data["messages"]] == ["visible"]


async def test_a_failing_hook_is_logged_and_does_not_break_enqueue(
    injector: AgenToolInjector, database: str, caplog: pytest.LogCaptureFixture, capsys: Any
) -> None:
    store = QueueStore(database)
    injector.register(store.agentool())
    after: list[str] = []

    def broken(event: QueueMessageEvent) -> None:
        raise RuntimeError("hook exploded")

    unsubscribe_broken = store.add_enqueue_hook(broken)
    unsubscribe_after = store.add_enqueue_hook(lambda event: after.append(event.message_id))
    try:
        with caplog.at_level(logging.ERROR, logger="agentool_bridge.toolkits.queue"):
            out = await enqueue(injector, "q", "survives")
    finally:
        unsubscribe_broken()
        unsubscribe_after()
    assert out.success and after == [out.data["message_id"]]
    assert any("hook exploded" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    assert (await dequeue(injector, "q")).data["message"] == "survives"
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * (MAX_NAME_LENGTH + 1), "at most 200 characters"),
        ("bad\nname", "control characters"),
    ],
)
async def test_invalid_queue_names_are_input_errors(injector: AgenToolInjector, name: str, fragment: str) -> None:
    create_queue_agent()
    with pytest.raises(AgenToolInputError, match=fragment) as info:
        await enqueue(injector, name, 1)
    assert info.value.fields == ["queue_name"]
    assert "queue_name" in str(info.value)


async def test_the_longest_allowed_name_works(injector: AgenToolInjector, database: str) -> None:
    create_queue_agent(database)
    name = "x" * MAX_NAME_LENGTH
    await enqueue(injector, name, 1)
    assert (await dequeue(injector, name)).data["message"] == 1


async def test_invalid_message_ids_are_input_errors(injector: AgenToolInjector) -> None:
    create_queue_agent()
    with pytest.raises(AgenToolInputError) as info:
        await injector.run("queue", {"operation": "ack", "queue_name": "q", "message_id": ""})
    assert info.value.fields == ["message_id"]


async def test_unknown_fields_are_rejected(injector: AgenToolInjector) -> None:
    create_queue_agent()
    with pytest.raises(AgenToolInputError, match="priority") as info:
        await enqueue(injector, "q", 1, priority=5)
    assert info.value.fields == ["priority"]


@pytest.mark.parametrize(
    ("data", "field", "operation"),
    [
        ({"operation": "enqueue", "queue_name": "q"}, "message", "enqueue"),
        ({"operation": "enqueue", "message": 1}, "queue_name", "enqueue"),
        ({"operation": "enqueue", "queue_name": "q", "message": None}, "message", "enqueue"),
        ({"operation": "dequeue"}, "queue_name", "dequeue"),
        ({"operation": "ack", "queue_name": "q"}, "message_id", "ack"),
        ({"operation": "nack", "queue_name": "q"}, "message_id", "nack"),
        ({"operation": "get_dlq"}, "queue_name", "get_dlq"),
    ],
)
async def test_missing_fields_are_named_with_the_operation(
    injector: AgenToolInjector, data: dict[str, Any], field: str, operation: str
) -> None:
    create_queue_agent()
    with pytest.raises(AgenToolInputError, match=f"{field} is required for operation '{operation}'") as info:
        await injector.run("queue", data)
    assert info.value.fields == [field]


async def test_non_json_messages_are_input_errors(injector: AgenToolInjector) -> None:
    create_queue_agent()
    with pytest.raises(AgenToolInputError, match="NaN") as info:
        await enqueue(injector, "q", {"x": float("nan")})
    assert info.value.fields == ["message"]
    assert (await injector.run("queue", {"operation": "list_queues"})).data["count"] == 0


async def test_the_typed_api_enqueues_with_a_level_that_hooks_see(database: str) -> None:
    store = QueueStore(database)
    heard: list[QueueMessageEvent] = []
    store.add_enqueue_hook(heard.append)
    try:
        first = store.enqueue("results", {"ok": True})
        second = store.enqueue("errors", {"ok": False}, level="error")
        assert (first.position, second.position) == (1, 1)
        assert [(e.queue_name, e.level) for e in heard] == [("results", "info"), ("errors", "error")]
        [peeked] = store.peek("results", 5)
        assert peeked.message == {"ok": True} and peeked.message_id == first.message_id
        taken = await store.dequeue("errors")
        assert taken is not None and taken.message == {"ok": False}
        assert await store.dequeue("errors") is None
        assert [(q.queue_name, q.size) for q in store.queues()] == [("results", 1)]
    finally:
        store.close()


def test_events_since_lists_what_other_stores_on_the_database_enqueued_in_order(database: str) -> None:
    mine, other = QueueStore(database), QueueStore(database)
    try:
        start = mine.last_event()
        mine.enqueue("results", {"n": 0})
        other.enqueue("results", {"n": 1})
        other.enqueue("errors", {"n": 2}, level="error")

        position, events = mine.events_since(start)
        assert [(e.queue_name, e.message, e.level) for e in events] == [
            ("results", {"n": 1}, "info"),
            ("errors", {"n": 2}, "error"),
        ]
        assert mine.events_since(position) == (position, [])
        _, seen_by_other = other.events_since(start)
        assert [e.message for e in seen_by_other] == [{"n": 0}]
    finally:
        mine.close()
        other.close()


async def test_nul_and_lone_surrogates_give_the_same_errors_on_every_database(
    injector: AgenToolInjector, database: str
) -> None:
    store = QueueStore(database)
    injector.register(store.agentool())
    # NUL inside a message is JSON-escaped, so it is stored and comes back
    store.enqueue("q", {"text": "a\x00b"})
    with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
        store.enqueue("q", "lone \ud800")
    with pytest.raises(InvalidNameError, match="control characters"):
        store.peek("q\x00")
    with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
        store.peek("q\ud800")
    taken = await store.dequeue("q", auto_ack=False)
    assert taken is not None and taken.message == {"text": "a\x00b"}
    with pytest.raises(InvalidTextError, match="NUL"):
        store.nack("q", taken.message_id, "bad\x00error")
    with pytest.raises(AgenToolInputError, match="NUL") as info:
        await injector.run(
            "queue", {"operation": "nack", "queue_name": "q", "message_id": taken.message_id, "error": "a\x00"}
        )
    assert info.value.fields == ["error"]
    # nothing was left half done: the store goes on working
    assert store.nack("q", taken.message_id, "readable").attempts == 1
    assert store.counts("q").size == 1


def test_remove_takes_ready_messages_by_id_and_leaves_the_rest(database: str) -> None:
    store = QueueStore(database)
    try:
        ids = [store.enqueue("inbox", {"n": n}).message_id for n in range(4)]
        other = store.enqueue("elsewhere", "x").message_id
        in_flight = store.take("inbox", auto_ack=False)
        assert in_flight is not None and in_flight.message_id == ids[0]

        removed = store.remove("inbox", [ids[2], ids[0], ids[2], other, "never-enqueued"])

        assert removed == 1  # ids[0] is in flight, `other` is another queue's, the last is unknown
        assert [m.message for m in store.peek("inbox", 10)] == [{"n": 1}, {"n": 3}]
        assert store.counts("inbox").in_flight == 1 and store.counts("elsewhere").size == 1
        assert store.remove("inbox", []) == 0
        many = [store.enqueue("bulk", n).message_id for n in range(510)]
        assert store.remove("bulk", many) == 510 and store.counts("bulk").size == 0
    finally:
        store.close()


def test_head_reads_the_first_messages_and_the_size_together(database: str) -> None:
    store = QueueStore(database)
    try:
        assert store.head("q", 5) == ([], 0)
        ids = [store.enqueue("q", {"n": n}).message_id for n in range(4)]
        store.enqueue("other", "x")
        assert store.take("q", auto_ack=False) is not None  # in flight: neither at the head nor counted

        messages, size = store.head("q", 2)

        assert [m.message_id for m in messages] == ids[1:3] and size == 3
        assert store.head("q") == (messages[:1], 3)
    finally:
        store.close()


def test_head_never_counts_a_message_enqueued_between_its_two_reads(database: str) -> None:
    store = QueueStore(database)
    enqueued = threading.Event()

    def enqueue_many() -> None:
        for n in range(60):
            store.enqueue("busy", n)
        enqueued.set()

    producer = threading.Thread(target=enqueue_many)
    producer.start()
    try:
        reads = 0
        while not enqueued.is_set() or reads == 0:
            messages, size = store.head("busy", 100)
            assert len(messages) == size  # fewer than 100 ready: the head is the whole queue
            reads += 1
    finally:
        producer.join(timeout=30)
        store.close()
    assert not producer.is_alive()
