"""Streamable HTTP with --auth-token bearer tokens and SSE with its generated token file, as real subprocesses on
127.0.0.1."""

from __future__ import annotations

import contextlib
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPDeprecationWarning
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ResourceUpdated

from mcp_scheduler.server.auth import StaticTokenVerifier
from mcp_scheduler.settings import Settings
from tests._net import INITIALIZE, MCP_HEADERS

from .conftest import (
    HttpServer,
    Inbox,
    ServerFactory,
    hourly,
    http_server,
    list_changed,
    next_event,
    once_now,
    run_cli,
    structured,
    updated,
)
from .test_in_memory import TOOL_PARAMETERS

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

TOKENS = ("secret1", "secret2")


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    auth = [arg for token in TOKENS for arg in ("--auth-token", token)]
    with http_server(tmp_path_factory.mktemp("http"), "--transport", "http", *auth) as running:
        yield running


@pytest.fixture(scope="module")
def sse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    with http_server(tmp_path_factory.mktemp("sse"), "--transport", "sse") as running:
        yield running


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def http_client(server: HttpServer, token: str, **options: Any) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as transport_client:
        url = f"{server.base}/mcp"
        async with Client(streamable_http_client(url, http_client=transport_client), **options) as c:
            yield c


def sse_mcp_client(server: HttpServer, **options: Any) -> Client:
    return Client(sse_client(f"{server.base}/sse", headers={"Authorization": f"Bearer {server.token}"}), **options)


# ---------------------------------------------------------------------- bearer tokens


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic c2VjcmV0MQ=="}],
                         ids=["no-token", "wrong-token", "not-bearer"])
async def test_http_without_a_valid_bearer_token_is_401(http: HttpServer, headers: dict[str, str]) -> None:
    async with httpx2.AsyncClient() as raw:
        response = await raw.post(f"{http.base}/mcp", json=INITIALIZE, headers=MCP_HEADERS | headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"] == "invalid_token"


async def test_http_with_a_good_token_answers_a_raw_initialize(http: HttpServer) -> None:
    async with httpx2.AsyncClient() as raw:
        response = await raw.post(
            f"{http.base}/mcp", json=INITIALIZE, headers=MCP_HEADERS | {"Authorization": "Bearer secret2"}
        )
    assert response.status_code == 200
    assert "mcp-scheduler" in response.text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("token", TOKENS)
async def test_both_tokens_work_with_a_real_mcp_client(http: HttpServer, token: str, mode: str) -> None:
    job_id = unique(token)
    async with http_client(http, token, mode=mode) as c:
        assert len((await c.list_tools()).tools) == len(TOOL_PARAMETERS)

        job = structured(await c.call_tool("schedule_job", hourly(job_id)))
        assert job["job_id"] == job_id and job["state"] == "scheduled"

        detail = structured(await c.call_tool("get_job", {"job_id": job_id}))
        assert detail["job"]["state"] == "scheduled" and detail["job"]["timezone"] == "UTC"


# ---------------------------------------------------------------------- SSE


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["no-token", "wrong-token"])
async def test_sse_without_the_token_of_its_token_file_is_401(sse: HttpServer, headers: dict[str, str]) -> None:
    async with httpx2.AsyncClient() as raw:
        stream = await raw.get(f"{sse.base}/sse", headers=headers)
        post = await raw.post(f"{sse.base}/messages/?session_id=0" + "0" * 31, json=INITIALIZE, headers=headers)

    assert (stream.status_code, post.status_code) == (401, 401)
    assert stream.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_sse_with_the_token_of_its_token_file_lists_the_tools(sse: HttpServer, mode: str) -> None:
    async with sse_mcp_client(sse, mode=mode) as c:
        tools = {t.name for t in (await c.list_tools()).tools}
        assert len(tools) == len(TOOL_PARAMETERS) and "schedule_job" in tools


# ---------------------------------------------------------------------- one scheduler per process


async def test_concurrent_http_clients_share_one_scheduler(http: HttpServer) -> None:
    job_id = unique("shared-http")
    async with http_client(http, "secret1") as first, http_client(http, "secret2", mode="legacy") as second:
        structured(await first.call_tool("schedule_job", hourly(job_id)))

        seen = structured(await second.call_tool("list_jobs", {"limit": 1000}))
        assert job_id in [j["job_id"] for j in seen["jobs"]]
        run = structured(await second.call_tool("run_now", {"job_id": job_id}))
        history = structured(await first.call_tool("get_history", {"job_id": job_id}))
        assert [r["run_id"] for r in history["runs"]] == [run["run_id"]]


async def test_concurrent_sse_clients_share_one_scheduler(sse: HttpServer) -> None:
    """SSE runs the server lifespan once per connection: the scheduler must still be one."""
    job_id = unique("shared-sse")
    async with sse_mcp_client(sse, mode="legacy") as staying:
        async with sse_mcp_client(sse) as leaving:
            structured(await leaving.call_tool("schedule_job", hourly(job_id)))
            seen = structured(await staying.call_tool("list_jobs", {"limit": 1000}))
            assert job_id in [j["job_id"] for j in seen["jobs"]]

        # the scheduler outlives the connection that scheduled the job
        status = structured(await staying.call_tool("scheduler_status", {}))
        assert status["running"] is True
        run = structured(await staying.call_tool("run_now", {"job_id": job_id}))
        assert run["status"] == "success"

    async with sse_mcp_client(sse) as later:
        detail = structured(await later.call_tool("get_job", {"job_id": job_id}))
        assert detail["recent_history"][0]["started_at"][:19] == run["started_at"][:19]


# ---------------------------------------------------------------------- notifications over the network


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_handshake_clients_get_resource_updates_over_the_network(
    http: HttpServer, sse: HttpServer, transport: str
) -> None:
    job_id = unique(f"notify-{transport}")
    uri = f"scheduler://jobs/{job_id}/history"
    inbox = Inbox()
    options: dict[str, Any] = {"mode": "legacy", "message_handler": inbox.message_handler}
    connect = http_client(http, "secret1", **options) if transport == "http" else sse_mcp_client(sse, **options)
    async with connect as c:
        await c.subscribe_resource(uri)
        structured(await c.call_tool("schedule_job", once_now(job_id)))
        await inbox.wait_for(updated(uri))

        inbox.items.clear()
        structured(await c.call_tool("cancel_job", {"job_id": job_id}))
        # Close only once the cancel's notification is in: the SDK's SSE client fails when a message
        # arrives while it closes (mcp.client.sse's sse_reader sends to the already closed read stream).
        await inbox.wait_for(list_changed)


async def test_modern_clients_get_resource_updates_over_http(http: HttpServer) -> None:
    job_id = unique("notify-modern")
    uri = f"scheduler://jobs/{job_id}/history"
    async with http_client(http, "secret2") as c, c.listen(resource_subscriptions=[uri]) as subscription:
        structured(await c.call_tool("schedule_job", once_now(job_id)))
        await next_event(subscription, lambda e: isinstance(e, ResourceUpdated) and e.uri == uri)


# ---------------------------------------------------------------------- exposure


def test_listening_beyond_loopback_without_a_token_is_refused() -> None:
    done = run_cli("--transport", "http", "--host", "0.0.0.0", "--port", "1", "--db", "/nonexistent/never.db")

    assert done.returncode != 0
    assert "--auth-token" in done.stderr and "--token-file" in done.stderr and "0.0.0.0" in done.stderr


# ---------------------------------------------------------------------- the token verifier, in process


async def test_the_static_token_verifier_accepts_exactly_the_configured_tokens() -> None:
    verifier = StaticTokenVerifier(["secret1", "", "secret2"])

    for token in TOKENS:
        access = await verifier.verify_token(token)
        assert access is not None and access.token == token
    for token in ("", "secret", "secret10", "SECRET1", "secret1 "):
        assert await verifier.verify_token(token) is None
    with pytest.raises(ValueError, match="at least one non-empty token"):
        StaticTokenVerifier([""])


def test_http_auth_does_not_check_static_tokens_against_a_resource_indicator(
    make_server: ServerFactory, db_file: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", MCPDeprecationWarning)  # unset, the SDK warns and 3.0 flips it to True
        server = make_server(db_file, transport="http", auth_tokens=TOKENS)
    port = Settings().port

    assert server.settings.auth is not None
    assert server.settings.auth.validate_token_resource is False
    assert str(server.settings.auth.resource_server_url) == f"http://127.0.0.1:{port}/mcp"


def test_stdio_ignores_auth_tokens(make_server: ServerFactory, db_file: str) -> None:
    server = make_server(db_file, auth_tokens=TOKENS)
    assert server.settings.auth is None
