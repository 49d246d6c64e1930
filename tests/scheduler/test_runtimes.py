"""Two runtimes in one process: no state is shared between them (no module globals left)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field

from agentool_bridge import AgenToolInjector, BaseOperationInput, RoutingConfig, get_injector, register_agentool
from mcp_scheduler import QueueEvent, SchedulerInput, SchedulerRuntime, SchedulerStateError, ServiceConfig
from tests.scheduler._support import EventRecorder, finished, register_echo, request


class LookupInput(BaseOperationInput):
    """Reads a key through whatever injector is current, the way AgenTools call each other."""

    operation: Literal["lookup"] = Field(description="Read `key` from storage_kv through get_injector().")
    key: str = Field(description="The key.")


def register_lookup(runtime: SchedulerRuntime) -> None:
    async def lookup(key: str) -> dict[str, Any]:
        out = await get_injector().run("storage_kv", {"operation": "get", "key": key})
        return {"value": out.data["value"]}

    register_agentool(
        "lookup", LookupInput, RoutingConfig(operation_map={"lookup": ("lookup", lambda m: {"key": m.key})}),
        [lookup], registry=runtime.registry,
    )


def stored_job_ids(database: Path) -> list[str]:
    with sqlite3.connect(database) as conn:
        ids = [row[0] for row in conn.execute("SELECT job_id FROM scheduler_jobs ORDER BY job_id")]
    conn.close()
    return ids


async def test_two_runtimes_schedule_and_fire_on_their_own_databases_and_registries(
    injector: AgenToolInjector, tmp_path: Path
) -> None:
    paths = {name: tmp_path / f"{name}.sqlite" for name in ("a", "b")}
    runtimes = {
        name: SchedulerRuntime(ServiceConfig(database=str(path), timezone="UTC", flush_delay=0.01))
        for name, path in paths.items()
    }
    echoes = {name: register_echo(registry=rt.registry) for name, rt in runtimes.items()}
    for rt in runtimes.values():
        register_lookup(rt)
    recorders = {name: EventRecorder(rt.events) for name, rt in runtimes.items()}
    try:
        for rt in runtimes.values():
            await rt.open()
        for name, rt in runtimes.items():
            await rt.injector.run("storage_kv", {"operation": "set", "key": "who", "value": name})
            text = {"operation": "echo", "text": f"from {name}"}
            await rt.service.schedule(request("same-id", "once", "now", input_data=text, result_queue="results"))
            await rt.service.schedule(request(f"only-{name}"))
            await rt.service.schedule(
                request("who", "once", "now", agentool_name="lookup", input_data={"operation": "lookup", "key": "who"})
            )

        for name, recorder in recorders.items():
            [fired] = await recorder.wait_for(finished("same-id", "success"))
            [asked] = await recorder.wait_for(finished("who", "success"))
            assert fired.record.result["text"] == f"from {name}"  # type: ignore[union-attr]
            # the AgenTool's own get_injector() call reached its runtime's storage_kv, not the other one
            assert asked.record.result == {"value": name}  # type: ignore[union-attr]
            queued = await recorder.wait_for(lambda e: isinstance(e, QueueEvent))
            assert [(e.queue_name, e.message["job_id"]) for e in queued] == [("results", "same-id")]

        for name, rt in runtimes.items():
            assert echoes[name].inputs == [{"operation": "echo", "text": f"from {name}", "count": 1}]
            assert [m.message["result"]["text"] for m in rt.queues.peek("results", 5)] == [f"from {name}"]
            jobs, _ = rt.service.list_jobs(include_completed=True)
            assert sorted(j.job_id for j in jobs) == sorted(["same-id", f"only-{name}", "who"])
        assert get_injector() not in {rt.injector for rt in runtimes.values()}
    finally:
        for rt in runtimes.values():
            await rt.close()

    for name, path in paths.items():
        assert stored_job_ids(path) == sorted(["same-id", f"only-{name}", "who"])


async def test_a_closed_runtime_releases_its_toolkits_and_cannot_be_reopened(tmp_path: Path) -> None:
    runtime = SchedulerRuntime(ServiceConfig(database=str(tmp_path / "c.sqlite"), timezone="UTC"))
    register_echo(registry=runtime.registry)
    async with runtime:
        await runtime.service.run_now(SchedulerInput(operation="run_now", agentool_name="echo",
                                                     input_data={"operation": "echo", "text": "x"}))
    assert runtime.closed and not runtime.is_open
    assert runtime.registry.names() == ["echo"]  # its built-in toolkits are gone, the AgenTools of others stay
    with pytest.raises(SchedulerStateError, match="closed"):
        await runtime.open()
