"""The `scheduler` AgenTool: every operation returns a SchedulerOutput with the seed's data keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import AgenToolInjector, get_injector
from mcp_scheduler import (
    SchedulerOutput,
    SchedulerRuntime,
    SchedulerStateError,
    close_scheduler_agent,
    create_scheduler_agent,
    get_scheduler_service,
)
from mcp_scheduler import agentool as agentool_module
from tests.scheduler._support import ECHO, Calls, EventRecorder, finished
from tests.scheduler.conftest import RuntimeFactory


async def run(data: dict[str, Any]) -> SchedulerOutput:
    output = await get_injector().run("scheduler", data)
    assert isinstance(output, SchedulerOutput)
    assert output.operation == data["operation"]
    return output


async def schedule_echo(job_id: str = "echo-job", schedule: str = "1 hour") -> SchedulerOutput:
    return await run(
        {
            "operation": "schedule",
            "job_id": job_id,
            "schedule_type": "interval",
            "schedule": schedule,
            "agentool_name": "echo",
            "input_data": ECHO,
        }
    )


async def test_create_scheduler_agent_registers_scheduler_with_every_operation(
    injector: AgenToolInjector, scheduler_agent: EventRecorder
) -> None:
    agentool = get_injector().get("scheduler")

    assert set(agentool.operations) == {
        "schedule", "update", "cancel", "pause", "resume", "run_now", "list", "get_job",
        "get_history", "start", "stop", "status", "preview", "backfill",
    }  # fmt: skip
    assert agentool.output_type is SchedulerOutput


async def test_schedule_returns_job_id_and_next_run(scheduler_agent: EventRecorder, echo: Calls) -> None:
    output = await schedule_echo()

    assert output.success is True
    assert output.data is not None
    assert output.data["job_id"] == "echo-job"
    assert output.data["next_run"].endswith("+00:00")
    assert "echo-job" in output.message


async def test_schedule_and_update_say_their_warnings_in_the_message_and_the_data(
    scheduler_agent: EventRecorder, echo: Calls
) -> None:
    daily = {"job_id": "est", "schedule_type": "cron", "schedule": "0 9 * * *", "timezone": "EST"}
    scheduled = await run({"operation": "schedule", "agentool_name": "echo", "input_data": ECHO, **daily})
    updated = await run({"operation": "update", **daily, "timezone": "UTC"})

    assert "Warning: Time zone 'EST' is a fixed UTC-05:00 all year" in scheduled.message
    assert scheduled.data["warnings"] == [scheduled.message.split("Warning: ", 1)[1]]
    assert "Warning" not in updated.message and updated.data["warnings"] == []


async def test_cancel_pause_and_resume_return_the_job_id(scheduler_agent: EventRecorder, echo: Calls) -> None:
    await schedule_echo()

    for operation in ("pause", "resume", "cancel"):
        output = await run({"operation": operation, "job_id": "echo-job"})
        assert output.success is True
        assert output.data is not None and output.data["job_id"] == "echo-job"

    listed = await run({"operation": "list"})
    assert listed.data == {"jobs": [], "count": 0}


async def test_run_now_returns_job_id_and_the_agentools_result(scheduler_agent: EventRecorder, echo: Calls) -> None:
    output = await run({"operation": "run_now", "agentool_name": "echo", "input_data": ECHO})

    assert output.data is not None
    assert output.data["job_id"].startswith("run_now-")
    assert output.data["result"] == {"operation": "echo", "text": "hello", "count": 1}
    assert echo.inputs == [{"operation": "echo", "text": "hello", "count": 1}]


async def test_list_returns_jobs_and_count(scheduler_agent: EventRecorder, echo: Calls) -> None:
    await schedule_echo("first")
    await schedule_echo("second")

    output = await run({"operation": "list"})

    assert output.data is not None
    assert output.data["count"] == 2
    assert [job["job_id"] for job in output.data["jobs"]] == ["first", "second"]


async def test_get_job_returns_the_seed_keys_and_recent_history(scheduler_agent: EventRecorder, echo: Calls) -> None:
    await run(
        {
            "operation": "schedule",
            "job_id": "echo-job",
            "job_name": "Echo every hour",
            "schedule_type": "interval",
            "schedule": "1 hour",
            "agentool_name": "echo",
            "input_data": ECHO,
        }
    )
    await run({"operation": "run_now", "job_id": "echo-job"})

    output = await run({"operation": "get_job", "job_id": "echo-job"})

    assert output.success is True
    assert output.data is not None
    assert {"job_id", "job_name", "next_run", "pending", "info", "recent_history"} <= set(output.data)
    assert output.data["job_name"] == "Echo every hour"
    assert output.data["pending"] is False
    assert output.data["info"]["agentool_name"] == "echo"
    assert [h["trigger"] for h in output.data["recent_history"]] == ["run_now"]


async def test_status_returns_the_seed_keys(scheduler_agent: EventRecorder, echo: Calls) -> None:
    await schedule_echo()

    output = await run({"operation": "status"})

    assert output.data is not None
    assert output.data["running"] is True
    assert output.data["jobs_count"] == 1
    assert output.data["apscheduler_available"] is True
    assert output.data["scheduler_state"] == 1
    assert output.data["jobs"] == 1


async def test_get_history_returns_runs_newest_first(scheduler_agent: EventRecorder, echo: Calls) -> None:
    await schedule_echo()
    first = await run({"operation": "run_now", "job_id": "echo-job"})
    second = await run({"operation": "run_now", "job_id": "echo-job"})

    output = await run({"operation": "get_history", "job_id": "echo-job"})

    assert output.data is not None
    assert output.data["count"] == 2
    assert [h["run_id"] for h in output.data["history"]] == [second.data["run_id"], first.data["run_id"]]  # type: ignore[index]
    assert all(h["status"] == "success" for h in output.data["history"])


async def test_stop_and_start_report_the_scheduler_state(scheduler_agent: EventRecorder, echo: Calls) -> None:
    stopped = await run({"operation": "stop"})
    assert stopped.data is not None
    assert stopped.data["running"] is False
    assert stopped.data["state"] == "paused"

    started = await run({"operation": "start"})
    assert started.data is not None
    assert started.data["running"] is True
    assert started.data["scheduler_state"] == 1


async def test_preview_describes_a_schedule_without_creating_a_job(scheduler_agent: EventRecorder) -> None:
    output = await run({"operation": "preview", "schedule_type": "cron", "schedule": "*/15 * * * *", "count": 4})

    assert output.data is not None
    assert len(output.data["next_runs"]) == 4
    assert output.data["timezone"] == "UTC"
    assert output.data["description"]
    assert (await run({"operation": "list"})).data == {"jobs": [], "count": 0}


async def test_a_once_now_job_scheduled_through_the_agentool_runs(scheduler_agent: EventRecorder, echo: Calls) -> None:
    await run(
        {
            "operation": "schedule",
            "job_id": "right-away",
            "schedule_type": "once",
            "schedule": "now",
            "agentool_name": "echo",
            "input_data": ECHO,
        }
    )

    [event] = await scheduler_agent.wait_for(finished("right-away"))

    assert event.record.status == "success"  # type: ignore[union-attr]
    assert echo.inputs == [{"operation": "echo", "text": "hello", "count": 1}]


async def test_creating_the_scheduler_agent_again_keeps_the_running_scheduler_and_its_jobs(
    scheduler_agent: EventRecorder, echo: Calls, db_path: str
) -> None:
    await schedule_echo()
    service = get_scheduler_service()

    create_scheduler_agent(db_path, timezone="UTC")
    output = await run({"operation": "list"})

    assert get_scheduler_service() is service
    assert output.data is not None
    assert [j["job_id"] for j in output.data["jobs"]] == ["echo-job"]


async def test_creating_it_with_other_settings_while_one_runs_is_refused_until_closed(
    scheduler_agent: EventRecorder, echo: Calls, tmp_path: Any
) -> None:
    await schedule_echo()
    other = tmp_path / "other.sqlite"

    with pytest.raises(SchedulerStateError, match="close_scheduler_agent"):
        create_scheduler_agent(other, timezone="UTC")
    output = await run({"operation": "list"})  # the running one is untouched
    assert output.data is not None and output.data["count"] == 1

    await close_scheduler_agent()
    create_scheduler_agent(other, timezone="UTC")
    fresh = await run({"operation": "list"})
    assert fresh.data is not None and fresh.data["count"] == 0
    assert get_scheduler_service().config.database == str(other)


async def test_the_seed_scheduler_lives_on_the_injector_it_was_made_on(tmp_path: Path) -> None:
    first, second = AgenToolInjector(), AgenToolInjector()
    try:
        with first.activate():
            made = create_scheduler_agent(tmp_path / "first.sqlite", timezone="UTC")
            service = get_scheduler_service()
        with second.activate():
            with pytest.raises(LookupError, match="create_scheduler_agent"):
                get_scheduler_service()  # nothing of the first injector's is reachable from here
            create_scheduler_agent(tmp_path / "second.sqlite", timezone="UTC")
            await second.run("scheduler", {"operation": "status"})
            other = second.get("scheduler").backend
            assert isinstance(other, SchedulerRuntime) and other.is_open
            await close_scheduler_agent()

        assert not second.registry.exists("scheduler") and other.closed
        assert isinstance(made.backend, SchedulerRuntime) and made.backend.service is service
        assert made.backend.injector is first and not made.backend.closed  # closing the other left it alone
        assert not [name for name, value in vars(agentool_module).items() if isinstance(value, SchedulerRuntime)]
    finally:
        for injector in (first, second):
            with injector.activate():
                await close_scheduler_agent()
            injector.clear()


async def test_closing_the_seed_scheduler_leaves_a_runtime_that_was_given_open(
    injector: AgenToolInjector, make_runtime: RuntimeFactory
) -> None:
    runtime = await make_runtime()
    agentool = create_scheduler_agent(runtime=runtime)

    with pytest.raises(LookupError, match="create_scheduler_agent"):
        get_scheduler_service()  # that is the seed's scheduler; this one belongs to its caller
    await close_scheduler_agent()

    assert runtime.is_open and injector.get("scheduler") is agentool
