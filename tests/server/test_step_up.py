"""The scope challenge on streamable HTTP (server/step_up.py): a request whose token lacks a scope it needs gets
403 with `WWW-Authenticate: Bearer error="insufficient_scope", scope=..., resource_metadata=...`, from real servers
(`mcp-scheduler --transport http`) that accept a real issuer's OAuth tokens (`_issuer.py`) or named static tokens;
the body of every other request reaches the server as sent; and 403 comes exactly when the tool path refuses."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.shared.exceptions import MCPError

from mcp_scheduler.principals import ADMIN, READ, RUN, WRITE
from mcp_scheduler.server import SchedulerServer
from tests._net import MCP_HEADERS

from ._issuer import Issuer, answer_of, modern_request
from .conftest import LOG_INPUT, HttpServer, ServerFactory, hosted, http_server, resource_json, structured

NOTIFY = "scheduler:kind:notify"
HTTP = "scheduler:kind:http"
NOTE = {"operation": "inbox", "message": "hello"}
WEB = {"operation": "request", "url": "https://example.com/status"}
NAMED = ("reader:read:reader-token-of-the-step-up-tests", "writer:read+write:writer-token-of-the-step-up-tests",
         "plain-token-of-the-step-up-tests")
"""Static tokens: two named ones with their scopes, and a plain one (every scope)."""


def _hourly(job_id: str, kind: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schedule_type": "interval", "schedule": "1 hour", "agentool_name": kind, "input_data": data,
            "job_id": job_id, **extra}


def _tokens(*tokens: str) -> list[str]:
    return [arg for token in tokens for arg in ("--auth-token", token)]


@pytest.fixture(scope="module")
def oauth_server(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    folder = tmp_path_factory.mktemp("step-up-oauth")
    with http_server(folder, "--transport", "http", "--oauth-issuer", issuer.url, *_tokens(NAMED[2])) as running:
        owner = issuer.mint([READ, WRITE, NOTIFY], _url(running))  # alice's jobs, as in test_oauth
        for job in (_hourly("plain", "logging", LOG_INPUT), _hourly("note", "notify", NOTE)):
            assert not _answer(running, owner, "tools/call", {"name": "schedule_job", "arguments": job})[
                "result"].get("isError")
        yield running


@pytest.fixture(scope="module")
def static_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    with http_server(tmp_path_factory.mktemp("step-up-static"), "--transport", "http", *_tokens(*NAMED)) as running:
        yield running


def _url(server: HttpServer) -> str:
    return f"{server.base}/mcp"


def _post(server: HttpServer, token: str | None, method: str, params: dict[str, Any], **options: Any
          ) -> httpx2.Response:
    headers, body = modern_request(token, method, params)
    return httpx2.post(_url(server), json=body, headers=headers, timeout=30, **options)


def _answer(server: HttpServer, token: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    response = _post(server, token, method, params)
    assert response.status_code == 200, (response.status_code, response.text)
    return answer_of(response)


def _challenge(response: httpx2.Response) -> dict[str, str]:
    """The parameters of a 403's `WWW-Authenticate: Bearer ...` (checked to be the insufficient_scope one)."""
    assert response.status_code == 403, (response.status_code, response.text)
    header = response.headers["www-authenticate"]
    assert header.startswith('Bearer error="insufficient_scope", '), header
    found = dict(re.findall(r'(\w+)="([^"]*)"', header))
    assert re.fullmatch(r'Bearer (\w+="[^"]*"(, )?)+', header), header  # every value a quoted string
    return found


def _metadata(server: HttpServer) -> str:
    return f"{server.base}/.well-known/oauth-protected-resource/mcp"


# ---------------------------------------------------------------------------------------------- the challenge


def test_a_read_token_scheduling_a_job_gets_403_naming_write_and_the_metadata_and_nothing_is_done(
    oauth_server: HttpServer, issuer: Issuer
) -> None:
    reader = issuer.mint([READ], _url(oauth_server))
    refused = _post(oauth_server, reader, "tools/call",
                    {"name": "schedule_job", "arguments": _hourly("refused", "logging", LOG_INPUT)})
    challenge = _challenge(refused)
    assert challenge["scope"] == WRITE and challenge["resource_metadata"] == _metadata(oauth_server)
    assert "schedule_job needs scheduler:write" in challenge["error_description"]
    error = refused.json()
    assert error["id"] == 1 and error["error"]["data"] == {"error": "insufficient_scope", "scope": WRITE}
    assert "schedule_job needs the scope 'scheduler:write'" in error["error"]["message"]
    metadata = httpx2.get(challenge["resource_metadata"], timeout=10).json()  # where the client steps up
    assert WRITE in metadata["scopes_supported"] and metadata["authorization_servers"] == [issuer.url]
    listed = _answer(oauth_server, reader, "tools/call", {"name": "list_jobs", "arguments": {}})
    assert "refused" not in json.dumps(listed) and "plain" in json.dumps(listed)


def test_a_write_token_scheduling_an_http_job_gets_403_naming_its_kind_and_a_stepped_up_token_succeeds(
    oauth_server: HttpServer, issuer: Issuer
) -> None:
    call = {"name": "schedule_job", "arguments": _hourly("web", "http", WEB)}
    challenge = _challenge(_post(oauth_server, issuer.mint([READ, WRITE], _url(oauth_server)), "tools/call", call))
    assert challenge["scope"] == f"{WRITE} {HTTP}"  # every scope the call needs, in one challenge
    assert challenge["error_description"].endswith(f"the access token lacks {HTTP}")
    # The client steps up: a token with the scopes the challenge named (and those it had) is accepted.
    stepped_up = issuer.mint([READ, *challenge["scope"].split()], _url(oauth_server))
    accepted = _answer(oauth_server, stepped_up, "tools/call", call)
    assert accepted["result"].get("isError") is not True, accepted
    assert accepted["result"]["structuredContent"]["job_id"] == "web"
    # A request other than a tool call: reading a resource needs scheduler:read.
    challenge = _challenge(_post(oauth_server, issuer.mint([WRITE], _url(oauth_server)), "resources/read",
                                 {"uri": "scheduler://status"}))
    assert challenge["scope"] == READ


def test_named_static_tokens_get_the_challenge_and_the_plain_token_everything(static_server: HttpServer) -> None:
    reader, writer, plain = (token.rsplit(":", 1)[-1] for token in NAMED)
    challenge = _challenge(_post(static_server, reader, "tools/call",
                                 {"name": "pause_job", "arguments": {"job_id": "any"}}))
    assert challenge["scope"] == WRITE and challenge["resource_metadata"] == _metadata(static_server)
    call = {"name": "schedule_job", "arguments": _hourly("web", "http", WEB)}
    assert _challenge(_post(static_server, writer, "tools/call", call))["scope"] == f"{WRITE} {HTTP}"
    assert _answer(static_server, plain, "tools/call", call)["result"].get("isError") is not True
    listed = _answer(static_server, writer, "tools/call", {"name": "list_jobs", "arguments": {}})  # within scope
    assert listed["result"].get("isError") is not True


@pytest.mark.parametrize(("tool", "arguments", "held"), [
    ("run_now", {"job_id": "note"}, [READ, RUN]),
    ("update_job", {"job_id": "note", "job_name": "Renamed"}, [READ, WRITE]),
    ("resume_job", {"job_id": "note"}, [READ, WRITE]),
    ("backfill_job", {"job_id": "note", "since": "2 hours"}, [READ, RUN]),
])
def test_a_call_about_a_stored_job_gets_403_naming_the_scope_of_its_kind(
    oauth_server: HttpServer, issuer: Issuer, tool: str, arguments: dict[str, Any], held: list[str]
) -> None:
    # The job's kind (notify) is not in the arguments: the layer reads it from the store, as the tool path does.
    call = {"name": tool, "arguments": arguments}
    refused = _post(oauth_server, issuer.mint(held, _url(oauth_server)), "tools/call", call)
    challenge = _challenge(refused)
    assert challenge["scope"].split()[-1] == NOTIFY and challenge["error_description"].endswith(f"lacks {NOTIFY}")
    assert f"{tool} of job kind 'notify' needs the scope '{NOTIFY}'" in refused.json()["error"]["message"]
    stepped_up = issuer.mint([*held, NOTIFY], _url(oauth_server))
    assert _answer(oauth_server, stepped_up, "tools/call", call)["result"].get("isError") is not True


def test_another_principal_s_stored_job_is_not_found_not_challenged(oauth_server: HttpServer, issuer: Issuer) -> None:
    # bob may not see alice's notify job: its kind adds nothing, and the server says "not found" (as for no job).
    bob = issuer.mint([READ, RUN], _url(oauth_server), subject="bob")
    answer = _answer(oauth_server, bob, "tools/call", {"name": "run_now", "arguments": {"job_id": "note"}})
    assert answer["result"]["isError"] is True and "not found" in answer["result"]["content"][0]["text"]


# ---------------------------------------------------------------------------------------------- bodies as sent


def test_the_body_reaches_the_server_as_sent_in_pieces_large_and_unicode(
    oauth_server: HttpServer, issuer: Issuer
) -> None:
    writer = issuer.mint([READ, WRITE], _url(oauth_server))  # not admin: the layer reads every body it sends
    message = ("Grüße, 世界 🌍 \u2028 \"quoted\" \\ " * 2000)[:38_000]  # just under the 64 KiB input_data takes
    job = _hourly("unicode", "logging", {**LOG_INPUT, "message": message})
    headers, body = modern_request(writer, "tools/call", {"name": "schedule_job", "arguments": job})
    raw = json.dumps(body, ensure_ascii=False).encode()

    def pieces() -> Iterator[bytes]:  # chunked: the server receives many http.request messages
        for start in range(0, len(raw), 1000):
            yield raw[start:start + 1000]

    sent = httpx2.post(_url(oauth_server), content=pieces(), headers=headers, timeout=30)
    assert sent.status_code == 200 and answer_of(sent)["result"].get("isError") is not True, sent.text
    read = _answer(oauth_server, writer, "resources/read", {"uri": "scheduler://jobs/unicode"})
    stored = json.loads(read["result"]["contents"][0]["text"])
    assert stored["job"]["input_data"]["message"] == message


def test_what_is_not_one_request_goes_on_to_the_server(oauth_server: HttpServer, issuer: Issuer) -> None:
    reader = issuer.mint([READ], _url(oauth_server))
    headers, body = modern_request(reader, "tools/call", {"name": "cancel_job", "arguments": {"job_id": "plain"}})
    batch = httpx2.post(_url(oauth_server), json=[body], headers=headers, timeout=30)
    assert batch.status_code != 403  # a batch: the server answers it as before
    notification = {k: v for k, v in body.items() if k != "id"}
    assert httpx2.post(_url(oauth_server), json=notification, headers=headers, timeout=30).status_code != 403
    assert httpx2.post(_url(oauth_server), content=b"{not json", headers=headers, timeout=30).status_code != 403
    huge = httpx2.post(_url(oauth_server), content=b" " * (5 * 1024 * 1024) + json.dumps(body).encode(),
                       headers=headers, timeout=30)
    assert huge.status_code == 413  # beyond what the transport takes: its answer, after the layer read part of it
    answer = _answer(oauth_server, reader, "resources/read", {"uri": "scheduler://jobs/plain"})
    assert json.loads(answer["result"]["contents"][0]["text"])["job"]["state"] == "scheduled"  # not cancelled
    assert _post(oauth_server, None, "tools/list", {}).status_code == 401  # no token: the SDK's 401, as before
    assert MCP_HEADERS["Content-Type"] == "application/json"


# ---------------------------------------------------------------------------------------------- as the tool path

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("tools/call", {"name": "schedule_job", "arguments": _hourly("p2", "logging", LOG_INPUT, if_exists="replace")}),
    ("tools/call", {"name": "schedule_job", "arguments": _hourly("n2", "notify", NOTE, if_exists="replace")}),
    ("tools/call", {"name": "schedule_job", "arguments": _hourly("w2", "http", WEB, if_exists="replace")}),
    ("tools/call", {"name": "update_job", "arguments": {"job_id": "plain", "job_name": "Plain"}}),
    ("tools/call", {"name": "update_job", "arguments": {"job_id": "absent", "agentool_name": "notify",
                                                        "input_data": NOTE}}),
    ("tools/call", {"name": "pause_job", "arguments": {"job_id": "plain"}}),
    ("tools/call", {"name": "resume_job", "arguments": {"job_id": "plain"}}),
    ("tools/call", {"name": "run_now", "arguments": {"job_id": "plain"}}),
    ("tools/call", {"name": "run_now", "arguments": {"agentool_name": "notify", "input_data": NOTE}}),
    # stored notify job: the kind is not in the arguments
    ("tools/call", {"name": "run_now", "arguments": {"job_id": "note"}}),
    ("tools/call", {"name": "run_now", "arguments": {"job_id": "absent", "agentool_name": "notify",
                                                     "input_data": NOTE}}),
    ("tools/call", {"name": "update_job", "arguments": {"job_id": "note", "job_name": "Note"}}),
    ("tools/call", {"name": "resume_job", "arguments": {"job_id": "note"}}),
    ("tools/call", {"name": "backfill_job", "arguments": {"job_id": "note", "since": "1 hour"}}),
    ("tools/call", {"name": "list_jobs", "arguments": {}}),
    ("tools/call", {"name": "read_queue", "arguments": {"queue_name": "results", "mode": "take"}}),
    ("tools/call", {"name": "read_inbox", "arguments": {"acknowledge": True}}),
    ("tools/call", {"name": "start_scheduler", "arguments": {}}),
    ("tools/call", {"name": "show_schedule", "arguments": {}}),
    ("resources/read", {"uri": "scheduler://status"}),
]


def _access(scopes: frozenset[str]) -> AuthenticatedUser:
    return AuthenticatedUser(AccessToken(token="in-memory", client_id="test-client", scopes=sorted(scopes),
                                         subject="alice"))


async def _refused_in_memory(server: SchedulerServer, scopes: frozenset[str], method: str, params: dict[str, Any]
                             ) -> str | None:
    """The tool path's refusal of the call for want of a scope (None: anything else), in process, as alice with
    `scopes` (the SDK's auth context, which an HTTP request's verified token sets)."""
    reset = auth_context_var.set(_access(scopes))
    try:
        async with hosted(Client(server)) as client:  # its tasks copy the context: they act as alice
            try:
                if method == "resources/read":
                    await client.read_resource(params["uri"])
                    return None
                result = await client.call_tool(params["name"], params["arguments"])
            except MCPError as exc:
                return exc.message if (exc.data or {}).get("error") == "insufficient_scope" else None
    finally:
        auth_context_var.reset(reset)
    text = result.content[0].text if result.content else ""
    return text if result.is_error and "Forbidden: " in text else None


@pytest.fixture
async def in_memory(make_server: ServerFactory, tmp_path: Path) -> AsyncIterator[SchedulerServer]:
    server = make_server(str(tmp_path / "memory.db"))
    reset = auth_context_var.set(_access(frozenset({READ, WRITE, NOTIFY})))
    try:
        async with hosted(Client(server)) as client:  # alice's jobs, as on the HTTP server
            for job in (_hourly("plain", "logging", LOG_INPUT), _hourly("note", "notify", NOTE)):
                structured(await client.call_tool("schedule_job", job))
            assert resource_json(await client.read_resource("scheduler://jobs/plain"))["job"]["job_id"] == "plain"
    finally:
        auth_context_var.reset(reset)
    yield server


def _call(name: str, *words: str) -> tuple[str, dict[str, Any]]:
    """The call of CALLS to tool `name` whose arguments hold `words`."""
    return next(c for c in CALLS if c[1].get("name") == name and all(w in json.dumps(c[1]) for w in words))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=st.sampled_from(CALLS), held=st.frozensets(st.sampled_from([READ, WRITE, RUN, ADMIN, NOTIFY, HTTP])))
@example(call=_call("schedule_job", "http"), held=frozenset({READ, WRITE}))  # each need beyond the tool's scope,
@example(call=_call("update_job", "notify"), held=frozenset({WRITE, HTTP}))  # lacked: found by the examples
@example(call=_call("run_now", "notify"), held=frozenset({RUN}))  # whatever the draws
@example(call=_call("run_now", "note"), held=frozenset({RUN}))  # a stored job's kind, lacked
@example(call=_call("update_job", "note"), held=frozenset({WRITE}))
@example(call=_call("resume_job", "note"), held=frozenset({WRITE, HTTP}))
@example(call=_call("backfill_job", "note"), held=frozenset({READ, RUN}))
@example(call=_call("run_now", "absent"), held=frozenset({RUN}))
@example(call=_call("read_queue"), held=frozenset({READ}))
@example(call=_call("read_inbox"), held=frozenset({READ, RUN}))
@example(call=_call("show_schedule"), held=frozenset({WRITE}))
async def test_403_comes_exactly_when_the_tool_path_refuses(
    oauth_server: HttpServer, issuer: Issuer, in_memory: SchedulerServer, call: tuple[str, dict[str, Any]],
    held: frozenset[str],
) -> None:
    method, params = call
    headers, body = modern_request(issuer.mint(sorted(held), _url(oauth_server)), method, params)
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(_url(oauth_server), json=body, headers=headers)
    refused = await _refused_in_memory(in_memory, held, method, params)
    what = f"{method} {params} with {sorted(held)}"
    assert (response.status_code == 403) == (refused is not None), (what, response.status_code, refused)
    if refused is not None:
        challenged = _challenge(response)["scope"].split()
        named = re.findall(r"needs the scope '([^']+)'", refused)
        assert named and set(named) <= set(challenged) - held, (what, challenged, refused)
    else:
        assert response.status_code == 200, (what, response.text)
