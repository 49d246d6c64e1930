"""Retries, backoff and pausing after failures, in virtual time: the retry timers wait on the scheduler's clock, so
a test moves a `VirtualClock` over minutes or hours of delays at once, and each attempt starts exactly when due.

The first fire of a job due "now" comes from the engine at once; later fires of a schedule are handed to the run
path as the engine hands them over (`Admission.on_due`), since the engine keeps wall time."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import pytest

from agentool_bridge.toolkits.inbox import INBOX_QUEUE, InboxMessage
from mcp_scheduler import JobEvent, RunEvent, SchedulerInput, SchedulerRuntime, SchedulerService
from mcp_scheduler.policies import PolicyInput
from tests.scheduler._support import Calls, EventRecorder, VirtualClock, finished, request
from tests.scheduler.conftest import RuntimeFactory
from tests.scheduler.test_retries import FAIL, FLAKY, queued, register_flaky

HOUR = 3600.0
RETRY_TASK = "mcp-scheduler-retry-"


class Virtual(NamedTuple):
    """An open runtime on a virtual clock, and a recorder of its events."""

    clock: VirtualClock
    runtime: SchedulerRuntime
    recorder: EventRecorder


@pytest.fixture
async def virtual(make_runtime: RuntimeFactory) -> Virtual:
    clock = VirtualClock()
    runtime = await make_runtime(clock=clock)
    return Virtual(clock, runtime, EventRecorder(runtime.service.events))


def retry_tasks() -> list[asyncio.Task[Any]]:
    """The retries started and not finished (each starts as a task when its timer fires)."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith(RETRY_TASK) and not t.done()]


def failing_now(job_id: str, policy: PolicyInput, **extra: Any) -> SchedulerInput:
    """A one-time `fail` job due now: the engine fires it at once."""
    return request(job_id, "once", "now", "fail", FAIL, policy=policy, **extra)


async def fire(service: SchedulerService, job_id: str, *times: datetime) -> None:
    """Hand due fire times to the run path as the engine does; returns once their runs are recorded."""
    await service._runs.admission.on_due(job_id, list(times))


async def _hourly(runtime: SchedulerRuntime, job_id: str, agentool: str, data: dict[str, Any],
                  policy: PolicyInput) -> datetime:
    created = await runtime.service.schedule(request(job_id, "interval", "1 hour", agentool, data, policy=policy))
    assert created.next_run is not None
    return created.next_run


def paused(job_id: str) -> Any:
    return lambda e: isinstance(e, JobEvent) and e.job_id == job_id and e.kind == "paused"


async def test_each_attempt_starts_exactly_after_its_backoff_delay_and_the_last_one_ends_the_retries(
    virtual: Virtual, fail: Calls
) -> None:
    clock, runtime, recorder = virtual
    t0 = clock.now()
    policy = PolicyInput(max_attempts=4, retry_delay=10, retry_multiplier=3, retry_max_delay=60)
    await runtime.service.schedule(failing_now("r", policy, error_queue="errors"))
    await recorder.wait_for(finished("r", "error"))

    for attempt, (delay, due) in enumerate([(10, 10), (30, 40), (60, 100)], start=2):  # 10 s, 30 s, 90 s capped to 60
        job, _ = await runtime.service.get_job("r")
        assert job.retry_at == t0 + timedelta(seconds=due)
        clock.advance(delay - 0.001)
        assert retry_tasks() == []  # not a millisecond early
        clock.advance(0.001)
        assert len(retry_tasks()) == 1
        await recorder.wait_for(finished("r", "error"), count=attempt)
    await recorder.wait_for(queued("errors"))

    job, history = await runtime.service.get_job("r", history=10)
    attempts = list(reversed(history))
    assert [(r.attempt, r.trigger) for r in attempts] == [(1, "schedule"), (2, "retry"), (3, "retry"), (4, "retry")]
    assert [r.started_at for r in attempts] == [t0 + timedelta(seconds=s) for s in (0, 10, 40, 100)]
    second = (t0 + timedelta(seconds=10)).isoformat(timespec="milliseconds")
    assert attempts[0].note == f"attempt 1 of 4; attempt 2 at {second}"
    assert attempts[3].note == "attempt 4 of 4"
    assert job.retry_at is None and len(fail.inputs) == 4
    assert [m.message["run_id"] for m in runtime.queues.peek("errors", 10)] == [attempts[3].run_id]
    clock.advance(HOUR)
    assert retry_tasks() == [] and len(fail.inputs) == 4  # no fifth attempt


async def test_a_run_is_retried_only_for_the_outcomes_in_retry_on(virtual: Virtual, fail: Calls) -> None:
    clock, runtime, recorder = virtual
    await runtime.service.schedule(failing_now("on-timeout", PolicyInput(max_attempts=3, retry_on=["timeout"])))
    await runtime.service.schedule(failing_now("on-error", PolicyInput(max_attempts=3, retry_on=["error"])))
    await recorder.wait_for(finished("on-timeout", "error"))
    await recorder.wait_for(finished("on-error", "error"))

    not_retried, _ = await runtime.service.get_job("on-timeout")
    retried, _ = await runtime.service.get_job("on-error")
    clock.advance(30)  # the default retry_delay
    [run] = retry_tasks()
    await recorder.wait_for(finished("on-error", "error"), count=2)

    assert not_retried.retry_at is None and retried.retry_at == clock.now()
    assert run.get_name() == f"{RETRY_TASK}on-error"
    assert len(recorder.runs("on-timeout")) == 1 and len(recorder.runs("on-error")) == 2


async def test_a_pending_retry_is_armed_after_a_restart_for_its_stored_time_not_a_fresh_delay(
    make_runtime: RuntimeFactory, virtual: Virtual, db_path: str, fail: Calls
) -> None:
    clock, runtime, recorder = virtual
    t0 = clock.now()
    await runtime.service.schedule(failing_now("p", PolicyInput(max_attempts=2, retry_delay=HOUR)))
    await recorder.wait_for(finished("p", "error"))
    await runtime.close()
    with sqlite3.connect(db_path) as conn:
        [(text,)] = conn.execute("SELECT progress FROM scheduler_jobs WHERE job_id = 'p'").fetchall()
    conn.close()
    assert datetime.fromisoformat(json.loads(text)["retry"]["at"]) == t0 + timedelta(hours=1)

    clock.advance(20 * 60)  # down for 20 minutes
    reopened = await make_runtime(clock=clock)
    recorder = EventRecorder(reopened.service.events)
    clock.advance(40 * 60 - 0.001)
    assert retry_tasks() == []
    clock.advance(0.001)
    [retried] = await recorder.wait_for(finished("p", "error"))

    assert isinstance(retried, RunEvent)
    assert (retried.record.trigger, retried.record.attempt) == ("retry", 2)
    assert retried.record.started_at == t0 + timedelta(hours=1)
    assert len(fail.inputs) == 2


async def test_a_pending_retry_long_past_its_time_after_a_restart_runs_at_once_and_reaches_the_error_queue(
    make_runtime: RuntimeFactory, virtual: Virtual, fail: Calls
) -> None:
    clock, runtime, recorder = virtual
    policy = PolicyInput(max_attempts=2, retry_delay=HOUR)
    await runtime.service.schedule(failing_now("p", policy, error_queue="errors"))
    await recorder.wait_for(finished("p", "error"))
    await runtime.close()

    clock.advance(3 * HOUR)  # down for three hours: the retry was due two hours ago
    reopened = await make_runtime(clock=clock)
    recorder = EventRecorder(reopened.service.events)
    [retried] = await recorder.wait_for(finished("p", "error"))
    await recorder.wait_for(queued("errors"))

    assert isinstance(retried, RunEvent)
    assert (retried.record.trigger, retried.record.attempt, retried.record.note) == ("retry", 2, "attempt 2 of 2")
    assert retried.record.started_at == clock.now()  # at once, not an hour after the restart
    assert len(fail.inputs) == 2
    assert [m.message["run_id"] for m in reopened.queues.peek("errors", 10)] == [retried.record.run_id]
    job, _ = await reopened.service.get_job("p")
    assert job.retry_at is None


async def test_a_retry_due_while_its_job_is_paused_runs_only_after_the_resume(
    virtual: Virtual, fail: Calls
) -> None:
    clock, runtime, recorder = virtual
    first = await _hourly(runtime, "w", "fail", FAIL, PolicyInput(max_attempts=2, retry_delay=10))
    clock.advance(HOUR)
    await fire(runtime.service, "w", first)

    before = await runtime.service.pause("w")
    clock.advance(HOUR)
    await asyncio.gather(*retry_tasks())  # a timer that fired finds its job paused and leaves the retry stored
    assert len(fail.inputs) == 1
    after = await runtime.service.resume("w")
    [_, retried] = await recorder.wait_for(finished("w"), count=2)

    assert before.retry_at is not None and after.retry_at == before.retry_at
    assert isinstance(retried, RunEvent) and (retried.record.trigger, retried.record.attempt) == ("retry", 2)
    assert retried.record.started_at == clock.now()  # at the resume: it was due long before


async def test_a_retry_due_while_the_scheduler_is_stopped_runs_at_its_start(
    virtual: Virtual, fail: Calls
) -> None:
    clock, runtime, recorder = virtual
    await runtime.service.schedule(failing_now("s", PolicyInput(max_attempts=2, retry_delay=10)))
    await recorder.wait_for(finished("s", "error"))

    await runtime.service.stop()
    clock.advance(HOUR)
    assert retry_tasks() == [] and len(fail.inputs) == 1
    await runtime.service.start()
    [_, retried] = await recorder.wait_for(finished("s"), count=2)

    assert isinstance(retried, RunEvent) and (retried.record.trigger, retried.record.attempt) == ("retry", 2)
    assert retried.record.started_at == clock.now()


async def test_a_job_pauses_itself_after_failures_in_a_row_and_resume_clears_the_reason(
    virtual: Virtual, fail: Calls
) -> None:
    clock, runtime, recorder = virtual
    first = await _hourly(runtime, "pf", "fail", FAIL, PolicyInput(pause_after_failures=2))

    clock.advance(HOUR)
    await fire(runtime.service, "pf", first)
    job, _ = await runtime.service.get_job("pf")
    assert job.state == "scheduled"
    clock.advance(HOUR)
    await fire(runtime.service, "pf", first + timedelta(hours=1))
    await recorder.wait_for(paused("pf"))

    job, _ = await runtime.service.get_job("pf")
    assert job.state == "paused" and job.next_run is None
    assert job.pause_reason == "paused after 2 failures in a row; last error: fail AgenTool failed: broken"
    [message] = [InboxMessage.model_validate(m.message) for m in runtime.queues.peek(INBOX_QUEUE, 10)]
    assert (message.title, message.level, message.source, message.job_id) == ("pf paused", "warning", "scheduler", "pf")
    assert message.message.startswith("Job 'pf' was paused after 2 failures in a row. Resume it with resume_job")
    assert message.untrusted == {"untrusted": True, "from": "the last run of job 'pf'",
                                 "content": "fail AgenTool failed: broken"}

    resumed = await runtime.service.resume("pf")
    assert resumed.state == "scheduled" and resumed.pause_reason is None
    for hours in (2, 3):  # the count starts afresh: two more failures before it pauses again
        clock.advance(HOUR)
        await fire(runtime.service, "pf", first + timedelta(hours=hours))
    await recorder.wait_for(paused("pf"), count=2)
    assert len(recorder.runs("pf")) == 4


async def test_a_failure_counts_toward_the_pause_only_once_its_retries_are_spent(
    virtual: Virtual, fail: Calls
) -> None:
    clock, runtime, recorder = virtual
    first = await _hourly(runtime, "pr", "fail", FAIL, PolicyInput(pause_after_failures=1, max_attempts=2,
                                                                    retry_delay=60))

    clock.advance(HOUR)
    await fire(runtime.service, "pr", first)
    job, _ = await runtime.service.get_job("pr")
    assert job.state == "scheduled" and job.retry_at == first + timedelta(minutes=1)  # retried, not yet a failure
    clock.advance(60)
    await recorder.wait_for(paused("pr"))

    job, history = await runtime.service.get_job("pr")
    assert job.state == "paused" and job.retry_at is None
    assert [(r.trigger, r.attempt) for r in reversed(history)] == [("schedule", 1), ("retry", 2)]


async def test_a_success_resets_the_count_of_failures_in_a_row(virtual: Virtual) -> None:
    flaky = register_flaky(failures=1)
    clock, runtime, _ = virtual
    first = await _hourly(runtime, "ok", "flaky", FLAKY, PolicyInput(pause_after_failures=2))

    for hours in range(4):  # fail, succeed, succeed, succeed: never two failures in a row
        clock.advance(HOUR)
        await fire(runtime.service, "ok", first + timedelta(hours=hours))

    job, history = await runtime.service.get_job("ok", history=10)
    assert job.state == "scheduled" and job.pause_reason is None
    assert [r.status for r in reversed(history)] == ["error", "success", "success", "success"]
    assert len(flaky.inputs) == 4


async def test_a_job_finishes_after_max_runs_scheduled_runs(virtual: Virtual, echo: Calls) -> None:
    clock, runtime, recorder = virtual
    created = await runtime.service.schedule(request("m", "interval", "1 hour", policy=PolicyInput(max_runs=2)))
    assert created.runs_remaining == 2 and created.next_run is not None
    await runtime.service.run_now(SchedulerInput(operation="run_now", job_id="m"))  # does not count

    for hours in range(2):
        clock.advance(HOUR)
        await fire(runtime.service, "m", created.next_run + timedelta(hours=hours))
    await recorder.wait_for(lambda e: isinstance(e, JobEvent) and e.job_id == "m" and e.kind == "completed")

    job, history = await runtime.service.get_job("m", history=10)
    assert (job.state, job.next_run, job.runs_remaining) == ("completed", None, 0)
    assert [r.trigger for r in reversed(history)] == ["run_now", "schedule", "schedule"]
    assert len(echo.inputs) == 3
    assert "m" not in {j.job_id for j in runtime.service.list_jobs()[0]}  # finished, like a one-time job that ran
