"""A run the store holds for one runner starts once, across a takeover (docs/webhooks.md, docs/chains.md): a request
handed over by a standby (webhook, condition, chain) or a chained run a runner decided is taken by runner A, A loses
its lease before it starts the run, runner B takes over and takes the run again. A's start and B's are both swaps
from the record each found stored (fenced on PostgreSQL): exactly one commits, and the job's body runs once.

A is held between its take and its start by a run of the same job that fills the job's one place
(--max-runs-per-job 1, overlap `buffer_all`); on PostgreSQL it keeps believing it holds the lease (its clock is
virtual: it never checks the lease again) while its lease session is ended, so that it goes on to start the run after
B took it: the worst order. On SQLite the two services run without a lease, as two runners would if the lease file
were lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from mcp_scheduler import SchedulerInput, SchedulerService
from mcp_scheduler.events import RunEvent
from mcp_scheduler.jobs import RunTrigger
from mcp_scheduler.models import RunRecord
from mcp_scheduler.policies import PolicyInput
from mcp_scheduler.postgres_lease import HOLDER_QUERY, WHERE, PostgresLease, lease_key
from mcp_scheduler.scheduler.chains import chain_run_id
from mcp_scheduler.scheduler.queue_trigger import CLAIM_PREFIX
from mcp_scheduler.scheduler.run_requests import KEPT_UNSTARTED, RunRequest, taken_by
from mcp_scheduler.store import SchedulerStore, store_for
from mcp_scheduler.store.postgres import PostgresStore
from tests.scheduler._support import Calls, EventRecorder, Slow, VirtualClock, finished, started
from tests.scheduler.conftest import RuntimeFactory, ServiceFactory
from tests.store.test_contract import eventually_async

WITHIN = 20.0
WAIT = {"operation": "wait", "label": "hooked"}


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, db_path: str) -> str:
    """The database both runners share: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return db_path
    return str(request.getfixturevalue("postgres_url"))


def runner_options(database: str) -> dict[str, Any]:
    """On PostgreSQL the real lease (A's long enough that it never lapses on its own during the test); on SQLite
    none, so that both services act as the runner. One run of a job at a time: a run waits for its job's place."""
    if database.startswith("postgresql"):
        return {"database": database, "lease_time": 120, "max_runs_per_job": 1}
    return {"database": database, "use_lease": False, "max_runs_per_job": 1}


@pytest.fixture
async def standby(backend: str, echo: Calls) -> AsyncIterator[SchedulerStore]:
    """A third process's store on the same database: it hands runs over, and reads what the runners stored (the
    runners' `echo` is registered: their job `first` runs it)."""
    store = store_for(backend)
    await store.open()
    yield store
    await store.close()


async def take_lease_away(database: str) -> None:
    """End the session that holds the runner lease (PostgreSQL), as a cut connection or a frozen runner's lapsed
    session would: the lock is free at once, and its holder does not know yet."""
    if not database.startswith("postgresql"):
        return
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as admin:
        where = (await (await admin.execute(WHERE)).fetchone() or [""])[0]
        row = await (await admin.execute(HOLDER_QUERY, (lease_key(str(where)),))).fetchone()
        assert row is not None
        await admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))


def job(job_id: str, kind: str = "slow", **policy: Any) -> SchedulerInput:
    """A daily job (it does not fire during the test)."""
    data = WAIT if kind == "slow" else {"operation": "echo", "text": job_id}
    return SchedulerInput(operation="schedule", job_id=job_id, schedule_type="cron", schedule="0 3 * * *",
                          agentool_name=kind, input_data=data,
                          policy=PolicyInput.model_validate(policy) if policy else None)


def ran_in(recorder: EventRecorder) -> set[str]:
    """The runs a service started itself (not those it read from the store)."""
    return {e.record.run_id for e in recorder.events if isinstance(e, RunEvent) and e.kind == "started"
            and not e.remote}


async def stored(store: SchedulerStore, run_id: str) -> RunRecord | None:
    found = await store.history(None, run_id=run_id)
    return found[0] if found else None


async def until_stored(store: SchedulerStore, run_id: str, check: Callable[[RunRecord], bool], what: str) -> None:
    async def holds() -> bool:
        record = await stored(store, run_id)
        return record is not None and check(record)

    await eventually_async(holds, within=WITHIN, what=what)


async def race(
    make_service: ServiceFactory, database: str, standby: SchedulerStore, slow: Slow,
    hand: Callable[[SchedulerService], Awaitable[str]], *, chained: bool = False,
) -> tuple[str, EventRecorder, SchedulerService]:
    """Runner A takes (or decides) the run that `hand(a)` makes, and waits for the job's one place; B takes over
    and starts the run; then A's place frees and A goes on to start it. Returns the run id, A's recorder and B,
    once A is closed (every run it had is over)."""
    a = await make_service(**runner_options(database), clock=VirtualClock(), open=False)
    a_events = EventRecorder(a.events)
    await a.open()
    assert a.is_runner
    await a.schedule(job("first", "echo"))
    after: dict[str, Any] = {"after": {"job": "first", "on": "success"}} if chained else {}
    await a.schedule(job("hooked", overlap="buffer_all", **after))
    blocker = asyncio.create_task(a.run_now(SchedulerInput(operation="run_now", job_id="hooked")))
    await a_events.wait_for(started("hooked"), within=WITHIN)  # the job's one place is A's

    run_id = await hand(a)

    await take_lease_away(database)
    b = await make_service(**runner_options(database), open=False)
    b_events = EventRecorder(b.events)
    await b.open()  # takes the lease, finds the run never started and takes it again
    assert b.is_runner
    await b_events.wait_for(started("hooked"), within=WITHIN)
    assert slow.started == 2  # A's blocker and B's run of the handed one

    slow.release.set()
    await b_events.wait_for(finished("hooked", "success"), within=WITHIN)
    await asyncio.gather(blocker, return_exceptions=True)  # A's place frees: A goes on to start the run it took
    await a.close()  # waits for every run of A's
    return run_id, a_events, b


@pytest.mark.parametrize("trigger", ["webhook", "condition", "chain"])
async def test_a_handed_over_run_taken_by_a_runner_that_lost_its_lease_and_taken_again_runs_once(
    make_service: ServiceFactory, backend: str, standby: SchedulerStore, slow: Slow, trigger: RunTrigger
) -> None:
    async def hand(a: SchedulerService) -> str:
        found = await standby.load_job("hooked")
        assert found is not None
        asked = RunRequest(standby, found, history_limit=100, asked_by="a test standby", trigger=trigger,  # type: ignore[arg-type]
                           trigger_data={"trigger_data": {}, "note": "handed over by the test"})
        await asked.send()
        await until_stored(standby, asked.run_id, lambda r: "taken by the runner" in (r.note or ""),
                           "runner A's take")
        return asked.run_id

    run_id, a_events, b = await race(make_service, backend, standby, slow, hand)

    assert slow.started == 2  # the handed-over run ran once, in B
    assert run_id not in ran_in(a_events)
    [record] = [r for r in await b.get_history("hooked") if r.run_id == run_id]  # B's, as B wrote it last
    assert (record.trigger, record.status, record.note) == (trigger, "success", "handed over by the test")


async def test_a_chained_run_decided_by_a_runner_that_lost_its_lease_and_taken_over_runs_once(
    make_service: ServiceFactory, backend: str, standby: SchedulerStore, slow: Slow
) -> None:
    async def hand(a: SchedulerService) -> str:
        ran = await a.run_now(SchedulerInput(operation="run_now", job_id="first"))
        run_id = chain_run_id(ran.run_id, "hooked")
        # A's waiting record went into the batch of first's finished record; its start waits for the place.
        await until_stored(standby, run_id, lambda r: r.status == "running" and r.started_at is None,
                           "the chained run's waiting record")
        return run_id

    run_id, a_events, b = await race(make_service, backend, standby, slow, hand, chained=True)

    assert slow.started == 2  # the chained run ran once, in B
    assert run_id not in ran_in(a_events)
    [record] = [r for r in await b.get_history("hooked") if r.run_id == run_id]
    assert (record.trigger, record.status) == ("chain", "success")


async def test_of_a_fenced_start_and_a_takeover_at_the_same_moment_exactly_one_commits(postgres_url: str) -> None:
    """The race itself, on PostgreSQL, many times: A took a request and starts it (a fenced swap from its take)
    while A's lease goes to B, which finds the request and takes it again (a fenced swap from what it found). The
    fencing token's row lock orders A's start and B's taking of the lease: either A's start commits and B finds
    the run started (it records it `interrupted`), or B's take commits and A's start does not."""
    a_store, b_store = PostgresStore(postgres_url), PostgresStore(postgres_url)
    await a_store.open()
    await b_store.open()
    outcomes: list[tuple[bool, bool]] = []
    try:
        for i in range(30):
            a_lease, b_lease = PostgresLease(postgres_url, lease_time=4), PostgresLease(postgres_url, lease_time=4)
            a_store.fence_with(a_lease.fencing_token)
            b_store.fence_with(b_lease.fencing_token)
            assert await a_lease.try_acquire()
            asked = RunRecord(run_id=f"r{i}", job_id="j", agentool_name="echo", trigger="webhook", status="running",
                              result={"trigger_data": {}, "note": None})
            await b_store.write_batch([asked], [], 100)
            a_took = taken_by(asked, "runner A")
            assert await a_store.replace_run(asked, a_took, fenced=True)
            a_start = a_took.model_copy(update={"started_at": datetime.now(UTC), "result": None})

            async def takeover(a_lease: PostgresLease = a_lease, b_lease: PostgresLease = b_lease,
                               run_id: str = asked.run_id) -> bool:
                await a_lease.release()
                assert await b_lease.try_acquire()
                unfinished = await b_store.interrupt_unfinished("stopped", keep_unstarted=KEPT_UNSTARTED)
                found = {r.run_id: r for r in unfinished}
                kept = found.get(run_id)
                if kept is None or kept.status != "running":
                    return False
                return await b_store.replace_run(kept, taken_by(kept, "runner B"), fenced=True)

            started_a, took_b = await asyncio.gather(a_store.replace_run(a_took, a_start, fenced=True), takeover())
            outcomes.append((started_a, took_b))
            assert started_a != took_b, (i, started_a, took_b)
            record = await stored(b_store, asked.run_id)
            assert record is not None
            if started_a:
                assert record.status == "interrupted"  # B found it started: not run again
            else:
                assert record == taken_by(a_took, "runner B")
            await b_lease.release()
    finally:
        await a_store.close()
        await b_store.close()
    assert len(outcomes) == 30



async def test_a_run_that_ends_after_its_process_lost_the_lease_hands_its_chained_run_over_in_the_same_commit(
    make_service: ServiceFactory, postgres_url: str, slow: Slow, echo: Calls
) -> None:
    """A run_now that goes on after its process lost the lease ends in a process that is not the runner: the request
    handing its chained run to the runner is committed with the run's finished record (one transaction: the two
    rows' xmin), so that no kill between two writes loses the chained run."""
    clock = VirtualClock()
    a = await make_service(database=postgres_url, lease_time=120, max_runs_per_job=1, clock=clock, open=False)
    a_events = EventRecorder(a.events)
    await a.open()
    await a.schedule(job("first"))
    await a.schedule(job("second", "echo", after={"job": "first", "on": "success"}))
    running = asyncio.create_task(a.run_now(SchedulerInput(operation="run_now", job_id="first")))
    await a_events.wait_for(started("first"), within=WITHIN)

    await take_lease_away(postgres_url)
    clock.advance(2)  # A's next check of its lease is due: it finds the lease gone and steps down

    async def standby_now() -> bool:
        return not a.is_runner

    await eventually_async(standby_now, within=WITHIN, what="A stepping down")
    slow.release.set()
    ran = await running  # first ends in A, now a standby: its chained run is handed to the runner
    chained = chain_run_id(ran.run_id, "second")

    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        rows = await (await admin.execute(
            "SELECT run_id, xmin::text, status FROM scheduler_runs WHERE run_id = ANY(%s)", ([ran.run_id, chained],)
        )).fetchall()
    found = {run_id: (xmin, status) for run_id, xmin, status in rows}
    assert set(found) == {ran.run_id, chained}  # nobody runs the jobs now: the request waits, as handed over
    assert found[ran.run_id][0] == found[chained][0]  # one transaction
    assert (found[ran.run_id][1], found[chained][1]) == ("success", "running")
    assert echo.inputs == []


async def test_a_queue_message_taken_by_a_runner_that_lost_its_lease_runs_once(
    make_runtime: RuntimeFactory, postgres_url: str, slow: Slow, echo: Calls
) -> None:
    """Runner A took a message with a claim and waits for a run slot; its lease goes; B takes over, releases the
    claim it finds without a start, and runs the message; then A's slot frees and A goes on to start its run: its
    start (a swap from no record, fenced) does not commit, and A runs nothing (PostgreSQL: on SQLite two runners
    cannot coexist while the lease file is kept)."""
    options = {"database": postgres_url, "lease_time": 120, "max_concurrent_runs": 1}
    a = await make_runtime(**options, clock=VirtualClock(), open=False)
    a_events = EventRecorder(a.events)
    await a.open()
    await a.service.schedule(job("blocker"))
    await a.service.schedule(SchedulerInput(
        operation="schedule", job_id="consumer", schedule_type="cron", schedule="0 3 * * *", agentool_name="echo",
        input_data={"operation": "echo", "text": "!trigger:message/text"},
        policy=PolicyInput.model_validate({"on_message": {"queue": "orders"}}),
    ))
    blocker = asyncio.create_task(a.service.run_now(SchedulerInput(operation="run_now", job_id="blocker")))
    await a_events.wait_for(started("blocker"), within=WITHIN)  # the one run slot is A's
    a.queues.enqueue("orders", {"text": "one"})

    async def a_took() -> bool:
        return bool(a.queues.claimed(CLAIM_PREFIX))

    await eventually_async(a_took, within=WITHIN, what="A's claim of the message")

    await take_lease_away(postgres_url)
    b = await make_runtime(**options, open=False)
    b_events = EventRecorder(b.events)
    await b.open()
    assert b.service.is_runner
    await b_events.wait_for(finished("consumer", "success"), within=WITHIN)
    assert [data["text"] for data in echo.inputs] == ["one"]

    slow.release.set()
    await asyncio.gather(blocker, return_exceptions=True)  # A's slot frees: A goes on to start the message's run
    await a.close()

    assert [data["text"] for data in echo.inputs] == ["one"]  # run once, in B
    assert len(ran_in(a_events)) == 1  # A started its blocker only
