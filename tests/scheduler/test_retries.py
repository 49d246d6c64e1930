"""Run policies on failure, in real time: a success at a retry reaches the result queue, run_now is not retried
and the AgenTool face's policy. The delays, retries across a restart, the pauses after failures and max_runs are
tested in virtual time (test_retries_in_virtual_time.py)."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import Field

from agentool_bridge import AgenToolInjector, BaseOperationInput, RoutingConfig, register_agentool
from mcp_scheduler import JobEvent, JobExecutionError, QueueEvent, SchedulerEvent, SchedulerInput
from mcp_scheduler.policies import PolicyInput
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
