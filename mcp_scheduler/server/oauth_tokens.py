"""Access tokens of an OAuth 2.1 authorization server: JWTs checked against its JWKS, or token introspection
(RFC 7662). PyJWT (the `oauth` extra) is imported only here, and this module only when OAuth is configured.

The issuer, JWKS and introspection URLs are the operator's configuration, not a caller's input: they may name a
loopback or private address (an issuer on the same host or network), but must use https unless on loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mcp.server.auth.provider import AccessToken, TokenVerifier

from ..principals import LOCAL
from ..settings import is_loopback

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "AnyVerifier",
    "IntrospectionVerifier",
    "JwtVerifier",
    "access_token",
    "check_url",
    "get_json",
]

logger = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Signatures accepted: an issuer's public keys only (never `none`, nor HMAC with a key the resource would share)."""

FETCH_TIMEOUT = 10.0
"""Seconds a request to the authorization server may take (each step: connect, each read)."""

MAX_DOCUMENT = 1_000_000
"""Largest JWKS, metadata or introspection answer read (bytes)."""


def check_url(url: str, what: str) -> str:
    """`url` if it is https, or http on a loopback host; `ValueError` naming `what` (a flag) otherwise."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname or parts.scheme == "http" and is_loopback(parts.hostname or ""):
        return url
    raise ValueError(f"{what} {url[:200]!r}: give an https:// URL (http:// only for 127.0.0.1, ::1 or localhost).")


async def get_json(url: str, *, data: Mapping[str, str] | None = None, auth: tuple[str, str] | None = None) -> Any:
    """The JSON document at `url` (a POST of the form `data` when given): no redirects, at most `MAX_DOCUMENT`
    bytes; `OSError` when it cannot be reached, `ValueError` for a bad answer."""
    import json

    import httpx2

    body = bytearray()
    try:
        async with httpx2.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client:
            method = "POST" if data is not None else "GET"
            async with client.stream(method, url, data=data, auth=auth,
                                     headers={"Accept": "application/json"}) as answer:
                if answer.status_code != 200:
                    raise ValueError(f"{url} answered HTTP {answer.status_code}")
                async for chunk in answer.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT:
                        raise ValueError(f"{url} answered more than {MAX_DOCUMENT} bytes")
    except httpx2.HTTPError as exc:
        raise OSError(f"{url}: {exc or type(exc).__name__}") from exc
    try:
        return json.loads(body)
    except ValueError:
        raise ValueError(f"{url} did not answer JSON") from None


def _scopes(claims: Mapping[str, Any]) -> list[str]:
    """Scopes of a token: `scope` (space-separated, RFC 9068 / 7662) or `scp` (a list or a string)."""
    granted = claims.get("scope") or claims.get("scp") or ""
    if isinstance(granted, str):
        return granted.split()
    if isinstance(granted, list):
        return [s for s in granted if isinstance(s, str)]
    return []


def access_token(token: str, claims: Mapping[str, Any], resource: str, leeway: float) -> AccessToken | None:
    """The SDK's `AccessToken` of verified `claims` (None for a subject the scheduler keeps for itself)."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or subject == LOCAL.subject or subject.startswith("token:"):
        # `local` and `token:...` name the operator and static tokens: an issuer's subject must not pass for them.
        logger.warning("Refused a bearer token whose subject %r is missing or reserved", str(subject)[:100])
        return None
    client = claims.get("client_id") or claims.get("azp") or subject
    exp = claims.get("exp")
    return AccessToken(
        token=token, client_id=str(client), scopes=_scopes(claims), subject=subject, resource=resource,
        # The SDK checks expires_at again, without a leeway: give it the last moment this verifier accepts.
        expires_at=int(exp + leeway) if isinstance(exp, int | float) else None,
        claims={"iss": claims.get("iss")},
    )


def _audiences(audience: str) -> list[str]:
    """The spellings of the resource URL a token may name (RFC 8707: a trailing slash is the same resource)."""
    bare = audience.removesuffix("/")
    return [bare, bare + "/"]


class JwtVerifier:
    """Checks JWT access tokens: signature by a key of the issuer's JWKS (fetched over HTTP, cached, fetched again
    for an unknown `kid` at most every `refetch_after` seconds), `iss`, `aud` (this server's resource URL), `exp`
    and `nbf` within `leeway` seconds, and a `sub`."""

    def __init__(self, issuer: str, audience: str, jwks_url: str | None = None, *, leeway: float = 30.0,
                 refetch_after: float = 30.0) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        self.leeway = leeway
        self.refetch_after = refetch_after
        self._keys: dict[str | None, Any] = {}
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's `AccessToken`, or None when it is not one of the issuer's for this server (logged why)."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            logger.info("Refused a bearer token signed with %r (accepted: %s)", str(algorithm)[:20],
                        ", ".join(ASYMMETRIC_ALGORITHMS))
            return None
        key = await self._key(kid if isinstance(kid, str) else None)
        if key is None:
            return None
        try:
            claims = jwt.decode(
                token, key, algorithms=[algorithm], audience=_audiences(self.audience),
                issuer=_audiences(self.issuer), leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            logger.info("Refused a bearer token: %s", exc)
            return None
        return access_token(token, claims, self.audience, self.leeway)

    async def _key(self, kid: str | None) -> Any:
        if kid not in self._keys:
            async with self._lock:
                if kid not in self._keys and time.monotonic() - self._fetched_at >= self.refetch_after:
                    await self._fetch()
        found = self._keys.get(kid)
        if found is None:
            logger.info("Refused a bearer token signed with key %r, which the issuer's JWKS does not hold",
                        str(kid)[:100])
        return found

    async def _fetch(self) -> None:
        import jwt

        self._fetched_at = time.monotonic()
        try:
            url = self.jwks_url or await self._jwks_uri()
            document = await get_json(url)
            keys = {}
            for entry in document.get("keys", []) if isinstance(document, dict) else []:
                if entry.get("use", "sig") != "sig":
                    continue
                try:
                    keys[entry.get("kid")] = jwt.PyJWK(entry)
                except jwt.PyJWTError as exc:
                    logger.warning("Skipped a key of the JWKS at %s: %s", url, exc)
        except (OSError, ValueError) as exc:
            logger.warning("Could not fetch the issuer's keys (JWKS) of %s: %s; bearer tokens are refused until "
                           "it answers", self.issuer, exc)
            return
        if len(keys) == 1 and None not in keys:
            keys[None] = next(iter(keys.values()))  # a token without kid, of an issuer with a single key
        self._keys = keys
        self.jwks_url = url

    async def _jwks_uri(self) -> str:
        """The issuer's `jwks_uri`, from its RFC 8414 metadata (or OpenID Connect discovery)."""
        from urllib.parse import urlsplit

        parts = urlsplit(self.issuer)
        path = parts.path.rstrip("/")
        origin = f"{parts.scheme}://{parts.netloc}"
        failures = []
        for url in (f"{origin}/.well-known/oauth-authorization-server{path}",
                    f"{origin}{path}/.well-known/openid-configuration"):
            try:
                metadata = await get_json(url)
            except (OSError, ValueError) as exc:
                failures.append(str(exc))
                continue
            if not isinstance(metadata, dict) or not isinstance(metadata.get("jwks_uri"), str):
                failures.append(f"{url} names no jwks_uri")
                continue
            if str(metadata.get("issuer", "")).rstrip("/") != self.issuer.rstrip("/"):
                failures.append(f"{url} is the metadata of issuer {str(metadata.get('issuer'))[:200]!r}")
                continue
            return check_url(metadata["jwks_uri"], "The issuer's jwks_uri")
        raise ValueError("; ".join(failures) + " (give --oauth-jwks-url)")


class IntrospectionVerifier:
    """Asks the authorization server about each token (RFC 7662), as a client with `client_id` and
    `client_secret`; accepts an active token for this server (`aud`), from `issuer` when it names one. Answers
    are kept up to `cache_for` seconds (never past the token's `exp`)."""

    def __init__(self, url: str, client_id: str, client_secret: str, *, audience: str, issuer: str | None = None,
                 cache_for: float = 60.0, leeway: float = 30.0) -> None:
        self.url = url
        self.audience = audience
        self.issuer = issuer
        self.cache_for = cache_for
        self.leeway = leeway
        self._auth = (client_id, client_secret)
        self._cache: dict[bytes, tuple[float, AccessToken | None]] = {}

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's `AccessToken`, or None when the server says it is not active, or not for this server."""
        digest = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            answer = await get_json(self.url, data={"token": token, "token_type_hint": "access_token"},
                                    auth=self._auth)
        except (OSError, ValueError) as exc:
            logger.warning("Token introspection at %s failed: %s", self.url, exc)
            return None
        verified = self._accepted(token, answer if isinstance(answer, dict) else {})
        if len(self._cache) >= 10_000:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        until = now + self.cache_for
        if verified is not None and verified.expires_at is not None:
            until = min(until, now + verified.expires_at - time.time())
        self._cache[digest] = (until, verified)
        return verified

    def _accepted(self, token: str, answer: Mapping[str, Any]) -> AccessToken | None:
        if answer.get("active") is not True:
            return None
        audiences = answer.get("aud")
        named = [audiences] if isinstance(audiences, str) else audiences if isinstance(audiences, list) else []
        if not set(_audiences(self.audience)) & set(named):
            logger.info("Refused a bearer token for audience %r, not this server (%s)", str(audiences)[:200],
                        self.audience)
            return None
        issuer = answer.get("iss")
        if self.issuer is not None and issuer is not None and str(issuer).rstrip("/") != self.issuer.rstrip("/"):
            logger.info("Refused a bearer token of issuer %r", str(issuer)[:200])
            return None
        exp = answer.get("exp")
        if isinstance(exp, int | float) and exp + self.leeway < time.time():
            return None
        return access_token(token, answer, self.audience, self.leeway)


class AnyVerifier:
    """Accepts a token any of `verifiers` accepts (tried in order): the static tokens and the issuer's."""

    def __init__(self, verifiers: Iterable[TokenVerifier]) -> None:
        self.verifiers: Sequence[TokenVerifier] = tuple(verifiers)

    async def verify_token(self, token: str) -> AccessToken | None:
        """The first verifier's `AccessToken` for `token`, or None if none accepts it."""
        for verifier in self.verifiers:
            verified = await verifier.verify_token(token)
            if verified is not None:
                return verified
        return None
