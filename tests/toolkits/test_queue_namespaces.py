"""Queue namespaces (issue 24 item 4): a principal's queue names spelled into and out of its namespace, and the
`queue` AgenTool inside a run, which uses its run's namespace (on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from agentool_bridge import AgenToolInjector
from agentool_bridge.context import RunInfo, running
from agentool_bridge.toolkits import MAX_NAME_LENGTH, InvalidNameError, create_queue_agent
from agentool_bridge.toolkits.queue import namespace_for, stored_name, used_name

ALICE = namespace_for("token:alice")


def test_a_readable_subject_names_its_namespace_and_others_are_hashed_without_a_slash() -> None:
    assert ALICE == "~token:alice/"
    odd = namespace_for("auth0|user/42")
    assert odd.startswith("~=") and odd.endswith("/") and odd.count("/") == 1
    assert namespace_for("x" * 65) != namespace_for("x" * 66)


def test_two_subjects_never_share_a_stored_name() -> None:
    # "a" naming "b/c" and "a/b" naming "c" would both be "~a/b/c" if subjects were taken as they are.
    assert stored_name(namespace_for("a"), "b/c") != stored_name(namespace_for("a/b"), "c")
    assert used_name(namespace_for("a/b"), stored_name(namespace_for("a"), "b/c")) is None


def test_a_name_is_kept_in_its_namespace_and_known_by_it_there_alone() -> None:
    stored = stored_name(ALICE, "reports/daily")
    assert stored == "~token:alice/reports/daily"
    assert used_name(ALICE, stored) == "reports/daily"
    assert used_name(namespace_for("token:bob"), stored) is None
    assert used_name(ALICE, "reports/daily") is None and used_name(ALICE, "inbox") is None
    assert stored_name(None, "results") == "results" and used_name(None, stored) == stored  # the shared names


def test_a_name_within_a_namespace_cannot_reach_into_another() -> None:
    with pytest.raises(InvalidNameError, match="another principal's queues"):
        stored_name(ALICE, "~token:bob/results")
    assert stored_name(None, "~token:bob/results") == "~token:bob/results"  # an admin addresses it as stored


def test_a_name_too_long_for_its_namespace_is_refused_naming_the_limit() -> None:
    most = MAX_NAME_LENGTH - len(ALICE)
    assert len(stored_name(ALICE, "q" * most)) == MAX_NAME_LENGTH
    with pytest.raises(InvalidNameError, match=f"at most {most} characters"):
        stored_name(ALICE, "q" * (most + 1))
    with pytest.raises(InvalidNameError, match="empty or blank"):
        stored_name(ALICE, " ")


async def test_the_queue_kind_in_a_run_uses_its_run_s_namespace(injector: AgenToolInjector, database: str) -> None:
    store = create_queue_agent(database).backend
    store.enqueue("shared", {"from": "the operator"})
    store.enqueue("~token:bob/notes", {"from": "bob"})

    with running(RunInfo("alices", "run-1", "schedule", namespace=ALICE)):
        sent = await injector.run("queue", {"operation": "enqueue", "queue_name": "notes", "message": {"n": 1}})
        listed = await injector.run("queue", {"operation": "list_queues"})
        size = await injector.run("queue", {"operation": "size", "queue_name": "notes"})
        empty = await injector.run("queue", {"operation": "dequeue", "queue_name": "shared"})
        with pytest.raises(InvalidNameError, match="another principal's queues"):
            await injector.run("queue", {"operation": "dequeue", "queue_name": "~token:bob/notes"})
    everything = await injector.run("queue", {"operation": "list_queues"})  # outside a run: the shared names

    assert sent.data is not None and sent.data["queue_name"] == "notes"
    assert [m.message for m in store.peek("~token:alice/notes", 10)] == [{"n": 1}]
    assert listed.data is not None and [q["queue_name"] for q in listed.data["queues"]] == ["notes"]
    assert size.data is not None and size.data["queue_name"] == "notes" and size.data["size"] == 1
    assert empty.data is not None and empty.data["empty"] is True  # the shared "shared" is not the run's "shared"
    assert store.counts("~token:bob/notes").size == 1 and store.counts("shared").size == 1
    assert everything.data is not None
    assert sorted(q["queue_name"] for q in everything.data["queues"]) == [
        "shared", "~token:alice/notes", "~token:bob/notes"]
