"""Inbound webhooks against a real HTTP server process: a signed delivery (signed by the independent
`standardwebhooks` package) runs the job with its body in the input; unsigned, wrongly signed, replayed and stale
ones do not, and leave no run; a hook over its rate is refused."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from standardwebhooks.webhooks import Webhook

from agentool_bridge.standard_webhooks import new_secret, signed_headers
from mcp_scheduler.scheduler.hooks import RATE
from tests.server.conftest import HttpServer, http_server, run_cli, structured

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

TOKEN = "hooks-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    with http_server(tmp_path_factory.mktemp("hooks"), "--transport", "http", "--auth-token", TOKEN) as running:
        yield running


@contextlib.asynccontextmanager
async def mcp_client(server: HttpServer) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as transport:
        async with Client(streamable_http_client(f"{server.base}/mcp", http_client=transport)) as c:
            yield c


async def _job(client: Client, value: Any) -> str:
    job_id = f"hooked-{uuid.uuid4().hex[:8]}"
    structured(
        await client.call_tool(
            "schedule_job",
            {
                "job_id": job_id,
                "schedule_type": "interval",
                "schedule": "1 day",
                "agentool_name": "storage_kv",
                "input_data": {"operation": "set", "key": job_id, "value": value},
            },
        )
    )
    return job_id


def _hook(server: HttpServer, job_id: str) -> dict[str, Any]:
    done = run_cli("hook", "create", job_id, "--db", server.database, "--json", "--base-url", f"{server.base}/")
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["secret"].startswith("whsec_") and created["url"] == f"{server.base}/hooks/{created['name']}"
    return created


async def _post(server: HttpServer, name: str, body: bytes, headers: dict[str, str]) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.post(
            f"{server.base}/hooks/{name}", content=body, headers={"Content-Type": "application/json", **headers}
        )


def _theirs(secret: str, body: bytes, *, at: float | None = None) -> dict[str, str]:
    msg_id = f"msg_{uuid.uuid4().hex}"
    stamp = datetime.fromtimestamp(int(time.time() if at is None else at), UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, stamp, body),
    }


async def _runs(client: Client, job_id: str) -> list[dict[str, Any]]:
    answer = structured(await client.call_tool("get_history", {"job_id": job_id, "limit": 50}))
    return answer["runs"]


async def _finished(client: Client, job_id: str, count: int) -> list[dict[str, Any]]:
    with anyio.fail_after(10):
        while True:
            runs = await _runs(client, job_id)
            if len([run for run in runs if run["status"] != "running"]) >= count:
                return runs
            await anyio.sleep(0.05)  # the run is in another process: its record is the condition


async def test_a_signed_delivery_runs_the_job_with_its_body_and_bad_ones_do_not(server: HttpServer) -> None:
    async with mcp_client(server) as client:
        await _signed_runs_bad_do_not(server, client)


async def _signed_runs_bad_do_not(server: HttpServer, client: Client) -> None:
    job_id = await _job(client, "!trigger:body/payload")
    hook = _hook(server, job_id)
    body = json.dumps({"payload": {"n": 7, "text": "!env:HOME"}}).encode()
    refused = {
        "unsigned": await _post(server, hook["name"], body, {}),
        "wrong secret": await _post(server, hook["name"], body, _theirs(new_secret(), body)),
        "stale": await _post(server, hook["name"], body, _theirs(hook["secret"], body, at=time.time() - 400)),
        "unknown hook": await _post(server, "no-such-hook", body, _theirs(hook["secret"], body)),
    }
    assert {why: r.status_code for why, r in refused.items()} == {
        "unsigned": 401,
        "wrong secret": 401,
        "stale": 401,
        "unknown hook": 404,
    }
    signed = _theirs(hook["secret"], body)
    accepted = await _post(server, hook["name"], body, signed)
    assert accepted.status_code == 202, accepted.text
    replayed = await _post(server, hook["name"], body, signed)
    assert replayed.status_code == 409
    runs = await _finished(client, job_id, 1)
    assert [(run["run_id"], run["trigger"], run["status"]) for run in runs] == [
        (accepted.json()["run_id"], "webhook", "success")
    ]
    got = structured(
        await client.call_tool(
            "run_now", {"agentool_name": "storage_kv", "input_data": {"operation": "get", "key": job_id}}
        )
    )
    assert json.dumps({"n": 7, "text": "!env:HOME"}) in json.dumps(got)  # the body's text is never a secret


async def test_a_hook_over_its_rate_is_refused_and_a_paused_job_is_unknown(server: HttpServer) -> None:
    async with mcp_client(server) as client:
        await _over_rate(server, client)


async def _over_rate(server: HttpServer, client: Client) -> None:
    job_id = await _job(client, "!trigger:hook")
    hook = _hook(server, job_id)
    statuses = [
        (await _post(server, hook["name"], b"{}", signed_headers(hook["secret"], b"{}"))).status_code
        for _ in range(RATE[0] + 1)
    ]
    assert statuses == [202] * RATE[0] + [429]
    await _finished(client, job_id, RATE[0])
    structured(await client.call_tool("pause_job", {"job_id": job_id}))
    later = await _post(server, hook["name"], b"{}", signed_headers(hook["secret"], b"{}"))
    assert later.status_code == 404
