"""Bearer-token auth for the HTTP transports (a fixed set of tokens, compared in constant time), and the principal
of a tool call.

A static token is either plain (`TOKEN`: every scope, a principal named `token:<hash>`) or named with its scopes
(`NAME:SCOPES:TOKEN`, SCOPES some of read, write, run, admin joined by `+` (commas separate tokens in
MCP_SCHEDULER_AUTH_TOKEN): the principal `token:NAME` with
those scopes; without admin it sees and changes only its own jobs)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

from ..principals import ADMIN, LOCAL, READ, RUN, WRITE, Principal

__all__ = ["StaticTokenVerifier", "StaticToken", "parse_token", "principal_of", "principal_of_token"]

SHORT_SCOPES = {"read": READ, "write": WRITE, "run": RUN, "admin": ADMIN}
"""The scope names a named static token lists (`alice:read+write:TOKEN`)."""
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


class StaticToken:
    """One configured token: the SHA-256 digest of its value, its principal's subject and its scopes."""

    def __init__(self, value: str, subject: str | None, scopes: frozenset[str]) -> None:
        self.digest = hashlib.sha256(value.encode()).digest()
        self.subject = subject or f"token:{self.digest.hex()[:12]}"
        self.scopes = scopes


def parse_token(value: str) -> StaticToken:
    """`NAME:SCOPES:TOKEN` (SCOPES: read, write, run, admin, joined by `+`) as a named token with those scopes;
    any other value is a plain token with every scope (so plain tokens that hold colons keep working)."""
    parts = value.split(":", 2)
    if len(parts) == 3 and _NAME.fullmatch(parts[0]) and parts[2]:
        names = parts[1].split("+")
        if all(name in SHORT_SCOPES for name in names):
            return StaticToken(parts[2], f"token:{parts[0]}", frozenset(SHORT_SCOPES[name] for name in names))
    return StaticToken(value, None, frozenset({ADMIN}))


class StaticTokenVerifier:
    """Accepts any of the configured tokens (`parse_token`: plain or named with scopes; the SDK answers 401 for a
    missing or unknown one)."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = [parse_token(t) for t in tokens if t]
        if not self._tokens:
            raise ValueError("StaticTokenVerifier needs at least one non-empty token.")

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = hashlib.sha256(token.encode()).digest()
        matched: StaticToken | None = None
        for known in self._tokens:  # every one compared, in constant time: the time tells nothing of which
            if hmac.compare_digest(digest, known.digest):
                matched = known
        if matched is None:
            return None
        # The subject names the token without revealing it, so that two configured tokens are two principals.
        return AccessToken(token=token, client_id="mcp-scheduler-client", scopes=sorted(matched.scopes),
                           subject=matched.subject)


def principal_of(ctx: Any | None) -> Principal:
    """The principal of the tool call in progress: its access token's subject and scopes (`LOCAL` without a token,
    as on stdio) and the client's name from the MCP session of `ctx` (a `Context`), when it gave one."""
    client = None
    if ctx is not None:
        with contextlib.suppress(Exception):  # no session (a direct call) or no initialize (a modern-era request)
            params = ctx.session.client_params
            client = params.client_info.name if params is not None else None
    return principal_of_token(get_access_token(), client)


def principal_of_token(token: AccessToken | None, client: str | None) -> Principal:
    """The principal a verified access token stands for (`LOCAL` without one), calling through `client`."""
    if token is None:
        return LOCAL if client is None else Principal(LOCAL.subject, client, LOCAL.scopes)
    return Principal(token.subject or token.client_id, client, frozenset(token.scopes))
