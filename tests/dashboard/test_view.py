"""One view of the schedule: jobs soonest first, the last 24 hours of runs with their outcome, failures with why,
paused jobs, pending retries and the runner; and the same in a few lines of text."""

from __future__ import annotations

from mcp_scheduler.dashboard import read_schedule, schedule_text
from mcp_scheduler.server import SchedulerServer


async def test_the_view_holds_jobs_runs_failures_paused_jobs_retries_and_the_runner(filled: SchedulerServer) -> None:
    view = await read_schedule(filled.runtime)

    assert [job.job_id for job in view.jobs] == ["nightly", "flaky", "hourly"]  # soonest first; none: last
    assert view.jobs_total == 3 and view.runner.role == "runner" and view.runner.state == "running"
    assert {run.job_id: run.status for run in view.runs} == {"flaky": "error", "hourly": "success"}
    assert view.outcomes == {"error": 1, "success": 1}
    [failure] = view.failures
    assert failure.error == "RuntimeError: the disk is on fire" and failure.attempt == 1
    assert [job.job_id for job in view.paused] == ["hourly"]
    [retry] = view.retries
    assert retry.job_id == "flaky" and retry.retry_at is not None
    assert all(run.started_at and run.started_at >= view.window_start for run in view.runs)


async def test_the_text_tells_the_same_in_a_few_lines(filled: SchedulerServer) -> None:
    text = schedule_text(await read_schedule(filled.runtime))

    assert "run by this process" in text
    assert "- Nightly report [logging] " in text and "next " in text
    assert "Last 24 h: 2 runs: 1 error, 1 success." in text or "Last 24 h: 2 runs: 1 success, 1 error." in text
    assert "flaky error: RuntimeError: the disk is on fire" in text
    assert "Paused (1):\n- hourly: paused by hand" in text
    assert "Retries pending (1):\n- flaky at " in text
    assert len(text) < 1000
