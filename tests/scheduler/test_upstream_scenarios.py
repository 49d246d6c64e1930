"""The scenarios of the upstream scheduler test-suite, through the `scheduler` AgenTool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import AgenToolInjector, AgenToolInputError, get_injector
from agentool_bridge.toolkits import create_logging_agent, create_queue_agent
from mcp_scheduler import JobExecutionError, QueueEvent, SchedulerOutput, get_scheduler_service
from tests.scheduler._support import ECHO, Calls, EventRecorder, finished


async def run(data: dict[str, Any]) -> SchedulerOutput:
    return await get_injector().run("scheduler", data)


async def schedule(job_id: str, schedule_type: str, expression: str, **extra: Any) -> SchedulerOutput:
    request = {
        "operation": "schedule",
        "job_id": job_id,
        "schedule_type": schedule_type,
        "schedule": expression,
        "agentool_name": "echo",
        "input_data": ECHO,
        **extra,
    }
    return await run(request)


async def dequeue(queue_name: str) -> Any:
    output = await get_injector().run("queue", {"operation": "dequeue", "queue_name": queue_name, "timeout": 5})
    assert output.data["empty"] is False, f"queue {queue_name!r} is empty"
    return output.data["message"]


async def test_status_of_a_fresh_scheduler_is_running_with_no_jobs(scheduler_agent: EventRecorder) -> None:
    output = await run({"operation": "status"})

    assert output.success is True
    assert output.data is not None
    assert (output.data["running"], output.data["jobs_count"], output.data["jobs"]) == (True, 0, 0)


async def test_a_once_job_runs_its_agentool_once(scheduler_agent: EventRecorder, echo: Calls) -> None:
    await schedule("once-job", "once", "now")

    [event] = await scheduler_agent.wait_for(finished("once-job"))

    assert event.record.status == "success"  # type: ignore[union-attr]
    assert event.record.result == {"operation": "echo", "text": "hello", "count": 1}  # type: ignore[union-attr]
    assert len(echo.inputs) == 1


async def test_an_interval_job_fires_every_interval(scheduler_agent: EventRecorder, echo: Calls) -> None:
    output = await schedule("every-second", "interval", "1 second")
    assert output.data is not None and output.data["next_run"] is not None

    events = await scheduler_agent.wait_for(finished("every-second", "success"))

    assert events[0].record.trigger == "schedule"  # type: ignore[union-attr]
    assert echo.inputs[0]["text"] == "hello"


async def test_a_cron_job_fires_on_its_cron_schedule(scheduler_agent: EventRecorder, echo: Calls) -> None:
    output = await schedule("every-second-cron", "cron", "* * * * * *")  # 6 fields: seconds first
    assert output.data is not None
    assert len(output.data["next_runs"]) == 3

    events = await scheduler_agent.wait_for(finished("every-second-cron", "success"))

    assert events[0].record.scheduled_time.isoformat().endswith("+00:00")  # type: ignore[union-attr]


async def test_run_now_executes_immediately_and_returns_the_result(scheduler_agent: EventRecorder, echo: Calls) -> None:
    output = await run(
        {"operation": "run_now", "agentool_name": "echo", "input_data": {"operation": "echo", "text": "x"}}
    )

    assert output.data is not None
    assert output.data["result"]["text"] == "x"
    assert output.data["status"] == "success"


async def test_pause_stops_a_job_and_resume_gives_it_a_next_run(scheduler_agent: EventRecorder, echo: Calls) -> None:
    await schedule("pausable", "interval", "1 hour")

    await run({"operation": "pause", "job_id": "pausable"})
    paused = await run({"operation": "get_job", "job_id": "pausable"})
    assert paused.data is not None
    assert paused.data["info"]["state"] == "paused"
    assert paused.data["next_run"] is None

    await run({"operation": "resume", "job_id": "pausable"})
    resumed = await run({"operation": "get_job", "job_id": "pausable"})
    assert resumed.data is not None
    assert resumed.data["info"]["state"] == "scheduled"
    assert resumed.data["next_run"] is not None


async def test_run_now_of_a_failing_agentool_raises_and_history_records_the_error(
    scheduler_agent: EventRecorder, fail: Calls
) -> None:
    with pytest.raises(RuntimeError, match="Failed to run job kind") as caught:
        await run(
            {
                "operation": "run_now",
                "job_id": "failing",
                "agentool_name": "fail",
                "input_data": {"operation": "fail", "reason": "disk full"},
            }
        )
    assert isinstance(caught.value, JobExecutionError)
    assert "disk full" in str(caught.value)

    history = await run({"operation": "get_history", "job_id": "failing"})

    assert history.data is not None
    [record] = history.data["history"]
    assert record["status"] == "error"
    assert record["error"]["type"] == "StandInFailure"
    assert record["error"]["message"] == "fail AgenTool failed: disk full"


async def test_an_invalid_schedule_type_raises_a_validation_error_naming_schedule_type(
    scheduler_agent: EventRecorder, echo: Calls
) -> None:
    with pytest.raises(AgenToolInputError) as caught:
        await schedule("bad", "invalid_type", "1 hour")

    assert isinstance(caught.value, ValueError)
    assert "schedule_type" in str(caught.value)
    assert caught.value.fields == ["schedule_type"]


async def test_results_and_errors_are_sent_to_their_queues(
    injector: AgenToolInjector, scheduler_agent: EventRecorder, echo: Calls, fail: Calls, tmp_path: Path
) -> None:
    create_queue_agent(tmp_path / "queues.db")
    await run(
        {
            "operation": "run_now",
            "job_id": "to-queue",
            "agentool_name": "echo",
            "input_data": ECHO,
            "result_queue": "results",
            "error_queue": "errors",
        }
    )
    with pytest.raises(RuntimeError):
        await run(
            {
                "operation": "run_now",
                "job_id": "to-error-queue",
                "agentool_name": "fail",
                "input_data": {"operation": "fail", "reason": "no luck"},
                "result_queue": "results",
                "error_queue": "errors",
            }
        )

    result = await dequeue("results")
    error = await dequeue("errors")

    assert result["job_id"] == "to-queue"
    assert result["agentool_name"] == "echo"
    assert result["status"] == "success"
    assert result["result"] == {"operation": "echo", "text": "hello", "count": 1}
    assert result["timestamp"]
    assert error["job_id"] == "to-error-queue"
    assert error["agentool_name"] == "fail"
    assert error["error"] == "fail AgenTool failed: no luck"
    assert error["error_type"] == "StandInFailure"
    assert error["timestamp"]
    queue_events = [(e.queue_name, e.level) for e in scheduler_agent.events if isinstance(e, QueueEvent)]
    assert queue_events == [("results", "info"), ("errors", "error")]
    sizes = [await get_injector().run("queue", {"operation": "size", "queue_name": q}) for q in ("results", "errors")]
    assert [s.data["size"] for s in sizes] == [0, 0]


async def test_a_scheduled_job_sends_its_result_to_the_result_queue(
    scheduler_agent: EventRecorder, echo: Calls, tmp_path: Path
) -> None:
    create_queue_agent(tmp_path / "queues.db")
    await schedule("queued", "once", "now", result_queue="results")

    await scheduler_agent.wait_for(finished("queued", "success"))
    message = await dequeue("results")

    assert message["job_id"] == "queued"
    assert message["result"]["text"] == "hello"


async def test_get_job_of_an_unknown_id_is_unsuccessful_with_no_data(scheduler_agent: EventRecorder) -> None:
    output = await run({"operation": "get_job", "job_id": "nonexistent_job"})

    assert output.success is False
    assert "not found" in output.message
    assert output.data is None


async def test_a_job_running_the_logging_agentool_writes_to_its_log_file(
    injector: AgenToolInjector, scheduler_agent: EventRecorder, tmp_path: Path
) -> None:
    log_file = tmp_path / "logs" / "app.log"
    create_logging_agent(log_dir=tmp_path / "logs")
    await get_injector().run("logging", {"operation": "configure", "output": "file", "file_path": "app.log"})
    await run(
        {
            "operation": "schedule",
            "job_id": "log-job",
            "schedule_type": "once",
            "schedule": "now",
            "agentool_name": "logging",
            "input_data": {"operation": "log", "level": "WARNING", "message": "written by the scheduler",
                           "data": {"job": "log-job"}},
        }
    )  # fmt: skip

    await scheduler_agent.wait_for(finished("log-job", "success"))

    text = log_file.read_text()
    assert "WARNING" in text
    assert "written by the scheduler" in text
    logs = await get_injector().run("logging", {"operation": "get_logs", "file_path": "app.log"})
    [entry] = logs.data["entries"]
    assert (entry["level"], entry["message"], entry["data"]) == (
        "WARNING",
        "written by the scheduler",
        {"job": "log-job"},
    )


async def test_scheduler_agent_runs_jobs_of_the_service_it_exposes(scheduler_agent: EventRecorder, echo: Calls) -> None:
    await schedule("shared", "interval", "1 hour")

    jobs, total = get_scheduler_service().list_jobs()

    assert total == 1
    assert jobs[0].job_id == "shared"
