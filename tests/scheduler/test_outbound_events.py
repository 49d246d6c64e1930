"""Run events sent to the operator's URL (--events-url), signed in the Standard Webhooks format: a real receiver on
127.0.0.1 verifies every delivery with the independent `standardwebhooks` package."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from agentool_bridge import AgenToolInjector
from agentool_bridge.standard_webhooks import new_secret
from agentool_bridge.toolkits.config import ToolkitConfig
from mcp_scheduler import JobExecutionError, SchedulerInput, SchedulerRuntime, ServiceConfig
from mcp_scheduler.errors import SetupError
from mcp_scheduler.outbound_events import OutboundEventsConfig
from mcp_scheduler.policies import PolicyInput
from tests.scheduler._support import Calls, request

SECRET = new_secret()
FAIL = {"operation": "fail", "reason": "broken"}


@dataclass
class Receiver:
    """What the receiver verified (the bodies in order), every attempt's webhook-id, and how many answers
    should be 500 before it answers 200."""

    url: str
    failures: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    async def wait_for(self, count: int, within: float = 5.0) -> list[dict[str, Any]]:
        def wait() -> bool:
            with self.changed:
                return self.changed.wait_for(lambda: len(self.events) >= count, within)

        assert await asyncio.to_thread(wait), f"received {self.events}, refused {self.refused}"
        return self.events


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        state = self.server.state
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status = 200
        with state.changed:
            state.attempts.append(headers.get("webhook-id", ""))
            try:
                verified = Webhook(SECRET).verify(body, headers)
            except WebhookVerificationError as exc:
                state.refused.append(str(exc))
                status = 401
            else:
                if state.failures > 0:
                    state.failures -= 1
                    status = 500
                else:
                    state.events.append(verified)
            state.changed.notify_all()
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: Receiver


@contextmanager
def receiver() -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/events")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def sink() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


Factory = Callable[..., Awaitable[SchedulerRuntime]]


@pytest.fixture
async def make_runtime(tmp_path: Path, injector: AgenToolInjector) -> AsyncIterator[Factory]:
    runtimes: list[SchedulerRuntime] = []

    async def factory(urls: tuple[str, ...] = (), toolkit_config: ToolkitConfig | None = None) -> SchedulerRuntime:
        events = OutboundEventsConfig(urls, SECRET, retry_delays=(0.05, 0.05, 0.05)) if urls else None
        runtime = SchedulerRuntime(ServiceConfig(database=str(tmp_path / "s.db"), timezone="UTC", flush_delay=0.01),
                                   injector=injector, toolkit_config=toolkit_config, outbound_events=events)
        runtimes.append(runtime)
        await runtime.open()
        return runtime

    yield factory
    for runtime in reversed(runtimes):
        await runtime.close()


async def test_a_success_and_a_failure_are_sent_in_order(
    make_runtime: Factory, sink: Receiver, echo: Calls, fail: Calls
) -> None:
    service = (await make_runtime((sink.url,))).service
    await service.schedule(request("ok", job_name="Greeter"))
    await service.schedule(request("bad", agentool_name="fail", input_data=FAIL))

    done = await service.run_now(SchedulerInput(operation="run_now", job_id="ok"))
    with pytest.raises(JobExecutionError, match="broken"):
        await service.run_now(SchedulerInput(operation="run_now", job_id="bad"))
    completed, failed = await sink.wait_for(2)

    assert [completed["type"], failed["type"]] == ["run.completed", "run.failed"]
    data = completed["data"]
    assert (data["job_id"], data["job_name"], data["run_id"], data["status"]) == ("ok", "Greeter", done.run_id,
                                                                                  "success")
    assert data["summary"] == done.summary and "result" not in data and "input_data" not in data
    assert (failed["data"]["status"], failed["data"]["job_name"]) == ("error", None)
    assert "broken" in failed["data"]["error"]["message"]
    assert set(completed) == {"type", "timestamp", "data"}


async def test_a_pause_is_sent_whoever_paused(make_runtime: Factory, sink: Receiver, fail: Calls, echo: Calls) -> None:
    service = (await make_runtime((sink.url,))).service
    await service.schedule(request("mine"))
    await service.pause("mine")
    [by_user] = await sink.wait_for(1)
    assert (by_user["type"], by_user["data"]["job_id"], by_user["data"]["paused_by"]) == ("job.paused", "mine",
                                                                                          "user")

    await service.schedule(request("failing", "interval", "1 second", "fail", FAIL,
                                   policy=PolicyInput(pause_after_failures=1)))
    events = await sink.wait_for(3)

    assert [(e["type"], e["data"]["job_id"]) for e in events[1:]] == [("run.failed", "failing"),
                                                                       ("job.paused", "failing")]
    assert events[2]["data"]["paused_by"] == "scheduler" and "broken" in events[2]["data"]["reason"]


async def test_a_receiver_that_fails_twice_gets_the_event_once(
    make_runtime: Factory, sink: Receiver, echo: Calls
) -> None:
    sink.failures = 2
    runtime = await make_runtime((sink.url,))
    await runtime.service.schedule(request("ok"))
    await runtime.service.run_now(SchedulerInput(operation="run_now", job_id="ok"))

    [event] = await sink.wait_for(1)
    await runtime.close()  # what was queued is delivered first: nothing more comes

    assert event["type"] == "run.completed" and len(sink.events) == 1
    assert len(sink.attempts) == 3 and len(set(sink.attempts)) == 1  # the same message id on every attempt
    assert sink.refused == []


async def test_nothing_is_sent_without_the_flag(make_runtime: Factory, sink: Receiver, echo: Calls) -> None:
    assert OutboundEventsConfig.from_settings((), None, {}) is None
    runtime = await make_runtime()
    await runtime.service.schedule(request("ok"))
    await runtime.service.run_now(SchedulerInput(operation="run_now", job_id="ok"))
    await runtime.close()

    assert runtime.outbound_events is None and sink.attempts == []


@pytest.mark.parametrize(("secret_env", "environ", "match"), [
    (None, {}, "needs --events-secret-env"),
    ("HOOK_SECRET", {}, "HOOK_SECRET is not set"),
    ("HOOK_SECRET", {"HOOK_SECRET": "hunter2"}, "not a 'whsec_<base64>' secret"),
    ("HOOK_SECRET", {"HOOK_SECRET": "whsec_!!!"}, "not a 'whsec_<base64>' secret"),
])
def test_a_missing_or_malformed_secret_is_refused_at_start(
    secret_env: str | None, environ: dict[str, str], match: str
) -> None:
    with pytest.raises(SetupError, match=match):
        OutboundEventsConfig.from_settings(("http://127.0.0.1:9/events",), secret_env, environ)
    config = OutboundEventsConfig.from_settings(("http://127.0.0.1:9/events",), "S", {"S": SECRET})
    assert config is not None and SECRET not in repr(config)


async def test_a_loopback_url_needs_http_allow_when_exposed(make_runtime: Factory, sink: Receiver) -> None:
    with pytest.raises(SetupError, match="--events-url .* needs --http-allow"):
        await make_runtime((sink.url,), ToolkitConfig(exposed=True))

    runtime = await make_runtime((sink.url,), ToolkitConfig(exposed=True, http_allow=("127.0.0.1",)))
    assert runtime.outbound_events is not None and json.dumps(runtime.outbound_events.config.urls)


def test_serve_refuses_to_start_without_the_secret(tmp_path: Path) -> None:
    from tests._cli import environment

    env = environment(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "mcp_scheduler", "serve", "--db", str(tmp_path / "s.db"), "--events-url",
         "http://127.0.0.1:9/events", "--events-secret-env", "NOT_SET_HERE"],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1
    assert "--events-secret-env NOT_SET_HERE: the variable NOT_SET_HERE is not set" in done.stderr
