"""A process follows every run record others write, also more of them at once than one read of the feed takes
(1,000): the rest is read on the follower's next turns, not when something else is written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mcp_scheduler import RunEvent
from mcp_scheduler.models import RunRecord
from mcp_scheduler.store import store_for
from tests.scheduler._support import EventRecorder

RUNS = 1_500


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, db_path: str) -> str:
    return db_path if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


async def test_a_standby_hears_of_every_run_of_a_batch_larger_than_one_read(database: str, make_service: Any) -> None:
    await make_service(database=database)  # the runner
    standby = await make_service(database=database)
    heard = EventRecorder(standby.events)
    writer = store_for(database)
    await writer.open()
    try:
        at = datetime(2026, 12, 1, 9, tzinfo=UTC)
        records = [
            RunRecord(
                run_id=f"r{i}",
                job_id="elsewhere",
                agentool_name="echo",
                trigger="run_now",
                status="success",
                scheduled_time=at,
                started_at=at,
                finished_at=at,
            )
            for i in range(RUNS)
        ]
        await writer.write_batch(records, [], RUNS)  # one commit, nothing written after it

        # Before, the follower read 1,000 and waited for the next commit (on PostgreSQL up to its 10 s recheck).
        await heard.wait_for(lambda e: isinstance(e, RunEvent) and e.record.job_id == "elsewhere", count=RUNS, within=5)
    finally:
        await writer.close()
