"""Overlap policies: what a fire does while a run of the same job is in progress.

Most fires here are handed to the executor's `on_due` directly, as the engine's dispatch does (the
job's own schedule is hourly, so the engine does not fire it meanwhile): the runs are those of the
real executor and store, and the fires come exactly when the test wants. One test lets the engine
fire a job every second, which also checks that the engine hands over fires while a run is going;
one crosses a restart, and one a kill -9 of a real server process.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_scheduler import SchedulerRuntime, SchedulerService
from mcp_scheduler.models import RunRecord
from mcp_scheduler.policies import PolicyInput, RunPolicy, describe_policy
from mcp_scheduler.runs import BUFFERED_LOST, CANCELLED_BY_NEXT
from mcp_scheduler.timestamps import utcnow
from tests._net import authorized, eventually, free_port, stop
from tests.reliability._support import runs
from tests.reliability.test_kill9 import sleeper, start_server
from tests.scheduler._support import EventRecorder, Slow, finished, request, started

WAIT = {"operation": "wait"}


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, db_path: str) -> str:
    """SQLite, and PostgreSQL, whose runner claims each fire in the database (a buffered fire is claimed once)."""
    return db_path if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


async def _job(service: SchedulerService, job_id: str, overlap: str, **extra: Any) -> None:
    await service.schedule(request(job_id, agentool_name="slow", input_data=WAIT,
                                   policy=PolicyInput(overlap=overlap), **extra))  # type: ignore[arg-type]


def _fire(service: SchedulerService, job_id: str, when: datetime) -> asyncio.Task[None]:
    """A fire of `job_id` due at `when`, handed over as the engine's dispatch does."""
    return asyncio.create_task(service._runs.admission.on_due(job_id, [when]))


async def _settle(slow: Slow, fires: list[asyncio.Task[None]]) -> None:
    slow.release.set()
    await asyncio.wait_for(asyncio.gather(*fires), 5)


def _of(records: list[RunRecord], status: str) -> list[RunRecord]:
    return sorted((r for r in records if r.status == status), key=lambda r: r.scheduled_time or utcnow())


async def test_skip_records_a_fire_during_a_run_as_skipped(
    service: SchedulerService, recorder: EventRecorder, slow: Slow
) -> None:
    await _job(service, "skip", "skip")
    t0 = utcnow()
    fires = [_fire(service, "skip", t0)]
    await recorder.wait_for(started("skip"))
    fires.append(_fire(service, "skip", t0 + timedelta(seconds=1)))
    await recorder.wait_for(finished("skip", "skipped"))
    assert slow.started == 1

    await _settle(slow, fires)
    history = await service.get_history("skip")
    assert [r.scheduled_time for r in _of(history, "success")] == [t0]
    [skipped] = _of(history, "skipped")
    assert skipped.scheduled_time == t0 + timedelta(seconds=1) and "overlap: skip" in (skipped.note or "")


async def test_buffer_one_runs_one_waiting_fire_right_after_the_run_and_skips_the_rest(
    service: SchedulerService, recorder: EventRecorder, slow: Slow
) -> None:
    # Fired by the engine every second: the second fire waits, the third and later ones are skipped.
    await service.schedule(request("one", schedule="1 second", agentool_name="slow", input_data=WAIT,
                                   policy=PolicyInput(overlap="buffer_one")))
    await recorder.wait_for(started("one"), within=3)
    [skipped] = await recorder.wait_for(finished("one", "skipped"), within=3)
    assert slow.started == 1
    released = utcnow()
    slow.release.set()
    await recorder.wait_for(finished("one", "success"), count=2, within=3)
    await service.pause("one")

    history = await service.get_history("one", limit=100)
    first, buffered = _of(history, "success")[:2]
    assert first.scheduled_time and buffered.scheduled_time and skipped.record.scheduled_time  # type: ignore[union-attr]
    # The waiting fire ran after the release, with its own nominal time: the one before the skipped fire.
    assert first.scheduled_time < buffered.scheduled_time < skipped.record.scheduled_time  # type: ignore[union-attr]
    assert buffered.started_at is not None and buffered.started_at >= released
    assert buffered.trigger == "schedule"
    assert "a fire was already waiting" in (skipped.record.note or "")  # type: ignore[union-attr]


async def test_buffer_all_runs_each_waiting_fire_in_order_after_the_run(
    make_service: Any, database: str, slow: Slow
) -> None:
    service: SchedulerService = await make_service(database=database)
    recorder = EventRecorder(service.events)
    await _job(service, "all", "buffer_all")
    t0 = utcnow()
    times = [t0 + timedelta(seconds=n) for n in range(4)]
    fires = [_fire(service, "all", times[0])]
    await recorder.wait_for(started("all"))
    fires += [_fire(service, "all", when) for when in times[1:]]
    lane = service._runs.lanes.lanes["all"]
    # A buffered fire joins the lane when it comes, and is recorded waiting once claimed: on PostgreSQL the claim is
    # a round trip on the lease's session, so the lane holds the fires before their records exist.
    await eventually(lambda: [f.run_id is not None for f in lane.waiting] == [True] * 3, within=3,
                     what="3 fires claimed and recorded waiting")
    waiting = await service.get_history("all", "running")
    assert sorted(r.scheduled_time for r in waiting if r.started_at is None) == times[1:]  # type: ignore[type-var]
    assert all("waiting behind the run in progress" in (r.note or "") for r in waiting if r.started_at is None)

    await _settle(slow, fires)
    history = await service.get_history("all")
    assert [r.status for r in history] == ["success"] * 4  # each waiting record became its run
    ran = sorted(history, key=lambda r: r.started_at or t0)
    assert [r.scheduled_time for r in ran] == times  # in order, each with its nominal time
    assert slow.started == 4


async def test_allow_all_runs_fires_at_once_up_to_max_instances_and_skips_beyond(
    service: SchedulerService, recorder: EventRecorder, slow: Slow
) -> None:
    await _job(service, "many", "allow_all", max_instances=2)
    t0 = utcnow()
    fires = [_fire(service, "many", t0), _fire(service, "many", t0 + timedelta(seconds=1))]
    await recorder.wait_for(started("many"), count=2)
    assert slow.started == 2 and slow.finished == 0  # both at once
    fires.append(_fire(service, "many", t0 + timedelta(seconds=2)))
    [skipped] = await recorder.wait_for(finished("many", "skipped"))
    assert "max_instances (2)" in (skipped.record.note or "")  # type: ignore[union-attr]

    await _settle(slow, fires)
    assert len(_of(await service.get_history("many"), "success")) == 2


async def test_allow_all_with_max_instances_left_at_one_lets_fires_overlap(
    service: SchedulerService, recorder: EventRecorder, slow: Slow
) -> None:
    await _job(service, "overlapping", "allow_all")
    t0 = utcnow()
    fires = [_fire(service, "overlapping", t0 + timedelta(seconds=n)) for n in range(3)]
    await recorder.wait_for(started("overlapping"), count=3)
    assert slow.started == 3 and slow.finished == 0

    await _settle(slow, fires)
    assert len(_of(await service.get_history("overlapping"), "success")) == 3


async def test_cancel_other_cancels_the_run_in_progress_and_runs_the_next_fire(
    make_service: Any, database: str, slow: Slow
) -> None:
    service: SchedulerService = await make_service(database=database)
    recorder = EventRecorder(service.events)
    await _job(service, "newest", "cancel_other")
    t0, t1 = utcnow(), utcnow() + timedelta(seconds=1)
    fires = [_fire(service, "newest", t0)]
    await recorder.wait_for(started("newest"))
    fires.append(_fire(service, "newest", t1))
    [cancelled] = await recorder.wait_for(finished("newest", "cancelled"))
    await recorder.wait_for(started("newest"), count=2)
    assert slow.started == 2

    await _settle(slow, fires)
    assert cancelled.record.scheduled_time == t0 and cancelled.record.note == CANCELLED_BY_NEXT  # type: ignore[union-attr]
    [success] = _of(await service.get_history("newest"), "success")
    assert success.scheduled_time == t1


async def test_buffered_fires_are_recorded_missed_when_the_scheduler_closes_and_not_run_after_a_restart(
    make_runtime: Any, slow: Slow
) -> None:
    first: SchedulerRuntime = await make_runtime(close_timeout=0.2)
    recorder = EventRecorder(first.service.events)
    await first.service.schedule(request("kept", schedule="1 second", agentool_name="slow", input_data=WAIT,
                                         policy=PolicyInput(overlap="buffer_all")))
    await recorder.wait_for(started("kept"), within=3)

    lanes = first.service._runs.lanes.lanes
    await eventually(lambda: "kept" in lanes and len(lanes["kept"].waiting) == 2, within=4, what="2 fires waiting")
    buffered = [r for r in await first.service.get_history("kept", "running") if r.started_at is None]
    assert len(buffered) == 2
    await first.close()  # the run in progress is cancelled; the waiting fires do not run

    second: SchedulerRuntime = await make_runtime()
    history = await second.service.get_history("kept")
    by_id = {r.run_id: r for r in history}
    for record in buffered:
        assert by_id[record.run_id].status == "missed"
        assert "shut down before the run could start (it was buffered)" in (by_id[record.run_id].note or "")
    assert slow.started == 1
    again = EventRecorder(second.service.events)
    slow.release.set()
    [ran] = await again.wait_for(finished("kept", "success"), within=3)
    latest_buffered = max(r.scheduled_time or utcnow() for r in buffered)
    assert ran.record.scheduled_time is not None and ran.record.scheduled_time > latest_buffered  # type: ignore[union-attr]


async def test_after_a_kill_9_a_buffered_fire_is_recorded_missed_and_never_run(tmp_path: Path) -> None:
    database, marks, log = tmp_path / "s.db", tmp_path / "marks", tmp_path / "server.log"
    port = free_port()
    process = start_server(database, port, log)
    try:
        async with Client(authorized(f"http://127.0.0.1:{port}/mcp")) as client:
            result = await client.call_tool("schedule_job", {
                "job_id": "slow", "schedule_type": "interval", "schedule": "1 second", "agentool_name": "sleeper",
                "input_data": sleeper("slow", 30, marks), "policy": {"overlap": "buffer_one"}})
            assert not result.is_error, result

        def left_waiting() -> bool:
            return any(r["status"] == "running" and r["started_at"] is None for r in runs(database))

        await eventually(left_waiting, within=5, what="a fire buffered behind the run")
        async with Client(authorized(f"http://127.0.0.1:{port}/mcp")) as client:
            await client.call_tool("pause_job", {"job_id": "slow"})  # no more fires after the restart
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    [waiting] = [r for r in runs(database) if r["status"] == "running" and r["started_at"] is None]

    process = start_server(database, port, log)
    try:
        async with Client(authorized(f"http://127.0.0.1:{port}/mcp")) as client:
            await client.call_tool("scheduler_status", {})  # opened, so the dead runner's runs are settled
    finally:
        stop(process)
    after = {r["run_id"]: r for r in runs(database)}
    assert after[waiting["run_id"]]["status"] == "missed"
    assert after[waiting["run_id"]]["note"] == BUFFERED_LOST
    assert [r["status"] for r in after.values() if r["started_at"] is not None] == ["interrupted"]
    assert marks.read_text().split() == ["slow", "start"]  # only the first fire ever ran


def test_the_words_of_skip_name_max_instances_when_it_allows_more_than_one_run() -> None:
    assert describe_policy(RunPolicy()).startswith("skips a fire while a run is in progress")
    assert describe_policy(RunPolicy(), max_instances=3).startswith("skips a fire while 3 runs are in progress")
