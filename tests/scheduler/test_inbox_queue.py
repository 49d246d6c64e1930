"""A job whose result_queue or error_queue is 'inbox' tells the user in their inbox, as an inbox message."""

from __future__ import annotations

from typing import Any

import pytest

from agentool_bridge.toolkits.inbox import INBOX_QUEUE, InboxMessage
from mcp_scheduler import SchedulerInput
from tests.scheduler.conftest import RuntimeFactory


async def test_results_and_failures_sent_to_the_inbox_are_inbox_messages(
    make_runtime: RuntimeFactory, echo: Any, fail: Any
) -> None:
    runtime = await make_runtime()
    service = runtime.service
    ok = await service.run_now(SchedulerInput(
        operation="run_now", job_id="greeter", agentool_name="echo", input_data={"operation": "echo", "text": "hi"},
        result_queue="inbox",
    ))
    with pytest.raises(Exception, match="fail AgenTool failed"):
        await service.run_now(SchedulerInput(
            operation="run_now", job_id="breaker", agentool_name="fail", input_data={"operation": "fail"},
            error_queue="inbox",
        ))

    done, failed = (InboxMessage.model_validate(m.message) for m in runtime.queues.peek(INBOX_QUEUE, 10))

    assert (done.title, done.level, done.job_id, done.run_id) == ("greeter: done", "info", "greeter", ok.run_id)
    assert '"text":"hi"' in done.message and done.source == "scheduler"
    assert (failed.title, failed.level, failed.job_id) == ("breaker: error", "error", "breaker")
    assert "fail AgenTool failed: on purpose" in failed.message
