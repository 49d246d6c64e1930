"""One test (or more) per upstream defect that DESIGN.md section 3 says we fix."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from agentool_bridge import AgenToolInjector, AgenToolInputError, UnknownOperationError
from mcp_scheduler import (
    InvalidScheduleError,
    InvalidTimezoneError,
    JobEvent,
    JobNotFoundError,
    SchedulerInput,
    SchedulerService,
    SchedulerStateError,
)
from tests._net import eventually
from tests.scheduler._support import ECHO, Calls, EventRecorder, finished, request, set_stored_next_run, started

# 1. get_history, start and stop are implemented ---------------------------------------------------


async def test_stop_holds_every_fire_but_keeps_jobs_and_start_fires_them_again(
    service: SchedulerService, recorder: EventRecorder, echo: Calls
) -> None:
    await service.schedule(request("ticker", schedule="1 second"))

    stopped = await service.stop()
    assert (stopped.running, stopped.state, stopped.jobs_count) == (False, "paused", 1)
    with pytest.raises(TimeoutError):
        await recorder.wait_for(started("ticker"), within=1.5)  # it was due after 1 s
    assert echo.inputs == []
    assert service.list_jobs()[1] == 1

    restarted = await service.start()
    assert restarted.running is True
    await recorder.wait_for(finished("ticker", "success"), within=3)
    assert echo.inputs


async def test_a_paused_job_does_not_fire_while_its_neighbour_does(
    service: SchedulerService, recorder: EventRecorder, echo: Calls
) -> None:
    await service.schedule(request("paused-ticker", schedule="1 second"))
    await service.pause("paused-ticker")
    await service.schedule(request("ticker", schedule="1 second"))

    await recorder.wait_for(started("ticker"), count=2, within=4)  # the paused one was due before the first

    assert recorder.runs("paused-ticker", "started") == []
    assert await service.get_history("paused-ticker") == []
    resumed = await service.resume("paused-ticker")
    assert resumed.next_run is not None


async def test_get_history_returns_a_jobs_runs_and_filters_by_status(
    service: SchedulerService, echo: Calls, fail: Calls
) -> None:
    await service.schedule(request("mixed"))
    await service.run_now(SchedulerInput(operation="run_now", job_id="mixed"))
    await service.run_now(SchedulerInput(operation="run_now", job_id="mixed"))

    assert [r.status for r in await service.get_history("mixed")] == ["success", "success"]
    assert await service.get_history("mixed", status="error") == []
    assert len(await service.get_history("mixed", limit=1)) == 1
    with pytest.raises(JobNotFoundError, match="'never-existed' not found"):
        await service.get_history("never-existed")


# 2. missing required fields raise, naming the field and the operation ------------------------------


@pytest.mark.parametrize(
    ("operation", "fields"),
    [
        ("cancel", "job_id is"),
        ("pause", "job_id is"),
        ("resume", "job_id is"),
        ("get_job", "job_id is"),
        ("update", "job_id is"),
        ("schedule", "schedule_type, schedule, agentool_name, input_data are"),
        ("preview", "schedule_type, schedule are"),
    ],
)
def test_a_missing_required_field_raises_naming_the_field_and_the_operation(operation: str, fields: str) -> None:
    with pytest.raises(ValidationError, match=f"{fields} required for operation '{operation}'"):
        SchedulerInput(operation=operation)  # type: ignore[arg-type]


def test_run_now_without_arguments_says_job_id_alone_would_do() -> None:
    with pytest.raises(ValidationError, match="run_now needs either job_id alone .* or agentool_name and input_data"):
        SchedulerInput(operation="run_now")


async def test_the_agentool_raises_for_cancel_without_job_id(
    injector: AgenToolInjector, scheduler_agent: EventRecorder
) -> None:
    with pytest.raises(AgenToolInputError, match="job_id is required for operation 'cancel'"):
        await injector.run("scheduler", {"operation": "cancel"})


# 3. validation failures and unknown operations raise (never returned as strings) --------------------


async def test_an_unknown_operation_raises_listing_the_valid_operations(
    injector: AgenToolInjector, scheduler_agent: EventRecorder
) -> None:
    with pytest.raises(UnknownOperationError) as caught:
        await injector.run("scheduler", {"operation": "explode"})

    assert isinstance(caught.value, ValueError)
    assert "get_history" in str(caught.value)
    assert "'explode'" in str(caught.value)


async def test_an_invalid_cron_expression_raises_showing_the_accepted_forms(
    injector: AgenToolInjector, scheduler_agent: EventRecorder, echo: Calls
) -> None:
    with pytest.raises(InvalidScheduleError, match="expected 5 fields"):
        await injector.run(
            "scheduler",
            {"operation": "schedule", "schedule_type": "cron", "schedule": "every monday", "agentool_name": "echo",
             "input_data": ECHO},
        )  # fmt: skip


async def test_cancelling_an_unknown_job_raises_a_lookup_error(
    injector: AgenToolInjector, scheduler_agent: EventRecorder
) -> None:
    with pytest.raises(LookupError, match="'ghost' not found") as caught:
        await injector.run("scheduler", {"operation": "cancel", "job_id": "ghost"})

    assert isinstance(caught.value, JobNotFoundError)


# 4. cron day-of-week follows standard cron ----------------------------------------------------------


async def test_weekday_cron_fires_monday_to_friday_at_nine(service: SchedulerService) -> None:
    preview = service.preview("cron", "0 9 * * 1-5", count=10)

    times = preview.next_runs
    assert len(times) == 10
    assert {t.weekday() for t in times} == {0, 1, 2, 3, 4}  # Monday..Friday, no weekend
    assert {(t.hour, t.minute, t.second) for t in times} == {(9, 0, 0)}


async def test_a_scheduled_weekday_cron_job_reports_weekday_next_runs(service: SchedulerService, echo: Calls) -> None:
    job = await service.schedule(request("weekdays", "cron", "0 9 * * 1-5"))

    assert job.next_run == job.next_runs[0]
    assert all(t.weekday() < 5 for t in job.next_runs)
    assert len(job.next_runs) == 3


@pytest.mark.parametrize(
    ("expression", "weekdays"),
    [("0 9 * * 0", {6}), ("0 9 * * 7", {6}), ("0 9 * * MON-FRI", {0, 1, 2, 3, 4}), ("0 9 * * SAT,SUN", {5, 6})],
)
async def test_cron_day_numbers_and_names_mean_what_standard_cron_means(
    service: SchedulerService, expression: str, weekdays: set[int]
) -> None:
    times = service.preview("cron", expression, count=7).next_runs

    assert {t.weekday() for t in times} == weekdays


async def test_cron_macros_are_accepted(service: SchedulerService) -> None:
    daily = service.preview("cron", "@daily", count=2).next_runs

    assert daily[1] - daily[0] == timedelta(days=1)
    assert (daily[0].hour, daily[0].minute) == (0, 0)


# 5. jobs persist across restarts; one runner per database -----------------------------------------


async def test_jobs_paused_state_and_history_survive_a_restart(make_service: Any, echo: Calls) -> None:
    first = await make_service()
    hourly = await first.schedule(request("hourly"))
    await first.schedule(request("weekdays", "cron", "0 9 * * 1-5"))
    await first.pause("weekdays")
    run = await first.run_now(SchedulerInput(operation="run_now", job_id="hourly"))
    await first.close()

    second = await make_service()
    jobs, total = second.list_jobs()

    assert total == 2
    by_id = {j.job_id: j for j in jobs}
    assert by_id["hourly"].state == "scheduled"
    assert by_id["hourly"].next_run == hourly.next_run
    assert by_id["hourly"].input_data == ECHO
    assert by_id["weekdays"].state == "paused"
    assert by_id["weekdays"].next_run is None
    [record] = await second.get_history("hourly")
    assert (record.run_id, record.status, record.trigger) == (run.run_id, "success", "run_now")
    resumed = await second.resume("weekdays")
    assert resumed.next_run is not None


async def test_a_paused_job_stays_paused_after_a_restart_even_when_it_was_overdue(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    first = await make_service()
    await first.schedule(request("held", misfire_grace_time=None))
    await first.pause("held")
    await first.close()
    set_stored_next_run(db_path, "held", datetime.now(UTC) - timedelta(minutes=5))  # would fire at once if unpaused

    second = await make_service(open=False)
    recorder = EventRecorder(second.events)
    await second.open()
    await second.schedule(request("marker", "once", "now"))
    await recorder.wait_for(finished("marker"))  # "held" would have started before "marker" was even added

    assert recorder.runs("held", "started") == recorder.runs("held", "finished") == []
    assert await second.get_history("held", limit=100) == []
    assert echo.inputs == [{"operation": "echo", "text": "hello", "count": 1}]
    [held] = second.list_jobs(state="paused")[0]
    assert held.job_id == "held"


async def test_a_second_service_on_the_same_database_is_a_standby_naming_the_runner(make_service: Any) -> None:
    first = await make_service()
    second = await make_service()

    assert first.is_runner and not second.is_runner
    status = second.status()
    assert status.role == "standby" and status.running is True and status.state == "running"  # in the runner
    assert status.runner is not None and f"pid {os.getpid()}" in status.runner
    with pytest.raises(SchedulerStateError, match="standby"):
        await second.stop()

    await first.close()
    await eventually(lambda: second.is_runner, within=5, what="the standby taking over")
    assert second.status().running is True and second.status().role == "runner"


async def test_a_symbolic_link_to_the_database_does_not_bypass_the_lease(make_service: Any, db_path: str) -> None:
    await make_service()
    link = os.path.join(os.path.dirname(db_path), "alias.db")
    os.symlink(db_path, link)
    through_link = await make_service(database=link)

    assert not through_link.is_runner and through_link.status().role == "standby"


async def test_a_job_that_cannot_be_loaded_fails_open_naming_it_and_releases_the_database(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    first = await make_service()
    await first.schedule(request("broken"))
    await first.close()
    with sqlite3.connect(db_path) as conn:
        [definition] = conn.execute("SELECT definition FROM scheduler_jobs WHERE job_id = 'broken'").fetchone()
        damaged = json.loads(definition)
        damaged["schedule"]["timezone"] = "Mars/Olympus_Mons"
        conn.execute("UPDATE scheduler_jobs SET definition = ? WHERE job_id = 'broken'", (json.dumps(damaged),))
    conn.close()

    second = await make_service(open=False)
    with pytest.raises(InvalidTimezoneError) as caught:
        await second.open()
    assert "while loading job 'broken'" in " ".join(getattr(caught.value, "__notes__", []))
    assert second.is_open is False

    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE scheduler_jobs SET definition = ? WHERE job_id = 'broken'", (definition,))
    conn.close()
    third = await make_service()  # the failed open released the runner lease
    assert [j.job_id for j in third.list_jobs()[0]] == ["broken"]


# 6. every execution gets a truthful history record -------------------------------------------------


async def test_run_now_records_a_history_entry(service: SchedulerService, echo: Calls) -> None:
    await service.schedule(request("manual"))

    record = await service.run_now(SchedulerInput(operation="run_now", job_id="manual"))

    [stored] = await service.get_history("manual")
    assert stored == record
    assert (stored.trigger, stored.status, stored.scheduled_time) == ("run_now", "success", None)
    assert stored.started_at and stored.finished_at
    assert stored.duration_ms is not None and stored.duration_ms >= 0
    assert stored.result == {"operation": "echo", "text": "hello", "count": 1}


async def test_runs_missed_beyond_the_grace_time_are_recorded_as_missed_not_run(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    first = await make_service()
    await first.schedule(request("hourly", misfire_grace_time=0, coalesce=False))
    await first.close()
    set_stored_next_run(db_path, "hourly", datetime.now(UTC) - timedelta(minutes=90))  # due 90 and 30 minutes ago

    second = await make_service(open=False)
    recorder = EventRecorder(second.events)
    await second.open()
    await recorder.wait_for(finished("hourly"), count=2)

    history = await second.get_history("hourly")
    assert [(r.status, r.trigger) for r in history] == [("missed", "catch_up"), ("missed", "catch_up")]
    assert all("misfire_grace_time" in (r.note or "") for r in history)
    assert all(r.started_at is None for r in history)
    assert echo.inputs == []
    [job] = second.list_jobs()[0]
    assert job.last_status == "missed"
    assert job.next_run is not None and job.next_run > datetime.now(UTC)


async def test_a_run_missed_within_the_grace_time_runs_late_as_catch_up(
    make_service: Any, db_path: str, echo: Calls
) -> None:
    first = await make_service()
    await first.schedule(request("hourly", misfire_grace_time=3600))
    await first.close()
    due = datetime.now(UTC) - timedelta(minutes=30)
    set_stored_next_run(db_path, "hourly", due)

    second = await make_service(open=False)
    recorder = EventRecorder(second.events)
    await second.open()
    await recorder.wait_for(finished("hourly"))

    [record] = await second.get_history("hourly")
    assert (record.status, record.trigger) == ("success", "catch_up")
    assert record.scheduled_time is not None
    assert record.scheduled_time == due
    assert len(echo.inputs) == 1


async def test_a_once_job_leaves_the_list_after_it_fires_and_its_history_stays_readable(
    make_service: Any, echo: Calls
) -> None:
    service = await make_service(open=False)
    recorder = EventRecorder(service.events)
    await service.open()
    await service.schedule(request("one-shot", "once", "now"))

    await recorder.wait_for(finished("one-shot", "success"))

    assert "completed" in recorder.job_events("one-shot")
    assert service.list_jobs() == ([], 0)
    assert service.status().jobs_count == 0
    [record] = await service.get_history("one-shot")
    assert record.status == "success"

    await service.close()
    reopened = await make_service()
    assert reopened.list_jobs() == ([], 0)
    assert [r.run_id for r in await reopened.get_history("one-shot")] == [record.run_id]
    assert len(echo.inputs) == 1


# 7. interval grammar ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("30 seconds", 30),
        ("30s", 30),
        ("5 minutes", 300),
        ("1h30m", 5400),
        ("2d", 172800),
        ("every 10 minutes", 600),
        ("PT15M", 900),
        ("1 week", 604800),
    ],
)
async def test_interval_grammar_accepts_the_documented_forms(
    service: SchedulerService, expression: str, seconds: int
) -> None:
    times = service.preview("interval", expression, count=3).next_runs

    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [timedelta(seconds=seconds)] * 2


@pytest.mark.parametrize("expression", ["0 minutes", "-5 minutes", "soon", "PT0S"])
async def test_interval_grammar_rejects_zero_negative_and_nonsense_showing_accepted_forms(
    service: SchedulerService, echo: Calls, expression: str
) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        await service.schedule(request("bad-interval", "interval", expression))

    message = str(caught.value)
    assert repr(expression) in message
    assert "'30 seconds'" in message and "'1h30m'" in message and "'PT15M'" in message
    assert service.list_jobs() == ([], 0)


# 8. once: now, past datetimes, naive datetimes and time zones --------------------------------------


async def test_once_with_a_past_datetime_beyond_the_grace_time_is_rejected(
    service: SchedulerService, echo: Calls
) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0, tzinfo=None).isoformat()

    with pytest.raises(InvalidScheduleError, match="is in the past") as caught:
        await service.schedule(request("too-late", "once", past))

    assert "UTC" in str(caught.value)
    assert service.list_jobs() == ([], 0)


async def test_once_with_a_past_datetime_within_the_grace_time_runs_at_once(
    service: SchedulerService, recorder: EventRecorder, echo: Calls
) -> None:
    just_past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()

    await service.schedule(request("just-late", "once", just_past, misfire_grace_time=30))
    [event] = await recorder.wait_for(finished("just-late"))

    assert event.record.status == "success"  # type: ignore[union-attr]


async def test_a_naive_datetime_is_read_in_the_servers_time_zone(make_service: Any, echo: Calls) -> None:
    service = await make_service(timezone="Europe/Berlin")

    job = await service.schedule(request("berlin", "once", "2030-07-01T09:00:00"))

    assert job.timezone == "Europe/Berlin"
    assert job.next_run is not None and job.next_run.isoformat() == "2030-07-01T09:00:00+02:00"
    assert "Europe/Berlin" in job.description


async def test_a_naive_datetime_is_read_in_the_jobs_own_time_zone_and_the_response_says_so(
    injector: AgenToolInjector, scheduler_agent: EventRecorder, echo: Calls
) -> None:
    output = await injector.run(
        "scheduler",
        {
            "operation": "schedule",
            "job_id": "new-york",
            "schedule_type": "once",
            "schedule": "2030-01-15T09:00:00",
            "timezone": "America/New_York",
            "agentool_name": "echo",
            "input_data": ECHO,
        },
    )

    assert output.data is not None
    assert output.data["next_run"] == "2030-01-15T09:00:00-05:00"
    assert output.data["timezone"] == "America/New_York"
    assert "America/New_York" in output.message


async def test_cron_fields_are_read_in_the_jobs_time_zone(service: SchedulerService, echo: Calls) -> None:
    job = await service.schedule(request("tokyo-nine", "cron", "0 9 * * *", timezone="Asia/Tokyo"))

    assert job.timezone == "Asia/Tokyo"
    assert all(t.isoformat().endswith("T09:00:00+09:00") for t in job.next_runs)


async def test_once_now_runs_immediately(service: SchedulerService, recorder: EventRecorder, echo: Calls) -> None:
    before = datetime.now(UTC)
    job = await service.schedule(request("immediately", "once", "now"))

    [event] = await recorder.wait_for(finished("immediately"))

    assert job.next_run is not None
    assert job.next_run is not None and job.next_run >= before - timedelta(seconds=1)
    assert event.record.trigger == "schedule"  # type: ignore[union-attr]
    assert isinstance(recorder.events[0], JobEvent)


async def test_a_page_far_past_the_last_job_is_empty(service: SchedulerService, echo: Calls) -> None:
    await service.schedule(request("only"))

    assert service.list_jobs(offset=10**20, limit=5) == ([], 1)
    assert service.list_jobs(offset=1, limit=5) == ([], 1)
    assert [j.job_id for j in service.list_jobs(offset=0, limit=10**20)[0]] == ["only"]
