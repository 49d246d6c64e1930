"""Fencing after a lease loss (issue 21): the fencing token each runner draws, the writes it keeps out, the runs a
runner that loses its lease cancels, and the retries of interrupted runs (opt-in, held until the old runs stop); the
condition states, the takes of handed-over runs and the starts of runs taken (a batch's swaps) it keeps out too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from mcp_scheduler import SchedulerService
from mcp_scheduler.models import RunRecord
from mcp_scheduler.postgres_lease import HOLDER_QUERY, STOP_MARGIN, WHERE, PostgresLease, lease_key
from mcp_scheduler.scheduler.run_requests import taken_by
from mcp_scheduler.store.conditions_table import ConditionRow
from mcp_scheduler.store.postgres import PostgresStore
from tests.scheduler._support import EventRecorder, Slow, VirtualClock, finished, request, started
from tests.store.test_contract import job

WAIT = {"operation": "wait", "label": "slow"}


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(postgres_url)
    await store.open()
    yield store
    await store.close()


def _run(run_id: str, trigger: str) -> RunRecord:
    when = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    return RunRecord(run_id=run_id, job_id="j", agentool_name="echo", trigger=trigger,  # type: ignore[arg-type]
                     status="success", scheduled_time=when, started_at=when, finished_at=when, duration_ms=1.0)


async def test_each_holder_draws_a_newer_token_and_waits_for_half_the_last_holders_lease_time(
    postgres_url: str,
) -> None:
    first, second = PostgresLease(postgres_url, lease_time=4), PostgresLease(postgres_url, lease_time=6)
    try:
        assert await first.try_acquire()
        token = first.fencing_token()
        assert token is not None and first.takeover_wait() == 0  # nobody held it before in this schema
        await first.release()

        assert await second.try_acquire()
        assert second.fencing_token() == token + 1
        assert first.fencing_token() == 0  # given back: no write of the runner passes the store's check
        assert second.takeover_wait() == 4 / 2 + STOP_MARGIN
    finally:
        await first.release()
        await second.release()


async def test_a_lease_not_confirmed_for_half_its_time_is_no_longer_held(postgres_url: str) -> None:
    clock = VirtualClock()
    lease = PostgresLease(postgres_url, lease_time=4, clock=clock)
    try:
        assert await lease.try_acquire()
        clock.advance(1.9)
        assert lease.is_held()
        clock.advance(0.2)  # 2.1 s since the session was last known alive: another process may take it soon
        assert not lease.is_held()
        assert await lease.claim("job", datetime.now(UTC)) is False

        assert await lease.keep() is True  # the session answers again: confirmed from when the ping was sent
        assert lease.is_held()
    finally:
        await lease.release()


async def test_a_stale_token_keeps_out_the_runners_records_and_bookkeeping_but_not_run_now_records(
    postgres_url: str, pg_store: PostgresStore
) -> None:
    first, second = PostgresLease(postgres_url, lease_time=4), PostgresLease(postgres_url, lease_time=4)
    pg_store.fence_with(first.fencing_token)
    try:
        assert await first.try_acquire()
        await pg_store.write_batch([_run("while-held", "schedule")], [], 100)
        await first.release()
        assert await second.try_acquire()  # another process is the runner now, with a newer token

        await pg_store.write_batch(
            [_run("fire", "schedule"), _run("retry", "retry"), _run("caught-up", "catch_up"),
             _run("manual", "run_now"), _run("backfilled", "backfill")], [], 100,
        )
    finally:
        await first.release()
        await second.release()

    assert sorted(r.run_id for r in await pg_store.history("j", limit=10)) == ["backfilled", "manual", "while-held"]


async def test_a_runner_that_loses_its_lease_cancels_its_runs_in_flight_and_steps_down(
    postgres_url: str, make_service: Any, slow: Slow
) -> None:
    service: SchedulerService = await make_service(database=postgres_url, lease_time=4, open=False)
    recorder = EventRecorder(service.events)
    await service.open()
    assert service.is_runner
    await service.schedule(request("long", "once", "now", agentool_name="slow", input_data=WAIT))
    await recorder.wait_for(started("long"), within=10)

    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        where = (await (await admin.execute(WHERE)).fetchone() or [""])[0]
        row = await (await admin.execute(HOLDER_QUERY, (lease_key(str(where)),))).fetchone()
        assert row is not None
        await admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))

    [event] = await recorder.wait_for(finished("long"), within=10)
    record = event.record  # type: ignore[union-attr]
    assert record.status == "cancelled" and "lease lost" in (record.note or "")
    assert slow.started == 1 and not slow.release.is_set()  # cut short, not let finish


async def test_a_run_left_interrupted_is_retried_only_by_a_job_that_opts_in_and_its_retry_says_why(
    make_service: Any, db_path: str, slow: Slow
) -> None:
    # The first scheduler is left running without its lease, as if it had been killed mid-run.
    dead: SchedulerService = await make_service(open=False, use_lease=False, flush_delay=30)
    recorder = EventRecorder(dead.events)
    await dead.open()
    for job_id, retry_on in (("default", None), ("opted-in", ["error", "timeout", "interrupted"])):
        policy: dict[str, Any] = {"max_attempts": 2, "retry_delay": 600}
        if retry_on is not None:
            policy["retry_on"] = retry_on
        await dead.schedule(request(job_id, "once", "now", agentool_name="slow", input_data=WAIT, policy=policy))
        await recorder.wait_for(started(job_id))

    successor: SchedulerService = await make_service(use_lease=False)
    later = EventRecorder(successor.events)
    slow.release.set()
    await later.wait_for(finished("opted-in", "success"), within=10)

    default = await successor.get_history("default")
    opted = await successor.get_history("opted-in")
    await dead.stop()  # the "dead" one must not write over the successor's records from here on
    assert [(r.trigger, r.status) for r in default] == [("schedule", "interrupted")]
    assert "it was not run again" in (default[0].note or "")
    assert [(r.trigger, r.status) for r in opted] == [("retry", "success"), ("schedule", "interrupted")]
    assert "retried, as its job's retry_on has interrupted" in (opted[1].note or "")
    assert "a retry of a run the last runner left interrupted" in (opted[0].note or "")
    assert slow.started == 3


async def test_a_stale_token_keeps_out_the_condition_states_and_the_takes_of_the_runner(
    postgres_url: str, pg_store: PostgresStore
) -> None:
    first, second = PostgresLease(postgres_url, lease_time=4), PostgresLease(postgres_url, lease_time=4)
    pg_store.fence_with(first.fencing_token)
    asked = RunRecord(run_id="asked", job_id="j", agentool_name="echo", trigger="webhook", status="running")
    try:
        await pg_store.insert_jobs([job("j")])
        await pg_store.write_batch([asked], [], 100)  # a standby's request (anyone's record)
        assert await first.try_acquire()
        assert await pg_store.note_condition(ConditionRow("j", "k", False, 1.0, 1.0))
        await first.release()
        assert await second.try_acquire()  # another process is the runner now, with a newer token

        # A change to true stored now would make the next runner take it as seen, and never fire it.
        assert await pg_store.note_condition(ConditionRow("j", "k", True, 2.0, 2.0)) is False
        assert await pg_store.replace_run(asked, taken_by(asked, "a runner that lost its lease"), fenced=True) is False
        withdrawn = asked.model_copy(update={"status": "cancelled"})
        assert await pg_store.replace_run(asked, withdrawn)  # its asker's withdrawal is not the runner's: not fenced
    finally:
        await first.release()
        await second.release()

    assert await pg_store.load_conditions() == {"j": ConditionRow("j", "k", False, 1.0, 1.0)}
    assert [r.status for r in await pg_store.history("j")] == ["cancelled"]


async def test_a_stale_token_keeps_out_the_starts_a_batch_swaps_in_and_says_so(
    postgres_url: str, pg_store: PostgresStore
) -> None:
    """The start of a run the store holds for the runner (a batch's swap) is a write of the runner: with a stale
    token none is made, and the batch says so (the run is not run), while the anyone's records beside it are."""
    first, second = PostgresLease(postgres_url, lease_time=4), PostgresLease(postgres_url, lease_time=4)
    pg_store.fence_with(first.fencing_token)
    asked = RunRecord(run_id="asked", job_id="j", agentool_name="echo", trigger="webhook", status="running")
    taken = taken_by(asked, "a runner that loses its lease")
    start = taken.model_copy(update={"started_at": datetime(2026, 12, 1, 9, 0, tzinfo=UTC)})
    try:
        assert await first.try_acquire()
        await pg_store.write_batch([taken], [], 100)
        await first.release()
        assert await second.try_acquire()  # another process is the runner now, with a newer token

        written = await pg_store.write_batch([_run("manual", "run_now")], [], 100, swaps=[(taken, start)])
    finally:
        await first.release()
        await second.release()

    assert written == set()
    assert {r.run_id: r for r in await pg_store.history("j")} == {"asked": taken, "manual": _run("manual", "run_now")}
