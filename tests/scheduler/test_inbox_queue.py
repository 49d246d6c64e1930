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
    assert done.source == "job" and "hi" not in done.message
    assert done.untrusted == {"untrusted": True, "from": "job 'greeter' (echo)",
                              "content": {"operation": "echo", "text": "hi", "count": 1}}
    assert (failed.title, failed.level, failed.job_id, failed.source) == ("breaker: error", "error", "breaker", "job")
    assert "on purpose" not in failed.message and "StandInFailure" in failed.message
    assert failed.untrusted is not None and "fail AgenTool failed: on purpose" in failed.untrusted["content"]


async def test_a_long_result_sent_to_the_inbox_is_clipped_and_says_how_long_it_was(
    make_runtime: RuntimeFactory, echo: Any
) -> None:
    runtime = await make_runtime()
    await runtime.service.run_now(SchedulerInput(
        operation="run_now", job_id="long", agentool_name="echo",
        input_data={"operation": "echo", "text": "x" * 10_000}, result_queue="inbox",
    ))

    [message] = (InboxMessage.model_validate(m.message) for m in runtime.queues.peek(INBOX_QUEUE, 10))

    assert message.untrusted is not None and message.untrusted["clipped"] is True
    assert len(message.untrusted["content"]) == 4000 and message.untrusted["length"] > 10_000
