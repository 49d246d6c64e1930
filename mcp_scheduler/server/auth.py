"""Bearer-token auth for the HTTP transports (a fixed set of tokens, compared in constant time), and the principal
of a tool call."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

from ..principals import ADMIN, LOCAL, Principal

__all__ = ["StaticTokenVerifier", "principal_of"]


class StaticTokenVerifier:
    """Accepts any of the configured tokens (the SDK answers 401 for a missing or unknown one)."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._digests = [hashlib.sha256(t.encode()).digest() for t in tokens if t]
        if not self._digests:
            raise ValueError("StaticTokenVerifier needs at least one non-empty token.")

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = hashlib.sha256(token.encode()).digest()
        matched = False
        for known in self._digests:
            matched |= hmac.compare_digest(digest, known)
        if not matched:
            return None
        # A static token is the simple option: all or nothing. Its subject names it without revealing it, so that
        # two configured tokens are two principals.
        return AccessToken(token=token, client_id="mcp-scheduler-client", scopes=[ADMIN],
                           subject=f"token:{digest.hex()[:12]}")


def principal_of(ctx: Any | None) -> Principal:
    """The principal of the tool call in progress: its access token's subject and scopes (`LOCAL` without a token,
    as on stdio) and the client's name from the MCP session of `ctx` (a `Context`), when it gave one."""
    client = None
    if ctx is not None:
        with contextlib.suppress(Exception):  # no session (a direct call) or no initialize (a modern-era request)
            params = ctx.session.client_params
            client = params.client_info.name if params is not None else None
    token = get_access_token()
    if token is None:
        return LOCAL if client is None else Principal(LOCAL.subject, client, LOCAL.scopes)
    return Principal(token.subject or token.client_id, client, frozenset(token.scopes))
