"""The condition triggers' table on both backends: what a job's condition was last seen to be is kept, replaced,
read by another store on the same database, and forgotten once its job is gone."""

from __future__ import annotations

from typing import Any

from mcp_scheduler.store.conditions_table import ConditionRow
from tests.store.conftest import StoreFactory
from tests.store.test_contract import job


async def test_a_condition_is_kept_replaced_and_read_by_another_store(store: Any, open_store: StoreFactory) -> None:
    await store.insert_jobs([job("watched"), job("other")])
    await store.note_condition(ConditionRow("watched", "key-1", False, 100.0, 100.0))
    await store.note_condition(ConditionRow("watched", "key-1", True, 160.5, 160.5))
    await store.note_condition(ConditionRow("other", "key-2", False, 200.0, 200.0))

    another = await open_store()
    assert await another.load_conditions() == {
        "watched": ConditionRow("watched", "key-1", True, 160.5, 160.5),
        "other": ConditionRow("other", "key-2", False, 200.0, 200.0),
    }


async def test_the_condition_of_a_job_that_is_gone_is_forgotten_when_read(store: Any) -> None:
    await store.insert_jobs([job("kept"), job("cancelled")])
    for job_id in ("kept", "cancelled"):
        await store.note_condition(ConditionRow(job_id, "k", True, 1.0, 1.0))
    await store.delete_job("cancelled")

    assert list(await store.load_conditions()) == ["kept"]
    await store.insert_jobs([job("cancelled")])  # a new job of that id: nothing seen of it yet
    assert list(await store.load_conditions()) == ["kept"]
