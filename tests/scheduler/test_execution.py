"""How jobs execute: input validation, timeouts, overlap, coalescing, history limits, shutdown, events."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from agentool_bridge import AgenToolInjector, AgenToolInputError
from mcp_scheduler import (
    InvalidJobInputError,
    InvalidScheduleError,
    InvalidTimezoneError,
    JobEvent,
    JobExecutionError,
    JobExistsError,
    JobNotFoundError,
    RunEvent,
    SchedulerInput,
    SchedulerRuntime,
    SchedulerService,
    ServiceConfig,
)
from mcp_scheduler.models import MAX_INPUT_BYTES
from tests.scheduler._support import ECHO, Calls, EventRecorder, Slow, finished, request, started

WAIT = {"operation": "wait", "label": "slow"}




def stored_rows(database: str) -> tuple[int, int]:
    """(jobs, runs) rows in the scheduler's tables, read with a separate connection."""
    conn = sqlite3.connect(database)
    try:
        jobs = conn.execute("SELECT COUNT(*) FROM scheduler_jobs").fetchone()[0]
        runs = conn.execute("SELECT COUNT(*) FROM scheduler_runs").fetchone()[0]
    finally:
        conn.close()
    return jobs, runs


# input validation at schedule time ----------------------------------------------------------------


async def test_input_that_does_not_fit_the_agentools_schema_is_rejected_and_nothing_is_stored(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    service = await make_service()
    await service.schedule(request("good"))

    with pytest.raises(InvalidJobInputError, match="does not fit job kind 'echo'") as caught:
        await service.schedule(request("bad", input_data={"operation": "echo", "txet": "typo"}))

    assert "text" in str(caught.value)
    assert service.list_jobs()[1] == 1
    await service.close()
    reopened = await make_service()
    assert [j.job_id for j in reopened.list_jobs()[0]] == ["good"]
    assert stored_rows(db_path) == (1, 0)


async def test_an_unknown_operation_in_input_data_is_rejected_at_schedule_time(
    service: SchedulerService, echo: Calls
) -> None:
    with pytest.raises(InvalidJobInputError, match="Unknown operation 'shout'"):
        await service.schedule(request("bad-op", input_data={"operation": "shout", "text": "x"}))


async def test_an_unknown_agentool_raises_a_lookup_error_listing_the_registered_names(
    service: SchedulerService, echo: Calls, fail: Calls
) -> None:
    with pytest.raises(LookupError, match="Unknown job kind 'metrics'") as caught:
        await service.schedule(request("no-such", agentool_name="metrics"))

    assert "echo, fail" in str(caught.value)
    assert service.list_jobs() == ([], 0)


async def test_ref_values_pass_schedule_validation_and_reach_the_agentool_unchanged(
    service: SchedulerService, echo: Calls
) -> None:
    typed = await service.schedule(
        request("typed-ref", input_data={"operation": "echo", "text": "x", "count": "!ref:storage_kv:count"})
    )
    assert typed.input_data["count"] == "!ref:storage_kv:count"
    with pytest.raises(InvalidJobInputError, match="count"):
        await service.schedule(request("not-a-ref", input_data={"operation": "echo", "text": "x", "count": "three"}))

    await service.schedule(request("text-ref", input_data={"operation": "echo", "text": "!ref:storage_kv:greeting"}))
    record = await service.run_now(SchedulerInput(operation="run_now", job_id="text-ref"))

    assert record.result["text"] == "!ref:storage_kv:greeting"
    assert echo.inputs[-1]["text"] == "!ref:storage_kv:greeting"


async def test_oversized_input_data_is_rejected(
    injector: AgenToolInjector, scheduler_agent: EventRecorder, echo: Calls
) -> None:
    huge = {"operation": "echo", "text": "x" * (MAX_INPUT_BYTES + 1)}

    with pytest.raises(ValidationError, match="the limit is 65536 bytes"):
        request("huge", input_data=huge)
    with pytest.raises(AgenToolInputError) as caught:
        await injector.run(
            "scheduler",
            {"operation": "schedule", "job_id": "huge", "schedule_type": "interval", "schedule": "1 hour",
             "agentool_name": "echo", "input_data": huge},
        )  # fmt: skip
    assert caught.value.fields == ["input_data"]


async def test_an_unknown_time_zone_is_rejected(service: SchedulerService, echo: Calls) -> None:
    with pytest.raises(InvalidTimezoneError, match="'Mars/Olympus_Mons'"):
        await service.schedule(request("martian", timezone="Mars/Olympus_Mons"))
    with pytest.raises(InvalidTimezoneError):
        SchedulerRuntime(ServiceConfig(timezone="Nowhere/Special"))
    assert service.list_jobs() == ([], 0)


async def test_a_duplicate_job_id_is_rejected_and_the_first_job_is_kept(service: SchedulerService, echo: Calls) -> None:
    first = await service.schedule(request("same", schedule="1 hour"))

    with pytest.raises(JobExistsError, match="'same' already exists"):
        await service.schedule(request("same", schedule="5 minutes", input_data={"operation": "echo", "text": "2nd"}))

    [job] = service.list_jobs()[0]
    assert (job.schedule, job.input_data, job.next_run) == ("1 hour", ECHO, first.next_run)


async def test_job_ids_are_derived_from_the_job_name_and_made_unique(service: SchedulerService, echo: Calls) -> None:
    first = await service.schedule(request(None, job_name="nightly report"))
    second = await service.schedule(request(None, job_name="nightly report"))
    unnamed = await service.schedule(request(None))

    assert first.job_id == "nightly_report"
    assert second.job_id.startswith("nightly_report-") and second.job_id != first.job_id
    assert unnamed.job_id == "echo"


async def test_run_now_of_an_unknown_job_id_without_an_agentool_raises_not_found(service: SchedulerService) -> None:
    with pytest.raises(JobNotFoundError, match="'ghost' not found"):
        await service.run_now(SchedulerInput(operation="run_now", job_id="ghost"))


# timeouts, overlap, coalescing -------------------------------------------------------------------


async def test_a_run_longer_than_its_timeout_is_stopped_and_recorded_as_timeout(
    service: SchedulerService, recorder: EventRecorder, slow: Slow
) -> None:
    await service.schedule(request("bounded", "once", "now", agentool_name="slow", input_data=WAIT, timeout=0.2))

    [event] = await recorder.wait_for(finished("bounded"))

    record = event.record  # type: ignore[union-attr]
    assert record.status == "timeout"
    assert record.error is not None and record.error.type == "TimeoutError"
    assert "0.2" in record.error.message
    assert slow.started == 1 and slow.finished == 0
    assert [r.status for r in await service.get_history("bounded")] == ["timeout"]


async def test_run_now_past_its_timeout_raises(service: SchedulerService, slow: Slow) -> None:
    with pytest.raises(JobExecutionError, match="Failed to run job kind 'slow'.*longer than 0.1 s"):
        await asyncio.wait_for(
            service.run_now(
                SchedulerInput(operation="run_now", job_id="quick", agentool_name="slow", input_data=WAIT, timeout=0.1)
            ),
            5,
        )

    [record] = await service.get_history("quick")
    assert record.status == "timeout"


async def test_a_fire_while_max_instances_runs_are_in_progress_is_recorded_as_skipped(
    service: SchedulerService, recorder: EventRecorder, slow: Slow
) -> None:
    await service.schedule(request("overlap", schedule="1 second", agentool_name="slow", input_data=WAIT))

    await recorder.wait_for(started("overlap"), within=3)
    [skipped] = await recorder.wait_for(finished("overlap", "skipped"), within=3)
    slow.release.set()
    await recorder.wait_for(finished("overlap", "success"), within=3)

    assert "max_instances (1)" in (skipped.record.note or "")  # type: ignore[union-attr]
    assert skipped.record.started_at is None  # type: ignore[union-attr]
    assert slow.started == 1
    statuses = [r.status for r in await service.get_history("overlap")]
    assert "skipped" in statuses and "success" in statuses


async def test_coalesce_runs_once_for_several_missed_times_and_records_the_others_as_missed(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    first = await make_service()
    await first.schedule(request("backlog", misfire_grace_time=7200, coalesce=True))
    await first.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "UPDATE scheduler_jobs SET next_run_time = ? WHERE job_id = 'backlog'",
            ((datetime.now(UTC) - timedelta(minutes=150)).isoformat(),),  # due 150, 90 and 30 minutes ago
        )
    conn.close()

    second = await make_service(open=False)
    recorder = EventRecorder(second.events)
    await second.open()
    await recorder.wait_for(finished("backlog"), count=3)

    history = await second.get_history("backlog")
    assert sorted(r.status for r in history) == ["missed", "missed", "success"]
    assert all("coalesced" in (r.note or "") for r in history if r.status == "missed")
    assert {r.trigger for r in history} == {"catch_up"}
    assert len(echo.inputs) == 1


async def test_without_coalesce_every_missed_time_within_grace_runs(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    first = await make_service()
    await first.schedule(request("backlog", misfire_grace_time=7200, coalesce=False))
    await first.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "UPDATE scheduler_jobs SET next_run_time = ? WHERE job_id = 'backlog'",
            ((datetime.now(UTC) - timedelta(minutes=90)).isoformat(),),  # due 90 and 30 minutes ago
        )
    conn.close()

    second = await make_service(open=False)
    recorder = EventRecorder(second.events)
    await second.open()
    await recorder.wait_for(finished("backlog"), count=2)

    assert [r.status for r in await second.get_history("backlog")] == ["success", "success"]
    assert len(echo.inputs) == 2


# history ------------------------------------------------------------------------------------------


async def test_history_keeps_only_the_last_history_limit_runs_per_job(make_service: Any, echo: Calls) -> None:
    service = await make_service(history_limit=3)
    await service.schedule(request("chatty"))
    await service.schedule(request("quiet"))
    await service.run_now(SchedulerInput(operation="run_now", job_id="quiet"))

    runs = [await service.run_now(SchedulerInput(operation="run_now", job_id="chatty")) for _ in range(5)]

    kept = await service.get_history("chatty", limit=100)
    assert [r.run_id for r in kept] == [r.run_id for r in reversed(runs[-3:])]
    assert len(await service.get_history("quiet", limit=100)) == 1


# shutdown -----------------------------------------------------------------------------------------


async def test_a_run_in_progress_at_shutdown_is_recorded_as_cancelled(
    make_service: Any, slow: Slow, echo: Calls
) -> None:
    service = await make_service(open=False, close_timeout=0.2)
    recorder = EventRecorder(service.events)
    await service.open()
    await service.schedule(request("long-haul", "once", "now", agentool_name="slow", input_data=WAIT))
    await recorder.wait_for(started("long-haul"))

    await service.close()

    [event] = recorder.runs("long-haul")
    assert event.record.status == "cancelled"
    reopened = await make_service()
    [record] = await reopened.get_history("long-haul")
    assert record.status == "cancelled"
    assert "shut down" in (record.note or "")
    assert record.finished_at is not None
    assert slow.finished == 0


async def test_a_scheduled_run_in_progress_at_shutdown_may_finish_within_the_close_timeout(
    make_service: Any, slow: Slow
) -> None:
    service = await make_service(open=False)
    recorder = EventRecorder(service.events)
    await service.open()
    await service.schedule(request("finishing", "once", "now", agentool_name="slow", input_data=WAIT))
    await recorder.wait_for(started("finishing"))

    closing = asyncio.create_task(service.close())
    await asyncio.wait({closing}, timeout=0.3)
    assert not closing.done()  # the run is waited for, not cancelled at once
    slow.release.set()
    await asyncio.wait_for(closing, 5)

    [event] = recorder.runs("finishing")
    assert event.record.status == "success"
    reopened = await make_service()
    [record] = await reopened.get_history("finishing")
    assert record.status == "success" and slow.finished == 1


# events -------------------------------------------------------------------------------------------


async def test_job_and_run_events_are_published(
    service: SchedulerService, recorder: EventRecorder, echo: Calls
) -> None:
    await service.schedule(request("watched"))
    await service.pause("watched")
    await service.resume("watched")
    record = await service.run_now(SchedulerInput(operation="run_now", job_id="watched"))
    await service.cancel("watched")

    assert recorder.job_events("watched") == ["added", "paused", "resumed", "removed"]
    runs = [e for e in recorder.events if isinstance(e, RunEvent)]
    assert [(e.kind, e.record.status) for e in runs] == [("started", "running"), ("finished", "success")]
    assert runs[0].record.run_id == runs[1].record.run_id == record.run_id
    kinds = [type(e).__name__ + ":" + e.kind for e in recorder.events if isinstance(e, JobEvent | RunEvent)]
    assert kinds.index("RunEvent:finished") < kinds.index("JobEvent:removed")


async def test_pause_and_resume_are_idempotent_and_publish_once(
    service: SchedulerService, recorder: EventRecorder, echo: Calls
) -> None:
    await service.schedule(request("twice"))

    await service.pause("twice")
    await service.pause("twice")
    await service.resume("twice")
    await service.resume("twice")

    assert recorder.job_events("twice") == ["added", "paused", "resumed"]


# a failed schedule leaves nothing behind --------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "bad_request", "error"),
    [
        ("bad input", request("leftover", input_data={"operation": "echo"}), InvalidJobInputError),
        ("bad schedule", request("leftover", "cron", "61 * * * *"), InvalidScheduleError),
        ("unknown agentool", request("leftover", agentool_name="ghost"), LookupError),
        ("past once", request("leftover", "once", "2001-01-01T00:00:00"), InvalidScheduleError),
        ("bad zone", request("leftover", timezone="Not/AZone"), InvalidTimezoneError),
    ],
)
async def test_a_failed_schedule_leaves_no_job_event_or_history(
    service: SchedulerService,
    recorder: EventRecorder,
    db_path: str,
    echo: Calls,
    label: str,
    bad_request: SchedulerInput,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await service.schedule(bad_request)

    assert service.list_jobs() == ([], 0), label
    assert "leftover" not in service.job_ids()
    with pytest.raises(JobNotFoundError):
        await service.get_history("leftover")
    assert recorder.events == []
    assert stored_rows(db_path) == (0, 0)
    retry = await service.schedule(request("leftover"))
    assert retry.job_id == "leftover"


# in memory ----------------------------------------------------------------------------------------


async def test_a_service_without_a_database_keeps_jobs_and_history_in_memory(
    injector: AgenToolInjector, echo: Calls
) -> None:
    async with SchedulerRuntime(ServiceConfig(timezone="UTC", flush_delay=0.01), injector=injector) as runtime:
        service = runtime.service
        await service.schedule(request("ephemeral"))
        record = await service.run_now(SchedulerInput(operation="run_now", job_id="ephemeral"))

        assert service.status().database is None
        assert [r.run_id for r in await service.get_history("ephemeral")] == [record.run_id]
        assert service.list_jobs()[1] == 1
