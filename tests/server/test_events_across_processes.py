"""Jobs started by events, with real processes (issue 25): a runner and a standby are two `mcp-scheduler --transport
http` servers on one SQLite file. A chain of three jobs runs in order in the runner with results passed along, and a
failure stops it; a signed delivery to the standby runs in the runner; every way of pausing a job sends one
`job.paused` event, which a real receiver verifies with the independent `standardwebhooks` package.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from standardwebhooks.webhooks import Webhook

from tests._net import authorized, eventually
from tests.reliability._support import runs
from tests.scheduler.test_outbound_events import SECRET, Receiver, receiver
from tests.server.conftest import hosted, run_cli, structured
from tests.server.test_address_policy_across_processes import TOKEN, Server, serving

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

YEARLY = {"schedule_type": "cron", "schedule": "0 3 1 1 *"}  # chained jobs run after others, not on their own


@dataclass
class Pair:
    database: str
    logs: Path
    runner: Server
    standby: Server
    at_runner: Client
    at_standby: Client
    events: Receiver

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()


@pytest.fixture
async def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Pair]:
    database = str(tmp_path / "shared.db")
    monkeypatch.setenv("EVENTS_SECRET", SECRET)
    events = ("--events-url", "", "--events-secret-env", "EVENTS_SECRET")
    with receiver() as sink:
        flags = (*events[:1], sink.url, *events[2:])
        with serving(tmp_path, "runner", database, "127.0.0.1", *flags) as runner:
            async with hosted(Client(authorized(runner.url, TOKEN))) as at_runner:
                assert structured(await at_runner.call_tool("scheduler_status", {}))["role"] == "runner"
                with serving(tmp_path, "standby", database, "127.0.0.1", *flags) as standby:
                    async with hosted(Client(authorized(standby.url, TOKEN))) as at_standby:
                        assert structured(await at_standby.call_tool("scheduler_status", {}))["role"] == "standby"
                        yield Pair(database, tmp_path, runner, standby, at_runner, at_standby, sink)


def kv(job_id: str, operation: str, value: Any = None, *, after: str | None = None, **policy: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"operation": operation, "key": job_id}
    if operation == "set":
        data["value"] = value
    if after is not None:
        policy["after"] = {"job": after, "on": "success"}
    return {"job_id": job_id, **YEARLY, "agentool_name": "storage_kv", "input_data": data,
            **({"policy": policy} if policy else {})}


async def finished(database: str, job_ids: list[str], count: int, within: float = 20.0) -> list[dict[str, Any]]:
    """The stored records of `job_ids` once `count` of them have finished (another process writes them)."""
    def done() -> bool:
        return len([r for r in runs(database) if r["job_id"] in job_ids and r["status"] != "running"]) >= count

    await eventually(done, within=within, what=f"{count} finished runs of {job_ids}")
    return [r for r in runs(database) if r["job_id"] in job_ids and r["status"] != "running"]


async def stored(client: Client, key: str) -> Any:
    got = structured(await client.call_tool(
        "run_now", {"agentool_name": "storage_kv", "input_data": {"operation": "get", "key": key}}))
    return got["result"]["data"]["value"]


async def test_a_chain_of_three_jobs_runs_in_order_in_the_runner_passing_results_along(pair: Pair) -> None:
    client = pair.at_standby
    structured(await client.call_tool("schedule_job", kv("fetch", "set", {"n": 7})))
    structured(await client.call_tool("schedule_job", kv("report", "set", "!trigger:result", after="fetch")))
    structured(await client.call_tool("schedule_job", kv("tell", "set", "!trigger:summary", after="report")))

    structured(await client.call_tool("run_now", {"job_id": "fetch"}))  # asked of the runner through the store
    fetch, report, tell = await finished(pair.database, ["fetch", "report", "tell"], 3)

    assert [(r["job_id"], r["trigger"], r["status"]) for r in (fetch, report, tell)] == [
        ("fetch", "run_now", "success"), ("report", "chain", "success"), ("tell", "chain", "success")]
    assert fetch["finished_at"] <= report["started_at"] and report["finished_at"] <= tell["started_at"]
    assert report["note"] == f"chained after run {fetch['run_id']} of job 'fetch' (success)"
    assert tell["note"] == f"chained after run {report['run_id']} of job 'report' (success)"
    assert await stored(pair.at_runner, "report") == fetch["result"]
    assert await stored(pair.at_runner, "tell") == report["summary"]
    runner_log, standby_log = pair.log("runner"), pair.log("standby")
    for chained in (report, tell):  # started by the runner only
        assert f"run {chained['run_id']} chained after" in runner_log
        assert chained["run_id"] not in standby_log


async def test_a_failure_stops_the_chain(pair: Pair) -> None:
    client = pair.at_runner
    structured(await client.call_tool("schedule_job", kv("broken", "get")))  # no such key: the run fails
    structured(await client.call_tool("schedule_job", kv("next", "set", "!trigger:summary", after="broken")))
    structured(await client.call_tool("schedule_job", kv("last", "set", 1, after="next")))
    structured(await client.call_tool("schedule_job", kv("other", "set", 2)))

    assert (await client.call_tool("run_now", {"job_id": "broken"})).is_error
    structured(await client.call_tool("run_now", {"job_id": "other"}))  # after the failure, in the same runner
    await finished(pair.database, ["other"], 1)

    records = [r for r in runs(pair.database) if r["job_id"] in ("broken", "next", "last")]
    assert [(r["job_id"], r["status"]) for r in records] == [("broken", "error")]


def signed(secret: str, body: bytes) -> dict[str, str]:
    msg_id = f"msg_{uuid.uuid4().hex}"
    stamp = datetime.fromtimestamp(int(time.time()), UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, stamp, body), "Content-Type": "application/json"}


async def test_a_delivery_to_the_standby_runs_in_the_runner(pair: Pair) -> None:
    structured(await pair.at_standby.call_tool("schedule_job", kv("hooked", "set", "!trigger:body/payload")))
    made = await asyncio.to_thread(run_cli, "hook", "create", "hooked", "--db", pair.database, "--json")
    assert made.returncode == 0, made.stderr
    hook = json.loads(made.stdout)
    body = json.dumps({"payload": {"n": 7}}).encode()

    async with httpx2.AsyncClient() as http:
        answer = await http.post(f"http://127.0.0.1:{pair.standby.port}/hooks/{hook['name']}", content=body,
                                 headers=signed(hook["secret"], body))
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    [record] = await finished(pair.database, ["hooked"], 1)

    assert (record["run_id"], record["trigger"], record["status"]) == (run_id, "webhook", "success")
    assert f"run {run_id} (webhook) asked for by another process runs here (pid {pair.runner.process.pid})" in \
        pair.log("runner")
    assert await stored(pair.at_standby, "hooked") == {"n": 7}
    history = structured(await pair.at_standby.call_tool("get_history", {"job_id": "hooked"}))["runs"]
    assert [(r["run_id"], r["status"]) for r in history] == [(run_id, "success")]


async def test_every_way_of_pausing_sends_one_job_paused_event(pair: Pair) -> None:
    for job_id in ("by-cli", "by-standby", "by-runner"):
        structured(await pair.at_runner.call_tool("schedule_job", kv(job_id, "set", 1)))
    failing = kv("failing", "get", pause_after_failures=1) | {"schedule_type": "interval", "schedule": "1 second"}

    done = await asyncio.to_thread(run_cli, "pause", "by-cli", "--db", pair.database)
    assert done.returncode == 0, done.stderr
    structured(await pair.at_standby.call_tool("pause_job", {"job_id": "by-standby"}))
    structured(await pair.at_runner.call_tool("pause_job", {"job_id": "by-runner"}))
    structured(await pair.at_standby.call_tool("schedule_job", failing))  # fails at once: paused by the runner
    events = await pair.events.wait_for(5, within=20)

    paused = sorted((e["data"]["job_id"], e["data"]["paused_by"]) for e in events if e["type"] == "job.paused")
    assert paused == [("by-cli", "user"), ("by-runner", "user"), ("by-standby", "user"), ("failing", "scheduler")]
    assert [e["type"] for e in events if e["type"] != "job.paused"] == ["run.failed"]
    with contextlib.suppress(AssertionError):  # a second event of a pause would come within a moment: none does
        await pair.events.wait_for(6, within=1)
    assert len(pair.events.events) == 5 and pair.events.refused == []
