"""Run policies as part of a job: validated, stored, shown in words; idempotent create with if_exists."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mcp_scheduler import InvalidJobInputError, JobExistsError, SchedulerInput
from mcp_scheduler.policies import PolicyInput, RunPolicy, describe_policy, retry_delay
from tests.scheduler.conftest import RuntimeFactory


def hourly(job_id: str = "p", **fields: Any) -> SchedulerInput:
    fields.setdefault("schedule", "1 hour")
    return SchedulerInput(operation="schedule", job_id=job_id, schedule_type="interval", agentool_name="echo",
                          input_data={"operation": "echo", "text": "x"}, **fields)


def test_a_policy_in_words() -> None:
    policy = RunPolicy(max_attempts=4, retry_delay=30, pause_after_failures=5, overlap="buffer_one", max_runs=10)

    assert describe_policy(policy) == (
        "runs a fire that comes during a run right after it (at most one waiting); catches up once after downtime; "
        "retries 3 times on error, timeout, 30 s then 1 min then 2 min; pauses after 5 failures in a "
        "row; stops after 10 runs"
    )
    assert [retry_delay(RunPolicy(retry_delay=10, retry_multiplier=3, retry_max_delay=60), n) for n in (1, 2, 3)] == [
        10, 30, 60]


async def test_a_policy_is_stored_shown_and_survives_a_restart(make_runtime: RuntimeFactory, echo: Any) -> None:
    runtime = await make_runtime()
    policy = PolicyInput(max_attempts=3, catchup="all", catchup_window="2h", start_at="2030-01-01T09:00",
                         end_at="2030-06-01T00:00:00+00:00")
    created = await runtime.service.schedule(hourly(policy=policy))
    await runtime.close()

    job, _ = await (await make_runtime()).service.get_job("p")

    # The catch-up window is the policy's own; misfire_grace_time (lateness while the scheduler runs) keeps its own.
    assert job.policy.catchup_window == 7200 == created.policy.catchup_window
    assert job.misfire_grace_time == 30 == created.misfire_grace_time
    assert (job.policy.max_attempts, job.policy.catchup) == (3, "all")
    assert job.policy.start_at is not None and job.policy.start_at.isoformat() == "2030-01-01T09:00:00+00:00"
    assert "retries 2 times" in job.policy_description
    assert "catches up every missed fire after downtime (within 2 h)" in job.policy_description


async def test_bad_policies_are_refused(make_runtime: RuntimeFactory, echo: Any) -> None:
    service = (await make_runtime()).service

    with pytest.raises(InvalidJobInputError, match="end_at must be later than start_at"):
        await service.schedule(hourly(policy=PolicyInput(start_at="2030-01-02", end_at="2030-01-01")))
    with pytest.raises(InvalidJobInputError, match="is not an ISO 8601 time"):
        await service.schedule(hourly(policy=PolicyInput(start_at="next monday")))
    with pytest.raises(InvalidJobInputError, match="catchup_window must be between"):
        await service.schedule(hourly(policy=PolicyInput(catchup_window=-5)))
    with pytest.raises(ValidationError, match="max_atempts"):
        PolicyInput.model_validate({"max_atempts": 3})
    assert service.list_jobs()[1] == 0


async def test_if_exists_keeps_replaces_or_refuses(make_runtime: RuntimeFactory, echo: Any) -> None:
    service = (await make_runtime()).service
    first = await service.schedule(hourly(job_name="first"))
    await service.run_now(SchedulerInput(operation="run_now", job_id="p"))

    with pytest.raises(JobExistsError):
        await service.schedule(hourly(job_name="second"))
    kept = await service.schedule(hourly(job_name="second", if_exists="keep"))
    replaced = await service.schedule(hourly(job_name="third", schedule="5 minutes", if_exists="replace",
                                             policy=PolicyInput(max_attempts=2)))

    assert kept.job_name == "first" and kept.created_at == first.created_at
    assert (replaced.job_name, replaced.schedule, replaced.policy.max_attempts) == ("third", "5 minutes", 2)
    assert len(await service.get_history("p")) == 1  # replacing keeps the history
    assert [j.job_id for j in service.list_jobs()[0]] == ["p"]
