"""`!env:NAME` in a job's input: checked when scheduled, resolved only when it runs, never stored resolved."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from pydantic import Field

from agentool_bridge import AgenToolError, AgenToolInputError, BaseOperationInput, RoutingConfig, register_agentool
from agentool_bridge.secrets import SecretNotSetError, check_env, env_names, redact, resolve_env
from mcp_scheduler import InvalidJobInputError, SchedulerInput
from tests.scheduler import _support
from tests.scheduler.conftest import RuntimeFactory

SECRET = "s3cr3t-token-value"


def schedule(job_id: str, agentool: str, input_data: dict[str, Any]) -> SchedulerInput:
    return SchedulerInput(operation="schedule", job_id=job_id, schedule_type="interval", schedule="1 hour",
                          agentool_name=agentool, input_data=input_data)


def stored_text(db_path: str) -> str:
    """Everything the database holds, as text: every row of every table (jobs, runs, queue messages)."""
    with sqlite3.connect(db_path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [r for table in tables for r in conn.execute(f"SELECT * FROM {table}").fetchall()]
    assert len(tables) >= 3 and rows
    return json.dumps(rows, default=str)


def test_env_references_are_found_anywhere_and_resolved_in_a_copy() -> None:
    data = {"headers": {"Authorization": "!env:TOKEN"}, "args": ["!env:TOKEN", "plain", {"x": "!env:OTHER"}]}
    environ = {"TOKEN": SECRET, "OTHER": "other-value"}

    resolved, revealed = resolve_env(data, environ)

    assert env_names(data) == ["TOKEN", "OTHER"]
    assert resolved == {"headers": {"Authorization": SECRET}, "args": [SECRET, "plain", {"x": "other-value"}]}
    assert data["headers"]["Authorization"] == "!env:TOKEN"  # the input itself is untouched
    assert redact({"echo": f"Bearer {SECRET}", SECRET: 1}, revealed) == {"echo": "Bearer !env:TOKEN", "!env:TOKEN": 1}


def test_a_missing_or_malformed_reference_is_named() -> None:
    with pytest.raises(SecretNotSetError, match="MISSING_ONE, MISSING_TWO are not set"):
        check_env({"a": "!env:MISSING_ONE", "b": ["!env:MISSING_TWO"]}, {})
    with pytest.raises(SecretNotSetError, match="Malformed secret reference"):
        env_names({"a": "!env:not a name"})


async def test_an_unset_variable_refuses_the_job_and_stores_nothing(make_runtime: RuntimeFactory, echo: Any) -> None:
    runtime = await make_runtime(environ={})

    request = schedule("needs-secret", "echo", {"operation": "echo", "text": "!env:NOT_SET_HERE"})
    with pytest.raises(InvalidJobInputError, match="NOT_SET_HERE is not set"):
        await runtime.service.schedule(request)

    assert runtime.service.list_jobs()[1] == 0


async def test_the_secret_reaches_the_agentool_but_not_the_store_history_or_queues(
    make_runtime: RuntimeFactory, db_path: str, echo: _support.Calls
) -> None:
    runtime = await make_runtime(environ={"API_TOKEN": SECRET})
    request = schedule("with-secret", "echo", {"operation": "echo", "text": "!env:API_TOKEN"})
    await runtime.service.schedule(request)

    record = await runtime.service.run_now(
        SchedulerInput(operation="run_now", job_id="with-secret", result_queue="results")
    )

    assert echo.inputs[-1]["text"] == SECRET
    assert record.result["text"] == "!env:API_TOKEN"  # the echoed secret was redacted from the result
    job, history = await runtime.service.get_job("with-secret")
    assert job.input_data == {"operation": "echo", "text": "!env:API_TOKEN"}
    assert history[0].result["text"] == "!env:API_TOKEN"
    assert SECRET not in stored_text(db_path)


async def test_a_secret_in_an_error_message_is_redacted(make_runtime: RuntimeFactory, fail: _support.Calls) -> None:
    runtime = await make_runtime(environ={"API_TOKEN": SECRET})
    await runtime.service.schedule(schedule("fails", "fail", {"operation": "fail", "reason": "!env:API_TOKEN"}))

    with pytest.raises(Exception, match="!env:API_TOKEN") as caught:
        await runtime.service.run_now(SchedulerInput(operation="run_now", job_id="fails"))

    assert SECRET not in str(caught.value)
    (run,) = await runtime.service.get_history("fails")
    assert run.error is not None and SECRET not in run.error.message + (run.error.traceback or "")
    assert fail.inputs[-1]["reason"] == SECRET


async def test_a_variable_gone_at_run_time_is_a_recorded_error(make_runtime: RuntimeFactory, echo: Any) -> None:
    environ = {"API_TOKEN": SECRET}
    runtime = await make_runtime(environ=environ)
    await runtime.service.schedule(schedule("loses-secret", "echo", {"operation": "echo", "text": "!env:API_TOKEN"}))
    del environ["API_TOKEN"]

    with pytest.raises(Exception, match="API_TOKEN is not set"):
        await runtime.service.run_now(SchedulerInput(operation="run_now", job_id="loses-secret"))

    (run,) = await runtime.service.get_history("loses-secret")
    assert run.status == "error" and run.error is not None and run.error.type == "SecretNotSetError"


class CheckedInput(BaseOperationInput):
    """An AgenTool whose own check refuses some inputs when a job is scheduled."""

    operation: str = Field(description="Anything.")
    target: str = Field(description="Must not be 'forbidden'.")


async def test_an_agentools_own_check_runs_at_schedule_time_with_secrets_resolved(
    make_runtime: RuntimeFactory,
) -> None:
    seen: list[str] = []

    async def check(model: Any) -> None:
        seen.append(model.target)
        if model.target == "forbidden":
            raise AgenToolInputError("target 'forbidden' is refused", [{"loc": "target", "msg": "refused"}])

    def go(operation: str, target: str) -> str:
        return target

    register_agentool("checked", CheckedInput, RoutingConfig(operation_map={"go": ("go", None)}), [go], check=check)
    runtime = await make_runtime(environ={"TARGET": "forbidden", "OK_TARGET": "fine"})

    with pytest.raises(InvalidJobInputError, match="target '!env:TARGET' is refused"):  # the value is a secret
        await runtime.service.schedule(schedule("refused", "checked", {"operation": "go", "target": "!env:TARGET"}))
    await runtime.service.schedule(schedule("accepted", "checked", {"operation": "go", "target": "!env:OK_TARGET"}))

    assert seen == ["forbidden", "fine"]
    assert [j.job_id for j in runtime.service.list_jobs()[0]] == ["accepted"]


async def test_a_check_error_quoting_a_secret_is_redacted(make_runtime: RuntimeFactory) -> None:
    async def check(model: Any) -> None:
        raise AgenToolError(f"cannot reach {model.target}")

    def go(operation: str, target: str) -> str:
        return target

    register_agentool("leaky", CheckedInput, RoutingConfig(operation_map={"go": ("go", None)}), [go], check=check)
    runtime = await make_runtime(environ={"TARGET": SECRET})

    with pytest.raises(InvalidJobInputError) as caught:
        await runtime.service.schedule(schedule("leaky-job", "leaky", {"operation": "go", "target": "!env:TARGET"}))

    assert str(caught.value) == "cannot reach !env:TARGET"
