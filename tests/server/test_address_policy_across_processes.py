"""One address policy per store, with real processes: a front-end on 0.0.0.0 (`--http-allow 127.0.0.2`,
bearer token) and a runner on 127.0.0.1 share one SQLite file; a job accepted by the front-end keeps the
front-end's policy when the runner, or `mcp-scheduler run` in a terminal, runs it.

Real HTTP servers on two loopback addresses (Linux routes all of 127.0.0.0/8 to loopback): one on
127.0.0.2 redirects to one on 127.0.0.1, which records what reaches it. The runner (127.0.0.1,
loopback: private and loopback addresses allowed) would follow the redirect for a job of its own;
the front-end would have refused 127.0.0.1, so for a job it accepted the runner refuses it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests._net import eventually, free_port, stop, wait_until_listening
from tests.reliability._support import runs
from tests.server.conftest import run_cli, structured
from tests.toolkits._http_server import LocalServer, serve_http

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

TOKEN = "policy-T0ken_18"
REFUSED = "Refusing to connect to 127.0.0.1"


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"  # a server on 0.0.0.0 answers there too


@dataclass
class Deployment:
    database: Path
    runner: Server
    front: Server


@contextlib.contextmanager
def serving(tmp: Path, name: str, database: Path | str, host: str, *extra: str) -> Iterator[Server]:
    port = free_port()
    log_path = tmp / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_scheduler", "--transport", "http", "--host", host, "--port", str(port),
             "--db", str(database), "--timezone", "UTC", "--auth-token", TOKEN, *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ),
        )
    try:
        wait_until_listening(process, port, log=str(log_path))
        yield Server(port, process)
    finally:
        stop(process)


@contextlib.asynccontextmanager
async def connect(server: Server) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as transport:
        async with Client(streamable_http_client(server.url, http_client=transport)) as client:
            yield client


async def call(server: Server, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with connect(server) as client:
        return structured(await client.call_tool(tool, arguments))


@pytest.fixture(scope="module")
def target() -> Iterator[LocalServer]:
    with serve_http("127.0.0.1") as running:
        yield running


@pytest.fixture(scope="module")
def redirector() -> Iterator[LocalServer]:
    with serve_http("127.0.0.2") as running:
        yield running


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("policy")
    database = tmp / "shared.db"
    with serving(tmp, "runner", database, "127.0.0.1") as runner:
        # Started first, and asked: it holds the runner lease before the front-end opens the file.
        assert asyncio.run(call(runner, "scheduler_status", {}))["role"] == "runner"
        with serving(tmp, "front", database, "0.0.0.0", "--http-allow", "127.0.0.2") as front:
            assert asyncio.run(call(front, "scheduler_status", {}))["role"] == "standby"
            yield Deployment(database, runner, front)


@dataclass
class Hop:
    url: str  # on 127.0.0.2, redirecting to `path` on 127.0.0.1
    path: str


@pytest.fixture
def hop(redirector: LocalServer, target: LocalServer) -> Hop:
    path = f"/echo/{uuid.uuid4().hex}"
    return Hop(f"{redirector.url}/redirect?to={target.url}{path}", path)


def http_job(job_id: str, url: str, schedule_type: str = "once", schedule: str = "now") -> dict[str, Any]:
    return {"schedule_type": schedule_type, "schedule": schedule, "agentool_name": "http", "job_id": job_id,
            "input_data": {"operation": "request", "url": url}}


async def finished_run(database: Path, job_id: str) -> dict[str, Any]:
    """The job's first finished run record, once the runner has written it."""
    done = lambda: [r for r in runs(database) if r["job_id"] == job_id and r["status"] != "running"]  # noqa: E731
    await eventually(lambda: bool(done()), within=20, what=f"a finished run of {job_id}")
    return done()[0]


async def test_a_job_scheduled_through_the_exposed_front_end_is_not_redirected_to_loopback_by_the_runner(
    deployment: Deployment, hop: Hop, target: LocalServer, redirector: LocalServer
) -> None:
    await call(deployment.front, "schedule_job", http_job("via-front", hop.url))

    record = await finished_run(deployment.database, "via-front")

    assert target.received_at(hop.path) == []
    assert record["status"] == "error"
    assert record["error"]["type"] == "AddressNotAllowedError"
    assert REFUSED in record["error"]["message"]
    assert f"{target.url}{hop.path}" in redirector.redirected  # it went as far as the redirect, no further
    history = await call(deployment.front, "get_history", {"job_id": "via-front"})
    assert [r["status"] for r in history["runs"]] == ["error"]
    job = (await call(deployment.front, "get_job", {"job_id": "via-front"}))["job"]
    assert "127.0.0.2" in job["address_policy"]


async def test_the_same_job_scheduled_through_the_loopback_runner_follows_the_redirect(
    deployment: Deployment, hop: Hop, target: LocalServer
) -> None:
    await call(deployment.runner, "schedule_job", http_job("via-runner", hop.url))

    record = await finished_run(deployment.database, "via-runner")

    assert record["status"] == "success", record.get("error")
    assert len(target.received_at(hop.path)) == 1


async def test_mcp_scheduler_run_in_a_terminal_obeys_the_policy_the_job_was_accepted_under(
    deployment: Deployment, hop: Hop, target: LocalServer
) -> None:
    await call(deployment.front, "schedule_job", http_job("by-hand", hop.url, "interval", "1 hour"))

    done = run_cli("run", "by-hand", "--db", str(deployment.database))  # the runner runs it

    assert done.returncode == 1, done.stderr
    assert REFUSED in done.stderr
    assert target.received_at(hop.path) == []


async def test_no_tool_argument_sets_the_stored_policy(deployment: Deployment, hop: Hop) -> None:
    arguments = {**http_job("forged", hop.url, "interval", "1 hour"), "address_policy": {"exposed": False}}

    async with connect(deployment.front) as client:
        result = await client.call_tool("schedule_job", arguments)

    assert result.is_error
    assert not [r for r in runs(deployment.database) if r["job_id"] == "forged"]
    jobs = await call(deployment.front, "list_jobs", {})
    assert "forged" not in [j["job_id"] for j in jobs["jobs"]]
