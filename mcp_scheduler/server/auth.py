"""Bearer-token auth for the HTTP transports: a fixed set of tokens, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from mcp.server.auth.provider import AccessToken

__all__ = ["StaticTokenVerifier"]


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
        return AccessToken(token=token, client_id="mcp-scheduler-client", scopes=[])
