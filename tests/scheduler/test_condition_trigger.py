"""Condition triggers (policy.when): a job runs when its http or mcp check turns true, once per change, against a
real HTTP server on 127.0.0.1 whose answer the test flips and the MCP test server over stdio; a failed check is no
change; a paused job is not checked; what was seen is stored, so a restarted scheduler does not fire the same change
again; and a real server process does the same."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import ValidationError

from agentool_bridge import AgenToolInjector
from agentool_bridge.toolkits.config import ToolkitConfig
from mcp_scheduler import InvalidJobInputError, SchedulerInput, SchedulerRuntime, ServiceConfig
from mcp_scheduler.errors import MissingScopeError
from mcp_scheduler.policies import PolicyInput
from mcp_scheduler.principals import WRITE, Principal, acting_as
from tests._net import eventually
from tests.scheduler._support import Calls, EventRecorder, VirtualClock, finished
from tests.server.conftest import HttpServer, http_server, structured

EVERY = 5.0
READY = {"json": {"path": "$.ready", "equals": True}}


class Flipper:
    """A real HTTP server on 127.0.0.1 whose `/ready` answers `{"ready": answer}`, or 500 when `answer` is "error";
    `hits` counts the requests it answered."""

    def __init__(self) -> None:
        self.answer: bool | str = False
        self.hits = 0
        self._lock = threading.Lock()
        flipper = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                answer = flipper.answer
                status, body = (500, b"down") if answer == "error" else (
                    200, json.dumps({"ready": answer, "note": f"ready is {answer}"}).encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with flipper._lock:
                    flipper.hits += 1

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/ready"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Flipper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def flipper() -> Iterator[Flipper]:
    with Flipper() as running:
        yield running


def when(url: str, **extra: Any) -> dict[str, Any]:
    return {"agentool_name": "http", "input_data": {"operation": "request", "url": url}, "holds": READY,
            "every": EVERY, **extra}


def job(job_id: str, condition: dict[str, Any], text: str = "!trigger:checked_at") -> SchedulerInput:
    """A yearly job (its schedule does not fire in a test) that runs when `condition` turns true."""
    return SchedulerInput(operation="schedule", job_id=job_id, schedule_type="cron", schedule="0 3 1 1 *",
                          agentool_name="echo", input_data={"operation": "echo", "text": text},
                          policy=PolicyInput.model_validate({"when": condition}))


class Watching:
    """A scheduler in virtual time with a job watching the flipper: `check(answer)` makes the next check see
    `answer` and returns once it was judged (and a run it fired started)."""

    def __init__(self, runtime: SchedulerRuntime, clock: VirtualClock, flipper: Flipper, checks: int) -> None:
        self.runtime, self.clock, self.flipper = runtime, clock, flipper
        self.recorder = EventRecorder(runtime.service.events)
        self.checks = checks  # the checks made (or asked for) so far

    async def settled(self) -> None:
        """Wait until the check in progress was answered and judged."""
        await eventually(lambda: self.flipper.hits >= self.checks, within=10, what="a condition check")
        watch = self.runtime.service._extra.conditions
        await eventually(lambda: not watch.busy, within=10, what="the check judged")

    async def check(self, answer: bool | str) -> None:
        self.flipper.answer = answer
        self.clock.advance(EVERY)
        self.checks += 1
        await self.settled()

    async def first(self, answer: bool | str, job_id: str = "watcher") -> None:
        """Schedule the job; its condition is checked at once (seeing `answer`)."""
        self.flipper.answer = answer
        await self.runtime.service.schedule(job(job_id, when(self.flipper.url)))
        self.checks += 1
        await self.settled()

    def runs(self, job_id: str = "watcher") -> list[Any]:
        return [event.record for event in self.recorder.runs(job_id, "started")]


@pytest.fixture
async def watching(make_runtime: Any, echo: Calls, flipper: Flipper) -> Watching:
    clock = VirtualClock()
    return Watching(await make_runtime(clock=clock), clock, flipper, flipper.hits)


async def test_false_false_true_true_true_false_true_runs_the_job_exactly_twice(
    watching: Watching, echo: Calls
) -> None:
    await watching.first(False)
    for answer in (False, True, True, True, False, True):
        await watching.check(answer)
    await watching.recorder.wait_for(finished("watcher"), count=2)

    first, second = watching.runs()
    assert (first.trigger, second.trigger) == ("condition", "condition")
    assert first.note.startswith("its condition turned true at ") and "(false since " in first.note
    assert len(echo.inputs) == 2 and all(data["text"].startswith("20") for data in echo.inputs)  # !trigger:checked_at
    info, _ = await watching.runtime.service.get_job("watcher")
    assert "runs when its http check turns true (checked every 5 s)" in info.policy_description
    assert "its check was true from " in info.policy_description


async def test_a_failed_check_is_no_change_and_is_noted_in_the_job(watching: Watching, echo: Calls) -> None:
    await watching.first(True)  # its first answer: a change to true
    await watching.check("error")
    info, _ = await watching.runtime.service.get_job("watcher")
    await watching.check(True)  # true before the failure: no change
    await watching.check(False)
    await watching.check("error")
    await watching.check(True)  # false before the failure: a change
    await watching.recorder.wait_for(finished("watcher"), count=2)

    assert len(watching.runs()) == 2
    assert "its last check, at " in info.policy_description and "failed (no change): HttpStatusError" in (
        info.policy_description)
    again, _ = await watching.runtime.service.get_job("watcher")
    assert "failed" not in again.policy_description  # it answers again


async def test_the_runs_input_reads_the_checks_result(watching: Watching, echo: Calls) -> None:
    watching.flipper.answer = True
    await watching.runtime.service.schedule(job("reader", when(watching.flipper.url),
                                                text="!trigger:result/data/body/content/note"))
    watching.checks += 1
    await watching.settled()
    await watching.recorder.wait_for(finished("reader", "success"))

    assert [data["text"] for data in echo.inputs] == ["ready is True"]


async def test_a_paused_job_is_not_checked_and_a_resumed_one_fires_on_a_change_seen_after(
    watching: Watching, echo: Calls
) -> None:
    await watching.first(False)
    await watching.runtime.service.pause("watcher")
    watching.flipper.answer = True
    hits = watching.flipper.hits
    for _ in range(3):
        watching.clock.advance(EVERY)
        for _ in range(5):
            await asyncio.sleep(0)  # the watch's turn (it has nothing to check)
    assert not watching.runtime.service._extra.conditions.busy

    await watching.runtime.service.resume("watcher")  # checked at once: true, after false
    watching.checks = hits + 1
    await watching.settled()
    await watching.recorder.wait_for(finished("watcher"))
    assert watching.flipper.hits == hits + 1  # none while it was paused
    assert len(watching.runs()) == 1


async def test_a_restarted_scheduler_that_finds_the_condition_true_does_not_fire_again(
    make_runtime: Any, echo: Calls, flipper: Flipper, db_path: str
) -> None:
    clock = VirtualClock()
    first = Watching(await make_runtime(clock=clock), clock, flipper, flipper.hits)
    await first.first(True)
    await first.recorder.wait_for(finished("watcher"))
    await first.runtime.close()

    clock = VirtualClock()
    hits = flipper.hits
    again = Watching(await make_runtime(clock=clock), clock, flipper, hits + 1)  # the same store file
    await again.settled()  # checked when it opened: still true
    await again.check(True)
    assert not again.runs()
    await again.check(False)
    await again.check(True)
    await again.recorder.wait_for(finished("watcher"))
    assert len(again.runs()) == 1 and len(echo.inputs) == 2


async def test_a_condition_is_checked_as_a_job_of_its_kind_at_schedule_time(
    make_runtime: Any, echo: Calls, flipper: Flipper
) -> None:
    service = (await make_runtime()).service
    with pytest.raises(InvalidJobInputError, match="policy.when: input_data does not fit job kind 'http'"):
        await service.schedule(job("bad-input", when(flipper.url) | {"input_data": {"operation": "fetch"}}))
    with pytest.raises(InvalidJobInputError, match="policy.when: success check tools_used does not fit"):
        await service.schedule(job("bad-holds", when(flipper.url) | {"holds": {"tools_used": True}}))
    with pytest.raises(ValidationError, match="every"):
        job("too-often", when(flipper.url) | {"every": 1})
    with pytest.raises(InvalidJobInputError, match="policy.when: .*'!env:NOT_ALLOWED'"):
        await service.schedule(job("secret", when(flipper.url) | {
            "input_data": {"operation": "request", "url": flipper.url, "headers": {"X-Key": "!env:NOT_ALLOWED"}}}))
    echo_only = Principal("someone", None, frozenset({WRITE, "scheduler:kind:echo"}))
    with acting_as(echo_only), pytest.raises(MissingScopeError, match="scheduler:kind:http"):
        await service.schedule(job("no-scope", when(flipper.url)))
    assert service.list_jobs()[1] == 0 and flipper.hits == 0  # nothing kept, nothing checked


# ------------------------------------------------------------------------------------------ the mcp kind


@pytest.fixture
async def with_mcp(tmp_path: Path, injector: AgenToolInjector, echo: Calls) -> AsyncIterator[SchedulerRuntime]:
    server = Path(__file__).parents[1] / "toolkits" / "mcp_test_server.py"
    servers = tmp_path / "servers.json"
    servers.write_text(json.dumps({"mcpServers": {"calc": {"command": sys.executable, "args": [str(server)]}}}))
    config = ServiceConfig(database=str(tmp_path / "mcp.db"), timezone="UTC", flush_delay=0.01)
    clock = VirtualClock()
    async with SchedulerRuntime(config, injector=injector, toolkit_config=ToolkitConfig(servers_file=str(servers)),
                                clock=clock) as runtime:
        yield runtime


async def test_an_mcp_check_fires_when_the_tools_answer_turns_true(with_mcp: SchedulerRuntime, tmp_path: Path,
                                                                   echo: Calls) -> None:
    flag = tmp_path / "flag"
    flag.write_text("not yet")
    condition = {"agentool_name": "mcp", "every": EVERY, "holds": {"contains": "ready"},
                 "input_data": {"operation": "call_tool", "server": "calc", "tool": "read_text",
                                "arguments": {"path": str(flag)}}}
    recorder = EventRecorder(with_mcp.service.events)
    watch = with_mcp.service._extra.conditions
    clock = with_mcp.service.clock
    assert isinstance(clock, VirtualClock)
    await with_mcp.service.schedule(job("mcp-watcher", condition, text="!trigger:result/data/text/content"))

    async def checked(count: int) -> None:
        await eventually(lambda: watch.checked >= count, within=20, what=f"check {count} judged")

    await checked(1)  # "not yet": false
    flag.write_text("ready now")
    clock.advance(EVERY)
    await checked(2)
    await recorder.wait_for(finished("mcp-watcher", "success"))
    clock.advance(EVERY)
    await checked(3)  # still true: no change

    assert [data["text"] for data in echo.inputs] == ["ready now"]


# ------------------------------------------------------------------------------------- a real server process

TOKEN = "condition-token"


async def test_a_server_process_runs_a_watched_job_once_per_change(tmp_path: Path, flipper: Flipper) -> None:
    with http_server(tmp_path, "--transport", "http", "--auth-token", TOKEN) as server:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http, \
                Client(streamable_http_client(f"{server.base}/mcp", http_client=http)) as client:
            await _once_per_change(server, client, flipper)


async def _once_per_change(server: HttpServer, client: Client, flipper: Flipper) -> None:
    job_id = f"watched-{uuid.uuid4().hex[:8]}"
    flipper.answer = True
    structured(await client.call_tool("schedule_job", {
        "job_id": job_id, "schedule_type": "cron", "schedule": "0 3 1 1 *", "agentool_name": "storage_kv",
        "input_data": {"operation": "set", "key": job_id, "value": "!trigger:checked_at"},
        "policy": {"when": when(flipper.url)},
    }))

    async def runs() -> list[dict[str, Any]]:
        return list(structured(await client.call_tool("get_history", {"job_id": job_id}))["runs"])

    async def hits(count: int) -> None:
        await eventually(lambda: flipper.hits >= count, within=20, what=f"check {count}")

    await hits(1)  # its first answer, true: a run
    await _runs_become(runs, 1)
    flipper.answer = False
    await hits(2)
    flipper.answer = True
    await hits(3)  # false -> true: a second run
    await _runs_become(runs, 2)
    await hits(5)  # the check after that (true again) was judged before this one started: no run
    done = await runs()
    assert len(done) == 2 and {run["trigger"] for run in done} == {"condition"}
    assert {run["status"] for run in done} == {"success"}


async def _runs_become(runs: Any, count: int) -> None:
    with anyio.fail_after(20):
        while True:
            if len([run for run in await runs() if run["status"] != "running"]) >= count:
                return
            await anyio.sleep(0.05)  # the runs are in another process: their records are the condition
