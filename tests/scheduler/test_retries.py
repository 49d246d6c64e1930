"""Run policies on failure: retries (attempts recorded, the error queue gets the final failure only, pending
retries survive a restart), pause after failures in a row, and max_runs. Real short delays throughout."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from typing import Any, Literal

import pytest
from pydantic import Field

from agentool_bridge import AgenToolInjector, BaseOperationInput, RoutingConfig, register_agentool
from agentool_bridge.toolkits.inbox import INBOX_QUEUE, InboxMessage
from mcp_scheduler import JobEvent, JobExecutionError, QueueEvent, SchedulerEvent, SchedulerInput
from mcp_scheduler.policies import PolicyInput
from mcp_scheduler.timestamps import utcnow
from tests.scheduler._support import Calls, EventRecorder, Predicate, finished, request
from tests.scheduler.conftest import RuntimeFactory

FAIL = {"operation": "fail", "reason": "broken"}
FLAKY = {"operation": "flake"}


class FlakyInput(BaseOperationInput):
    """Fails a given number of times, then succeeds."""

    operation: Literal["flake"] = Field(description="Fail, then succeed.")


def register_flaky(failures: int) -> Calls:
    calls = Calls()

    def flake(operation: str) -> dict[str, Any]:
        calls.inputs.append({"operation": operation})
        if len(calls.inputs) <= failures:
            raise RuntimeError(f"flaky failure {len(calls.inputs)}")
        return {"ok": len(calls.inputs)}

    register_agentool("flaky", FlakyInput, RoutingConfig(operation_map={"flake": ("flake", None)}), [flake])
    return calls


def queued(queue_name: str) -> Predicate:
    """Matches a message landing in `queue_name` (after its run's finished event)."""

    def predicate(event: SchedulerEvent) -> bool:
        return isinstance(event, QueueEvent) and event.queue_name == queue_name

    return predicate


def soon(job_id: str, agentool_name: str, input_data: dict[str, Any], **extra: Any) -> SchedulerInput:
    """A one-time job due at once."""
    return request(job_id, "once", "in 0.05 seconds", agentool_name, input_data, **extra)


async def test_a_failed_fire_is_retried_and_only_its_final_failure_reaches_the_error_queue(
    make_runtime: RuntimeFactory, fail: Calls
) -> None:
    runtime = await make_runtime()
    recorder = EventRecorder(runtime.service.events)
    policy = PolicyInput(max_attempts=3, retry_delay=0.2, retry_multiplier=1.5)
    await runtime.service.schedule(soon("r", "fail", FAIL, policy=policy, error_queue="errors"))

    await recorder.wait_for(finished("r", "error"), count=3)
    await recorder.wait_for(queued("errors"))
    _, history = await runtime.service.get_job("r", history=10)

    attempts = list(reversed(history))
    assert [r.attempt for r in attempts] == [1, 2, 3]
    assert [r.trigger for r in attempts] == ["schedule", "retry", "retry"]
    assert len({r.scheduled_time for r in attempts}) == 1  # every attempt keeps the fire's own time
    assert attempts[0].note is not None and attempts[0].note.startswith("attempt 1 of 3; attempt 2 at ")
    assert attempts[2].note == "attempt 3 of 3"
    assert attempts[0].started_at and attempts[1].started_at and attempts[2].started_at
    assert (attempts[1].started_at - attempts[0].started_at).total_seconds() >= 0.2
    assert (attempts[2].started_at - attempts[1].started_at).total_seconds() >= 0.3  # 0.2 s x 1.5
    errors = runtime.queues.peek("errors", 10)
    assert [m.message["run_id"] for m in errors] == [attempts[2].run_id]
    assert len(fail.inputs) == 3


async def test_a_success_at_the_second_attempt_reaches_the_result_queue_and_nothing_the_error_queue(
    make_runtime: RuntimeFactory,
) -> None:
    flaky = register_flaky(failures=1)
    runtime = await make_runtime()
    recorder = EventRecorder(runtime.service.events)
    policy = PolicyInput(max_attempts=3, retry_delay=0.2)
    await runtime.service.schedule(
        soon("f", "flaky", FLAKY, policy=policy, result_queue="results", error_queue="errors")
    )

    [done] = await recorder.wait_for(finished("f", "success"))
    await recorder.wait_for(queued("results"))

    assert done.record.attempt == 2 and done.record.trigger == "retry"  # type: ignore[attr-defined]
    assert [m.message["result"] for m in runtime.queues.peek("results", 10)] == [{"ok": 2}]
    assert runtime.queues.peek("errors", 10) == []
    job, _ = await runtime.service.get_job("f")
    assert job.retry_at is None and len(flaky.inputs) == 2


async def test_run_now_is_not_retried(make_runtime: RuntimeFactory, fail: Calls) -> None:
    service = (await make_runtime()).service
    await service.schedule(request("n", agentool_name="fail", input_data=FAIL,
                                   policy=PolicyInput(max_attempts=3, retry_delay=0.2)))

    with pytest.raises(JobExecutionError, match="broken"):
        await service.run_now(SchedulerInput(operation="run_now", job_id="n"))

    job, history = await service.get_job("n")
    assert job.retry_at is None
    assert [(r.trigger, r.attempt) for r in history] == [("run_now", None)]


async def test_a_pending_retry_survives_a_restart_and_runs_at_once_when_its_time_is_long_past(
    make_runtime: RuntimeFactory, db_path: str, fail: Calls
) -> None:
    runtime = await make_runtime()
    recorder = EventRecorder(runtime.service.events)
    await runtime.service.schedule(
        soon("p", "fail", FAIL, policy=PolicyInput(max_attempts=2, retry_delay=3600), error_queue="errors")
    )
    await recorder.wait_for(finished("p", "error"))
    job, _ = await runtime.service.get_job("p")
    assert job.retry_at is not None and job.retry_at > utcnow() + timedelta(minutes=59)
    await runtime.close()
    # as if the scheduler had been down for two hours since: the retry is due long ago
    with sqlite3.connect(db_path) as conn:
        [(text,)] = conn.execute("SELECT progress FROM scheduler_jobs WHERE job_id = 'p'").fetchall()
        progress = json.loads(text)
        progress["retry"]["at"] = (utcnow() - timedelta(hours=1)).isoformat()
        conn.execute("UPDATE scheduler_jobs SET progress = ? WHERE job_id = 'p'", (json.dumps(progress),))
    conn.close()

    reopened = await make_runtime()
    recorder = EventRecorder(reopened.service.events)
    [retried] = await recorder.wait_for(finished("p", "error"))
    await recorder.wait_for(queued("errors"))

    record = retried.record  # type: ignore[attr-defined]
    assert (record.trigger, record.attempt, record.note) == ("retry", 2, "attempt 2 of 2")
    assert len(fail.inputs) == 2
    assert [m.message["run_id"] for m in reopened.queues.peek("errors", 10)] == [record.run_id]
    job, _ = await reopened.service.get_job("p")
    assert job.retry_at is None


async def test_a_job_pauses_itself_after_failures_in_a_row_and_resume_clears_the_reason(
    make_runtime: RuntimeFactory, fail: Calls
) -> None:
    runtime = await make_runtime(min_interval=0.1)  # fires under 1 s apart: below the default minimum
    recorder = EventRecorder(runtime.service.events)
    await runtime.service.schedule(
        request("pf", "interval", "0.2 seconds", "fail", FAIL, policy=PolicyInput(pause_after_failures=2))
    )

    await recorder.wait_for(lambda e: isinstance(e, JobEvent) and e.job_id == "pf" and e.kind == "paused")

    job, _ = await runtime.service.get_job("pf")
    assert job.state == "paused" and job.next_run is None
    assert job.pause_reason == "paused after 2 failures in a row; last error: fail AgenTool failed: broken"
    assert len(recorder.runs("pf")) == 2
    [message] = [InboxMessage.model_validate(m.message) for m in runtime.queues.peek(INBOX_QUEUE, 10)]
    assert (message.title, message.level, message.source, message.job_id) == ("pf paused", "warning", "scheduler", "pf")
    assert message.message.startswith("Job 'pf' was paused after 2 failures in a row. Resume it with resume_job")
    assert message.untrusted == {"untrusted": True, "from": "the last run of job 'pf'",
                                 "content": "fail AgenTool failed: broken"}

    resumed = await runtime.service.resume("pf")
    assert resumed.state == "scheduled" and resumed.pause_reason is None
    # the count starts afresh: two more failures before it pauses again
    await recorder.wait_for(lambda e: isinstance(e, JobEvent) and e.job_id == "pf" and e.kind == "paused", count=2)
    assert len(recorder.runs("pf")) == 4


async def test_a_success_resets_the_count_of_failures_in_a_row(make_runtime: RuntimeFactory) -> None:
    flaky = register_flaky(failures=1)
    runtime = await make_runtime(min_interval=0.1)  # fires under 1 s apart: below the default minimum
    recorder = EventRecorder(runtime.service.events)
    await runtime.service.schedule(
        request("ok", "interval", "0.2 seconds", "flaky", FLAKY, policy=PolicyInput(pause_after_failures=2))
    )

    await recorder.wait_for(finished("ok", "success"), count=2)

    job, _ = await runtime.service.get_job("ok")
    assert job.state == "scheduled" and job.pause_reason is None and len(flaky.inputs) >= 3


async def test_a_job_finishes_after_max_runs_scheduled_runs(make_runtime: RuntimeFactory, echo: Calls) -> None:
    runtime = await make_runtime()
    recorder = EventRecorder(runtime.service.events)
    created = await runtime.service.schedule(
        request("m", "interval", "1 second", policy=PolicyInput(max_runs=2))
    )
    assert created.runs_remaining == 2
    await runtime.service.run_now(SchedulerInput(operation="run_now", job_id="m"))  # does not count

    await recorder.wait_for(lambda e: isinstance(e, JobEvent) and e.job_id == "m" and e.kind == "completed",
                            within=4)
    await recorder.wait_for(finished("m"), count=3)

    job, history = await runtime.service.get_job("m", history=10)
    assert (job.state, job.next_run, job.runs_remaining) == ("completed", None, 0)
    assert [r.trigger for r in reversed(history)] == ["run_now", "schedule", "schedule"]
    assert len(echo.inputs) == 3
    assert "m" not in {j.job_id for j in runtime.service.list_jobs()[0]}  # finished, like a one-time job that ran


async def test_a_retry_pending_when_its_job_is_paused_waits_for_the_resume(
    make_runtime: RuntimeFactory, fail: Calls
) -> None:
    runtime = await make_runtime(min_interval=0.1)  # fires under 1 s apart: below the default minimum
    recorder = EventRecorder(runtime.service.events)
    await runtime.service.schedule(
        request("w", "interval", "0.3 seconds", "fail", FAIL, policy=PolicyInput(max_attempts=2, retry_delay=0.2))
    )
    await recorder.wait_for(finished("w", "error"))

    paused = await runtime.service.pause("w")
    with pytest.raises(TimeoutError):  # due 0.2 s after the failure: it must not come while paused
        await recorder.wait_for(finished("w"), count=2, within=0.5)
    resumed = await runtime.service.resume("w")
    [_, retried] = await recorder.wait_for(finished("w"), count=2)

    assert paused.retry_at is not None and resumed.retry_at == paused.retry_at
    assert (retried.record.trigger, retried.record.attempt) == ("retry", 2)  # type: ignore[attr-defined]


async def test_a_retry_pending_when_the_scheduler_is_stopped_waits_for_its_start(
    make_runtime: RuntimeFactory, fail: Calls
) -> None:
    runtime = await make_runtime()
    recorder = EventRecorder(runtime.service.events)
    await runtime.service.schedule(soon("s", "fail", FAIL, policy=PolicyInput(max_attempts=2, retry_delay=0.2)))
    await recorder.wait_for(finished("s", "error"))

    await runtime.service.stop()
    with pytest.raises(TimeoutError):
        await recorder.wait_for(finished("s"), count=2, within=0.5)
    await runtime.service.start()
    [_, retried] = await recorder.wait_for(finished("s"), count=2)

    assert (retried.record.trigger, retried.record.attempt) == ("retry", 2)  # type: ignore[attr-defined]


async def test_the_scheduler_agentool_takes_the_policy_and_says_why_a_job_paused(
    injector: AgenToolInjector, scheduler_agent: EventRecorder, fail: Calls
) -> None:
    scheduled = await injector.run("scheduler", {
        "operation": "schedule", "job_id": "a", "schedule_type": "interval", "schedule": "1 second",
        "agentool_name": "fail", "input_data": FAIL, "policy": {"pause_after_failures": 1, "max_runs": 5},
    })
    assert scheduled.data["job"]["runs_remaining"] == 5

    await scheduler_agent.wait_for(lambda e: isinstance(e, JobEvent) and e.job_id == "a" and e.kind == "paused")
    output = await injector.run("scheduler", {"operation": "get_job", "job_id": "a"})

    assert output.message == (
        "Job 'a' is paused: paused after 1 failure in a row; last error: fail AgenTool failed: broken."
    )
    assert (output.data["info"]["pause_reason"], output.data["info"]["runs_remaining"]) == (
        "paused after 1 failure in a row; last error: fail AgenTool failed: broken", 4
    )
