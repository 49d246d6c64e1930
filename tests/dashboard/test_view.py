"""One view of the schedule: jobs soonest first, the last 24 hours of runs with their outcome, failures with why,
paused jobs, pending retries, the runner and the latest changes of the audit log; and the same in a few lines of
text."""

from __future__ import annotations

import re

from mcp_scheduler.dashboard import read_schedule, schedule_text
from mcp_scheduler.principals import READ, WRITE, Principal, acting_as
from mcp_scheduler.server import SchedulerServer

from .conftest import LOG_INPUT, request


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
    last = text.splitlines()[-1]
    assert re.fullmatch(r"Latest change: create of flaky by local at [-0-9]{10} [0-9:]{5} \(scheduler://.*\)\.", last)
    assert len(text) < 1000


async def test_the_view_carries_the_latest_changes_the_caller_may_see(filled: SchedulerServer) -> None:
    alice = Principal("token:alice", "alice-client", frozenset({READ, WRITE}))
    with acting_as(alice):
        await filled.runtime.service.schedule(
            request(
                "schedule",
                job_id="alices",
                job_name="Alice's job",
                schedule_type="interval",
                schedule="1 hour",
                agentool_name="logging",
                input_data=LOG_INPUT,
            )
        )
        await filled.runtime.service.pause("alices")
        own = await read_schedule(filled.runtime)
    everyone = await read_schedule(filled.runtime)  # as local, an admin

    assert [(c.operation, c.job_id, c.subject) for c in own.changes] == [
        ("pause", "alices", "token:alice"),
        ("create", "alices", "token:alice"),
    ]  # newest first, its own only
    assert own.changes[1].client == "alice-client" and own.changes[1].job_name == "Alice's job"
    assert "schedule" in own.changes[1].fields and "input_data" in own.changes[1].fields
    assert [(c.operation, c.job_id) for c in everyone.changes] == [
        ("pause", "alices"),
        ("create", "alices"),
        ("create", "flaky"),
        ("pause", "hourly"),
        ("run_now", "hourly"),
        ("create", "hourly"),
        ("create", "nightly"),
    ]
    assert {c.subject for c in everyone.changes} == {"local", "token:alice"}


async def test_a_chained_job_shows_the_job_it_runs_after_in_the_json_and_the_text(filled: SchedulerServer) -> None:
    await filled.runtime.service.schedule(
        request("schedule", job_id="digest", schedule_type="cron", schedule="0 3 1 1 *", agentool_name="logging",
                input_data=LOG_INPUT, policy={"after": {"job": "nightly", "on": "any"}})
    )
    view = await read_schedule(filled.runtime)

    rows = {row["job_id"]: row for row in view.model_dump(mode="json")["jobs"]}
    assert rows["digest"]["after"] == "Nightly report (any)"  # the job's name, else its id
    assert rows["nightly"]["after"] is None
    [line] = [line for line in schedule_text(view).splitlines() if line.startswith("- digest ")]
    assert re.fullmatch(r"- digest \[logging\] At 03:00.+ \(UTC\), after Nightly report \(any\): next .*", line), line
