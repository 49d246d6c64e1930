"""A scheduler service on the PostgreSQL store: it schedules, fires and records as it does on SQLite,
alone (no lease) and as runner and standby (with the PostgreSQL lease of mcp_scheduler.postgres_lease)."""

from __future__ import annotations

from agentool_bridge import AgenToolInjector
from mcp_scheduler import SchedulerRuntime, ServiceConfig
from tests.scheduler._support import EventRecorder, finished, register_echo, request


async def test_a_service_on_postgres_fires_a_once_job_and_records_its_history(postgres_url: str) -> None:
    from mcp_scheduler.store.postgres import PostgresStore

    injector = AgenToolInjector()
    config = ServiceConfig(timezone="UTC", flush_delay=0.01, use_lease=False)
    with injector.activate():
        echo = register_echo()
    async with SchedulerRuntime(config, injector=injector, store=PostgresStore(postgres_url)) as runtime:
        service = runtime.service
        recorder = EventRecorder(service.events)

        await service.schedule(request("once-now", "once", "now"))
        await recorder.wait_for(finished("once-now", "success"))
        assert len(echo.inputs) == 1
        info, recent = await service.get_job("once-now")
        assert info.state == "completed"
        assert [r.status for r in recent] == ["success"]

    # Written to the database, not only kept in memory: a store opened afresh reads it back.
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        stored = await store.load_job("once-now")
        history = await store.history("once-now")
    finally:
        await store.close()
    assert stored is not None and stored.state == "completed" and stored.last_status == "success"
    assert [(r.status, r.result) for r in history] == [("success", echo.inputs[0])]


async def test_a_retry_on_postgres_is_claimed_through_the_lease_and_runs(postgres_url: str) -> None:
    from mcp_scheduler.policies import PolicyInput
    from tests.scheduler.test_retries import FLAKY, register_flaky

    injector = AgenToolInjector()
    config = ServiceConfig(database=postgres_url, timezone="UTC", flush_delay=0.01)
    with injector.activate():
        flaky = register_flaky(failures=1)
    async with SchedulerRuntime(config, injector=injector) as runtime:
        recorder = EventRecorder(runtime.service.events)
        policy = PolicyInput(max_attempts=2, retry_delay=0.2)
        await runtime.service.schedule(request("flaky", "once", "now", "flaky", FLAKY, policy=policy))

        [done] = await recorder.wait_for(finished("flaky", "success"))
        _, recent = await runtime.service.get_job("flaky")

    assert (done.record.trigger, done.record.attempt) == ("retry", 2)  # type: ignore[attr-defined]
    assert [(r.status, r.attempt) for r in recent] == [("success", 2), ("error", 1)]
    assert len(flaky.inputs) == 2
