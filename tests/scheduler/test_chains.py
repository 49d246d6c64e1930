"""Chains (policy.after): a job runs when a run of another ends, with that run's result; cycles are refused."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_scheduler import InvalidJobInputError, JobExecutionError, SchedulerInput, SchedulerService
from mcp_scheduler.policies import PolicyInput
from tests.scheduler._support import Calls, EventRecorder, finished, started


def job(job_id: str, text: str, *, after: str | None = None, on: str = "success", kind: str = "echo") -> SchedulerInput:
    """A daily job (it does not fire during the test) chained after `after`, if given."""
    data: dict[str, Any] = {"operation": "echo", "text": text} if kind == "echo" else {"operation": "fail"}
    policy = PolicyInput.model_validate({"after": {"job": after, "on": on}}) if after else None
    return SchedulerInput(operation="schedule", job_id=job_id, schedule_type="cron", schedule="0 3 * * *",
                          agentool_name=kind, input_data=data, policy=policy)


def record_of(recorder: EventRecorder, job_id: str) -> Any:
    [event] = recorder.runs(job_id)
    return event.record


async def test_a_chain_of_three_jobs_runs_in_order_passing_results_along(
    service: SchedulerService, recorder: EventRecorder, echo: Calls
) -> None:
    await service.schedule(job("one", "from one"))
    await service.schedule(job("two", "!trigger:result/text", after="one"))
    await service.schedule(job("three", "!trigger:result/text", after="two", on="any"))

    first = await service.run_now(SchedulerInput(operation="run_now", job_id="one"))
    await recorder.wait_for(finished("three"))

    assert [data["text"] for data in echo.inputs] == ["from one", "from one", "from one"]
    two, three = record_of(recorder, "two"), record_of(recorder, "three")
    assert (two.trigger, two.status, three.trigger, three.status) == ("chain", "success", "chain", "success")
    assert f"chained after run {first.run_id} of job 'one'" in (two.note or "")
    assert f"chained after run {two.run_id} of job 'two'" in (three.note or "")
    job_two, _ = await service.get_job("two")
    assert "runs after each run of job 'one' that ends in success" in job_two.policy_description


async def test_a_failure_stops_an_on_success_link_and_starts_an_on_failure_one(
    service: SchedulerService, recorder: EventRecorder, echo: Calls, fail: Calls
) -> None:
    await service.schedule(job("f", "", kind="fail"))
    await service.schedule(job("on-success", "never", after="f"))
    await service.schedule(job("on-failure", "!trigger:status", after="f", on="failure"))

    with pytest.raises(JobExecutionError):
        await service.run_now(SchedulerInput(operation="run_now", job_id="f"))
    await recorder.wait_for(finished("on-failure", "success"))

    assert [data["text"] for data in echo.inputs] == ["error"]  # the failed run's status, through !trigger:status
    assert not recorder.matching(started("on-success"))


async def test_a_paused_link_does_not_run(service: SchedulerService, recorder: EventRecorder, echo: Calls) -> None:
    await service.schedule(job("head", "go"))
    await service.schedule(job("paused", "!trigger:result/text", after="head"))
    await service.schedule(job("running", "!trigger:job", after="head"))
    await service.pause("paused")

    await service.run_now(SchedulerInput(operation="run_now", job_id="head"))
    await recorder.wait_for(finished("running"))

    assert [data["text"] for data in echo.inputs] == ["go", "head"]
    assert not recorder.matching(started("paused"))


async def test_cycles_and_unknown_jobs_are_refused(service: SchedulerService, echo: Calls) -> None:
    with pytest.raises(InvalidJobInputError, match=r"cycle of chained jobs \(self -> self"):
        await service.schedule(job("self", "x", after="self"))
    with pytest.raises(InvalidJobInputError, match="names job 'nobody', which does not exist"):
        await service.schedule(job("orphan", "x", after="nobody"))
    await service.schedule(job("a", "x"))
    await service.schedule(job("b", "x", after="a"))
    await service.schedule(job("c", "x", after="b"))

    with pytest.raises(InvalidJobInputError, match=r"\(a -> c -> b -> a,"):
        await service.update(SchedulerInput(operation="update", job_id="a",
                                             policy=PolicyInput.model_validate({"after": {"job": "c"}})))

    assert (await service.get_job("a"))[0].policy.after is None  # nothing changed


async def test_a_run_read_from_the_store_starts_nothing_here_the_process_that_ran_it_does(
    service: SchedulerService, recorder: EventRecorder, echo: Calls
) -> None:
    from mcp_scheduler import RunEvent

    await service.schedule(job("one", "from one"))
    await service.schedule(job("two", "!trigger:result/text", after="one"))
    ran = await service.run_now(SchedulerInput(operation="run_now", job_id="one"))
    await recorder.wait_for(finished("two"))

    service.events.publish(RunEvent("finished", ran, remote=True))  # as a follower publishes another's run
    await service.run_now(SchedulerInput(operation="run_now", job_id="one"))
    await recorder.wait_for(lambda e: len([r for r in recorder.runs("two") if r.kind == "finished"]) == 2)
    assert len(echo.inputs) == 4  # one and two, twice: the remote copy of the first run chained nothing


async def test_a_link_added_or_removed_after_runs_ended_is_followed_from_then_on(
    service: SchedulerService, recorder: EventRecorder, echo: Calls
) -> None:
    await service.schedule(job("one", "from one"))
    await service.run_now(SchedulerInput(operation="run_now", job_id="one"))  # nothing follows it yet
    await service.schedule(job("two", "!trigger:result/text", after="one"))
    await service.run_now(SchedulerInput(operation="run_now", job_id="one"))
    await recorder.wait_for(finished("two"))
    await service.cancel("two")
    await service.schedule(job("three", "!trigger:result/text", after="one"))
    await service.run_now(SchedulerInput(operation="run_now", job_id="one"))
    await recorder.wait_for(finished("three"))

    assert len(recorder.runs("two")) == 1 and len(recorder.runs("three")) == 1  # two not again, once cancelled
    assert [data["text"] for data in echo.inputs].count("from one") == 5  # one three times, two and three once
