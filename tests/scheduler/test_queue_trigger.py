"""Queue triggers (policy.on_message): a job runs once for each message on its queue, in order, with the message as
its input; its overlap policy, a pause and a stop leave messages waiting; the inbox and a second consumer are refused;
a runner that opens settles the messages a stopped runner left in flight (run once, never twice)."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import Field

from agentool_bridge import BaseOperationInput
from mcp_scheduler import InvalidJobInputError, RunEvent, SchedulerInput, SchedulerRuntime
from mcp_scheduler.policies import PolicyInput
from mcp_scheduler.principals import READ, RUN, WRITE, Principal, acting_as
from mcp_scheduler.queue_owners import queue_for
from mcp_scheduler.scheduler.queue_trigger import CLAIM_PREFIX
from tests.scheduler._support import Calls, EventRecorder, Slow, finished, register_recording, started

from .conftest import RuntimeFactory

ALICE = Principal("token:alice", None, frozenset({READ, WRITE, RUN, "scheduler:kind:echo"}))


class RecordInput(BaseOperationInput):
    """Records what it is given."""

    operation: Literal["record"] = Field(description="Record the payload.")
    payload: Any = Field(default=None, description="Any JSON.")


def consumer(job_id: str, queue: str, *, kind: str = "echo", data: dict[str, Any] | None = None,
             **policy: Any) -> SchedulerInput:
    """A daily job (it does not fire during a test) that runs for each message on `queue`."""
    input_data = data or ({"operation": "echo", "text": "!trigger:message/text"} if kind == "echo"
                          else {"operation": "wait", "label": "!trigger:message/text"})
    return SchedulerInput(operation="schedule", job_id=job_id, schedule_type="cron", schedule="0 3 1 1 *",
                          agentool_name=kind, input_data=input_data,
                          policy=PolicyInput.model_validate({"on_message": {"queue": queue}, **policy}))


def queue_runs(recorder: EventRecorder, job_id: str) -> list[Any]:
    return [event.record for event in recorder.runs(job_id) if event.record.trigger == "queue"]


async def opened(make_runtime: RuntimeFactory) -> tuple[SchedulerRuntime, EventRecorder]:
    runtime = await make_runtime()
    return runtime, EventRecorder(runtime.events)


async def test_each_message_runs_the_job_once_in_order_whether_enqueued_before_or_after_the_job(
    make_runtime: RuntimeFactory, echo: Calls
) -> None:
    runtime, recorder = await opened(make_runtime)
    queues = runtime.queues
    ids = [queues.enqueue("orders", {"text": "one"}).message_id, queues.enqueue("orders", {"text": "two"}).message_id]

    await runtime.service.schedule(consumer("take-orders", "orders"))
    ids += [queues.enqueue("orders", {"text": text}).message_id for text in ("three", "four")]
    await recorder.wait_for(finished("take-orders", "success"), count=4)

    assert [data["text"] for data in echo.inputs] == ["one", "two", "three", "four"]
    records = queue_runs(recorder, "take-orders")
    assert [next(i for i in ids if i in (r.note or "")) for r in records] == ids  # one run per message, in order
    assert all("of queue 'orders'" in (r.note or "") for r in records)
    counts = queues.counts("orders")
    assert (counts.size, counts.in_flight) == (0, 0)  # every message acked
    assert queues.claimed(CLAIM_PREFIX) == []
    info, _ = await runtime.service.get_job("take-orders")
    assert "runs once for each message on queue 'orders'" in info.policy_description


async def test_trigger_references_read_the_message_its_id_and_the_queue(
    make_runtime: RuntimeFactory, injector: Any
) -> None:
    calls = register_recording("record", RecordInput)
    runtime, recorder = await opened(make_runtime)
    payload = {"body": "!trigger:message", "first": "!trigger:message/items/0", "id": "!trigger:message_id",
               "queue": "!trigger:queue"}
    await runtime.service.schedule(consumer("rec", "jobs/in", kind="record",
                                            data={"operation": "record", "payload": payload}))

    sent = runtime.queues.enqueue("jobs/in", {"items": ["a", "b"], "n": 1})
    await recorder.wait_for(finished("rec", "success"))

    assert calls.inputs[0]["payload"] == {"body": {"items": ["a", "b"], "n": 1}, "first": "a",
                                          "id": sent.message_id, "queue": "jobs/in"}


async def test_overlap_skip_takes_no_message_while_a_run_is_in_progress(
    make_runtime: RuntimeFactory, slow: Slow
) -> None:
    runtime, recorder = await opened(make_runtime)
    await runtime.service.schedule(consumer("slowly", "work", kind="slow"))  # overlap: skip, the default
    for text in ("a", "b", "c"):
        runtime.queues.enqueue("work", {"text": text})

    await recorder.wait_for(started("slowly"))
    counts = runtime.queues.counts("work")
    assert (counts.size, counts.in_flight, slow.started) == (2, 0, 1)  # the others wait in the queue, not skipped

    slow.release.set()
    await recorder.wait_for(finished("slowly", "success"), count=3)
    assert [r.status for r in queue_runs(recorder, "slowly")] == ["success"] * 3
    assert not [e for e in recorder.runs("slowly") if e.record.status == "skipped"]


async def test_allow_all_runs_messages_at_once_up_to_max_instances(make_runtime: RuntimeFactory, slow: Slow) -> None:
    runtime, recorder = await opened(make_runtime)
    request = consumer("wide", "many", kind="slow", overlap="allow_all").model_copy(update={"max_instances": 2})
    await runtime.service.schedule(request)
    for text in ("a", "b", "c"):
        runtime.queues.enqueue("many", {"text": text})

    await recorder.wait_for(started("wide"), count=2)
    assert runtime.queues.counts("many").size == 1 and slow.started == 2

    slow.release.set()
    await recorder.wait_for(finished("wide", "success"), count=3)


async def test_a_paused_job_leaves_its_messages_waiting_until_resumed(
    make_runtime: RuntimeFactory, echo: Calls
) -> None:
    runtime, recorder = await opened(make_runtime)
    await runtime.service.schedule(consumer("held", "held-q"))
    await runtime.service.schedule(consumer("other", "other-q"))
    await runtime.service.pause("held")
    runtime.queues.enqueue("held-q", {"text": "waits"})
    runtime.queues.enqueue("other-q", {"text": "runs"})

    await recorder.wait_for(finished("other"))  # the consumer has had its turn since both messages came
    assert runtime.queues.counts("held-q").size == 1
    assert not recorder.runs("held")

    await runtime.service.resume("held")
    await recorder.wait_for(finished("held", "success"))
    assert [data["text"] for data in echo.inputs] == ["runs", "waits"]


async def test_a_stopped_scheduler_leaves_messages_waiting_until_started(
    make_runtime: RuntimeFactory, echo: Calls
) -> None:
    runtime, recorder = await opened(make_runtime)
    await runtime.service.schedule(consumer("stops", "stop-q"))
    await runtime.service.stop()
    runtime.queues.enqueue("stop-q", {"text": "after the start"})
    await runtime.service.run_now(SchedulerInput(operation="run_now", agentool_name="echo",
                                                 input_data={"operation": "echo", "text": "sync"}))

    assert runtime.queues.counts("stop-q").size == 1

    await runtime.service.start()
    await recorder.wait_for(finished("stops", "success"))
    assert [data["text"] for data in echo.inputs] == ["sync", "after the start"]


async def test_the_inbox_a_bad_name_and_a_second_consumer_of_a_queue_are_refused(
    make_runtime: RuntimeFactory, echo: Calls
) -> None:
    runtime, _ = await opened(make_runtime)
    service = runtime.service
    with pytest.raises(InvalidJobInputError, match="cannot name 'inbox'"):
        await service.schedule(consumer("nosy", "inbox"))
    with pytest.raises(InvalidJobInputError, match="not a usable queue name"):
        await service.schedule(consumer("bad", "no spaces"))
    await service.schedule(consumer("first", "shared"))
    with pytest.raises(InvalidJobInputError, match="already starts job 'first'"):
        await service.schedule(consumer("second", "shared"))
    await service.schedule(consumer("second", "elsewhere"))
    with pytest.raises(InvalidJobInputError, match="already starts job 'first'"):
        await service.update(SchedulerInput(operation="update", job_id="second",
                                            policy=PolicyInput.model_validate({"on_message": {"queue": "shared"}})))
    assert (await service.get_job("second"))[0].policy.on_message.queue == "elsewhere"  # type: ignore[union-attr]

    with acting_as(ALICE):  # another owner's consumer of the same queue is its own business
        await service.schedule(consumer("alices", "shared"))
        [entry] = [e for e in await service.audit.read(job_id="alices") if e.operation == "create"]
    assert entry.fields["policy"]["on_message"] == {"queue": "shared"}


async def test_a_runner_that_opens_runs_a_message_whose_run_never_started_and_not_one_whose_run_did(
    make_runtime: RuntimeFactory, echo: Calls
) -> None:
    first = await make_runtime()
    await first.service.schedule(consumer("settle", "left"))
    ran = await first.service.run_now(SchedulerInput(operation="run_now", job_id="settle"))  # a run that started
    await first.close()

    # What a runner killed at the wrong moment leaves: two messages in flight under claims, one whose run's start
    # was committed (the run_now's id stands for it), one whose run never started.
    second = await make_runtime(open=False)
    queues = second.queues
    started_id = queues.enqueue("left", {"text": "already ran"}).message_id
    waiting_id = queues.enqueue("left", {"text": "never ran"}).message_id
    assert queues.take("left", auto_ack=False, claim=f"{CLAIM_PREFIX}{ran.run_id} of settle").message_id == started_id
    assert queues.take("left", auto_ack=False, claim=f"{CLAIM_PREFIX}{'0' * 32} of settle").message_id == waiting_id
    echo.inputs.clear()
    recorder = EventRecorder(second.events)

    await second.open()
    await recorder.wait_for(lambda e: isinstance(e, RunEvent) and e.kind == "finished" and e.record.trigger == "queue")

    assert [data["text"] for data in echo.inputs] == ["never ran"]
    assert queues.claimed(CLAIM_PREFIX) == [] and queues.counts("left").in_flight == 0
    assert queues.counts("left").size == 0


async def test_a_standby_takes_no_message(make_runtime: RuntimeFactory, echo: Calls) -> None:
    runner, runs = await opened(make_runtime)
    standby = await make_runtime()
    assert runner.service.is_runner and not standby.service.is_runner
    standby_runs = EventRecorder(standby.events)
    await standby.service.schedule(consumer("one-runner", "shared-q"))

    for text in ("x", "y"):
        standby.queues.enqueue("shared-q", {"text": text})
    await runs.wait_for(finished("one-runner", "success"), count=2)

    assert [data["text"] for data in echo.inputs] == ["x", "y"]
    assert all(e.remote for e in standby_runs.runs("one-runner"))  # read from the store, run by the runner


async def test_a_consumer_of_an_owner_without_admin_takes_the_messages_of_its_owners_queue_only(
    make_runtime: RuntimeFactory, echo: Calls
) -> None:
    runtime, recorder = await opened(make_runtime)
    queues = runtime.queues
    with acting_as(ALICE):
        await runtime.service.schedule(consumer("alices-orders", "orders"))
    shared = queues.enqueue("orders", {"text": "the operator's"}).message_id  # the shared queue of that name
    own = queues.enqueue(queue_for("orders", ALICE), {"text": "alice's"}).message_id  # hers, as her runs write it
    [record] = [event.record for event in await recorder.wait_for(finished("alices-orders", "success"))]

    assert [data["text"] for data in echo.inputs] == ["alice's"]
    assert own in (record.note or "") and "of queue 'orders'" in (record.note or "")  # the name its owner gave
    assert [m.message_id for m in queues.peek("orders", 10)] == [shared]  # left for whoever reads the shared one

