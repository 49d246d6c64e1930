"""The HTTP server as an OAuth 2.1 resource server: a real issuer on 127.0.0.1 signs tokens with real keys, a real
`mcp-scheduler --transport http --oauth-issuer ...` process checks them, per tool and per request, and answers 401
with its RFC 9728 metadata for tokens that are not for it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_scheduler.principals import ADMIN, READ, RUN, SCOPES, WRITE, Principal
from mcp_scheduler.server.oauth_tokens import IntrospectionVerifier, JwtVerifier, check_url
from tests._net import MCP_HEADERS, authorized, bearer, free_port, stop, wait_until_listening

from ._issuer import CLIENT_ID, CLIENT_SECRET, MODERN, Issuer, answer_of, modern_request
from .conftest import LOG_INPUT, error_text, hosted, scheduler_command, structured

STATIC = "static-token-of-the-oauth-tests"
NOTIFY = "scheduler:kind:notify"
HTTP = "scheduler:kind:http"


@dataclass
class Server:
    url: str
    base: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def server(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("oauth")
    port = free_port()
    log = folder / "server.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            scheduler_command("--transport", "http", "--port", str(port), "--db", str(folder / "s.db"),
                              "--timezone", "UTC", "--no-background-runner", "--oauth-issuer", issuer.url,
                              "--auth-token", STATIC),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink,
        )
    try:
        wait_until_listening(process, port, log=str(log))
        running = Server(f"http://127.0.0.1:{port}/mcp", f"http://127.0.0.1:{port}", process, log)
        # The jobs belong to the issuer's `alice` (the tokens' default subject): the tests' tokens reach them by
        # their scopes, as their owner (another principal would not see them at all, see test_owners*).
        owner = issuer.mint([READ, WRITE, NOTIFY], running.url)
        for job in (_hourly("plain", "logging", LOG_INPUT),
                    _hourly("note", "notify", {"operation": "inbox", "message": "hello"})):
            answer = _post(running, owner, "tools/call", {"name": "schedule_job", "arguments": job})
            assert not answer.get("result", {"isError": answer}).get("isError"), answer
        yield running
    finally:
        stop(process)


def _hourly(job_id: str, kind: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schedule_type": "interval", "schedule": "1 hour", "agentool_name": kind, "input_data": data,
            "job_id": job_id, **extra}


def _post(server: Server, token: str | None, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """One JSON-RPC request of the 2026-07-28 era (no session), answered as a dict (an error's too)."""
    headers, body = modern_request(token, method, params)
    answer = httpx2.post(server.url, json=body, headers=headers, timeout=30)
    assert answer.status_code != 401, answer.headers
    if answer.status_code == 403:  # the scope challenge (step_up.py); its body: the JSON-RPC error
        assert answer.headers["www-authenticate"].startswith('Bearer error="insufficient_scope", scope="')
    return answer_of(answer)


def _refused(answer: dict[str, Any]) -> str | None:
    """The message of a refusal for want of a scope, None for any other answer."""
    if "error" in answer:
        data = answer["error"].get("data") or {}
        return answer["error"]["message"] if data.get("error") == "insufficient_scope" else None
    result = answer["result"]
    text = " ".join(block.get("text", "") for block in result.get("content", []))
    return text if result.get("isError") and "Forbidden: " in text else None


# ---------------------------------------------------------------------------------------------- who gets in


def test_the_metadata_names_the_issuer_this_resource_and_every_scope(server: Server, issuer: Issuer) -> None:
    answer = httpx2.get(f"{server.base}/.well-known/oauth-protected-resource/mcp", timeout=10)
    assert answer.status_code == 200
    document = answer.json()
    assert document["resource"] == server.url and document["authorization_servers"] == [issuer.url]
    assert set(SCOPES) | {NOTIFY, HTTP, "scheduler:kind:shell"} <= set(document["scopes_supported"])
    assert not {"scheduler:kind:logging", "scheduler:kind:queue"} & set(document["scopes_supported"])


def _tokens(issuer: Issuer, audience: str) -> dict[str, str | None]:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer.add_key("unpublished", publish=False)
    return {
        "no token": None,
        "wrong audience": issuer.mint(READ, "http://127.0.0.1:1/mcp"),
        "expired": issuer.mint(READ, audience, expires_in=-120),
        "bad signature": issuer.mint(READ, audience, signer=stranger),
        "unknown kid": issuer.mint(READ, audience, kid="unpublished"),
        "other issuer": issuer.mint(READ, audience, issuer="https://elsewhere.example"),
        "reserved subject": issuer.mint(READ, audience, subject="local"),
        "not a JWT": "not-a-jwt",
    }


def test_a_token_that_is_not_the_issuers_for_this_server_gets_401_naming_the_metadata_and_scope(
    server: Server, issuer: Issuer
) -> None:
    metadata = f'resource_metadata="{server.base}/.well-known/oauth-protected-resource/mcp"'
    for case, token in _tokens(issuer, server.url).items():
        headers = MCP_HEADERS | (bearer(token) if token else {})
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": MODERN}}
        answer = httpx2.post(server.url, json=body, headers=headers, timeout=10)
        assert answer.status_code == 401, case
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith("Bearer ") and metadata in challenge, (case, challenge)
        assert 'scope="scheduler:read scheduler:write scheduler:run"' in challenge, (case, challenge)
    assert _post(server, issuer.mint(READ, server.url), "tools/list", {})["result"]["tools"]


async def test_a_client_gets_what_its_token_grants_and_the_static_token_everything(
    server: Server, issuer: Issuer
) -> None:
    reader = issuer.mint([READ], server.url)  # alice's, with less than she may
    async with hosted(Client(authorized(server.url, reader))) as client:
        assert "plain" in json.dumps(structured(await client.call_tool("get_job", {"job_id": "plain"})))
        with pytest.raises(MCPError, match="pause_job needs the scope 'scheduler:write'"):  # HTTP 403
            await client.call_tool("pause_job", {"job_id": "plain"})
    writer = issuer.mint([READ, WRITE], server.url)
    stranger = issuer.mint([READ, WRITE], server.url, subject="mallory")
    async with hosted(Client(authorized(server.url, stranger))) as client:  # another principal: not its jobs
        assert "not found" in error_text(await client.call_tool("get_job", {"job_id": "plain"}))
    async with hosted(Client(authorized(server.url, writer))) as client:
        with pytest.raises(MCPError, match="job kind 'notify' needs the scope 'scheduler:kind:notify'"):
            await client.call_tool("schedule_job", _hourly("webhook", "notify", {"operation": "inbox", "message": "x"}))
        structured(await client.call_tool("schedule_job", _hourly("mine", "logging", LOG_INPUT)))
    async with hosted(Client(authorized(server.url, STATIC))) as client:
        structured(await client.call_tool("run_now", {"job_id": "note"}))
        structured(await client.call_tool("start_scheduler", {}))


# ---------------------------------------------------------------------------------------------- per tool

CALLS: list[tuple[str, dict[str, Any], frozenset[str]]] = [
    ("tools/call", {"name": "schedule_job", "arguments": _hourly("p2", "logging", LOG_INPUT, if_exists="replace")},
     frozenset({WRITE})),
    ("tools/call", {"name": "schedule_job", "arguments": _hourly(
        "n2", "notify", {"operation": "inbox", "message": "x"}, if_exists="replace")}, frozenset({WRITE, NOTIFY})),
    ("tools/call", {"name": "update_job", "arguments": {"job_id": "plain", "job_name": "Plain"}}, frozenset({WRITE})),
    ("tools/call", {"name": "update_job", "arguments": {"job_id": "note", "job_name": "Note"}},
     frozenset({WRITE, NOTIFY})),
    ("tools/call", {"name": "pause_job", "arguments": {"job_id": "plain"}}, frozenset({WRITE})),
    ("tools/call", {"name": "resume_job", "arguments": {"job_id": "plain"}}, frozenset({WRITE})),
    ("tools/call", {"name": "cancel_job", "arguments": {"job_id": "absent"}}, frozenset({WRITE})),
    ("tools/call", {"name": "run_now", "arguments": {"job_id": "plain"}}, frozenset({RUN})),
    ("tools/call", {"name": "run_now", "arguments": {"job_id": "note"}}, frozenset({RUN, NOTIFY})),
    ("tools/call", {"name": "backfill_job", "arguments": {"job_id": "note", "since": "2 hours"}},
     frozenset({RUN, NOTIFY})),
    ("tools/call", {"name": "list_jobs", "arguments": {}}, frozenset({READ})),
    ("tools/call", {"name": "get_job", "arguments": {"job_id": "plain"}}, frozenset({READ})),
    ("tools/call", {"name": "get_history", "arguments": {}}, frozenset({READ})),
    ("tools/call", {"name": "get_run", "arguments": {"run_id": "0" * 32}}, frozenset({READ})),
    ("tools/call", {"name": "scheduler_status", "arguments": {}}, frozenset({READ})),
    ("tools/call", {"name": "preview_schedule", "arguments": {"schedule_type": "cron", "schedule": "0 9 * * *"}},
     frozenset({READ})),
    ("tools/call", {"name": "list_agentools", "arguments": {}}, frozenset({READ})),
    ("tools/call", {"name": "read_queue", "arguments": {"queue_name": "results"}}, frozenset({READ})),
    ("tools/call", {"name": "read_queue", "arguments": {"queue_name": "results", "mode": "take"}},
     frozenset({READ, WRITE})),
    ("tools/call", {"name": "read_inbox", "arguments": {}}, frozenset({READ})),
    ("tools/call", {"name": "read_inbox", "arguments": {"acknowledge": True}}, frozenset({READ, WRITE})),
    ("tools/call", {"name": "stop_scheduler", "arguments": {}}, frozenset({ADMIN})),
    ("tools/call", {"name": "start_scheduler", "arguments": {}}, frozenset({ADMIN})),
    ("resources/read", {"uri": "scheduler://status"}, frozenset({READ})),
    ("resources/read", {"uri": "scheduler://jobs/plain"}, frozenset({READ})),
    ("prompts/get", {"name": "troubleshoot_job", "arguments": {"job_id": "plain"}}, frozenset({READ})),
]


def test_every_call_is_refused_without_its_scope_and_only_then(server: Server, issuer: Issuer) -> None:
    for method, params, needed in CALLS:
        _check(server, issuer, method, params, needed, frozenset(needed))  # exactly what it needs
        for scope in needed:
            _check(server, issuer, method, params, needed, frozenset(SCOPES) - {ADMIN, scope})


def _check(server: Server, issuer: Issuer, method: str, params: dict[str, Any], needed: frozenset[str],
           held: frozenset[str]) -> None:
    answer = _post(server, issuer.mint(sorted(held), server.url), method, params)
    refused = _refused(answer)
    holder = Principal("p", None, held)
    missing = [scope for scope in sorted(needed) if not holder.has(scope)]
    what = f"{method} {params.get('name', params.get('uri'))} {params.get('arguments', '')} with {sorted(held)}"
    if missing:
        assert refused is not None, f"accepted beyond its scope: {what}: {answer}"
        assert any(f"'{scope}'" in refused for scope in missing), (what, refused)
    else:
        assert refused is None, f"refused within its scope: {what}: {refused}"


@st.composite
def _calls_and_scopes(draw: st.DrawFn) -> tuple[tuple[str, dict[str, Any], frozenset[str]], frozenset[str]]:
    """A call, and a token's scopes near what it needs: some of those, and any others."""
    call = draw(st.sampled_from(CALLS))
    kept = draw(st.frozensets(st.sampled_from(sorted(call[2]))))
    others = draw(st.frozensets(st.sampled_from([*SCOPES, NOTIFY, HTTP]), max_size=3))
    return call, kept | others


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=_calls_and_scopes())
def test_no_call_is_accepted_beyond_the_scopes_of_its_token(
    server: Server, issuer: Issuer, drawn: tuple[tuple[str, dict[str, Any], frozenset[str]], frozenset[str]]
) -> None:
    (method, params, needed), held = drawn
    _check(server, issuer, method, params, needed, held)


# ---------------------------------------------------------------------------------------------- the verifiers

AUDIENCE = "https://scheduler.example/mcp"


async def test_a_key_the_issuer_rotates_in_is_fetched_once_and_an_unknown_kid_does_not_refetch_at_will(
    issuer: Issuer,
) -> None:
    verifier = JwtVerifier(issuer.url, AUDIENCE, refetch_after=3600)
    accepted = await verifier.verify_token(issuer.mint([READ, NOTIFY], AUDIENCE, subject="carol"))
    assert accepted is not None and accepted.subject == "carol" and accepted.scopes == [READ, NOTIFY]
    assert accepted.resource == AUDIENCE and verifier.jwks_url == f"{issuer.url}/jwks"
    fetched = issuer.fetches.get("/jwks", 0)
    for attempt in range(3):  # random kids: one fetch at most per refetch_after
        assert await verifier.verify_token(issuer.mint(READ, AUDIENCE, kid="rsa-1") + "x") is None
        issuer.add_key(f"guess-{attempt}", publish=False)
        assert await verifier.verify_token(issuer.mint(READ, AUDIENCE, kid=f"guess-{attempt}")) is None
    assert issuer.fetches["/jwks"] == fetched
    issuer.add_key("ec-rotated")
    rotating = JwtVerifier(issuer.url, AUDIENCE, f"{issuer.url}/jwks", refetch_after=0)
    assert await rotating.verify_token(issuer.mint([WRITE], AUDIENCE)) is not None
    assert (await rotating.verify_token(issuer.mint(f"{WRITE} {RUN}", AUDIENCE, kid="ec-rotated"))).scopes == [
        WRITE, RUN]


async def test_scopes_may_come_as_scp_and_the_audience_may_be_one_of_several(issuer: Issuer) -> None:
    verifier = JwtVerifier(issuer.url, AUDIENCE, f"{issuer.url}/jwks")
    token = issuer.mint("", [AUDIENCE + "/", "https://other.example"], scp=[RUN, 7])  # type: ignore[arg-type]
    accepted = await verifier.verify_token(token)
    assert accepted is not None and accepted.scopes == [RUN]
    assert await verifier.verify_token(issuer.mint(READ, AUDIENCE, subject="token:abc")) is None


async def test_introspection_accepts_an_active_token_for_this_server_only(issuer: Issuer) -> None:
    verifier = IntrospectionVerifier(f"{issuer.url}/introspect", CLIENT_ID, CLIENT_SECRET, audience=AUDIENCE,
                                     issuer=issuer.url)
    issuer.active["good"] = {"active": True, "sub": "dave", "aud": AUDIENCE, "scope": f"{READ} {RUN}",
                             "iss": issuer.url, "client_id": "cli"}
    issuer.active["elsewhere"] = {"active": True, "sub": "dave", "aud": "https://other.example", "scope": READ}
    issuer.active["no audience"] = {"active": True, "sub": "dave", "scope": READ}
    issuer.active["other issuer"] = {"active": True, "sub": "dave", "aud": AUDIENCE, "iss": "https://x.example"}
    accepted = await verifier.verify_token("good")
    assert accepted is not None and accepted.subject == "dave" and accepted.scopes == [READ, RUN]
    for token in ("elsewhere", "no audience", "other issuer", "unknown"):
        assert await verifier.verify_token(token) is None, token
    del issuer.active["good"]  # revoked: the answer is kept for a while (cache_for), then asked again
    assert await verifier.verify_token("good") is not None
    wrong = IntrospectionVerifier(f"{issuer.url}/introspect", CLIENT_ID, "wrong", audience=AUDIENCE, cache_for=0)
    issuer.active["good"] = {"active": True, "sub": "dave", "aud": AUDIENCE}
    assert await wrong.verify_token("good") is None


def test_oauth_urls_must_be_https_beyond_loopback() -> None:
    assert check_url("http://127.0.0.1:9/x", "--oauth-issuer") and check_url("https://idp.example", "--oauth-issuer")
    for url in ("http://idp.example", "ftp://127.0.0.1/", "https://", "idp.example"):
        with pytest.raises(ValueError, match="--oauth-issuer"):
            check_url(url, "--oauth-issuer")
