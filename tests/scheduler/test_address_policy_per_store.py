"""One address policy per store: a job keeps the address policy it was accepted under, whichever process runs it.

Two schedulers on one database, as two processes would be (each its own connections, lease and
toolkits): a runner on loopback (private and loopback addresses allowed) and a front-end that
listens beyond loopback with `--http-allow 127.0.0.2` (`ToolkitConfig(exposed=True, ...)`). Real
HTTP servers: one on 127.0.0.2 that redirects, one on 127.0.0.1 that records what reaches it. A
job accepted by the front-end and redirected to 127.0.0.1 must not reach it, however its run
starts (fire, retry, catch-up, backfill, run_now); a job accepted by the runner follows the redirect.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from agentool_bridge.context import RunInfo, running
from agentool_bridge.toolkits.config import AddressRules, ToolkitConfig
from agentool_bridge.toolkits.http import AddressNotAllowedError
from mcp_scheduler import (
    JobEvent,
    JobExecutionError,
    RunEvent,
    SchedulerEvent,
    SchedulerRuntime,
    SchedulerService,
    ServiceConfig,
)
from mcp_scheduler.models import RunRecord, SchedulerInput
from mcp_scheduler.policies import PolicyInput
from mcp_scheduler.store import store_for
from mcp_scheduler.timestamps import utcnow
from tests.scheduler._support import EventRecorder, finished, request, set_stored_next_run
from tests.toolkits._http_server import LocalServer, serve_http

FRONT_END = ToolkitConfig(exposed=True, http_allow=("127.0.0.2",))
REFUSED = "Refusing to connect to 127.0.0.1"


@pytest.fixture(scope="module")
def target() -> Iterator[LocalServer]:
    """The server on 127.0.0.1 that a job accepted by the front-end must never reach."""
    with serve_http("127.0.0.1") as running:
        yield running


@pytest.fixture(scope="module")
def redirector() -> Iterator[LocalServer]:
    """The server on 127.0.0.2 (allowed by the front-end's --http-allow) that redirects."""
    with serve_http("127.0.0.2") as running:
        yield running


@dataclass
class Hop:
    """A URL on 127.0.0.2 that redirects to a path of its own on 127.0.0.1."""

    url: str
    path: str

    def reached(self, target: LocalServer) -> int:
        return len(target.received_at(self.path))

    def destination(self, target: LocalServer) -> str:
        return f"{target.url}{self.path}"


@pytest.fixture
def hop(redirector: LocalServer, target: LocalServer) -> Hop:
    path = f"/echo/{uuid.uuid4().hex}"
    return Hop(f"{redirector.url}/redirect?code=307&to={target.url}{path}", path)


def job_event(job_id: str, kind: str) -> Callable[[SchedulerEvent], bool]:
    return lambda e: isinstance(e, JobEvent) and e.job_id == job_id and e.kind == kind


def fetch(url: str) -> dict[str, Any]:
    return {"operation": "request", "url": url}


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, db_path: str) -> str:
    return db_path if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


class Processes:
    """Runtimes on one database, each with its own injector (its own http toolkit and policy); closed at the end."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.opened: list[SchedulerRuntime] = []

    async def open(self, toolkit_config: ToolkitConfig | None = None, **config: Any) -> SchedulerService:
        runtime = SchedulerRuntime(
            ServiceConfig(database=self.database, timezone="UTC", flush_delay=0.01, **config),
            toolkit_config=toolkit_config,
        )
        self.opened.append(runtime)
        await runtime.open()
        return runtime.service

    async def pair(self) -> tuple[SchedulerService, SchedulerService]:
        """A loopback runner (opened first: it holds the lease) and an exposed front-end standby."""
        runner = await self.open()
        front = await self.open(FRONT_END)
        assert runner.is_runner and not front.is_runner
        return runner, front

    async def close(self) -> None:
        for runtime in reversed(self.opened):
            await runtime.close()
        self.opened.clear()


@pytest.fixture
async def processes(database: str) -> AsyncIterator[Processes]:
    opened = Processes(database)
    yield opened
    await opened.close()


@pytest.fixture
async def sqlite_processes(db_path: str) -> AsyncIterator[Processes]:
    opened = Processes(db_path)
    yield opened
    await opened.close()


async def _finished(recorder: EventRecorder, job_id: str, count: int = 1) -> list[RunRecord]:
    events = await recorder.wait_for(finished(job_id), count=count, within=10)
    return [e.record for e in events if isinstance(e, RunEvent)]


async def _failed_with_refusal(recorder: EventRecorder, job_id: str, count: int = 1) -> list[RunRecord]:
    records = await _finished(recorder, job_id, count)
    for record in records:
        assert record.status == "error" and record.error is not None, record
        assert record.error.type == "AddressNotAllowedError"
        assert REFUSED in record.error.message and "accepted this job" in record.error.message
    return records


# ---------------------------------------------------------------------------- scheduled fires


async def test_a_fire_of_a_job_accepted_by_an_exposed_front_end_is_not_redirected_to_loopback_by_the_runner(
    processes: Processes, hop: Hop, target: LocalServer, redirector: LocalServer
) -> None:
    runner, front = await processes.pair()
    recorder = EventRecorder(runner.events)

    await front.schedule(request("via-front", "once", "now", "http", fetch(hop.url)))

    await _failed_with_refusal(recorder, "via-front")
    assert hop.reached(target) == 0
    assert hop.destination(target) in redirector.redirected  # refused at the redirect's hop, not before
    info, _ = await front.get_job("via-front")
    assert info.address_policy is not None and "127.0.0.2" in info.address_policy


async def test_a_job_accepted_by_the_loopback_runner_follows_the_same_redirect(
    processes: Processes, hop: Hop, target: LocalServer
) -> None:
    runner, _ = await processes.pair()
    recorder = EventRecorder(runner.events)

    await runner.schedule(request("via-runner", "once", "now", "http", fetch(hop.url)))

    [record] = await _finished(recorder, "via-runner")
    assert record.status == "success", record.error
    assert hop.reached(target) == 1
    info, _ = await runner.get_job("via-runner")
    assert info.address_policy is None  # accepted on loopback: no limit of its own to show


async def test_the_stored_policy_is_the_accepting_process_s_and_no_request_field_sets_it(
    processes: Processes, database: str, hop: Hop
) -> None:
    runner, front = await processes.pair()

    await front.schedule(request("stamped-front", "interval", "1 hour", "http", fetch(hop.url)))
    await runner.schedule(request("stamped-runner", "interval", "1 hour", "http", fetch(hop.url)))

    store = store_for(database)
    await store.open()
    try:
        stored = {job_id: await store.load_job(job_id) for job_id in ("stamped-front", "stamped-runner")}
    finally:
        await store.close()
    assert {job_id: job.definition.address_policy for job_id, job in stored.items() if job is not None} == {
        "stamped-front": AddressRules(exposed=True, http_allow=("127.0.0.2",)),
        "stamped-runner": AddressRules(exposed=False, http_allow=()),
    }
    with pytest.raises(ValueError, match="address_policy"):
        SchedulerInput.model_validate({"operation": "schedule", "address_policy": {"exposed": False}})


# ---------------------------------------------------------------------------- retries, catch-up, backfill, run_now


async def test_every_retry_of_a_job_accepted_by_the_front_end_is_refused_too(
    sqlite_processes: Processes, hop: Hop, target: LocalServer
) -> None:
    runner, front = await sqlite_processes.pair()
    recorder = EventRecorder(runner.events)

    await front.schedule(request("retried", "once", "now", "http", fetch(hop.url),
                                 policy=PolicyInput(max_attempts=3, retry_delay=0.05)))

    records = await _failed_with_refusal(recorder, "retried", count=3)
    assert [(r.trigger, r.attempt) for r in records] == [("schedule", 1), ("retry", 2), ("retry", 3)]
    assert hop.reached(target) == 0


async def test_a_backfill_on_the_runner_of_a_job_accepted_by_the_front_end_is_refused(
    sqlite_processes: Processes, hop: Hop, target: LocalServer
) -> None:
    runner, front = await sqlite_processes.pair()
    recorder = EventRecorder(runner.events)
    await front.schedule(request("backfilled", "interval", "1 hour", "http", fetch(hop.url)))

    summary = await runner.backfill("backfilled", "3 hours", wait=True)

    assert summary.statuses == {"error": 3}
    records = await _failed_with_refusal(recorder, "backfilled", count=3)
    assert {r.trigger for r in records} == {"backfill"}
    assert hop.reached(target) == 0


async def test_a_catch_up_of_a_job_accepted_by_the_front_end_is_refused(
    sqlite_processes: Processes, hop: Hop, target: LocalServer, db_path: str
) -> None:
    _, front = await sqlite_processes.pair()
    await front.schedule(request("caught-up", "interval", "1 hour", "http", fetch(hop.url)))
    await sqlite_processes.close()
    set_stored_next_run(db_path, "caught-up", utcnow() - timedelta(seconds=5))  # missed while everything was down

    runner = SchedulerRuntime(ServiceConfig(database=db_path, timezone="UTC", flush_delay=0.01))
    sqlite_processes.opened.append(runner)
    recorder = EventRecorder(runner.service.events)
    await runner.open()

    [record] = await _failed_with_refusal(recorder, "caught-up")
    assert record.trigger == "catch_up"
    assert hop.reached(target) == 0


async def test_run_now_of_a_stored_job_in_another_process_obeys_the_policy_it_was_accepted_under(
    processes: Processes, hop: Hop, target: LocalServer
) -> None:
    runner, front = await processes.pair()
    await front.schedule(request("run-by-hand", "interval", "1 hour", "http", fetch(hop.url)))

    with pytest.raises(JobExecutionError, match=REFUSED):
        await runner.run_now(SchedulerInput(operation="run_now", job_id="run-by-hand"))
    assert hop.reached(target) == 0


async def test_an_ad_hoc_run_now_uses_the_calling_process_s_own_policy(
    sqlite_processes: Processes, hop: Hop, target: LocalServer
) -> None:
    runner, front = await sqlite_processes.pair()
    ad_hoc = SchedulerInput(operation="run_now", agentool_name="http", input_data=fetch(hop.url))

    record = await runner.run_now(ad_hoc)
    assert record.status == "success" and hop.reached(target) == 1

    with pytest.raises(JobExecutionError, match="this server listens beyond loopback"):
        await front.run_now(ad_hoc)
    assert hop.reached(target) == 1


# ---------------------------------------------------------------------------- updates


async def test_an_update_stores_the_policy_of_the_process_that_accepted_it(
    processes: Processes, hop: Hop, target: LocalServer
) -> None:
    runner, front = await processes.pair()
    await runner.schedule(request("updated", "interval", "1 hour", "http", fetch(hop.url)))
    await runner.run_now(SchedulerInput(operation="run_now", job_id="updated"))
    assert hop.reached(target) == 1

    # A change of name only, through the front-end: the job now keeps the front-end's policy.
    seen = EventRecorder(runner.events)
    await front.update(SchedulerInput(operation="update", job_id="updated", job_name="renamed"))
    await seen.wait_for(job_event("updated", "updated"))  # the runner has followed the change
    with pytest.raises(JobExecutionError, match=REFUSED):
        await runner.run_now(SchedulerInput(operation="run_now", job_id="updated"))
    assert hop.reached(target) == 1

    # Updated again through the loopback runner: its policy again.
    await runner.update(SchedulerInput(operation="update", job_id="updated", job_name="back"))
    await runner.run_now(SchedulerInput(operation="run_now", job_id="updated"))
    assert hop.reached(target) == 2


async def test_replacing_a_job_through_the_front_end_stores_the_front_end_s_policy(
    sqlite_processes: Processes, hop: Hop, target: LocalServer
) -> None:
    runner, front = await sqlite_processes.pair()
    await runner.schedule(request("replaced", "interval", "1 hour", "http", fetch(hop.url)))
    seen = EventRecorder(runner.events)

    await front.schedule(request("replaced", "interval", "2 hours", "http", fetch(hop.url), if_exists="replace"))
    await seen.wait_for(job_event("replaced", "updated"))

    with pytest.raises(JobExecutionError, match=REFUSED):
        await runner.run_now(SchedulerInput(operation="run_now", job_id="replaced"))
    assert hop.reached(target) == 0


async def test_an_update_through_the_front_end_of_a_job_it_would_refuse_is_refused_and_changes_nothing(
    sqlite_processes: Processes, target: LocalServer
) -> None:
    runner, front = await sqlite_processes.pair()
    direct = f"{target.url}/echo/{uuid.uuid4().hex}"
    await runner.schedule(request("direct", "interval", "1 hour", "http", fetch(direct)))

    with pytest.raises(AddressNotAllowedError, match="this server listens beyond loopback") as refused:
        await front.update(SchedulerInput(operation="update", job_id="direct", job_name="renamed"))

    assert "--http-allow 127.0.0.1" in str(refused.value)
    info, _ = await runner.get_job("direct")
    assert info.job_name is None and info.address_policy is None


# ---------------------------------------------------------------------------- notify webhooks


async def test_a_webhook_of_a_job_accepted_by_the_front_end_is_not_redirected_to_loopback(
    sqlite_processes: Processes, hop: Hop, target: LocalServer
) -> None:
    runner, front = await sqlite_processes.pair()
    recorder = EventRecorder(runner.events)
    webhook = {"operation": "webhook", "url": hop.url, "message": "nightly build failed"}

    await front.schedule(request("hook", "once", "now", "notify", webhook))

    await _failed_with_refusal(recorder, "hook")
    assert hop.reached(target) == 0


# ---------------------------------------------------------------------------- jobs stored before jobs kept their policy


async def test_a_job_stored_without_a_policy_runs_under_the_runner_s_own_policy(
    sqlite_processes: Processes, hop: Hop, target: LocalServer, db_path: str
) -> None:
    _, front = await sqlite_processes.pair()
    await front.schedule(request("older", "interval", "1 hour", "http", fetch(hop.url)))
    await sqlite_processes.close()
    # The row as an earlier version wrote it: no address_policy in the definition.
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE scheduler_jobs SET definition = json_remove(definition, '$.address_policy')")
    conn.close()
    set_stored_next_run(db_path, "older", utcnow() - timedelta(seconds=1))

    runner = SchedulerRuntime(ServiceConfig(database=db_path, timezone="UTC", flush_delay=0.01))
    sqlite_processes.opened.append(runner)
    recorder = EventRecorder(runner.service.events)
    await runner.open()

    [record] = await _finished(recorder, "older")
    assert record.status == "success", record.error
    assert hop.reached(target) == 1
    info, _ = await runner.service.get_job("older")
    assert info.address_policy is None

    # Asked for by hand on an exposed standby, the run is the runner's (as `mcp-scheduler run`): under the same
    # policy as the job's scheduled fires, not under a third one.
    exposed = await sqlite_processes.open(FRONT_END)
    again = await exposed.run_now(SchedulerInput(operation="run_now", job_id="older"))
    assert again.status == "success" and hop.reached(target) == 2


async def test_a_job_scheduled_from_inside_a_run_stores_no_looser_a_policy_than_that_run_s(
    sqlite_processes: Processes, hop: Hop
) -> None:
    runner, _ = await sqlite_processes.pair()
    accepted = AddressRules(exposed=True, http_allow=("127.0.0.2",))

    with running(RunInfo("parent", "run-1", "schedule", address_policy=accepted)):
        await runner.schedule(request("child", "interval", "1 hour", "http", fetch(hop.url)))

    info, _ = await runner.get_job("child")
    assert info.address_policy is not None and "127.0.0.2" in info.address_policy
