"""update_job changes a job and keeps its history; history across jobs answers "what ran lately and what failed"."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_scheduler import InvalidJobInputError, JobNotFoundError, SchedulerInput
from mcp_scheduler.errors import InvalidScheduleError
from tests.scheduler import _support
from tests.scheduler.conftest import RuntimeFactory


def hourly(job_id: str, agentool: str = "echo", **fields: Any) -> SchedulerInput:
    data = {"operation": "echo", "text": job_id} if agentool == "echo" else {"operation": "fail"}
    return SchedulerInput(operation="schedule", job_id=job_id, schedule_type="interval", schedule="1 hour",
                          agentool_name=agentool, input_data=data, **fields)


def run_now(job_id: str) -> SchedulerInput:
    return SchedulerInput(operation="run_now", job_id=job_id)


def update(job_id: str, **fields: Any) -> SchedulerInput:
    return SchedulerInput(operation="update", job_id=job_id, **fields)


async def test_update_changes_the_schedule_and_input_and_keeps_state_and_history(
    make_runtime: RuntimeFactory, echo: _support.Calls
) -> None:
    service = (await make_runtime()).service
    await service.schedule(hourly("report", result_queue="out"))
    first = await service.run_now(run_now("report"))
    await service.pause("report")

    job = await service.update(update("report", schedule_type="cron", schedule="0 9 * * 1-5",
                                      input_data={"operation": "echo", "text": "new text"}, timeout=30))

    assert (job.schedule_type, job.schedule, job.state, job.next_run) == ("cron", "0 9 * * 1-5", "paused", None)
    assert (job.input_data["text"], job.timeout, job.result_queue) == ("new text", 30, "out")  # the rest stays
    resumed = await service.resume("report")
    assert resumed.next_run is not None and (resumed.next_run.hour, resumed.next_run.minute) == (9, 0)
    await service.run_now(run_now("report"))
    assert echo.inputs[-1]["text"] == "new text"
    assert [r.run_id for r in await service.get_history("report")][1:] == [first.run_id]


async def test_an_update_persists_across_a_restart(make_runtime: RuntimeFactory, echo: Any, db_path: str) -> None:
    runtime = await make_runtime()
    await runtime.service.schedule(hourly("kept"))
    await runtime.service.update(update("kept", schedule="15 minutes", job_name="Every quarter hour"))
    await runtime.close()

    reopened = (await make_runtime()).service
    job, _ = await reopened.get_job("kept")

    assert (job.schedule, job.job_name, job.description) == ("15 minutes", "Every quarter hour", "every 15 minutes")


async def test_bad_updates_are_refused_and_change_nothing(make_runtime: RuntimeFactory, echo: Any) -> None:
    service = (await make_runtime()).service
    before = await service.schedule(hourly("steady"))

    with pytest.raises(InvalidJobInputError, match="Nothing to change"):
        await service.update(update("steady"))
    with pytest.raises(InvalidJobInputError, match="give the new schedule with it"):
        await service.update(update("steady", schedule_type="cron"))
    with pytest.raises(InvalidScheduleError):
        await service.update(update("steady", schedule="every blue moon"))
    with pytest.raises(InvalidJobInputError, match="does not fit job kind 'echo'"):
        await service.update(update("steady", input_data={"operation": "echo", "count": "many"}))
    with pytest.raises(JobNotFoundError):
        await service.update(update("no-such-job", schedule="5 minutes"))

    after, _ = await service.get_job("steady")
    assert after.model_dump(exclude={"next_runs"}) == before.model_dump(exclude={"next_runs"})


async def test_another_process_sees_an_update_and_fires_on_the_new_schedule(
    make_runtime: RuntimeFactory, echo: Any
) -> None:
    runner = await make_runtime()
    standby = await make_runtime()
    await runner.service.schedule(hourly("shared"))
    recorder = _support.EventRecorder(runner.events)

    await standby.service.update(update("shared", schedule_type="once", schedule="now"))

    await recorder.wait_for(_support.finished("shared", "success"), within=10)
    assert runner.service.is_runner and not standby.service.is_runner
    job, _ = await runner.service.get_job("shared")
    assert job.schedule_type == "once"


async def test_history_across_jobs_includes_cancelled_jobs_and_filters_by_status_time_and_agentool(
    make_runtime: RuntimeFactory, echo: Any, fail: Any
) -> None:
    service = (await make_runtime()).service
    await service.schedule(hourly("fine"))
    await service.schedule(hourly("broken", "fail"))
    ok = await service.run_now(run_now("fine"))
    with pytest.raises(Exception, match="fail AgenTool failed"):
        await service.run_now(run_now("broken"))
    await service.cancel("broken")

    everything = await service.get_history(since="1h")
    failed = await service.get_history(since="1 hour", status="error")

    assert [r.job_id for r in everything] == ["broken", "fine"]
    assert [(r.job_id, r.status) for r in failed] == [("broken", "error")]
    assert [r.run_id for r in await service.get_history(agentool_name="echo")] == [ok.run_id]
    assert await service.get_history(until="1h") == []
    with pytest.raises(InvalidScheduleError, match="neither a time nor a duration"):
        await service.get_history(since="last tuesday-ish")


async def test_a_job_created_with_a_cancelled_jobs_id_starts_with_an_empty_history(
    make_runtime: RuntimeFactory, echo: Any
) -> None:
    service = (await make_runtime()).service
    await service.schedule(hourly("again"))
    old = await service.run_now(run_now("again"))
    await service.cancel("again")
    assert [r.run_id for r in await service.get_history("again")] == [old.run_id]

    await service.schedule(hourly("again"))
    assert await service.get_history("again") == []
    new = await service.run_now(run_now("again"))

    assert [r.run_id for r in await service.get_history("again")] == [new.run_id]
    assert [r.run_id for r in (await service.get_job("again"))[1]] == [new.run_id]
    assert {r.run_id for r in await service.get_history()} == {old.run_id, new.run_id}
