"""The usage examples of the seed spec (scheduler-agentoolkit.md), run as written.

AgenTools the examples name but we do not ship (metrics, storage_fs, templates, config) are
stand-ins with an input schema that matches the example's input_data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import AgenToolInjector, get_injector
from agentool_bridge.toolkits import create_logging_agent
from mcp_scheduler import InvalidScheduleError, SchedulerOutput
from tests.scheduler import _support
from tests.scheduler._support import EventRecorder, finished


async def run(data: dict[str, Any]) -> SchedulerOutput:
    output = await get_injector().run("scheduler", data)
    assert isinstance(output, SchedulerOutput)
    return output


@pytest.fixture
def stand_ins() -> dict[str, _support.Calls]:
    return {
        "metrics": _support.register_recording("metrics", _support.MetricsInput),
        "storage_fs": _support.register_recording("storage_fs", _support.StorageFsInput),
        "templates": _support.register_recording("templates", _support.TemplatesInput),
        "config": _support.register_recording("config", _support.ConfigInput),
    }


HOURLY_METRICS = {
    "operation": "schedule",
    "job_name": "hourly_metrics",
    "schedule_type": "interval",
    "schedule": "1 hour",
    "agentool_name": "metrics",
    "input_data": {"operation": "export", "format": "json"},
}


async def test_basic_job_scheduling_creates_an_hourly_job_and_a_daily_cron_job(
    scheduler_agent: EventRecorder, stand_ins: dict[str, _support.Calls]
) -> None:
    before = datetime.now(UTC)

    hourly = await run(HOURLY_METRICS)
    daily = await run(
        {
            "operation": "schedule",
            "job_name": "daily_backup",
            "schedule_type": "cron",
            "schedule": "0 2 * * *",  # 2 AM daily
            "agentool_name": "storage_fs",
            "input_data": {"operation": "copy", "source": "/data", "destination": "/backup"},
        }
    )

    assert hourly.data is not None and daily.data is not None
    assert hourly.data["job_id"] == "hourly_metrics"
    next_hourly = datetime.fromisoformat(hourly.data["next_run"])
    assert timedelta(minutes=59) < next_hourly - before < timedelta(minutes=61)
    assert daily.data["job_id"] == "daily_backup"
    next_daily = datetime.fromisoformat(daily.data["next_run"])
    assert (next_daily.hour, next_daily.minute, next_daily.utcoffset()) == (2, 0, timedelta(0))
    assert timedelta(0) < next_daily - before <= timedelta(days=1)
    listed = await run({"operation": "list"})
    assert listed.data is not None and listed.data["count"] == 2


async def test_queue_integration_example_keeps_queues_and_the_ref_value(
    injector: AgenToolInjector, scheduler_agent: EventRecorder, stand_ins: dict[str, _support.Calls]
) -> None:
    result = await run(
        {
            "operation": "schedule",
            "job_name": "data_processor",
            "schedule_type": "interval",
            "schedule": "5 minutes",
            "agentool_name": "templates",
            "input_data": {
                "operation": "render",
                "template_name": "report",
                "variables": {"timestamp": "!ref:storage_kv:current_time"},
            },
            "result_queue": "processed_reports",
            "error_queue": "processing_errors",
        }
    )
    assert result.data is not None
    assert result.data["job_id"] == "data_processor"
    info = result.data["job"]
    assert (info["result_queue"], info["error_queue"]) == ("processed_reports", "processing_errors")

    await run({"operation": "run_now", "job_id": "data_processor"})
    message = await get_injector().run("queue", {"operation": "dequeue", "queue_name": "processed_reports"})

    assert message.data["message"]["job_id"] == "data_processor"
    assert message.data["message"]["result"]["received"]["variables"] == {"timestamp": "!ref:storage_kv:current_time"}
    assert stand_ins["templates"].inputs[0]["variables"] == {"timestamp": "!ref:storage_kv:current_time"}


async def test_job_management_lists_gets_pauses_resumes_and_cancels_hourly_metrics(
    scheduler_agent: EventRecorder, stand_ins: dict[str, _support.Calls]
) -> None:
    await run(HOURLY_METRICS)

    listed = await run({"operation": "list"})
    assert listed.data is not None
    assert [j["job_id"] for j in listed.data["jobs"]] == ["hourly_metrics"]

    details = await run({"operation": "get_job", "job_id": "hourly_metrics"})
    assert details.success is True
    assert details.data is not None
    assert details.data["job_name"] == "hourly_metrics"
    assert details.data["info"]["input_data"] == {"operation": "export", "format": "json"}

    paused = await run({"operation": "pause", "job_id": "hourly_metrics"})
    assert paused.data == {"job_id": "hourly_metrics", "state": "paused"}

    resumed = await run({"operation": "resume", "job_id": "hourly_metrics"})
    assert resumed.data is not None
    assert (resumed.data["job_id"], resumed.data["state"]) == ("hourly_metrics", "scheduled")
    assert resumed.data["next_run"] is not None

    cancelled = await run({"operation": "cancel", "job_id": "hourly_metrics"})
    assert cancelled.data == {"job_id": "hourly_metrics"}
    gone = await run({"operation": "get_job", "job_id": "hourly_metrics"})
    assert (gone.success, gone.data) == (False, None)


async def test_immediate_execution_runs_the_logging_agentool(
    injector: AgenToolInjector, scheduler_agent: EventRecorder, tmp_path: Path
) -> None:
    create_logging_agent(log_dir=tmp_path)
    log_file = tmp_path / "manual.log"
    await get_injector().run(
        "logging", {"operation": "configure", "output": "file", "file_path": "manual.log", "format": "json"}
    )

    result = await run(
        {
            "operation": "run_now",
            "agentool_name": "logging",
            "input_data": {
                "operation": "log",
                "level": "INFO",
                "message": "Manual execution triggered",
                "data": {"trigger": "user_request"},
            },
        }
    )

    assert result.data is not None
    assert result.data["result"]["data"]["logged"] is True
    assert "Manual execution triggered" in log_file.read_text()
    assert '"trigger": "user_request"' in log_file.read_text()


async def test_advanced_scheduling_keeps_every_execution_control(
    scheduler_agent: EventRecorder, stand_ins: dict[str, _support.Calls]
) -> None:
    result = await run(
        {
            "operation": "schedule",
            "job_id": "custom_processor",
            "job_name": "Custom Data Processor",
            "schedule_type": "interval",
            "schedule": "30 seconds",
            "agentool_name": "config",
            "input_data": {"operation": "get", "key": "processing.enabled", "default": True},
            "max_instances": 2,
            "misfire_grace_time": 60,
            "coalesce": False,
            "result_queue": "config_results",
            "error_queue": "config_errors",
        }
    )

    assert result.data is not None
    assert result.data["job_id"] == "custom_processor"
    details = await run({"operation": "get_job", "job_id": "custom_processor"})
    assert details.data is not None
    info = details.data["info"]
    assert details.data["job_name"] == "Custom Data Processor"
    assert (info["max_instances"], info["misfire_grace_time"], info["coalesce"]) == (2, 60, False)
    assert (info["result_queue"], info["error_queue"]) == ("config_results", "config_errors")
    assert info["description"] == "every 30 seconds"
    first, second = (datetime.fromisoformat(t) for t in info["next_runs"][:2])
    assert second - first == timedelta(seconds=30)


async def test_one_time_scheduling_rejects_the_seeds_past_date_with_a_clear_error(
    scheduler_agent: EventRecorder, stand_ins: dict[str, _support.Calls]
) -> None:
    with pytest.raises(InvalidScheduleError, match="in the past") as caught:
        await run(
            {
                "operation": "schedule",
                "job_name": "year_end_report",
                "schedule_type": "once",
                "schedule": "2024-12-31T23:59:59",
                "agentool_name": "templates",
                "input_data": {"operation": "render", "template_name": "annual_report", "variables": {"year": 2024}},
            }
        )

    assert "2024-12-31T23:59:59" in str(caught.value)
    assert "UTC" in str(caught.value)
    assert (await run({"operation": "list"})).data == {"jobs": [], "count": 0}


async def test_one_time_scheduling_at_a_future_date_waits_for_that_date(
    scheduler_agent: EventRecorder, stand_ins: dict[str, _support.Calls]
) -> None:
    year = datetime.now(UTC).year + 1
    result = await run(
        {
            "operation": "schedule",
            "job_name": "year_end_report",
            "schedule_type": "once",
            "schedule": f"{year}-12-31T23:59:59",
            "agentool_name": "templates",
            "input_data": {"operation": "render", "template_name": "annual_report", "variables": {"year": year}},
        }
    )

    assert result.data is not None
    assert result.data["job_id"] == "year_end_report"
    assert result.data["next_run"] == f"{year}-12-31T23:59:59+00:00"
    assert result.data["timezone"] == "UTC"


async def test_one_time_scheduling_now_runs_the_urgent_task_at_once(
    injector: AgenToolInjector, scheduler_agent: EventRecorder, tmp_path: Path
) -> None:
    create_logging_agent(log_dir=tmp_path)
    log_file = tmp_path / "urgent.log"
    await get_injector().run("logging", {"operation": "configure", "output": "file", "file_path": "urgent.log"})

    result = await run(
        {
            "operation": "schedule",
            "job_name": "urgent_task",
            "schedule_type": "once",
            "schedule": "now",
            "agentool_name": "logging",
            "input_data": {"operation": "log", "level": "CRITICAL", "message": "Urgent task executed"},
        }
    )
    assert result.data is not None and result.data["job_id"] == "urgent_task"
    [event] = await scheduler_agent.wait_for(finished("urgent_task"))

    assert event.record.status == "success"  # type: ignore[union-attr]
    assert "CRITICAL" in log_file.read_text()
    assert "Urgent task executed" in log_file.read_text()


async def test_status_example_reports_running_state_and_job_counts(
    scheduler_agent: EventRecorder, stand_ins: dict[str, _support.Calls]
) -> None:
    await run(HOURLY_METRICS)
    await run({**HOURLY_METRICS, "job_name": "second_metrics"})

    result = await run({"operation": "status"})

    assert result.data is not None
    assert result.data["running"] is True
    assert result.data["jobs_count"] == 2
    assert result.data["apscheduler_available"] is True
    assert result.data["scheduler_state"] == 1
    assert result.data["jobs"] == 2
