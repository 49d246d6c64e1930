"""`!env:NAME` in a job's input: checked when scheduled, resolved only when it runs, never stored resolved."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

import pytest
from pydantic import Field

from agentool_bridge import AgenToolError, AgenToolInputError, BaseOperationInput, RoutingConfig, register_agentool
from agentool_bridge.secrets import SecretNotSetError, check_env, env_names, redact, resolve_env
from mcp_scheduler import InvalidJobInputError, JobExecutionError, SchedulerInput, create_scheduler_agent
from mcp_scheduler.cli import parse_settings
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
    runtime = await make_runtime(environ={}, secrets=("NOT_SET_HERE",))

    request = schedule("needs-secret", "echo", {"operation": "echo", "text": "!env:NOT_SET_HERE"})
    with pytest.raises(InvalidJobInputError, match="NOT_SET_HERE is not set"):
        await runtime.service.schedule(request)

    assert runtime.service.list_jobs()[1] == 0


async def test_the_secret_reaches_the_agentool_but_not_the_store_history_or_queues(
    make_runtime: RuntimeFactory, db_path: str, echo: _support.Calls
) -> None:
    runtime = await make_runtime(environ={"API_TOKEN": SECRET}, secrets=("API_TOKEN",))
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
    runtime = await make_runtime(environ={"API_TOKEN": SECRET}, secrets=("API_TOKEN",))
    await runtime.service.schedule(schedule("fails", "fail", {"operation": "fail", "reason": "!env:API_TOKEN"}))

    with pytest.raises(Exception, match="!env:API_TOKEN") as caught:
        await runtime.service.run_now(SchedulerInput(operation="run_now", job_id="fails"))

    assert SECRET not in str(caught.value)
    (run,) = await runtime.service.get_history("fails")
    assert run.error is not None and SECRET not in run.error.message + (run.error.traceback or "")
    assert fail.inputs[-1]["reason"] == SECRET


async def test_a_variable_gone_at_run_time_is_a_recorded_error(make_runtime: RuntimeFactory, echo: Any) -> None:
    environ = {"API_TOKEN": SECRET}
    runtime = await make_runtime(environ=environ, secrets=("API_TOKEN",))
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
    runtime = await make_runtime(environ={"TARGET": "forbidden", "OK_TARGET": "fine"}, secrets=("TARGET", "OK_TARGET"))

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
    runtime = await make_runtime(environ={"TARGET": SECRET}, secrets=("TARGET",))

    with pytest.raises(InvalidJobInputError) as caught:
        await runtime.service.schedule(schedule("leaky-job", "leaky", {"operation": "go", "target": "!env:TARGET"}))

    assert str(caught.value) == "cannot reach !env:TARGET"


# ---------------------------------------------------------------- the operator's allow-list


@pytest.mark.parametrize("name", ["HOME", "PATH", "MCP_SCHEDULER_AUTH_TOKEN"])
async def test_a_name_the_operator_did_not_allow_is_refused_with_default_settings(
    make_runtime: RuntimeFactory, echo: Any, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("MCP_SCHEDULER_AUTH_TOKEN", "server-auth-token-value")
    runtime = await make_runtime()  # the process's environment, no --secret

    with pytest.raises(InvalidJobInputError, match=f"'!env:{name}' is not a secret this server allows") as caught:
        await runtime.service.schedule(schedule("reads-env", "echo", {"operation": "echo", "text": f"!env:{name}"}))

    assert "--secret NAME" in str(caught.value) and "MCP_SCHEDULER_SECRET" in str(caught.value)
    assert runtime.service.list_jobs()[1] == 0
    with pytest.raises(InvalidJobInputError, match="not a secret this server allows"):
        await runtime.service.run_now(SchedulerInput(operation="run_now", agentool_name="echo",
                                                     input_data={"operation": "echo", "text": f"!env:{name}"}))
    assert echo.inputs == []


async def test_the_refusal_does_not_tell_whether_a_variable_exists(
    make_runtime: RuntimeFactory, echo: Any
) -> None:
    runtime = await make_runtime(environ={"SET_ONE": "value-of-set-one"}, secrets=("ALLOWED_ONE",))

    messages = []
    for name in ("SET_ONE", "UNSET_ONE"):
        with pytest.raises(InvalidJobInputError) as caught:
            request = schedule(f"job-{name}", "echo", {"operation": "echo", "text": f"!env:{name}"})
            await runtime.service.schedule(request)
        messages.append(str(caught.value).replace(name, "NAME"))

    assert messages[0] == messages[1]
    assert "not set" not in messages[0]


async def test_a_server_setting_is_refused_even_when_listed(make_runtime: RuntimeFactory, echo: Any) -> None:
    runtime = await make_runtime(environ={"MCP_SCHEDULER_AUTH_TOKEN": "server-auth-token-value"},
                                 secrets=("MCP_SCHEDULER_AUTH_TOKEN",))

    with pytest.raises(InvalidJobInputError, match="not a secret this server allows"):
        await runtime.service.schedule(schedule("steal", "echo", {"operation": "echo",
                                                                  "text": "!env:MCP_SCHEDULER_AUTH_TOKEN"}))


async def test_a_listed_but_unset_name_says_it_is_not_set(make_runtime: RuntimeFactory, echo: Any) -> None:
    runtime = await make_runtime(environ={}, secrets=("LISTED_TOKEN",))

    with pytest.raises(InvalidJobInputError, match="LISTED_TOKEN is not set"):
        await runtime.service.schedule(schedule("unset", "echo", {"operation": "echo", "text": "!env:LISTED_TOKEN"}))


async def test_a_stored_job_whose_name_is_no_longer_allowed_fails_when_it_runs(
    make_runtime: RuntimeFactory, echo: Any, db_path: str
) -> None:
    environ = {"API_TOKEN": SECRET}
    first = await make_runtime(environ=environ, secrets=("API_TOKEN",))
    await first.service.schedule(schedule("was-allowed", "echo", {"operation": "echo", "text": "!env:API_TOKEN"}))
    await first.close()
    second = await make_runtime(environ=environ)  # restarted without --secret API_TOKEN

    with pytest.raises(JobExecutionError, match="'!env:API_TOKEN' is not a secret this server allows"):
        await second.service.run_now(SchedulerInput(operation="run_now", job_id="was-allowed"))

    (run,) = await second.service.get_history("was-allowed")
    assert run.status == "error" and run.error is not None and run.error.type == "SecretNotAllowedError"
    assert echo.inputs == []


async def test_the_operator_is_warned_at_start_about_short_unset_and_reserved_names(
    make_runtime: RuntimeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {"PIN": "1234", "LONG_ENOUGH": "long-enough-value", "MCP_SCHEDULER_AUTH_TOKEN": "t"}
    with caplog.at_level(logging.WARNING, logger="mcp_scheduler"):
        await make_runtime(environ=environ, secrets=("PIN", "LONG_ENOUGH", "NOT_SET_ANYWHERE",
                                                     "MCP_SCHEDULER_AUTH_TOKEN"))

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("--secret PIN: its value is shorter than 8 characters") for m in warnings)
    assert any(m.startswith("--secret NOT_SET_ANYWHERE: the variable is not set") for m in warnings)
    assert any(m.startswith("--secret MCP_SCHEDULER_AUTH_TOKEN is ignored") for m in warnings)
    assert not any("LONG_ENOUGH" in m for m in warnings)
    assert not any("1234" in m for m in warnings)


def test_the_secret_flag_and_its_environment_form_reach_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_SCHEDULER_SECRET", "FROM_ENV_A,FROM_ENV_B")
    assert parse_settings([])[1].service_config().secrets == ("FROM_ENV_A", "FROM_ENV_B")
    assert parse_settings(["--secret", "ONE", "--secret", "TWO"])[1].service_config().secrets == ("ONE", "TWO")


async def test_a_job_scheduled_from_inside_a_run_stores_the_reference_not_the_resolved_value(
    make_runtime: RuntimeFactory, db_path: str, echo: _support.Calls
) -> None:
    runtime = await make_runtime(environ={"API_TOKEN": SECRET}, secrets=("API_TOKEN",))
    create_scheduler_agent(runtime=runtime)
    inner = {"operation": "schedule", "job_id": "inner", "schedule_type": "interval", "schedule": "1 hour",
             "agentool_name": "echo", "input_data": {"operation": "echo", "text": "!env:API_TOKEN"}}

    await runtime.service.run_now(SchedulerInput(operation="run_now", agentool_name="scheduler", input_data=inner))
    await runtime.service.run_now(SchedulerInput(operation="run_now", job_id="inner"))

    job, _ = await runtime.service.get_job("inner")
    assert job.input_data == {"operation": "echo", "text": "!env:API_TOKEN"}
    assert echo.inputs[-1]["text"] == SECRET  # resolved again when the inner job runs
    assert SECRET not in stored_text(db_path)
