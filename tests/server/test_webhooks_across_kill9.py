"""A delivery handed over by a standby across a kill -9 of the runner, with real processes: a runner and a standby
are two `mcp-scheduler --transport http` servers on one SQLite file (the pair of test_chains_across_kill9.py), and the
`sleeper` toolkit writes down in a file of its own each run that really happened (whatever the records say).

The standby answers a signed delivery 202 once its request is committed. Whether the runner never read the request
(it is frozen with SIGSTOP before the delivery, then killed) or took it and was waiting for room to start it, the
standby that takes over runs the delivery's run once, under the id it answered with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from tests._net import eventually
from tests.reliability._support import marks
from tests.server.conftest import run_cli
from tests.server.test_address_policy_across_processes import call
from tests.server.test_chains_across_kill9 import Pair, pair  # noqa: F401 - the fixture
from tests.server.test_events_across_processes import signed

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")


async def hook_for(servers: Pair, job_id: str) -> dict[str, Any]:
    made = await asyncio.to_thread(run_cli, "hook", "create", job_id, "--db", servers.database, "--json")
    assert made.returncode == 0, made.stderr
    hook: dict[str, Any] = json.loads(made.stdout)
    return hook


async def deliver(servers: Pair, hook: dict[str, Any], payload: dict[str, Any]) -> str:
    """POST a signed delivery to the standby; the run id of its 202."""
    body = json.dumps(payload).encode()
    async with httpx2.AsyncClient() as http:
        answer = await http.post(f"http://127.0.0.1:{servers.standby.port}/hooks/{hook['name']}", content=body,
                                 headers=signed(hook["secret"], body))
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


@contextlib.contextmanager
def frozen(servers: Pair) -> Iterator[None]:
    """The runner stopped (SIGSTOP, by its pid) for the block; killed -9 at its end if the block did not kill it."""
    os.kill(servers.runner.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        if servers.runner.process.poll() is None:
            servers.kill_runner()


async def test_a_delivery_the_runner_never_read_before_it_was_killed_runs_once_in_the_standby(
    pair: Pair,  # noqa: F811 - the fixture
) -> None:
    await call(pair.runner, "schedule_job", pair.sleeper("hooked", "!trigger:body/token", 0))
    hook = await hook_for(pair, "hooked")

    with frozen(pair):
        run_id = await deliver(pair, hook, {"token": "delivery-1"})
        # Committed before the 202: the request is in the store, never started, and the frozen runner has not read it.
        [request] = pair.records("hooked")
        assert (request["run_id"], request["status"], request["started_at"]) == (run_id, "running", None)
        assert "taken by" not in request["note"]
        pair.kill_runner()

    await eventually(lambda: [r["status"] for r in pair.records("hooked")] == ["success"], within=30,
                     what="the delivery's run in the standby")
    assert marks(pair.marks) == [("delivery-1", "start"), ("delivery-1", "end")]  # it ran once
    [record] = pair.records("hooked")
    assert (record["run_id"], record["trigger"]) == (run_id, "webhook")  # under the id the 202 gave
    log = (pair.logs / "standby.log").read_text()
    assert "1 webhook run(s) had not started when the last runner stopped: started here" in log
    assert f"run {run_id} (webhook) asked for by another process runs here (pid {pair.standby.process.pid})" in log

    await call(pair.standby, "run_now", {"job_id": "hooked"})  # whatever the new runner would start has started
    assert [m for m in marks(pair.marks) if m[0] == "delivery-1"] == [("delivery-1", "start"), ("delivery-1", "end")]


async def test_a_delivery_the_runner_took_and_had_not_started_when_killed_runs_once_in_the_standby(
    pair: Pair,  # noqa: F811 - the fixture
) -> None:
    # One run of the job at a time (--max-runs-per-job 1, buffer_one): the delivery's run waits behind one by hand.
    await call(pair.runner, "schedule_job", pair.sleeper("hooked", "!trigger:body/token", 5, overlap="buffer_one"))
    hook = await hook_for(pair, "hooked")
    by_hand = asyncio.create_task(call(pair.runner, "run_now", {"job_id": "hooked"}))
    await eventually(lambda: ("!trigger:body/token", "start") in marks(pair.marks), what="the run by hand to start")

    run_id = await deliver(pair, hook, {"token": "delivery-2"})
    taken = f"taken by the runner (pid {pair.runner.process.pid} "
    await eventually(lambda: any(r["run_id"] == run_id and taken in (r["note"] or "") for r in pair.records("hooked")),
                     what="the runner to take the request")
    [request] = [r for r in pair.records("hooked") if r["run_id"] == run_id]
    assert (request["status"], request["started_at"]) == ("running", None)  # taken, waiting for room
    pair.kill_runner()
    with contextlib.suppress(Exception):
        await by_hand  # the runner it asked is gone

    await eventually(lambda: [r["status"] for r in pair.records("hooked", "webhook")] == ["success"], within=30,
                     what="the delivery's run in the standby")
    assert [m for m in marks(pair.marks) if m[0] == "delivery-2"] == [("delivery-2", "start"), ("delivery-2", "end")]
    assert [(r["run_id"], r["trigger"], r["status"]) for r in pair.records("hooked")] == [
        (pair.records("hooked", "run_now")[0]["run_id"], "run_now", "interrupted"), (run_id, "webhook", "success")]
