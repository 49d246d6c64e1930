"""Claims on messages in flight (QueueStore.take(claim=...), claimed, settle), on SQLite and PostgreSQL: a consumer's
note beside a message it took, read back after a crash, gone once the message leaves flight by any means."""

from __future__ import annotations

import pytest

from agentool_bridge.toolkits import QueueStore
from agentool_bridge.toolkits.queue import Claimed


def test_a_claim_is_taken_with_the_message_and_read_back_by_another_store(database: str) -> None:
    store, other = QueueStore(database), QueueStore(database)
    try:
        first = store.enqueue("q", {"n": 1}).message_id
        second = store.enqueue("q", {"n": 2}).message_id
        store.enqueue("q", {"n": 3})
        assert store.take("q", auto_ack=False, claim="me run-1").message_id == first  # type: ignore[union-attr]
        assert store.take("q", auto_ack=False, claim="me run-2").message_id == second  # type: ignore[union-attr]
        store.take("q", auto_ack=False)  # in flight without a claim: not listed

        assert other.claimed("me ") == [Claimed("q", first, "me run-1"), Claimed("q", second, "me run-2")]
        assert other.claimed("someone else") == []
    finally:
        store.close()
        other.close()


def test_settle_acks_or_releases_only_under_its_own_claim(database: str) -> None:
    store = QueueStore(database)
    try:
        done = store.enqueue("q", "done").message_id
        back = store.enqueue("q", "back").message_id
        store.enqueue("q", "after")
        store.take("q", auto_ack=False, claim="c1")
        store.take("q", auto_ack=False, claim="c2")

        assert not store.settle("q", done, "c2", done=True)  # another claim's message: left alone
        assert store.settle("q", done, "c1", done=True)
        assert store.settle("q", back, "c2", done=False)
        assert not store.settle("q", back, "c2", done=False)  # no longer in flight

        assert [m.message for m in store.peek("q", 5)] == ["back", "after"]  # released to its place, not the tail
        assert store.peek("q")[0].attempts == 0  # a release is no failed attempt
        assert store.claimed() == []
        assert store.counts("q").in_flight == 0
    finally:
        store.close()


def test_ack_nack_and_clear_remove_the_claims(database: str) -> None:
    store = QueueStore(database)
    try:
        for text in ("acked", "nacked", "cleared"):
            message_id = store.enqueue("q", text).message_id
            store.take("q", auto_ack=False, claim=f"claim {text}")
            if text == "acked":
                store.ack("q", message_id)
            elif text == "nacked":
                store.nack("q", message_id, "failed")
                assert store.take("q", auto_ack=False, claim="again") is not None  # the nacked one, claimed anew
        assert [c.claim for c in store.claimed()] == ["again", "claim cleared"]
        store.clear("q")
        assert store.claimed() == []
    finally:
        store.close()


def test_a_claim_needs_a_message_left_in_flight(database: str) -> None:
    store = QueueStore(database)
    try:
        store.enqueue("q", 1)
        with pytest.raises(ValueError, match="auto_ack=False"):
            store.take("q", claim="x")
        assert store.counts("q").size == 1
    finally:
        store.close()
